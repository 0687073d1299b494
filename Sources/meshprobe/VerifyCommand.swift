import ArgumentParser
import Foundation
import MeshprobeChecks
import MeshprobeLoad
import MeshprobePolicy
import MeshprobeReport
import MeshprobeRunner
import MeshprobeSpec
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
        var configuration = LoadConfiguration(plan: policy.scenario.plan)
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
    /// Ends one check's part of the report: its verdicts' time, and, when a signal arrived while it ran, its
    /// verdicts undecided (a check cut short decides nothing, whatever its partial evidence showed).
    func closeCheck(_ report: inout VerifyReport, _ laps: inout VerdictLaps) {
        if Task.isCancelled { report.undecide(from: laps.seconds.count, because: "a signal arrived while this check ran") }
        laps.lap(report.verdicts.count)
    }

    func runProcedures(_ policy: Policy, configuration: LoadConfiguration, ledger: FaultLedger, report: inout VerifyReport,
                       laps: inout VerdictLaps) async throws {
        for breaker in policy.circuitBreakers {
            if !quiet {
                printError("meshprobe verify: circuit breaker: limit \(breaker.maxRequests) in flight, \(breaker.maxPending.map(String.init) ?? "unbounded") pending (\(breaker.source))")
            }
            let outcome = try await CircuitBreakerCheck.run(breaker, configuration: configuration, group: MultiThreadedEventLoopGroup.singleton)
            for note in outcome.notes { printError("meshprobe verify: note: \(note)") }
            report.add(outcome)
            closeCheck(&report, &laps)
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
            closeCheck(&report, &laps)
        }
        for reuse in policy.connectionReuse {
            if !quiet {
                printError("meshprobe verify: connection reuse: at most \(reuse.maxRequestsPerConnection) requests per upstream connection (\(reuse.source))")
            }
            let outcome = try await ConnectionReuseCheck.run(reuse, configuration: configuration, group: MultiThreadedEventLoopGroup.singleton)
            report.add(outcome)
            closeCheck(&report, &laps)
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
            closeCheck(&report, &laps)
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
                    closeCheck(&report, &laps)
                } catch let error as FaultClientError {
                    // The check could not run (refused, unreachable): undecided, and the other verdicts still stand.
                    report.addUndecided(kind: "outlier_detection", name: "outlier detection (\(declared.source))",
                                        reason: "could not make a workload fail: \(error)")
                    closeCheck(&report, &laps)
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
