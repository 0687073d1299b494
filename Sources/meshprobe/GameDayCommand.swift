import ArgumentParser
import Foundation
import MeshprobeChecks
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobePolicy
import MeshprobeReport
import MeshprobeRunner
import MeshprobeSpec
import MeshprobeYAML
import NIOPosix

/// `meshprobe gameday FILE`: a game day's steps in order, with a live view, a hard abort, caps the file cannot
/// raise, and every fault cleared on the way out.
struct GameDayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gameday",
        abstract: "Run a game day: loads with faults on workloads, circuit-breaker and outlier procedures, one verdict per step.",
        discussion: """
            Steps run in order. Abort at any time with SIGINT or SIGTERM, or by creating the file named by \
            gameday.abortFile: the running step stops at once and every fault set is cleared. The caps (--max-rate, \
            --max-duration) are the operator's: a file that plans more is refused, and the run aborts at the \
            duration cap. Exit 0 every step passed; 1 a verdict failed; 2 bad input or over a cap; 3 aborted, or a \
            step could not run.
            Example: meshprobe gameday gamedays/reviews.yaml --json gameday.json
            """
    )

    @Argument(help: "The game-day file (a scenario plus a gameday section with steps).")
    var file: String

    @Option(name: .customLong("max-rate"), help: "No step may send faster than this, requests per second.")
    var maxRate: Double = 1000

    @Option(name: .customLong("max-duration"), help: .defaulted("The whole game day may not plan or take longer than this (30s, 15m).", Self.defaultMaxDuration),
            transform: InputArgument.duration)
    var maxDuration: TimeSpan = Self.defaultMaxDuration
    static let defaultMaxDuration = TimeSpan("15m")

    @Option(help: "Write the verdicts, per step, as JSON.")
    var json: String?

    @OptionGroup var reports: ReportOptions

    @Flag(help: "No live view.")
    var quiet = false

    @Flag(help: "Check the file and the caps, print the plan, and exit.")
    var check = false

    @OptionGroup(title: "Sidecar")
    var sidecar: SidecarOptions

    func run() async throws {
        try await sidecar.around("gameday") { try await runGameDay() }
    }

    func runGameDay() async throws {
        guard maxRate > 0, maxRate.isFinite else { throw CLIError.badInput("--max-rate must be a positive number of requests per second") }
        let cap = maxDuration.seconds
        try reports.check(singleLoad: false, json: json)
        let gameday: GameDay
        do {
            gameday = try GameDay.load(path: file)
            try gameday.check(maxRate: maxRate, maxDuration: cap)
        } catch {
            throw CLIError.badInput("\(error)")
        }
        var configuration = LoadConfiguration(plan: gameday.scenario.plan)
        try attachClientTLS(to: &configuration, scenarioIdentity: gameday.scenario.identity, file: file)
        // Prometheus (live, file, push) over every step's load.
        let session = try await reports.start(&configuration)
        let needsControl = gameday.steps.contains { step in
            if case .outlierDetection = step.kind { return true }
            return !step.faults.isEmpty
        }
        let control = needsControl ? try controlTLS(scenarioIdentity: gameday.scenario.identity, file: file) : nil
        let planned = gameday.steps.reduce(0) { $0 + $1.plannedSeconds }
        printError(String(format: "meshprobe gameday: %@: %d steps, about %.0f s; caps %@ req/s and %.0f s; abort with SIGINT/SIGTERM%@",
                          gameday.name, gameday.steps.count, planned, YAMLValue.format(maxRate), cap,
                          gameday.abortFile.map { " or touch \($0)" } ?? ""))
        for (i, step) in gameday.steps.enumerated() { printError("  \(i + 1). \(Self.describe(step))") }
        if check { return }
        if let file = gameday.abortFile, FileManager.default.fileExists(atPath: file) {
            throw CLIError.badInput("the abort file \(file) exists already, so the game day would stop at once: remove it first")
        }
        try await SidecarSession.ready()

        let abort = AbortSwitch()
        let signals = SignalStopper { abort.abort("a signal (SIGINT or SIGTERM)") }
        defer { signals.cancel() }
        var runner = GameDayRunner(gameday: gameday, configuration: configuration, controlTLS: control, maxDuration: cap)
        runner.stopDeadline = SignalHub.stopDeadline
        if needsControl { printError("meshprobe gameday: the faults this run sets carry the label \(runner.runLabel)") }
        let count = gameday.steps.count
        runner.onStepStart = { index, name in printError("step \(index + 1)/\(count): \(name)") }
        if !quiet { runner.onLoad = { generator, configuration in startLiveView(generator, configuration: configuration) } }
        let started = Date()
        var outcome = await runner.run(abort: abort, group: MultiThreadedEventLoopGroup.singleton)
        // A signal after the last step, before the result is written, aborts it too.
        outcome.abortReason = outcome.abortReason ?? abort.abortReason

        var result = GameDayResult(gameday: gameday, outcome: outcome, configuration: configuration, startedAt: started)
        let view = result.runReport(title: gameday.name, inputs: [file], startedAt: started)
        printLine(result.stepsText + VerdictTable(view, style: stdoutStyle()).render() + stdoutStyle().status(view.status, label: result.outcomeWord))
        for left in outcome.faultsLeft { printError("meshprobe gameday: warning: not cleared: \(left)") }
        try write(result, startedAt: started)
        try await session.finish(report: nil, json: nil)
        if outcome.abortReason == nil, let why = abort.abortReason {
            // A signal after the result was written (during the push): written again, saying so, as the exit code does.
            outcome.abortReason = why + " (after the result was complete)"
            result.aborted = outcome.abortReason
            result.passed = false
            try write(result, startedAt: started)
        }
        if let exit = GameDayVerdict.exit(passed: result.passed, decided: result.decided, abortReason: outcome.abortReason,
                                          faultsLeft: outcome.faultsLeft) {
            throw CLIError(message: exit.message, exitCode: exit.code)
        }
    }

    /// Writes the result (`--json`) and the reports (JUnit, HTML) asked for.
    func write(_ result: GameDayResult, startedAt started: Date) throws {
        if let json {
            do {
                try result.jsonData().write(to: URL(fileURLWithPath: json), options: .atomic)
            } catch {
                throw CLIError(message: "cannot write --json '\(json)': \(error.localizedDescription)", exitCode: 2)
            }
        }
        try reports.write(result.runReport(title: result.name, inputs: [file], startedAt: started))
    }

    static func describe(_ step: GameDayStep) -> String {
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
}

/// A game day's verdicts and, for each load step, its lossless result (`GameDayResult`, in MeshprobeReport).
extension GameDayResult {
    init(gameday: GameDay, outcome: GameDayRunner.Outcome, configuration: LoadConfiguration, startedAt: Date) {
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
                for check in slo { report.add(check) }
                requests = loadResult.totalRequests
                failures = Dictionary(loadResult.failureClasses.map { ($0.key.description, $0.value) }, uniquingKeysWith: +)
                result = LoadReport(result: loadResult, configuration: GameDayResult.configuration(of: planned, configuration),
                                    commandLine: CommandLine.arguments, startedAt: startedAt.addingTimeInterval(offset),
                                    version: Meshprobe.version, inputs: inputs)
            case .circuitBreaker(let outcome)?:
                report.add(outcome)
            case .outlierDetection(let outcome)?:
                report.add(outcome)
            case .retries(let outcome)?:
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
