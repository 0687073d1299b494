import MeshprobeIdentity
import MeshprobeLoad
import MeshprobePolicy
import MeshprobeReport
import MeshprobeScenario
import MeshprobeSpec
import MeshprobeYAML

/// What `run`, `verify` and `gameday` would do, as `--check` prints it: the targets, the identity (named, never
/// read), the load and the checks, with the fields the command line changed marked.
package enum CheckPlan {
    /// A scenario file's plan (`run --check`).
    package static func lines(scenario: Scenario, configuration: LoadConfiguration) -> [String] {
        let thresholds = configuration.plan.thresholds.map(\.text)
        return ["\(scenario.file): valid scenario\(scenario.name.map { " '\($0)'" } ?? "") (--check: nothing sent)"]
            + common(scenario, configuration: configuration)
            + ["  thresholds: " + (thresholds.isEmpty ? "none set" : thresholds.joined(separator: ", "))]
    }

    /// A policy's plan (`verify --check`), with the manifests it imported routes from.
    package static func lines(policy: Policy, manifests: [String], configuration: LoadConfiguration) -> [String] {
        var out = ["\(policy.file): valid policy '\(policy.name)'\(manifests.isEmpty ? "" : " with \(manifests.joined(separator: ", "))") (--check: nothing sent)"]
        out += common(policy.scenario, configuration: configuration, endsAt: "at most \(policy.statistics.maxSamples) requests per check")
        out.append("  checks (recognise \(policy.recognizer); tolerance \(YAMLValue.format(policy.statistics.tolerance)), false-fail <= \(YAMLValue.format(policy.statistics.falseFailRate)), miss <= \(YAMLValue.format(policy.statistics.missRate))):")
        for route in policy.routes {
            let weights = route.weights.sorted { $0.key < $1.key }.map { "\($0.key) \(YAMLValue.format($0.value))" }.joined(separator: ", ")
            let match = route.conditions.isEmpty ? "" : " (\(route.conditions.map(\.description).joined(separator: ", ")))"
            out.append("    split '\(route.name)'\(match): \(weights)")
        }
        if let caller = policy.expectedCaller { out.append("    mTLS: every response's caller is \(caller.isEmpty ? "the prober's own SPIFFE ID" : caller)") }
        var slo = policy.minimumSuccessRate.map { ["success rate >= \(YAMLValue.format($0))"] } ?? []
        slo += policy.latencyCeilings.map { "p\(YAMLValue.format($0.percentile)) <= \(YAMLValue.format($0.seconds * 1000)) ms" }
        if !slo.isEmpty { out.append("    SLO: \(slo.joined(separator: "; "))") }
        let clusters = [("reach", policy.clustersToReach), ("avoid", policy.clustersToAvoid)].filter { !$0.1.isEmpty }
            .map { "\($0.0) \($0.1.joined(separator: ", "))" }
        if !clusters.isEmpty { out.append("    clusters: \(clusters.joined(separator: "; "))") }
        out += policy.circuitBreakers.map { "    circuit breaker at \($0.maxRequests) in flight (\($0.source))" }
        out += policy.outlierDetections.map { "    outlier detection, \($0.consecutiveErrors) errors, making \($0.faultTargets.first ?? "?") fail (\($0.source))" }
        out += policy.retries.map { "    retries and timeouts (\($0.source))" }
        out += policy.maxRetries.map { "    at most \($0.limit) concurrent retries (\($0.source))" }
        out += policy.connectionReuse.map { "    at most \($0.maxRequestsPerConnection) requests per connection (\($0.source))" }
        return out
    }

    /// A game day's plan (`gameday --check`): its steps as a run's header lists them.
    package static func lines(gameday: GameDay, configuration: LoadConfiguration) -> [String] {
        ["\(gameday.file): valid game day '\(gameday.name)' (--check: nothing sent, no fault set)"]
            + common(gameday.scenario, configuration: configuration, load: false)
            + ["  steps:"] + gameday.steps.enumerated().map { "    \($0.offset + 1). \(describe($0.element))" }
    }

    /// One game-day step in a line.
    package static func describe(_ step: GameDayStep) -> String {
        switch step.kind {
        case .load(let rate, let duration):
            var text = "\(step.name): \(YAMLValue.format(rate)) req/s for \(YAMLValue.format(duration))s"
            if !step.faults.isEmpty {
                text += "; faults on " + step.faults.map(\.target).joined(separator: ", ")
            }
            return text
        case .circuitBreaker(let e):
            return "\(step.name): circuit breaker at \(e.maxRequests) in flight, \(e.maxPending.map(String.init) ?? "unbounded") pending"
        case .outlierDetection(let e):
            return "\(step.name): outlier detection, \(e.consecutiveErrors) errors, \(YAMLValue.format(e.baseEjectionTime))s, making \(e.faultTargets[0]) fail"
        case .retries(let e):
            return "\(step.name): retries and timeouts (\(e.source))"
        }
    }

    /// The targets, identity and (unless a game day's steps set it) load, marking what the command line changed.
    static func common(_ scenario: Scenario, configuration: LoadConfiguration, load: Bool = true,
                       endsAt end: String? = nil) -> [String] {
        func from(_ keys: String...) -> String {
            let sources = scenario.overrides.filter { o in o.change != .remove && keys.contains { o.path == $0 || o.path.hasPrefix($0 + ".") } }
                .map { $0.source.split(separator: " ").first.map(String.init) ?? $0.source }
            return sources.isEmpty ? "" : " (from \(Array(Set(sources)).sorted().joined(separator: ", ")))"
        }
        let plan = configuration.plan
        var out = ["  targets: \(plan.targets.map { $0.description + ($0.serverName.map { " (sni \($0))" } ?? "") }.joined(separator: ", "))\(from("target", "targets"))"]
        out.append("  identity: \(identity(scenario.identity, changed: from("identity")))")
        guard load else { return out }
        var ends: [String] = []
        if let duration = plan.plannedDuration { ends.append("for \(YAMLValue.format(duration))s") } else if let end {
            ends.append(end)
        } else if let requests = plan.requests {
            ends.append("\(requests) \(plan.flow.isEmpty ? "requests" : "iterations")")
        }
        if plan.warmup > 0 { ends.append("warm-up \(YAMLValue.format(plan.warmup))s") }
        out.append("  load: \(LoadReport.describe(plan.model, configuration: configuration))\(ends.isEmpty ? "" : "; " + ends.joined(separator: ", "))\(from("load"))")
        if plan.flow.isEmpty {
            out.append("  request: \(plan.method) \(plan.targets.first?.path ?? "/")\(plan.headers.isEmpty ? "" : " with \(plan.headers.count) header(s)")\(from("request"))")
        } else {
            out.append("  steps: \(plan.flow.map(\.name).joined(separator: ", "))\(from("steps"))")
        }
        return out
    }

    /// The identity as the file gives it; under `--check` its files are named, not read. `changed` follows the files
    /// when the command line set them.
    static func identity(_ id: ScenarioIdentity, changed: String) -> String {
        var parts: [String] = []
        let files = [("svidDir", id.tls.svidDir), ("cert", id.tls.cert), ("key", id.tls.key), ("ca", id.tls.ca)]
            .compactMap { name, value in value.map { "\(name) \($0)" } }
            + id.tls.trustBundles.map { "trustBundles \($0.trustDomain)=\($0.file)" }
        if !files.isEmpty { parts.append(files.joined(separator: ", ") + " (not read: --check)" + changed) }
        if let expect = id.expectPeer { parts.append("expectPeer \(expect)") }
        if let sni = id.sni { parts.append("sni \(sni)") }
        if id.insecure { parts.append("insecure: the server's certificate is not verified") }
        return parts.isEmpty ? "none (plaintext, or no client certificate)" : parts.joined(separator: "; ")
    }
}
