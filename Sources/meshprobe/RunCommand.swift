import ArgumentParser
import Foundation
import MeshprobeLoad
import MeshprobeRunner
import MeshprobeScenario
import MeshprobeSpec
import NIOPosix

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a load defined in a scenario file (YAML), versioned and reviewed like code.",
        discussion: """
            The file holds what `load` takes as flags: target, identity, load model and stages, request templates, \
            output. Schema: docs/schema/scenario.schema.json; examples in scenarios/. Errors name the file, line and field.
            --check reads and checks the file (with the overrides) without the identity's files or a network and prints \
            the plan; --target, --svid-dir and --set change the file's fields before it is read.
            Example: meshprobe run scenarios/canary-ramp.yaml --target https://127.0.0.1:8443/ --svid-dir ./prober
            """
    )

    @Argument(help: "The scenario file.", completion: .file(extensions: ["yaml", "yml"]))
    var file: String

    @Option(name: .customLong("json"), help: "Write the JSON result here (overrides output.json in the file).")
    var jsonFile: String?

    /// Where the JSON result goes: `--json`, or standard output with `-o json`.
    var json: String? { reports.json(jsonFile) }

    @OptionGroup var logs: ResultLogOptions

    @Flag(help: "Print only the summary.")
    var quiet = false

    @Flag(name: .customLong("check"), help: "Only read and check the file, print the plan and exit (0 when it is valid, 2 naming FILE:LINE:COLUMN and the field): the identity's files are not read, nothing is sent.")
    var checkOnly = false

    @Option(name: .customLong("threshold"), help: ArgumentHelp(LoadCommand.thresholdHelp + " Added to the file's thresholds.", valueName: "threshold"),
            transform: InputArgument.threshold)
    var thresholds: [LoadThreshold] = []

    @OptionGroup(title: "Overrides of the file")
    var overrides: FileOverrideOptions

    @OptionGroup(title: "Reports")
    var reports: ReportOptions

    @OptionGroup(title: "Exports of the result")
    var exports: ExportOptions

    @OptionGroup(title: "Sidecar")
    var sidecar: SidecarOptions

    func validate() throws {
        try reports.validate(json: jsonFile)
    }

    func run() async throws {
        try await sidecar.around("run") { try await runScenario() }
    }

    func runScenario() async throws {
        let scenario: Scenario
        do {
            scenario = try Scenario.load(path: file, overrides: overrides.overrides)
        } catch {
            throw CLIError.badInput(error.description)
        }
        var configuration = LoadConfiguration(plan: scenario.plan)
        configuration.plan.thresholds += thresholds
        try attachClientTLS(to: &configuration, scenarioIdentity: scenario.identity, file: file, readFiles: !checkOnly)
        try reports.check(json: json ?? scenario.jsonOutput, logs: logs, exports: exports)
        if checkOnly {
            for line in CheckPlan.lines(scenario: scenario, configuration: configuration,
                                        outputs: reports.planned(json: json, logs: logs, exports: exports)) { printLine(line) }
            return
        }
        if !quiet, let name = scenario.name { printError("meshprobe run: \(name) (\(file))") }
        try await SidecarSession.ready()
        let rotation = try await IdentityRotation.start(scenarioIdentity: scenario.identity, file: file, configuration: &configuration)
        try await IdentityRotation.around(rotation) {
            try await resolveGRPCReflection(&configuration, field: "\(file): grpc.data", protoset: "grpc.protoset")
            try await runSteps(scenario, configuration: configuration)
        }
    }

    /// The setup, the load and the teardown.
    private func runSteps(_ scenario: Scenario, configuration: LoadConfiguration) async throws {
        var configuration = configuration
        let group = MultiThreadedEventLoopGroup.singleton
        var variables: [String: String] = [:]
        if !scenario.setup.isEmpty {
            let outcome = try await StepRunner.run(scenario.setup, base: configuration, group: group)
            guard outcome.completed else {
                throw CLIError(message: "setup failed, no load was sent: \(outcome.problem ?? "")", exitCode: 3)
            }
            variables = outcome.variables
            if !quiet {
                printError("meshprobe run: setup done (\(scenario.setup.count) steps; values: \(variables.keys.sorted().joined(separator: ", ")))")
            }
            configuration.plan.flowVariables = variables
        }
        var loadError: (any Error)?
        do {
            try await runLoad(configuration, LoadRunOptions(json: json ?? scenario.jsonOutput, quiet: quiet, reports: try reports.outputs(exports, logs: logs),
                                                            command: "run", title: scenario.name ?? file, viewInputs: [file],
                                                            inputs: resultInputs([("scenario", file)])))
        } catch {
            loadError = error
        }
        if !scenario.teardown.isEmpty {
            // Teardown runs whatever happened to the load; a failure is reported, and turns a passing run into exit 3.
            let outcome = try? await StepRunner.run(scenario.teardown, base: configuration, variables: variables, group: group)
            if outcome?.completed != true {
                printError("meshprobe run: teardown failed: \(outcome?.problem ?? "could not run")")
                if loadError == nil { throw CLIError(message: "teardown failed", exitCode: 3) }
            } else if !quiet {
                printError("meshprobe run: teardown done (\(scenario.teardown.count) steps)")
            }
        }
        if let loadError { throw loadError }
    }
}
