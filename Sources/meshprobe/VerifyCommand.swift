import ArgumentParser
import Foundation
import MeshprobeChecks
import MeshprobeLoad
import MeshprobePolicy
import MeshprobeReport
import MeshprobeRunner
import MeshprobeStatistics
import MeshprobeYAML
import NIOConcurrencyHelpers
import NIOPosix

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a policy: weighted splits with stated error rates, mTLS, clusters, SLOs, circuit breakers, outlier detection, retries and timeouts.",
        discussion: """
            Sends the policy's load and feeds every successful response to a sequential test that stops as soon as \
            the verdict is decided (see docs/statistics.md). Exit 0 pass, 1 fail, 2 bad input, 3 undecided.
            With manifests (Istio VirtualService/DestinationRule, Gateway API or Linkerd HTTPRoute), the routes come \
            from them and the policy gives the target, identity, load and statistics. Circuit breakers and retries and \
            timeouts (expect.circuitBreaker, expect.retries, or from the manifests) run as procedures after the splits.
            Example: meshprobe verify policies/reviews-canary.yaml --json verdict.json
            """
    )

    @Argument(help: "The policy file (meshprobe.policy/v1).")
    var file: String

    @Argument(help: "Mesh manifests (Istio VirtualService/DestinationRule, Gateway API or Linkerd HTTPRoute; multi-document YAML): the routes to check.")
    var manifests: [String] = []

    @Option(help: "Write the verdict and its evidence as JSON.")
    var json: String?

    @OptionGroup var reports: ReportOptions

    @Flag(help: "No live view.")
    var quiet = false

    @Flag(help: "Check the routes only (splits, mTLS, clusters, SLOs): the resilience procedures (circuit breakers, outlier detection, retries and timeouts, connection-pool limits) from the policy and the manifests are listed as not checked.")
    var routesOnly = false

    @OptionGroup(title: "Sidecar")
    var sidecar: SidecarOptions

    @OptionGroup(title: "Shards (Indexed Job)")
    var shard: ShardOptions

    func run() async throws {
        try await sidecar.around("verify") { try await verifyAndClear() }
    }

    func verifyAndClear() async throws {
        try reports.check(singleLoad: false, json: json)
        // SIGINT/SIGTERM cancel the verification (its loads stop as on a signal); faults the outlier check set are
        // cleared either way before the command exits.
        let ledger = FaultLedger(label: FaultLedger.newLabel(prefix: "verify"), deadline: SignalHub.stopDeadline)
        let task = Task { try await verify(ledger: ledger) }
        let signalled = NIOLockedValueBox(false)
        let signals = SignalStopper {
            signalled.withLockedValue { $0 = true }
            task.cancel()
        }
        defer { signals.cancel() }
        let outcome = await task.result
        for left in await ledger.clearAll(group: MultiThreadedEventLoopGroup.singleton) {
            printError("meshprobe verify: warning: not cleared: \(left)")
        }
        if signalled.withLockedValue({ $0 }) {
            if case .failure(let error as CLIError) = outcome, error.exitCode == 3 { throw error }
            throw CLIError(message: "aborted by a signal before the verification completed", exitCode: 3)
        }
        try outcome.get()
    }

    func verify(ledger: FaultLedger) async throws {
        let started = Date()
        var policy: Policy
        do {
            policy = try Policy.load(path: file, routesElsewhere: !manifests.isEmpty)
            if !manifests.isEmpty {
                try ManifestMerge.importManifests(manifests, into: &policy, policyFile: file) { note in
                    printError("meshprobe verify: note: \(note)")
                }
            }
            if routesOnly {
                for note in ManifestMerge.skipProcedures(&policy) { printError("meshprobe verify: note: \(note)") }
                guard !policy.routes.isEmpty else {
                    throw CLIError.badInput("--routes-only: \(file)\(manifests.isEmpty ? "" : " and the manifests") declare no route to check")
                }
            }
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError.badInput("\(error)")
        }
        var configuration = policy.scenario.configuration
        try attachClientTLS(to: &configuration, scenarioIdentity: policy.scenario.identity, file: file)
        var plan = try shard.plan()
        if plan != nil {
            do { plan?.tls = try ShardTLS.make(identity: policy.scenario.identity.tls) } catch let error as CLIError {
                throw CLIError.badInput("\(file): identity: \(error.message)")
            }
        }
        var aggregator: ShardAggregator?
        if let plan {
            if reports.metricsListen != nil || reports.prometheus != nil || reports.pushgateway != nil {
                throw CLIError.badInput("a sharded verify writes --json, --junit and --html (the merged verdict on shard 0), not Prometheus")
            }
            try plan.split(&policy, configuration: &configuration, requestsFlag: FlagSpelling.typed("--requests"))
            if plan.isAggregator {
                aggregator = try await startVerifyAggregator(plan, policySHA256: resultInputs([("policy", file)]).first?.sha256)
            }
        }
        defer { if let aggregator { Task { await aggregator.stop() } } }
        // Prometheus (live, file, push) over every load the verification sends.
        let session = try await reports.start(&configuration)
        if !quiet {
            for split in policy.routes {
                let weights = split.weights.sorted { $0.key < $1.key }.map { "\($0.key)=\(YAMLValue.format($0.value))" }.joined(separator: " ")
                let unit = switch split.routing {
                case .auto: "sampled by connection (routing: auto)"
                case .perConnection: "one request per connection (routing: per-connection)"
                case .perRequest: "sampled by response (routing: per-request)"
                }
                printError("meshprobe verify: \(split.name): split \(weights), tolerance \(split.statistics.tolerance), "
                    + "false-fail <= \(split.statistics.falseFailRate), miss <= \(split.statistics.missRate), \(unit), at most \(split.statistics.maxSamples) requests")
            }
        }
        try await SidecarSession.ready()
        // The SLOs are decided on the routes' requests and, when those do not suffice, on a load of their own, before
        // any procedure injects faults.
        let (outcomes, objectives, objectivesLoad) = try await PolicyVerification.runWithObjectives(
            policy, configuration: configuration, group: MultiThreadedEventLoopGroup.singleton)
        var report = VerifyReport(policy: policy, outcomes: outcomes)
        report.policySHA256 = resultInputs([("policy", file)]).first?.sha256
        let inputs = resultInputs([("policy", file)] + manifests.map { ("manifest", $0) })
        report.results = (outcomes.map(\.result) + (objectivesLoad.map { [$0] } ?? [])).map { result in
            LoadReport(result: result, configuration: configuration, commandLine: CommandLine.arguments, startedAt: started,
                       version: Meshprobe.version, inputs: inputs)
        }
        var laps = VerdictLaps()
        laps.set(outcomes.map { $0.result.elapsedSeconds + ($0.propagation?.seconds ?? 0) })
        if let expected = policy.expectedCaller {
            let caller = expected.isEmpty ? (configuration.tls?.localIdentity?.description ?? "") : expected
            report.add(CallerCheck.evaluate(outcomes, expected: caller, statistics: policy.statistics))
            laps.lap(report.verdicts.count)
        }
        try await runProcedures(policy, configuration: configuration, ledger: ledger, report: &report, laps: &laps)
        if !policy.clustersToReach.isEmpty || !policy.clustersToAvoid.isEmpty {
            report.add(ClusterCheck.evaluate(outcomes, reach: policy.clustersToReach, avoid: policy.clustersToAvoid))
            laps.lap(report.verdicts.count)
        }
        for check in objectives { report.add(check) }
        laps.lap(report.verdicts.count)
        if let plan, !plan.isAggregator {
            printLine(report.verdictText + "(shard \(plan.index)'s own part; the verdict is shard 0's)")
            try await sendShardResult(try report.jsonData(), plan: plan, command: "verify", group: MultiThreadedEventLoopGroup.singleton)
            return
        }
        if let aggregator {
            try await finishShardedVerify(own: report, aggregator: aggregator, started: started)
            return
        }
        // A signal cancelled this task: whatever is written says so.
        if Task.isCancelled { report.markAborted("a signal") }
        printLine(report.verdictText)
        let title = policy.name.isEmpty ? policy.file : policy.name
        let view = report.runReport(outcomes: outcomes, configuration: configuration, inputs: [file] + manifests, title: title,
                                    seconds: laps.seconds, startedAt: started)
        printVerdicts(view)
        if let json {
            do {
                try report.jsonData().write(to: URL(fileURLWithPath: json), options: .atomic)
            } catch {
                throw CLIError(message: "cannot write --json '\(json)': \(error.localizedDescription)", exitCode: 2)
            }
        }
        try reports.write(view)
        let cancelledBefore = Task.isCancelled
        try await session.finish(report: nil, json: nil)
        if Task.isCancelled && !cancelledBefore {
            // Every verdict was reached and written; the signal cut the push. The result says so, verdicts unchanged.
            report.markAborted("a signal during the Pushgateway push, after every verdict")
            if let json { try? report.jsonData().write(to: URL(fileURLWithPath: json), options: .atomic) }
            throw CLIError(message: "aborted by a signal during the Pushgateway push; every verdict above was reached before it", exitCode: 3)
        }
        if outcomes.contains(where: { $0.verdict?.passed == false }) || report.verdicts.contains(where: { $0.decided && !$0.passed }) {
            throw CLIError(message: "verdict: FAIL", exitCode: 1)
        }
        if outcomes.contains(where: { $0.verdict == nil }) || report.verdicts.contains(where: { !$0.decided }) {
            let undecided = report.verdicts.filter { !$0.decided }.count
            throw CLIError(message: "no verdict: \(undecided) of \(report.verdicts.count) checks undecided (each says why above)", exitCode: 3)
        }
    }

    /// Runs the resilience procedures, each adding its verdicts. Every procedure must leave the system as it found
    /// it; outlier detection, whose last phase makes every workload fail (so a proxy as declared ejects them all),
    /// runs last and waits for the endpoints to return, so that no other check meets a service with none.
    func runProcedures(_ policy: Policy, configuration: LoadConfiguration, ledger: FaultLedger, report: inout VerifyReport,
                       laps: inout VerdictLaps) async throws {
        for breaker in policy.circuitBreakers {
            if !quiet {
                printError("meshprobe verify: circuit breaker: limit \(breaker.maxRequests) in flight, \(breaker.maxPending.map(String.init) ?? "unbounded") pending (\(breaker.source))")
            }
            let outcome = try await CircuitBreakerCheck.run(breaker, configuration: configuration, group: MultiThreadedEventLoopGroup.singleton)
            for note in outcome.notes { printError("meshprobe verify: note: \(note)") }
            report.add(outcome)
            laps.lap(report.verdicts.count)
        }
        let retrying = policy.retries.first { ($0.attempts ?? 0) > 0 && $0.retryOn.retryableStatus != nil }
        for (limit, source) in policy.maxRetries {
            guard let route = retrying, let status = route.retryOn.retryableStatus else {
                printError("meshprobe verify: note: \(source): maxRetries is not verified: no route retries a status (declare retries on a route)")
                continue
            }
            let budget = RetryBudgetExpectation(maxRetries: limit, route: route, status: status, source: source)
            if !quiet {
                printError("meshprobe verify: retry limit: at most \(limit) retries in flight (\(source)), \(budget.concurrency) failing requests at once on \(route.source)")
            }
            report.add(try await RetryBudgetCheck.run(budget, configuration: configuration, group: MultiThreadedEventLoopGroup.singleton))
            laps.lap(report.verdicts.count)
        }
        for reuse in policy.connectionReuse {
            if !quiet {
                printError("meshprobe verify: connection reuse: at most \(reuse.maxRequestsPerConnection) requests per upstream connection (\(reuse.source))")
            }
            let outcome = try await ConnectionReuseCheck.run(reuse, configuration: configuration, group: MultiThreadedEventLoopGroup.singleton)
            report.add(outcome)
            laps.lap(report.verdicts.count)
        }
        for retry in policy.retries {
            if !quiet {
                let declared = [retry.attempts.map { "\($0) retries on \(retry.retryOn)" },
                                retry.perTryTimeout.map { "per-try timeout \(YAMLValue.format($0))s" },
                                retry.timeout.map { "timeout \(YAMLValue.format($0))s" }].compactMap { $0 }
                printError("meshprobe verify: retries and timeouts: \(declared.joined(separator: ", ")) (\(retry.source))")
            }
            let outcome = try await RetryCheck.run(retry, configuration: configuration, group: MultiThreadedEventLoopGroup.singleton)
            for note in outcome.notes { printError("meshprobe verify: note: \(retry.source): \(note)") }
            report.add(outcome)
            laps.lap(report.verdicts.count)
        }
        if !policy.outlierDetections.isEmpty {
            let tls = try controlTLS(scenarioIdentity: policy.scenario.identity, file: file)
            for declared in policy.outlierDetections {
                if !quiet {
                    printError("meshprobe verify: outlier detection: ejected after \(declared.consecutiveErrors) consecutive errors for "
                        + "\(YAMLValue.format(declared.baseEjectionTime))s, at most \(YAMLValue.format(declared.maxEjectionPercent))% (\(declared.source)); "
                        + "making \(declared.faultTargets[0]) fail")
                }
                do {
                    let outcome = try await OutlierDetectionCheck.run(declared, configuration: configuration, recognizer: policy.recognizer,
                                                                      controlTLS: tls, ledger: ledger, group: MultiThreadedEventLoopGroup.singleton)
                    for left in outcome.faultsLeft { printError("meshprobe verify: warning: not cleared: \(left)") }
                    report.add(outcome)
                    laps.lap(report.verdicts.count)
                } catch let error as FaultClientError {
                    // The check could not run (refused, unreachable): undecided, and the other verdicts still stand.
                    report.addUndecided(kind: "outlier_detection", name: "outlier detection (\(declared.source))",
                                        reason: "could not make a workload fail: \(error)")
                    laps.lap(report.verdicts.count)
                }
            }
        }
    }

    /// Shard 0 of a sharded verify: merges the shards' verdicts (`mergeVerifyShards`), prints and writes the merged
    /// verdict, exits with it.
    func finishShardedVerify(own: VerifyReport, aggregator: ShardAggregator, started: Date) async throws {
        let merged = try await mergeVerifyShards(own: own, aggregator: aggregator)
        try VerifyMerge.finish(merged, json: json, reports: reports, title: "\(own.policy), \(aggregator.plan.count) shards", startedAt: started)
    }
}

/// The verify result (`VerifyReport`, in MeshprobeReport) built from the policy's checks and procedures.
extension VerifyReport {
    /// The split verdicts of a policy's routes.
    init(policy: Policy, outcomes: [PolicyVerification.Outcome]) {
        self.init(file: policy.file)
        verdicts = outcomes.map { outcome in
            let statistics = outcome.route.statistics
            let e = outcome.evidence
            let samples = e.samples
            let counts = e.counts
            let sampling = Self.sampling(outcome)
            var evidence = Evidence(
                requests: samples, counts: counts, declared: outcome.route.weights.mapValues { $0 / 100 },
                observed: counts.mapValues { samples > 0 ? (Double($0) / Double(samples) * 10000).rounded() / 10000 : 0 },
                tolerance: statistics.tolerance, falseFailRate: statistics.falseFailRate, missRate: statistics.missRate,
                test: e.unit == .connection
                    ? "sequential test on connections: test martingales per destination (Bonferroni over destinations), bets sized by the measured clustering"
                    : "sequential probability ratio tests per destination on responses (Bonferroni over destinations)",
                truncated: e.truncated, unsuccessfulResponses: outcome.unsuccessful,
                matchHeaders: Dictionary(outcome.route.matchHeaders.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a }),
                matchPath: outcome.route.matchPath, matchMethod: outcome.route.matchMethod,
                match: outcome.route.conditions.map(\.description), connections: outcome.result.connectionsEstablished,
                propagation: outcome.propagation.map {
                    Propagation(settled: $0.settled, seconds: ($0.seconds * 1000).rounded() / 1000, requests: $0.requests,
                                connections: $0.connections, windows: $0.windows)
                })
            evidence.sampling = sampling
            var reason: String?
            // A peer refused for its identity or certificate is a decided failure, whatever the split would have been.
            let refusal = outcome.verdict == nil ? Self.identityRefusal(outcome.result) : nil
            switch outcome.verdict {
            case .fail(let why, _)?:
                reason = why
                if e.unit == .request && e.connections < 30 {
                    reason! += "; the responses came from only \(e.connections) connections: if the proxy routes per connection (an L4 balancer), "
                        + "they are not independent samples (routing: auto)"
                }
            case .pass?:
                break
            case nil:
                reason = refusal ?? Self.undecidedSplitReason(outcome)
            }
            return Verdict(name: outcome.route.name, passed: outcome.verdict?.passed == true, decided: outcome.verdict != nil || refusal != nil,
                           reason: reason, evidence: evidence)
        }
        passed = verdicts.allSatisfy(\.passed)
        decided = verdicts.allSatisfy(\.decided)
    }

    /// The route's connections were refused for what the server presented (its SPIFFE ID, its certificate, its
    /// ALPN): the traffic did not reach the declared workloads as declared, which fails the route even though its
    /// split was not measured. Nil when no such refusal happened.
    static func identityRefusal(_ result: LoadResult) -> String? {
        let refusals = result.connectionFailures.filter { $0.key.rawValue.hasPrefix("tls_") && !$0.key.isTransientConnectionFailure }
        guard let (kind, count) = refusals.max(by: { $0.value < $1.value }) else { return nil }
        let why = result.errorExplanations[kind].map { ": \($0)" } ?? ""
        return "the server was refused on \(count) connection attempt\(count == 1 ? "" : "s") (\(kind.rawValue)\(why)): the split was not measured"
    }

    /// Why a split has no verdict, with the figures.
    static func undecidedSplitReason(_ outcome: PolicyVerification.Outcome) -> String {
        let e = outcome.evidence
        if let misconfiguration = outcome.misconfiguration { return "undecided: \(misconfiguration)" }
        if outcome.contradictsPerRequestRouting {
            return "undecided: routing was declared per request, but responses cluster by connection (\(e.clustering?.summary ?? "")): "
                + "the stated error rates do not hold for these samples; use routing: auto"
        }
        var text = e.truncated
            ? "undecided: the request cap came before the test decided (\(e.samples) successful responses on \(e.connections) connections)"
            : "undecided: the run ended after \(e.samples) successful responses on \(e.connections) connections"
        if let failures = outcome.result.failureSummary() { text += "; failures: \(failures)" }
        return text
    }

    /// The sampling facts of a split verdict.
    static func sampling(_ outcome: PolicyVerification.Outcome) -> Sampling {
        let e = outcome.evidence
        let c = e.clustering
        let routing = outcome.route.routing
        let m = outcome.requestsPerConnection.filter { $0 > 0 }
        let perConnectionText = m.isEmpty ? "" : m.count == 1 || Set(m).count == 1 ? " of \(m[0]) requests each"
            : " of \(m[0]) requests each, then \(m.last!) once the connections showed clustering"
        var words: String
        switch routing {
        case .perRequest:
            words = "routing declared per request: each response counted as an independent sample (\(e.samples) responses on \(e.connections) connections)"
        case .perConnection:
            words = "routing declared per connection: one request per connection, each connection one sample (\(e.connections) connections)"
        case .auto:
            words = "unit: the connection (the error rates hold for any routing): \(e.connections) connections\(perConnectionText)"
            if let rho = c?.correlation, (c?.connections ?? 0) >= 10 {
                // Named only when the count of mixed connections says so (a point estimate of rho is noisy).
                let clustered = c?.contradictsPerRequestRouting() ?? false
                words += clustered ? (rho >= 0.5 ? "; routing looks per connection" : "; requests partly cluster by connection")
                    : rho <= 0.1 ? "; routing looks per request" : ""
            }
        }
        if let c, c.connections > 0 { words += "; " + c.summary }
        if let n = e.effectiveSamples { words += String(format: "; worth %.0f independent responses", n) }
        return Sampling(routing: routing.rawValue, unit: e.unit.rawValue, connections: e.connections,
                        requestsPerConnection: outcome.requestsPerConnection, effectiveSamples: e.effectiveSamples.map { ($0 * 10).rounded() / 10 },
                        pairedConnections: c?.connections ?? 0, mixedConnections: c?.mixedConnections ?? 0,
                        expectedMixedConnections: c?.expectedMixedConnections.map { ($0 * 10).rounded() / 10 },
                        correlation: c?.correlation.map { ($0 * 1000).rounded() / 1000 }, assumption: words,
                        tests: e.unit == .connection ? e.tests : nil)
    }

    /// Adds the mTLS verdict (no sequential test: every response must show the expected caller).
    mutating func add(_ check: CallerCheck) {
        let evidence = Evidence.facts(
            requests: check.responses, counts: check.seen, declared: [check.expected: 1],
            observed: check.seen.mapValues { check.responses > 0 ? Double($0) / Double(check.responses) : 0 },
            test: "every response's caller (x-meshprobe-caller) must be the expected SPIFFE ID")
        appendVerdict(Verdict(kind: "mtls", name: "mTLS in effect (caller \(check.expected.isEmpty ? "unknown" : check.expected))",
                              passed: check.passed, decided: check.decided, reason: check.reason, evidence: evidence))
    }

    /// Adds the circuit-breaker verdicts: one per check of the procedure.
    mutating func add(_ outcome: CircuitBreakerCheck.Outcome) {
        let e = outcome.expectation
        var declared: [String: Double] = ["max_requests": Double(e.maxRequests)]
        if let pending = e.maxPending { declared["max_pending"] = Double(pending) }
        if let hold = e.hold { declared["hold_ms"] = hold * 1000 }
        for check in outcome.checks {
            add(check, name: "circuit breaker (\(e.source))", declared: declared,
                test: "limits are per client proxy: each caller's sidecar counts on its own (envoy#24579, istio#37009); "
                    + "this is one client's view")
        }
    }

    /// Adds one connection-pool check (kind `circuit_breaker`) as it was judged: decided or not, on its requests, at
    /// its scope.
    mutating func add(_ check: CircuitBreakerCheck.Check, name: String, declared: [String: Double], test: String) {
        appendProcedureCheck(kind: "circuit_breaker", name: "\(name): \(check.name)", passed: check.passed, decided: check.decided,
                             reason: check.reason, requests: check.requests, observed: check.evidence, declared: declared, test: test,
                             scope: check.scope)
    }

    /// Adds the retry and timeout verdicts: one per check of the procedure (kind `retries` or `timeout`).
    mutating func add(_ outcome: RetryCheck.Outcome) {
        let e = outcome.expectation
        var declared: [String: Double] = [:]
        if let attempts = e.attempts { declared["attempts"] = Double(attempts) }
        if let perTry = e.perTryTimeout { declared["per_try_timeout_ms"] = perTry * 1000 }
        if let timeout = e.timeout { declared["timeout_ms"] = timeout * 1000 }
        for check in outcome.checks {
            appendProcedureCheck(kind: check.kind, name: "\(check.kind) (\(e.source)): \(check.name)", passed: check.passed,
                                 reason: check.reason, observed: check.evidence, declared: declared,
                                 test: "retryOn \(e.retryOn); tries counted by the echo per x-request-id (exact with one upstream "
                                     + "endpoint); times within max(50 ms, 10%), later by up to Envoy's default retry back-off")
        }
    }

    /// Adds the concurrent-retry verdict.
    mutating func add(_ outcome: RetryBudgetCheck.Outcome) {
        add(outcome.check, name: "connection pool (\(outcome.expectation.source))", declared: ["max_retries": Double(outcome.expectation.maxRetries)],
            test: "every request fails with a retried status at several times the limit in concurrent requests; the echo stamps its retries in flight")
    }

    /// Adds the requests-per-connection verdict.
    mutating func add(_ outcome: ConnectionReuseCheck.Outcome) {
        add(outcome.check, name: "connection pool (\(outcome.expectation.source))",
            declared: ["max_requests_per_connection": Double(outcome.expectation.maxRequestsPerConnection)],
            test: "the echo stamps which request each one is on its connection; the most any upstream connection carried")
    }

    /// Adds the outlier-detection verdicts: one per check, the timeline with the last.
    mutating func add(_ outcome: OutlierDetectionCheck.Outcome) {
        let e = outcome.expectation
        let declared: [String: Double] = [
            "consecutive_errors": Double(e.consecutiveErrors), "interval_s": e.interval, "base_ejection_s": e.baseEjectionTime,
            "max_ejection_percent": e.maxEjectionPercent, "jitter": e.jitter,
        ]
        for (index, check) in outcome.checks.enumerated() {
            var evidence = Evidence.facts(
                requests: check.requests, declared: declared, observed: check.evidence,
                test: "one workload made to fail through its control API, one request at a time at \(YAMLValue.format(e.rate))/s; "
                    + "ejection is per client proxy (each caller's sidecar counts its own errors)", scope: "client proxy")
            if index == outcome.checks.count - 1 {
                evidence.timeline = outcome.timeline.map { TimelineEvent(at: $0.at, event: $0.what) }
            }
            appendVerdict(Verdict(kind: "outlier_detection", name: "outlier detection (\(e.source)): \(check.name)",
                                  passed: check.decided && check.passed, decided: check.decided, reason: check.reason, evidence: evidence))
        }
    }

    /// Adds the cluster verdict (every listed cluster answered at least once; avoided ones never).
    mutating func add(_ check: ClusterCheck) {
        let total = check.seen.values.reduce(0, +)
        var declared: [String: Double] = [:]
        for c in check.reach { declared[c] = 1 }
        for c in check.avoid { declared[c] = 0 }
        let evidence = Evidence.facts(
            requests: total, counts: check.seen, declared: declared,
            observed: check.seen.mapValues { total > 0 ? Double($0) / Double(total) : 0 },
            test: "responses by the echo's cluster stamp: reach >= 1 each, avoid = 0 each")
        var name: [String] = []
        if !check.reach.isEmpty { name.append("reach \(check.reach.joined(separator: ", "))") }
        if !check.avoid.isEmpty { name.append("avoid \(check.avoid.joined(separator: ", "))") }
        append(kind: "clusters", name: "clusters: \(name.joined(separator: "; "))", passed: check.passed, reason: check.reason,
               evidence: evidence)
    }

    /// Adds an SLO verdict: decided by a bound at the stated error rates, or undecided with the figures.
    mutating func add(_ check: SLOCheck) {
        var declared = ["limit": check.limit]
        if let percentile = check.percentile { declared["percentile"] = percentile }
        var evidence = Evidence.facts(
            requests: check.samples, declared: declared,
            observed: ["observed": check.observed, "interval_low": check.interval.low, "interval_high": check.interval.high,
                       "log_evidence_pass": check.logEvidence.pass, "log_evidence_fail": check.logEvidence.fail],
            test: "sequential bound on the share of \(check.unit == .connection ? "connections' requests" : "requests") "
                + (check.percentile == nil ? "that succeed" : "at or under the ceiling")
                + " (mixture test martingales, anytime valid; unit: \(check.unit.rawValue))")
        evidence.falseFailRate = check.falseFailRate
        evidence.missRate = check.missRate
        let verdict = Verdict(kind: "slo", name: "SLO: \(check.name)", passed: check.passed, decided: check.decided, reason: check.reason,
                              evidence: evidence)
        appendVerdict(verdict)
    }
}
