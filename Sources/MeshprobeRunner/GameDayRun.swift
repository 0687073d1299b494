import Foundation
import MeshprobeChecks
import MeshprobeLoad
import MeshprobePolicy
import MeshprobeReport
import MeshprobeSpec
import MeshprobeTLS
import NIOPosix

/// What a game day (`gameday`) is asked for besides its file and load configuration.
package struct GameDayRunOptions: Sendable {
    package var json: String?
    /// No live view of each step's load.
    package var quiet: Bool
    package var reports: ReportOutputs
    /// The client TLS context for the workloads' control APIs; needed (and given) when a step sets faults or checks
    /// outlier detection.
    package var controlTLS: TLSContextSource?
    /// The operator's cap on the whole game day, seconds: it aborts there.
    package var maxDuration: Double
    /// The TLS context of each access step's caller with an SVID (the identity's own included) and of `anonymous`.
    package var accessCallers: [AccessCaller: TLSContext] = [:]

    package init(json: String?, quiet: Bool, reports: ReportOutputs, controlTLS: TLSContextSource?, maxDuration: Double) {
        self.json = json
        self.quiet = quiet
        self.reports = reports
        self.controlTLS = controlTLS
        self.maxDuration = maxDuration
    }
}

/// Runs a game day's steps in order with a live view, a hard abort (SIGINT, SIGTERM, the abort file, the duration
/// cap) and every fault cleared on the way out; prints the steps' verdicts, writes the JSON and the reports asked
/// for, and returns how it ended: nil when every step passed, else the message and exit code
/// (`GameDayVerdict.exit`). The file and the caps are the caller's to check first (`GameDay.check`); an output that
/// cannot be written is thrown (`ExitError`, exit 2).
package func executeGameDay(_ gameday: GameDay, configuration: LoadConfiguration,
                            options: GameDayRunOptions) async throws -> (message: String, code: Int32)? {
    var configuration = configuration
    // Prometheus (live, file, push) over every step's load.
    let session = try await options.reports.start(&configuration)
    try await SidecarSession.ready()
    let abort = AbortSwitch()
    let signals = SignalStopper { abort.abort("a signal (SIGINT or SIGTERM)") }
    defer { signals.cancel() }
    var runner = GameDayRunner(gameday: gameday, configuration: configuration, controlTLS: options.controlTLS,
                               maxDuration: options.maxDuration)
    runner.stopDeadline = SignalHub.stopDeadline
    runner.accessCallers = options.accessCallers
    if options.controlTLS != nil { printError("meshprobe gameday: the faults this run sets carry the label \(runner.runLabel)") }
    let count = gameday.steps.count
    runner.onStepStart = { index, name in printError("step \(index + 1)/\(count): \(name)") }
    if !options.quiet { runner.onLoad = { generator, configuration in startLiveView(generator, configuration: configuration) } }
    let started = Date()
    var outcome = await runner.run(abort: abort, group: MultiThreadedEventLoopGroup.singleton)
    // A signal after the last step, before the result is written, aborts it too.
    outcome.abortReason = outcome.abortReason ?? abort.abortReason

    var result = GameDayResult(gameday: gameday, outcome: outcome, configuration: configuration, startedAt: started)
    let view = result.runReport(title: gameday.name, inputs: [gameday.file], startedAt: started)
    printLine(result.stepsText + VerdictTable(view, style: stdoutStyle(), reasonsAbove: true).render() + stdoutStyle().status(view.status, label: result.outcomeWord))
    for left in outcome.faultsLeft { printError("meshprobe gameday: warning: not cleared: \(left)") }
    try write(result, options: options, startedAt: started)
    try await session.finish(report: nil, json: nil)
    if outcome.abortReason == nil, let why = abort.abortReason {
        // A signal after the result was written (during the push): written again, saying so, as the exit code does.
        outcome.abortReason = why + " (after the result was complete)"
        result.aborted = outcome.abortReason
        result.passed = false
        try write(result, options: options, startedAt: started)
    }
    // The log's copies after the push: one block each, the result as it ended.
    try options.reports.logJUnit(result.runReport(title: result.name, inputs: [result.file], startedAt: started))
    try options.reports.logJSON(result.jsonData())
    return GameDayVerdict.exit(failed: result.failedSteps, undecided: result.undecidedSteps, skipped: result.skipped.count,
                               abortReason: outcome.abortReason, faultsLeft: outcome.faultsLeft)
}

/// Writes the result (`--json`) and the reports (JUnit, HTML) asked for; the log's copies (`--json-log`,
/// `--junit-log`) are written once, at the end.
private func write(_ result: GameDayResult, options: GameDayRunOptions, startedAt started: Date) throws {
    if let json = options.json { try writeResult(result.jsonData(), to: json) }
    try options.reports.write(result.runReport(title: result.name, inputs: [result.file], startedAt: started), log: false)
}

/// A game day's verdicts and, for each load step, its lossless result (`GameDayResult`, in MeshprobeReport).
extension GameDayResult {
    package init(gameday: GameDay, outcome: GameDayRunner.Outcome, configuration: LoadConfiguration, startedAt: Date) {
        let inputs = resultInputs([("gameday", gameday.file)])
        var offset = 0.0
        let steps = outcome.steps.map { step in
            var report = VerifyReport(file: gameday.file)
            var requests: Int?
            var failures: [String: Int]?
            var result: LoadReport?
            let planned = gameday.steps.first { $0.name == step.name }
            switch step.verdicts {
            case .load(let loadResult, let slo)?:
                if let failure = step.failure {
                    report.append(kind: "server_identity", name: "the expected server answered", passed: false, reason: failure,
                                  evidence: .facts(requests: loadResult.totalRequests, declared: [:], observed: [:],
                                                   test: "every connection's server identity checked (identity.expectPeer)"))
                }
                for check in slo { report.add(check) }
                requests = loadResult.totalRequests
                failures = Dictionary(loadResult.failureClasses.map { ($0.key.description, $0.value) }, uniquingKeysWith: +)
                result = LoadReport(result: loadResult, configuration: GameDayResult.configuration(of: planned, configuration),
                                    commandLine: CommandLine.arguments, startedAt: startedAt.addingTimeInterval(offset),
                                    version: meshprobeVersion, inputs: inputs)
            case .circuitBreaker(let outcome)?:
                report.add(outcome)
            case .outlierDetection(let outcome)?:
                report.add(outcome)
            case .retries(let outcome)?:
                report.add(outcome)
            case .access(let outcome)?:
                report.add(outcome)
            case nil:
                break
            }
            offset += step.seconds
            let verdict = GameDayVerdict.step(ran: step.verdicts != nil, passed: report.passed, decided: report.decided, problem: step.problem)
            return Step(name: step.name, kind: planned.map(GameDayResult.kind) ?? "load", passed: verdict.passed,
                        decided: verdict.decided, seconds: (step.seconds * 1000).rounded() / 1000, problem: step.problem,
                        faults: step.faults, requests: requests, failures: failures, verdicts: report.verdicts, result: result)
        }
        self.init(file: gameday.file, sha256: inputs.first?.sha256 ?? "", name: gameday.name, aborted: outcome.abortReason,
                  steps: steps, skipped: outcome.skipped, faultsLeft: outcome.faultsLeft)
    }

    /// The step's kind as the result names it.
    static func kind(_ step: GameDayStep) -> String {
        switch step.kind {
        case .load: return "load"
        case .circuitBreaker: return "circuit_breaker"
        case .outlierDetection: return "outlier_detection"
        case .retries: return "retries"
        case .access: return "access"
        }
    }

    /// The load configuration a load step ran with (its rate and duration on the file's scenario).
    static func configuration(of step: GameDayStep?, _ configuration: LoadConfiguration) -> LoadConfiguration {
        var c = configuration
        if let step, case .load(let rate, let duration) = step.kind {
            c.plan.model = .open(rate: .constant(rate), arrivals: .uniform)
            c.plan.duration = duration
            c.plan.requests = nil
        }
        return c
    }
}
