import ArgumentParser
import Foundation
import MeshprobeChecks
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobePolicy
import MeshprobeRunner
import MeshprobeYAML

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
            duration cap. Exit 0 every step passed; 1 a step failed (whatever the others); 2 bad input or over a cap; \
            3 aborted, a step undecided or not run, or a fault left.
            --check reads and checks the file and the caps (with the overrides) without the identity's files or a \
            network and prints the plan; --target, --svid-dir and --set change the file's fields before it is read.
            Example: meshprobe gameday gamedays/reviews.yaml --json gameday.json
            """
    )

    @Argument(help: "The game-day file (a scenario plus a gameday section with steps).", completion: .file(extensions: ["yaml", "yml"]))
    var file: String

    @Option(name: .customLong("max-rate"), help: "No step may send faster than this, requests per second.")
    var maxRate: Double = 1000

    @Option(name: .customLong("max-duration"), help: .defaulted("The whole game day may not plan or take longer than this (30s, 15m).", Self.defaultMaxDuration),
            transform: InputArgument.duration)
    var maxDuration: TimeSpan = Self.defaultMaxDuration
    static let defaultMaxDuration = TimeSpan("15m")

    @Option(name: .customLong("json"), help: "Write the verdicts, per step, as JSON.")
    var jsonFile: String?

    /// Where the JSON result goes: `--json`, or standard output with `-o json`.
    var json: String? { reports.json(jsonFile) }

    @OptionGroup var logs: ResultLogOptions

    @OptionGroup var reports: ReportOptions

    @Flag(help: "No live view.")
    var quiet = false

    @Flag(help: "Only read and check the file and the caps, print the plan and exit (0 when valid, 2 naming FILE:LINE:COLUMN and the field): the identity's files are not read, nothing is sent, no fault set.")
    var check = false

    @OptionGroup(title: "Overrides of the file")
    var overrides: FileOverrideOptions

    @OptionGroup(title: "Sidecar")
    var sidecar: SidecarOptions

    func validate() throws {
        try reports.validate(json: jsonFile)
    }

    func run() async throws {
        try await sidecar.around("gameday") { try await runGameDay() }
    }

    func runGameDay() async throws {
        guard maxRate > 0, maxRate.isFinite else { throw CLIError.badInput("--max-rate must be a positive number of requests per second") }
        let cap = maxDuration.seconds
        try reports.check(singleLoad: false, json: json, logs: logs)
        let gameday: GameDay
        do {
            gameday = try GameDay.load(path: file, overrides: overrides.overrides)
            try gameday.check(maxRate: maxRate, maxDuration: cap)
        } catch {
            throw CLIError.badInput("\(error)")
        }
        var configuration = LoadConfiguration(plan: gameday.scenario.plan)
        // A gRPC run's procedures, checked before anything is sent (and by --check), as verify checks them.
        if let call = configuration.plan.grpc {
            let problems = GRPCPreflight.check(gameday, call: call)
            if !problems.isEmpty { throw CLIError.badInput(problems.joined(separator: "\n")) }
        }
        let needsControl = gameday.steps.contains { step in
            if case .outlierDetection = step.kind { return true }
            return !step.faults.isEmpty
        }
        try attachClientTLS(to: &configuration, scenarioIdentity: gameday.scenario.identity, file: file, readFiles: !check,
                            controlAPIs: needsControl)
        if check, needsControl { _ = try controlTLS(scenarioIdentity: gameday.scenario.identity, file: file, readFiles: false) }
        let planned = gameday.steps.reduce(0) { $0 + $1.plannedSeconds }
        let caps = counted(gameday.steps.count, "step") + String(format: ", about %.0f s; caps %@ req/s and %.0f s", planned, YAMLValue.format(maxRate), cap)
        if check {
            // The plan is what --check gives (stdout, as run's and verify's); a run's header goes to stderr.
            for line in CheckPlan.lines(gameday: gameday, configuration: configuration, caps: caps,
                                        outputs: reports.planned(json: json, logs: logs)) { printLine(line) }
            return
        }
        if let file = gameday.abortFile, FileManager.default.fileExists(atPath: file) {
            throw CLIError.badInput("the abort file \(file) exists already, so the game day would stop at once: remove it first")
        }
        // The identity kept current for the whole game day (every step's new connections, the control APIs' client):
        // the Workload API's stream, or a watch of the SVID files.
        let rotation = try await IdentityRotation.start(scenarioIdentity: gameday.scenario.identity, file: file, configuration: &configuration,
                                                       controlAPIs: needsControl)
        let exit = try await IdentityRotation.around(rotation) {
            try await resolveGRPCReflection(&configuration, field: "\(file): grpc.data", protoset: "grpc.protoset")
            let control = needsControl ? try controlTLS(scenarioIdentity: gameday.scenario.identity, file: file, rotating: configuration.tlsSource) : nil
            printError("meshprobe gameday: \(gameday.name): \(caps); abort with SIGINT/SIGTERM"
                       + (gameday.abortFile.map { " or touch \($0)" } ?? ""))
            for (i, step) in gameday.steps.enumerated() { printError("  \(i + 1). \(CheckPlan.describe(step))") }
            var options = GameDayRunOptions(json: json, quiet: quiet, reports: try reports.outputs(logs: logs), controlTLS: control,
                                            maxDuration: cap)
            // Every access step's callers, checked (their SVIDs read) before any step runs.
            options.accessCallers = try accessCallers(gameday.accessChecks, identities: gameday.identities, identity: gameday.scenario.identity,
                                                      configuration: configuration, file: file)
            let exit = try await executeGameDay(gameday, configuration: configuration, options: options)
            if let line = IdentityRotation.summary(configuration.tlsSource) { printError("meshprobe gameday: \(line)") }
            return exit
        }
        if let exit { throw CLIError(message: exit.message, exitCode: exit.code) }
    }
}
