import MeshprobeIdentity
import MeshprobeLoad
import MeshprobePolicy
import MeshprobeReport
import MeshprobeScenario
import MeshprobeSpec
import MeshprobeYAML

/// What `run`, `verify` and `gameday` would do, as `--check` prints it: the targets, the identity (named, never
/// read), the load, the checks or steps and the outputs (named, never written), each field the command line changed
/// marked with what changed it.
package enum CheckPlan {
    /// Where a run would write its results, as the command line asks.
    package struct Outputs {
        package var reports: ReportOutputs
        /// `--json`'s path; nil: none, or a scenario's `output.json` (`run`).
        package var json: String?
        /// `--pushgateway`'s URL.
        package var pushgateway: String?

        package init(_ reports: ReportOutputs, json: String?, pushgateway: String?) {
            self.reports = reports
            self.json = json
            self.pushgateway = pushgateway
        }
    }

    /// A scenario file's plan (`run --check`).
    package static func lines(scenario: Scenario, configuration: LoadConfiguration, outputs: Outputs) -> [String] {
        var marks = Marks(scenario.overrides)
        let thresholds = configuration.plan.thresholds.map(\.text)
        return ["\(scenario.file): valid scenario\(scenario.name.map { " '\($0)'" } ?? "") (--check: nothing sent)"]
            + common(scenario, configuration: configuration, marks: &marks)
            + ["  thresholds: " + (thresholds.isEmpty ? "none set" : thresholds.joined(separator: ", ")) + marks.from("thresholds"),
               line(outputs, fileJSON: scenario.jsonOutput, marks: &marks)] + marks.rest
    }

    /// A policy's plan (`verify --check`), with the manifests it imported routes from.
    package static func lines(policy: Policy, manifests: [String], configuration: LoadConfiguration, outputs: Outputs) -> [String] {
        var marks = Marks(policy.scenario.overrides)
        var out = ["\(policy.file): valid policy '\(policy.name)'\(manifests.isEmpty ? "" : " with \(manifests.joined(separator: ", "))") (--check: nothing sent)"]
        out += common(policy.scenario, configuration: configuration, marks: &marks,
                      endsAt: ("at most \(policy.statistics.maxSamples) requests per check", "expect.maxRequests"))
        let statistics = ["recognise \(policy.recognizer)\(marks.from("expect.recognise"))",
                          "tolerance \(YAMLValue.format(policy.statistics.tolerance))\(marks.from("expect.tolerance"))",
                          "false-fail <= \(YAMLValue.format(policy.statistics.falseFailRate))\(marks.from("expect.falseFailRate"))",
                          "miss <= \(YAMLValue.format(policy.statistics.missRate))\(marks.from("expect.missRate"))"]
        out.append("  checks (\(statistics[0]); \(statistics[1...].joined(separator: ", "))):")
        // Without manifests the routes are the file's: one `split`, or `routes` in order.
        let listed = policy.scenario.extras["expect"]?["routes"] != nil
        for (i, route) in policy.routes.enumerated() {
            let weights = route.weights.sorted { $0.key < $1.key }.map { "\($0.key) \(YAMLValue.format($0.value))" }.joined(separator: ", ")
            let match = route.conditions.isEmpty ? "" : " (\(route.conditions.map(\.description).joined(separator: ", ")))"
            let mark = !manifests.isEmpty ? "" : listed ? marks.from("expect.routes[\(i)]") : marks.from("expect.split", "expect.name")
            out.append("    split '\(route.name)'\(match): \(weights)\(mark)")
        }
        if let caller = policy.expectedCaller {
            out.append("    mTLS: every response's caller is \(caller.isEmpty ? "the prober's own SPIFFE ID" : caller)\(marks.from("expect.mtls"))")
        }
        var slo = policy.minimumSuccessRate.map { ["success rate >= \(YAMLValue.format($0))\(marks.from("expect.slo.successRate"))"] } ?? []
        slo += policy.latencyCeilings.map { ceiling in
            "p\(YAMLValue.format(ceiling.percentile)) <= \(YAMLValue.format(ceiling.seconds * 1000)) ms"
                + marks.from { path in path.hasPrefix("expect.slo.") && LoadThreshold.percentile(String(path.dropFirst(11))) == ceiling.percentile }
        }
        if !slo.isEmpty { out.append("    SLO: \(slo.joined(separator: "; "))") }
        let clusters = [("reach", policy.clustersToReach), ("avoid", policy.clustersToAvoid)].filter { !$0.1.isEmpty }
            .map { "\($0.0) \($0.1.joined(separator: ", "))" }
        if !clusters.isEmpty { out.append("    clusters: \(clusters.joined(separator: "; "))\(marks.from("expect.clusters"))") }
        func declared(_ source: String) -> String { "(\(source))\(marks.from(declaredAt: source))" }
        out += policy.circuitBreakers.map { "    circuit breaker at \($0.maxRequests) in flight \(declared($0.source))" }
        out += policy.outlierDetections.map {
            "    outlier detection, \($0.consecutiveErrors) errors, making \(outlierTargets($0)) fail \(declared($0.source))"
        }
        out += policy.retries.map { "    retries and timeouts: \($0.summary) \(declared($0.source))" }
        out += policy.maxRetries.map { "    at most \($0.limit) concurrent retries \(declared($0.source))" }
        out += policy.connectionReuse.map { "    at most \($0.maxRequestsPerConnection) requests per connection \(declared($0.source))" }
        if let access = policy.access {
            out += accessLines(access, mark: marks.from("expect.access"), holders: Set(policy.identities.map(\.caller)),
                               identity: policy.scenario.identity)
        }
        return out + [line(outputs, marks: &marks)] + marks.rest
    }

    /// The access matrix: one line per cell in matrix order, with its decision and where it was declared or decided,
    /// or not checked and why; then what the manifests declare that no cell can check; then the SPIFFE callers that
    /// `identities` (`holders`) does not give, which the run needs to be the identity section's own (its certificate
    /// is not read here).
    static func accessLines(_ access: AccessExpectation, mark: String, holders: Set<AccessCaller> = [],
                            identity: ScenarioIdentity? = nil) -> [String] {
        var out = ["    access (\(counted(access.cells.count, "cell")), \(counted(access.attempts, "try", plural: "tries")) each on fresh connections; \(access.source))\(mark):"]
        for cell in access.cells {
            let what = cell.expected.map { "\($0.rawValue) (\(cell.source))" } ?? "not checked: \(cell.notChecked ?? "no decision")"
            out.append("      \(cell.caller) -> \(cell.request): \(what)")
        }
        out += access.notChecked.map { "      not checked in the manifests: \($0)" }
        for caller in access.callers {
            guard case .spiffe(let id) = caller, !holders.contains(caller) else { continue }
            // With the Workload API, the identity section's own SPIFFE ID is the SVID it picks (its default when it
            // names none, which only the agent knows); another SVID the agent offers is not a caller's.
            let own: String
            switch (identity?.workloadAPI, identity?.workloadAPISVID?.description) {
            case (.some, .some(let picked)) where picked == id:
                continue
            case (.some, .some(let picked)):
                own = "the Workload API SVID the identity section picks (\(picked)), not another the agent offers"
            case (.some, .none):
                own = "the Workload API's default SVID (not called: --check), not another the agent offers"
            default:
                own = "the identity section's own SPIFFE ID (its certificate is not read: --check)"
            }
            out.append("      note: \(caller) is not in identities: the run needs it to be \(own), else it refuses the cell (exit 2)")
        }
        return out
    }

    /// A game day's plan (`gameday --check`): its steps as a run's header lists them, then `caps` (the operator's
    /// caps, in words) with the abort file.
    package static func lines(gameday: GameDay, configuration: LoadConfiguration, caps: String, outputs: Outputs) -> [String] {
        var marks = Marks(gameday.scenario.overrides)
        var out = ["\(gameday.file): valid game day '\(gameday.name)' (--check: nothing sent, no fault set)"]
        out += common(gameday.scenario, configuration: configuration, marks: &marks, load: false)
        out += ["  steps:"] + gameday.steps.enumerated().map { "    \($0.offset + 1). \(describe($0.element))\(marks.from("gameday.steps[\($0.offset)]"))" }
        out.append("  \(caps)\(gameday.abortFile.map { "; abort file \($0)\(marks.from("gameday.abortFile"))" } ?? "")")
        return out + [line(outputs, marks: &marks)] + marks.rest
    }

    /// One game-day step in a line.
    /// Which workloads an outlier-detection check makes fail: the first, then (with two or more) all of them at once for
    /// the maximum-percent phase.
    static func outlierTargets(_ e: OutlierExpectation) -> String {
        guard let first = e.faultTargets.first else { return "?" }
        return e.faultTargets.count < 2 ? first : "\(first), then all \(e.faultTargets.count) at once (\(e.faultTargets.joined(separator: ", ")))"
    }

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
            return "\(step.name): outlier detection, \(e.consecutiveErrors) errors, \(YAMLValue.format(e.baseEjectionTime))s, making \(outlierTargets(e)) fail"
        case .access(let e):
            return "\(step.name): access, \(counted(e.cells.count, "cell")) (of \(counted(e.callers.count, "caller")) and \(counted(e.requests.count, "request"))), "
                + "\(counted(e.attempts, "try", plural: "tries")) each"
        case .retries(let e):
            return "\(step.name): retries and timeouts (\(e.source))"
        }
    }

    /// The line naming where a run would write its results (nothing is written under `--check`): the JSON (`--json`,
    /// else the file's `output.json`, `fileJSON`), the reports and exports, the results in the log, and the metrics.
    static func line(_ outputs: Outputs, fileJSON: String? = nil, marks: inout Marks) -> String {
        func place(_ path: String) -> String {
            ReportFile.writesStandardOutput(path) ? "standard output" : path
        }
        let reports = outputs.reports
        var items: [String] = []
        if let json = outputs.json {
            items.append("JSON to \(place(json))\(fileJSON == nil ? "" : " (--json, in place of output.json)")")
        } else if let fileJSON {
            let changed = marks.sources("output.json")
            items.append("JSON to \(place(fileJSON)) (output.json\(changed.isEmpty ? "" : ", from " + changed.joined(separator: ", ")))")
        }
        if reports.jsonLog { items.append("JSON to standard output between marker lines (--json-log)") }
        if let junit = reports.junit { items.append("JUnit to \(place(junit))") }
        if reports.junitLog { items.append("JUnit to standard output between marker lines (--junit-log)") }
        if let html = reports.html { items.append("HTML to \(place(html))") }
        if let prometheus = reports.prometheus { items.append("Prometheus metrics to \(place(prometheus))") }
        if let smp = reports.smp { items.append("SMP to \(place(smp))") }
        if let hgrm = reports.hgrm { items.append(".hgrm to \(place(hgrm))") }
        if let listen = reports.metricsListen { items.append("live metrics at http://\(listen)/metrics") }
        if let pushgateway = outputs.pushgateway { items.append("metrics pushed to \(pushgateway)") }
        guard !items.isEmpty else { return "  outputs: none (the results are only printed)" }
        let served = reports.metricsListen != nil || outputs.pushgateway != nil
        return "  outputs: \(items.joined(separator: ", ")) (not written\(served ? ", served or pushed" : ""): --check)"
    }

    /// The targets, identity and (unless a game day's steps set it) load, marking what the command line changed.
    /// `endsAt`: how a policy's load ends when no duration is set, and the field that sets it.
    static func common(_ scenario: Scenario, configuration: LoadConfiguration, marks: inout Marks, load: Bool = true,
                       endsAt end: (text: String, field: String)? = nil) -> [String] {
        let plan = configuration.plan
        var out = ["  targets: \(plan.targets.map { $0.description + ($0.serverName.map { " (sni \($0))" } ?? "") }.joined(separator: ", "))\(marks.from("target", "targets"))"]
        out.append("  identity: \(identity(scenario.identity, marks: &marks))")
        guard load else { return out }
        var ends: [String] = []
        if let duration = plan.plannedDuration {
            ends.append("for \(YAMLValue.format(duration))s\(marks.from("load.duration"))")
        } else if let end {
            ends.append(end.text + marks.from(end.field))
        } else if let requests = plan.requests {
            ends.append("\(requests) \(plan.flow.isEmpty ? "requests" : "iterations")\(marks.from("load.requests"))")
        }
        if plan.warmup > 0 { ends.append("warm-up \(YAMLValue.format(plan.warmup))s\(marks.from("load.warmup"))") }
        let model = LoadReport.describe(plan.model, configuration: configuration)
            + marks.from("load.connections", "load.streams", "load.rate", "load.arrivals", "load.stages", "load.think", "load.thinkJitter")
        out.append("  load: \(model)\(ends.isEmpty ? "" : "; " + ends.joined(separator: ", "))")
        if plan.flow.isEmpty {
            out.append("  request: \(plan.method) \(plan.targets.first?.path ?? "/")\(plan.headers.isEmpty ? "" : " with \(plan.headers.count) header(s)")\(marks.from("request"))")
        } else {
            out.append("  steps: \(plan.flow.map(\.name).joined(separator: ", "))\(marks.from("steps"))")
        }
        return out
    }

    /// The identity as the file gives it; under `--check` its files are named, not read. Each field is marked when
    /// the command line set it.
    static func identity(_ id: ScenarioIdentity, marks: inout Marks) -> String {
        var parts: [String] = []
        var files = [("svidDir", id.tls.svidDir), ("cert", id.tls.cert), ("key", id.tls.key), ("ca", id.tls.ca)]
            .compactMap { name, value in value.map { "\(name) \($0)\(marks.from("identity.\(name)"))" } }
        if !id.tls.trustBundles.isEmpty {
            files.append(id.tls.trustBundles.map { "trustBundles \($0.trustDomain)=\($0.file)" }.joined(separator: ", ")
                         + marks.from("identity.trustBundles"))
        }
        if !files.isEmpty { parts.append(files.joined(separator: ", ") + " (not read: --check)") }
        if let endpoint = id.workloadAPI {
            parts.append("workloadApi \(endpoint)\(marks.from("identity.workloadApi"))"
                         + (id.workloadAPISVID.map { ", the SVID \($0)\(marks.from("identity.workloadApiSvid"))" } ?? "") + " (not called: --check)")
        }
        if let expect = id.expectPeer { parts.append("expectPeer \(expect)\(marks.from("identity.expectPeer"))") }
        if let sni = id.sni { parts.append("sni \(sni)\(marks.from("identity.sni"))") }
        if id.insecure { parts.append("insecure: the server's certificate is not verified\(marks.from("identity.insecure"))") }
        return parts.isEmpty ? "none (plaintext, or no client certificate)" : parts.joined(separator: "; ")
    }

    /// The command line's changes to a file (`--target`, `--svid-dir`, `--set`), as the plan marks them: each field it
    /// shows names the changes made at it or inside it, `(from --set load.connections=3)`; the changes to fields the
    /// plan does not show are listed at its end (`rest`), so that every change is named.
    struct Marks {
        let overrides: [YAMLOverride]
        /// The changes named so far, by index.
        private var shown = Set<Int>()

        init(_ overrides: [YAMLOverride]) {
            self.overrides = overrides
        }

        /// ` (from SOURCE, ...)` for the changes at, inside or around any of `fields`; empty when there are none.
        mutating func from(_ fields: String...) -> String {
            from(sources(fields))
        }

        /// The sources of the changes at, inside or around any of `fields`, each once, in the order they applied.
        mutating func sources(_ fields: String...) -> [String] {
            sources(fields)
        }

        private mutating func sources(_ fields: [String]) -> [String] {
            sources { path in
                fields.contains { field in
                    path == field || path.hasPrefix(field + ".") || path.hasPrefix(field + "[")
                        || field.hasPrefix(path + ".") || field.hasPrefix(path + "[")
                }
            }
        }

        /// The marks of a policy's declaration (`policy.yaml:12 expect.circuitBreaker`); none for a manifest's.
        mutating func from(declaredAt source: String) -> String {
            let name = DeclarationSite(source).name
            return name.hasPrefix("expect.") ? from(name) : ""
        }

        /// ` (from SOURCE, ...)` for the changes whose path `matches`.
        mutating func from(_ matches: (String) -> Bool) -> String {
            from(sources(matches))
        }

        private func from(_ sources: [String]) -> String {
            sources.isEmpty ? "" : " (from \(sources.joined(separator: ", ")))"
        }

        /// The sources of the changes whose path `matches`, marked as shown.
        private mutating func sources(_ matches: (String) -> Bool) -> [String] {
            var sources: [String] = []
            for (i, override) in overrides.enumerated() where matches(override.path) {
                shown.insert(i)
                if !sources.contains(override.source) { sources.append(override.source) }
            }
            return sources
        }

        /// The line naming the changes to fields the plan does not show (a removal goes with the change beside it).
        var rest: [String] {
            let left = overrides.indices.filter { !shown.contains($0) && overrides[$0].change != .remove }.map { overrides[$0].source }
            return left.isEmpty ? [] : ["  other changes (not shown above): \(left.joined(separator: ", "))"]
        }
    }
}
