import ArgumentParser
import Foundation
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeReport
import MeshprobeRunner
import MeshprobeSpec
import MeshprobeTLS

/// `-o json`, `-o junit`: a result to standard output, as `--json -` or `--junit -` write it (kubectl's `-o`).
enum ResultFormat: String, Sendable {
    case json, junit

    init(parsing text: String) throws(InputValueError) {
        guard let format = Self(rawValue: text) else {
            throw InputValueError("'\(text)': expected json (the JSON result, as --json -) or junit (the JUnit XML, as --junit -)")
        }
        self = format
    }
}

/// The report outputs `load`, `run`, `verify`, `gameday`, `demo` and `merge` share: JUnit and HTML reports,
/// Prometheus (live, file, push), and `-o` for the JSON result or the JUnit XML on standard output. The exports of one
/// load's result are `ExportOptions`.
struct ReportOptions: ParsableArguments {
    @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp(
        "Write the result to standard output: json (the JSON result, as --json -) or junit (the JUnit XML, as --junit -); the lines for people then go to standard error.",
        valueName: "json|junit"), transform: InputArgument.resultFormat)
    var output: ResultFormat?

    @Option(name: .customLong("junit"), help: ArgumentHelp("Write the verdicts as JUnit XML (one test case per expectation) to this file.", valueName: "file"))
    var junitFile: String?

    /// Where the JUnit XML goes: `--junit`, or standard output with `-o junit`.
    var junit: String? { junitFile ?? (output == .junit ? ReportFile.standardOutput : nil) }

    /// Where the command's JSON result goes: its `--json` (`file`), or standard output with `-o json`.
    func json(_ file: String?) -> String? {
        file ?? (output == .json ? ReportFile.standardOutput : nil)
    }

    /// Refuses `-o` beside the flag it stands for (`json`: the command's `--json`): two places for one result.
    func validate(json file: String?) throws {
        if output == .json, let file { throw ValidationError("-o json writes the JSON result to standard output, and --json \(file) to a file: give one of them") }
    }

    @Option(help: ArgumentHelp("Write a self-contained HTML report (verdicts, per-identity tables, charts) to this file.", valueName: "file"))
    var html: String?

    @Option(name: .customLong("metrics-listen"), help: ArgumentHelp("Serve live Prometheus metrics at http://HOST:PORT/metrics during the run.", valueName: "host:port"),
            transform: InputArgument.hostPort)
    var metricsListen: HostPort?

    @Option(help: ArgumentHelp("Write the end-of-run Prometheus metrics (text exposition format) to this file.", valueName: "file"))
    var prometheus: String?

    @Option(help: ArgumentHelp("Push the end-of-run metrics to this Prometheus Pushgateway (http://HOST:PORT or https://HOST:PORT, an optional path as a prefix).", valueName: "url"))
    var pushgateway: String?

    @Option(name: .customLong("pushgateway-job"), help: "The Pushgateway job name.")
    var pushgatewayJob = "meshprobe"

    @Option(name: .customLong("pushgateway-ca"), help: ArgumentHelp("An https Pushgateway's CA bundle (PEM); default: the system trust store (\(PushgatewayClient.systemTrustStore)). The certificate must also name the URL's host.", valueName: "file"))
    var pushgatewayCA: String?

    @Option(name: .customLong("pushgateway-auth-file"), help: ArgumentHelp("A file holding USER:PASSWORD for an https Pushgateway's basic auth (or set MESHPROBE_PUSHGATEWAY_AUTH).", valueName: "file"))
    var pushgatewayAuthFile: String?

    func validate() throws {
        if output == .junit, let junitFile {
            throw ValidationError("-o junit writes the JUnit XML to standard output, and --junit \(junitFile) to a file: give one of them")
        }
        if pushgateway != nil {
            _ = try pushgatewayTarget()
        } else if pushgatewayCA != nil || pushgatewayAuthFile != nil {
            throw ValidationError("--pushgateway-ca and --pushgateway-auth-file go with --pushgateway")
        }
    }

    /// The Pushgateway to push to (its TLS context built, its CA bundle read), or nil; bad input is a ValidationError.
    func pushgatewayTarget() throws -> PushgatewayClient.Target? {
        guard let pushgateway else { return nil }
        var credentials = ProcessInfo.processInfo.environment["MESHPROBE_PUSHGATEWAY_AUTH"].flatMap { $0.isEmpty ? nil : $0 }
        if let file = pushgatewayAuthFile {
            let data = try readInputFile(file, limit: .secret, flag: "--pushgateway-auth-file")
            credentials = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        do {
            return try PushgatewayClient.target(url: pushgateway, job: pushgatewayJob, caFile: pushgatewayCA, credentials: credentials)
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// The report outputs asked for, with a load's `exports` when the command has them and the results in the log
    /// (`--json-log`, `--junit-log`), as the runner takes them (the Pushgateway resolved).
    func outputs(_ exports: ExportOptions? = nil, logs: ResultLogOptions? = nil) throws -> ReportOutputs {
        var outputs = files(exports, logs: logs)
        outputs.pushgateway = try pushgatewayTarget()
        return outputs
    }

    /// The outputs asked for, as `--check`'s plan names them (nothing written, no Pushgateway reached).
    func planned(json: String?, logs: ResultLogOptions? = nil, exports: ExportOptions? = nil) -> CheckPlan.Outputs {
        CheckPlan.Outputs(files(exports, logs: logs), json: json, pushgateway: pushgateway)
    }

    /// The files asked for (what checking and writing them needs; no Pushgateway).
    private func files(_ exports: ExportOptions? = nil, logs: ResultLogOptions? = nil) -> ReportOutputs {
        ReportOutputs(junit: junit, html: html, metricsListen: metricsListen, prometheus: prometheus, smp: exports?.smp,
                      hgrm: exports?.hgrm, jsonLog: logs?.json ?? false, junitLog: logs?.junit ?? false)
    }

    /// Refuses unwritable report paths (exit 2) before anything runs, and exports that need one load's result on a
    /// command that merges several.
    func check(singleLoad: Bool = true, json: String? = nil, logs: ResultLogOptions? = nil, exports: ExportOptions? = nil) throws {
        var outputs = files(exports, logs: logs)
        if let output { outputs.spelled = ["--\(output.rawValue)": "-o \(output.rawValue)"] }
        try outputs.check(singleLoad: singleLoad, json: json)
    }

    /// Writes the JSON result to `json` and, with `--json-log`, to standard output between the marker lines.
    func writeJSON(_ data: @autoclosure () throws -> Data, json: String?, logs: ResultLogOptions?) throws {
        try files(logs: logs).writeJSON(data(), json: json)
    }

    /// Writes the reports asked for, each whole or not at all (exit 2 when one cannot be written), and the JUnit XML
    /// to the log with `--junit-log`.
    func write(_ report: @autoclosure () -> RunReport, logs: ResultLogOptions? = nil) throws {
        try files(logs: logs).write(report())
    }

    /// Starts what must run during the run (see `ReportOutputs.start`).
    func start(_ configuration: inout LoadConfiguration) async throws -> ReportSession {
        try await outputs().start(&configuration)
    }
}

/// `--json-log` and `--junit-log`, beside each command's `--json` (`load`, `run`, `verify`, `gameday`, `merge`): the
/// results in the log, for a Kubernetes Job whose log is where its results are read (`ResultLog`).
struct ResultLogOptions: ParsableArguments {
    @Flag(name: .customLong("json-log"), help: ArgumentHelp(
        "Also write the JSON result to standard output at the end, between a BEGIN MESHPROBE RESULT and an END MESHPROBE RESULT marker line, for a Job's log (scripts/extract-result cuts it out); the lines for people then go to standard error."))
    var json = false

    @Flag(name: .customLong("junit-log"), help: ArgumentHelp(
        "Also write the JUnit XML (as --junit) to standard output at the end, between a BEGIN MESHPROBE JUNIT and an END MESHPROBE JUNIT marker line (scripts/extract-result --junit cuts it out)."))
    var junit = false
}

/// The exports of one load's result (`load`, `run`, and `merge` of load results): SMP and .hgrm.
struct ExportOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Write the result as a Service Mesh Performance (SMP) PerformanceTestResult (JSON).", valueName: "file"))
    var smp: String?

    @Option(help: ArgumentHelp("Write the latency's HdrHistogram percentile distribution (.hgrm, milliseconds).", valueName: "file"))
    var hgrm: String?

    var any: Bool { smp != nil || hgrm != nil }
}
