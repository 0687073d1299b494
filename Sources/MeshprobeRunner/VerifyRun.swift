import Foundation
import MeshprobeChecks
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobePolicy
import MeshprobeReport
import MeshprobeStatistics
import MeshprobeTLS
import MeshprobeYAML
import NIOConcurrencyHelpers
import NIOPosix

/// What a verification (`verify`) is asked for besides its policy and load configuration.
package struct VerifyRunOptions: Sendable {
    /// The policy file and the manifests merged into it (named in the results, hashed in `meta.inputs`).
    package var file: String
    package var manifests: [String]
    package var json: String?
    /// No live view, and no lines announcing each check.
    package var quiet: Bool
    package var reports: ReportOutputs
    /// The client TLS context for the workloads' control APIs; needed (and given) only when the policy has outlier
    /// detections, whose check makes workloads fail.
    package var controlTLS: TLSContextSource?
    /// This process's part of a sharded verification; nil when not sharded.
    package var shard: ShardPlan?
    /// The TLS context of each access caller with an SVID (the prober's own included) and of `anonymous`.
    package var accessCallers: [AccessCaller: TLSContext] = [:]

    package init(file: String, manifests: [String] = [], json: String? = nil, quiet: Bool, reports: ReportOutputs,
                 controlTLS: TLSContextSource? = nil, shard: ShardPlan? = nil) {
        self.file = file
        self.manifests = manifests
        self.json = json
        self.quiet = quiet
        self.reports = reports
        self.controlTLS = controlTLS
        self.shard = shard
    }
}

/// How a verification ended, each with its message; the exit code follows from the case (docs/conventions.md).
package enum VerifyRunOutcome: Equatable, Sendable {
    /// Every check passed, or a shard 1..N-1 delivered its part (exit 0).
    case passed
    /// A check failed (exit 1).
    case failed
    /// No check failed and some could not decide (exit 3).
    case undecided(String)
    /// A signal cut the verification short, or its Pushgateway push (exit 3).
    case aborted(String)

    /// The outcome a result's last word says.
    package init(_ outcome: ResultOutcome) {
        switch outcome.result {
        case "PASS": self = .passed
        case "FAIL": self = .failed
        case "ABORTED": self = .aborted(outcome.reason ?? "aborted")
        default: self = .undecided(outcome.reason ?? "no verdict")
        }
    }

    package var exitCode: Int32 {
        switch self {
        case .passed: 0
        case .failed: 1
        case .undecided, .aborted: 3
        }
    }

    package var message: String {
        switch self {
        case .passed: "verdict: PASS"
        case .failed: "verdict: FAIL"
        case .undecided(let why), .aborted(let why): why
        }
    }
}

/// Runs a verification: the routes' splits and the SLOs, the caller and cluster checks, the resilience procedures,
/// with a live view and signal handling; prints the verdicts, writes the JSON and the reports asked for, and says how
/// it ended. A signal cancels it (its loads stop as on a signal); faults the outlier check set are cleared either way
/// before it returns. The outputs' paths are the caller's to check first (`ReportOutputs.check`); bad input and an
/// output that cannot be written are thrown (`ExitError`, exit 2).
package func executeVerify(_ policy: sending Policy, configuration: LoadConfiguration, options: VerifyRunOptions) async throws -> VerifyRunOutcome {
    let ledger = FaultLedger(label: FaultLedger.newLabel(prefix: "verify"), deadline: SignalHub.stopDeadline)
    let task = Task { try await VerifyRun(policy: policy, options: options, ledger: ledger).run(configuration) }
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
        switch outcome {
        case .success(.aborted(let why)): return .aborted(why)
        case .failure(let error as ExitError) where error.exitCode == 3: throw error
        default: return .aborted("aborted by a signal before the verification completed")
        }
    }
    return try outcome.get()
}

/// One verification's steps, in order, on its policy.
private struct VerifyRun {
    let policy: Policy
    let options: VerifyRunOptions
    let ledger: FaultLedger
    var group: MultiThreadedEventLoopGroup { .singleton }

    func note(_ text: String) { printError("meshprobe verify: \(text)") }

    func run(_ configuration: LoadConfiguration) async throws -> VerifyRunOutcome {
        let started = Date()
        var policy = policy
        var configuration = configuration
        let file = options.file
        let policySHA256 = resultInputs([("policy", file)]).first?.sha256
        var aggregator: ShardAggregator?
        if let plan = options.shard {
            if options.reports.metricsListen != nil || options.reports.prometheus != nil || options.reports.pushgateway != nil {
                throw ExitError.badInput("a sharded verify writes --json, --junit and --html (the merged verdict on shard 0), not Prometheus")
            }
            try plan.split(&policy, configuration: &configuration, requestsFlag: "--requests")
            if plan.isAggregator { aggregator = try await startVerifyAggregator(plan, policySHA256: policySHA256) }
        }
        defer { if let aggregator { Task { await aggregator.stop() } } }
        // Prometheus (live, file, push) over every load the verification sends.
        let session = try await options.reports.start(&configuration)
        if !options.quiet {
            for split in policy.routes {
                let weights = split.weights.sorted { $0.key < $1.key }.map { "\($0.key)=\(YAMLValue.format($0.value))" }.joined(separator: " ")
                let unit = switch split.routing {
                case .auto: "sampled by connection (routing: auto)"
                case .perConnection: "one request per connection (routing: per-connection)"
                case .perRequest: "sampled by response (routing: per-request)"
                }
                note("\(split.name): split \(weights), tolerance \(split.statistics.tolerance), "
                    + "false-fail <= \(split.statistics.falseFailRate), miss <= \(split.statistics.missRate), \(unit), at most \(split.statistics.maxSamples) requests")
            }
        }
        try await SidecarSession.ready()
        // The SLOs are decided on the routes' requests and, when those do not suffice, on a load of their own, before
        // any procedure injects faults.
        let (outcomes, objectives, objectivesLoad) = try await PolicyVerification.runWithObjectives(policy, configuration: configuration, group: group)
        var report = VerifyReport(policy: policy, outcomes: outcomes)
        report.policySHA256 = policySHA256
        let inputs = resultInputs([("policy", file)] + options.manifests.map { ("manifest", $0) })
        report.results = (outcomes.map(\.result) + (objectivesLoad.map { [$0] } ?? [])).map { result in
            LoadReport(result: result, configuration: configuration, commandLine: CommandLine.arguments, startedAt: started,
                       version: meshprobeVersion, inputs: inputs)
        }
        var laps = VerdictLaps()
        laps.set(outcomes.map { $0.result.elapsedSeconds + ($0.propagation?.seconds ?? 0) })
        if let expected = policy.expectedCaller {
            let caller = expected.isEmpty ? (configuration.tls?.localIdentity?.description ?? "") : expected
            report.add(CallerCheck.evaluate(outcomes, expected: caller, prober: configuration.tls?.localIdentity?.description,
                                            statistics: policy.statistics))
            laps.lap(report.verdicts.count)
        }
        try await runProcedures(configuration: configuration, report: &report, laps: &laps)
        if !policy.clustersToReach.isEmpty || !policy.clustersToAvoid.isEmpty {
            report.add(ClusterCheck.evaluate(outcomes, reach: policy.clustersToReach, avoid: policy.clustersToAvoid))
            laps.lap(report.verdicts.count)
        }
        for check in objectives { report.add(check) }
        laps.lap(report.verdicts.count)
        if let plan = options.shard, !plan.isAggregator {
            printLine(report.verdictText + "(shard \(plan.index)'s own part; the verdict is shard 0's)")
            try await sendShardResult(try report.jsonData(), plan: plan, command: "verify", group: group)
            return .passed
        }
        if let aggregator {
            let merged = try await mergeVerifyShards(own: report, aggregator: aggregator)
            return try finishMergedVerify(merged, json: options.json, reports: options.reports,
                                          title: "\(report.policy), \(aggregator.plan.count) shards", startedAt: started)
        }
        // A signal cancelled this task: whatever is written says so.
        if Task.isCancelled { report.markAborted("a signal") }
        printLine(report.verdictText)
        let title = policy.name.isEmpty ? policy.file : policy.name
        let view = report.runReport(outcomes: outcomes, configuration: configuration, inputs: [file] + options.manifests, title: title,
                                    seconds: laps.seconds, startedAt: started)
        printVerdicts(view, reasonsAbove: true)
        if let json = options.json { try writeResult(report.jsonData(), to: json) }
        try options.reports.write(view)
        let cancelledBefore = Task.isCancelled
        session.export.record(access: report.verdicts)
        try await session.finish(report: nil, json: nil)
        if Task.isCancelled && !cancelledBefore {
            // Every verdict was reached and written; the signal cut the push. The result says so, verdicts unchanged.
            report.markAborted("a signal during the Pushgateway push, after every verdict")
            if let json = options.json { try? writeResult(report.jsonData(), to: json) }
            try? options.reports.logJSON(report.jsonData())
            return .aborted("aborted by a signal during the Pushgateway push; every verdict above was reached before it")
        }
        // The log's copy after the push: one block, the result as it ended.
        try options.reports.logJSON(report.jsonData())
        // The report's verdicts, not the tests' own: a split FAIL that client-keyed routing could explain is withheld there.
        return VerifyRunOutcome(report.outcome)
    }

    /// Ends one check's part of the report: its verdicts' time, and, when a signal arrived while it ran, its
    /// verdicts undecided (a check cut short decides nothing, whatever its partial evidence showed).
    func closeCheck(_ report: inout VerifyReport, _ laps: inout VerdictLaps) {
        if Task.isCancelled { report.undecide(from: laps.seconds.count, because: "a signal arrived while this check ran") }
        laps.lap(report.verdicts.count)
    }

    /// Runs the resilience procedures, each adding its verdicts. Every procedure must leave the system as it found
    /// it; outlier detection, whose last phase makes every workload fail (so a proxy as declared ejects them all),
    /// runs last and waits for the endpoints to return, so that no other check meets a service with none.
    func runProcedures(configuration: LoadConfiguration, report: inout VerifyReport, laps: inout VerdictLaps) async throws {
        for breaker in policy.circuitBreakers {
            if !options.quiet {
                note("circuit breaker: limit \(breaker.maxRequests) in flight, \(breaker.maxPending.map(String.init) ?? "unbounded") pending (\(breaker.source))")
            }
            let outcome = try await CircuitBreakerCheck.run(breaker, configuration: configuration, group: group)
            for text in outcome.notes { note("note: \(text)") }
            report.add(outcome)
            closeCheck(&report, &laps)
        }
        let grpc = configuration.plan.grpc != nil
        let retrying = policy.retries.first { ($0.attempts ?? 0) > 0 && $0.retryOn.injected(retried: true, grpc: grpc) != nil }
        for (limit, source) in policy.maxRetries {
            guard let route = retrying, let status = route.retryOn.injected(retried: true, grpc: grpc) else {
                // A verdict, not only a note: a result read by a machine must say the limit was not shown.
                let why = "no route retries a \(grpc ? "gRPC status (retryOn names no gRPC condition: cancelled, deadline-exceeded, internal, resource-exhausted, unavailable)" : "status (retryOn names no status)"), so the limit cannot be seen"
                note("note: \(source): maxRetries is not verified: \(why)")
                let site = DeclarationSite(source)
                report.add(.undecided("the upstream never had more than \(limit) retries in flight", reason: why, evidence: ["limit": Double(limit)], requests: 0),
                           name: "connection pool (\(site.name))", declared: ["max_retries": Double(limit)],
                           test: "every request fails with a retried status at several times the limit in concurrent requests; the echo stamps its retries in flight",
                           declaredAt: site.position)
                closeCheck(&report, &laps)
                continue
            }
            let budget = RetryBudgetExpectation(maxRetries: limit, route: route, status: status, source: source)
            if !options.quiet {
                note("retry limit: at most \(limit) retries in flight (\(source)), \(budget.concurrency) failing requests at once on \(route.source)")
            }
            report.add(try await RetryBudgetCheck.run(budget, configuration: configuration, group: group))
            closeCheck(&report, &laps)
        }
        for reuse in policy.connectionReuse {
            if !options.quiet {
                note("connection reuse: at most \(reuse.maxRequestsPerConnection) requests per upstream connection (\(reuse.source))")
            }
            report.add(try await ConnectionReuseCheck.run(reuse, configuration: configuration, group: group))
            closeCheck(&report, &laps)
        }
        for retry in policy.retries {
            if !options.quiet {
                note("retries and timeouts: \(retry.summary) (\(retry.source))")
            }
            let outcome = try await RetryCheck.run(retry, configuration: configuration, group: group)
            for text in outcome.notes { note("note: \(retry.source): \(text)") }
            report.add(outcome)
            closeCheck(&report, &laps)
        }
        for declared in policy.outlierDetections {
            if !options.quiet {
                note("outlier detection: ejected after \(declared.consecutiveErrors) consecutive errors for "
                    + "\(YAMLValue.format(declared.baseEjectionTime))s, at most \(YAMLValue.format(declared.maxEjectionPercent))% (\(declared.source)); "
                    + "making \(declared.faultTargets[0]) fail")
            }
            do {
                let outcome = try await OutlierDetectionCheck.run(declared, configuration: configuration, recognizer: policy.recognizer,
                                                                  controlTLS: options.controlTLS, ledger: ledger, group: group)
                for left in outcome.faultsLeft { note("warning: not cleared: \(left)") }
                report.add(outcome)
            } catch let error as FaultClientError {
                // The check could not run (refused, unreachable): undecided, and the other verdicts still stand.
                let site = DeclarationSite(declared.source)
                report.addUndecided(kind: "outlier_detection", name: "outlier detection (\(site.name))",
                                    reason: "could not make a workload fail: \(error)", declaredAt: site.position)
            }
            closeCheck(&report, &laps)
        }
        if let access = policy.access {
            if !options.quiet {
                note("access: \(counted(access.cells.count, "cell")) (of \(counted(access.callers.count, "caller")) and \(counted(access.requests.count, "request"))), "
                    + "\(counted(access.attempts, "try", plural: "tries")) each on fresh connections (\(access.source))")
            }
            let outcome = try await AccessCheck.run(access, configuration: configuration, callers: options.accessCallers, group: group)
            report.add(outcome)
            closeCheck(&report, &laps)
        }
    }
}

/// A merged verification (`verify --shards`' shard 0, `merge` of verify results): prints the verdicts, writes the
/// JSON (atomically) and the reports asked for, and says how it ended, as `verify` does.
package func finishMergedVerify(_ merged: VerifyReport, json: String?, reports: ReportOutputs, title: String,
                                startedAt: Date) throws -> VerifyRunOutcome {
    printLine(merged.verdictText)
    let view = merged.mergedRunReport(title: title, inputs: merged.mergedFrom ?? [merged.policy], startedAt: startedAt)
    printVerdicts(view, reasonsAbove: true)
    try reports.writeJSON(merged.jsonData(), json: json)
    try reports.write(view)
    return VerifyRunOutcome(merged.outcome)
}
