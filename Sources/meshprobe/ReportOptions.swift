import ArgumentParser
import Foundation
import MeshprobeHistogram
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeReport
import MeshprobeTLS
import NIOPosix

/// The report outputs `load`, `run`, `verify`, `gameday` and `demo` share: JUnit and HTML reports, Prometheus (live,
/// file, push), and the interop exports of one load's result (`load` and `run` only).
struct ReportOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Write the verdicts as JUnit XML (one test case per expectation) to this file.", valueName: "file"))
    var junit: String?

    @Option(help: ArgumentHelp("Write a self-contained HTML report (verdicts, per-identity tables, charts) to this file.", valueName: "file"))
    var html: String?

    @Option(name: .customLong("metrics-listen"), help: ArgumentHelp("Serve live Prometheus metrics at http://HOST:PORT/metrics during the run.", valueName: "host:port"),
            transform: InputArgument.hostPort)
    var metricsListen: HostPort?

    @Option(help: ArgumentHelp("Write the end-of-run Prometheus metrics (text exposition format) to this file.", valueName: "file"))
    var prometheus: String?

    @Option(help: ArgumentHelp("Push the end-of-run metrics to this Prometheus Pushgateway (http://HOST:PORT or https://HOST:PORT, an optional path as a prefix).", valueName: "url"))
    var pushgateway: String?

    @Option(name: .customLong("pushgateway-job"), help: "The Pushgateway job name (default meshprobe).")
    var pushgatewayJob = "meshprobe"

    @Option(name: .customLong("pushgateway-ca"), help: ArgumentHelp("An https Pushgateway's CA bundle (PEM); default: the system trust store (\(PushgatewayClient.systemTrustStore)). The certificate must also name the URL's host.", valueName: "file"))
    var pushgatewayCA: String?

    @Option(name: .customLong("pushgateway-auth-file"), help: ArgumentHelp("A file holding USER:PASSWORD for an https Pushgateway's basic auth (or set MESHPROBE_PUSHGATEWAY_AUTH).", valueName: "file"))
    var pushgatewayAuthFile: String?

    @Option(help: ArgumentHelp("Write the result as a Service Mesh Performance (SMP) PerformanceTestResult (JSON).", valueName: "file"))
    var smp: String?

    @Option(help: ArgumentHelp("Write the latency's HdrHistogram percentile distribution (.hgrm, milliseconds).", valueName: "file"))
    var hgrm: String?

    func validate() throws {
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

    /// Refuses unwritable report paths (exit 2) before anything runs, and exports that need one load's result on a
    /// command that runs several.
    func check(singleLoad: Bool = true, json: String? = nil) throws {
        if !singleLoad, smp != nil || hgrm != nil {
            throw CLIError.badInput("--smp and --hgrm describe one load's result: use them with load or run (or merge the results)")
        }
        do {
            if let json { try ReportFile.checkWritable(json, flag: "--json") }
            if let junit { try ReportFile.checkWritable(junit, flag: "--junit") }
            if let html { try ReportFile.checkWritable(html, flag: "--html") }
            if let prometheus { try ReportFile.checkWritable(prometheus, flag: "--prometheus") }
            if let smp { try ReportFile.checkWritable(smp, flag: "--smp") }
            if let hgrm { try ReportFile.checkWritable(hgrm, flag: "--hgrm") }
        } catch let error as ReportFileError {
            throw CLIError.badInput(error.description)
        }
    }

    /// Writes the reports asked for, each whole or not at all (exit 2 when one cannot be written).
    func write(_ report: @autoclosure () -> RunReport) throws {
        guard junit != nil || html != nil else { return }
        let report = report()
        do {
            if let junit { try ReportFile.write(JUnitReport(report).render(), to: junit, flag: "--junit") }
            if let html { try ReportFile.write(HTMLReport(report).render(), to: html, flag: "--html") }
        } catch let error as ReportFileError {
            throw CLIError.badInput(error.description)
        }
    }

    /// Starts what must run during the run: the Prometheus export every load feeds (through the configuration's
    /// metrics sink) and the live endpoint.
    func start(_ configuration: inout LoadConfiguration) async throws -> ReportSession {
        let session = try await ReportSession(checking: self)
        if metricsListen != nil || prometheus != nil || pushgateway != nil {
            let export = session.export
            configuration.metricsSink = { run, metrics in export.update(metrics, run: run) }
        }
        if let metricsListen {
            let (host, port) = (metricsListen.host, metricsListen.port)
            do {
                let export = session.export
                session.server = try await MetricsServer.start(host: host, port: port, group: MultiThreadedEventLoopGroup.singleton) { export.text() }
            } catch {
                throw CLIError.badInput("--metrics-listen \(metricsListen): cannot listen: \(error)")
            }
        }
        return session
    }
}

/// One command's report outputs while it runs and when it ends.
// @unchecked: the server is set once in `ReportOptions.start`, before the session is shared, and read after.
final class ReportSession: @unchecked Sendable {
    let options: ReportOptions
    let export = PrometheusExport()
    var server: MetricsServer?
    let pushgateway: PushgatewayClient.Target?

    /// A session whose https Pushgateway's certificate is checked first: one that does not verify (another CA, a
    /// certificate for another host) is bad input (exit 2) before anything runs.
    init(checking options: ReportOptions) async throws {
        self.options = options
        pushgateway = try options.pushgatewayTarget()
        if let pushgateway {
            do { try await PushgatewayClient.checkCertificate(pushgateway, group: MultiThreadedEventLoopGroup.singleton) } catch {
                throw CLIError.badInput("--pushgateway: \(error.description)")
            }
        }
    }

    /// Writes the end-of-run outputs (atomically) and pushes to the gateway; stops the live endpoint.
    func finish(report: LoadReport?, json: String?) async throws {
        defer { Task { [server] in await server?.stop() } }
        let text = export.text()
        if let path = options.prometheus { try write(Data(text.utf8), to: path, flag: "--prometheus") }
        if let report {
            if let path = options.hgrm {
                let latency: LatencyHistogram
                do { latency = try HistogramCodec.decode(report.histograms.latency) } catch {
                    throw CLIError(message: "--hgrm: \(error)", exitCode: 2)
                }
                try write(Data(PercentileDistribution.text(latency).utf8), to: path, flag: "--hgrm")
            }
            if let path = options.smp { try write(try SMPResult(report, details: json).jsonData(), to: path, flag: "--smp") }
        }
        if let pushgateway {
            // After a signal the push ends by the signal's deadline: given the time left, abandoned when it passes.
            let deadline = SignalHub.stopDeadline
            let problem: String?? = await deadline.bound {
                guard let seconds = deadline.secondsLeft(atMost: 10) else { return "not pushed: nothing may start \(SignalHub.networkBudgetText) after the signal" }
                do {
                    try await PushgatewayClient.push(text, to: pushgateway, group: MultiThreadedEventLoopGroup.singleton,
                                                     timeout: .nanoseconds(Int64(seconds * 1e9)))
                    return nil
                } catch {
                    return "\(error)"
                }
            }
            switch problem {
            case nil:
                printError("meshprobe: warning: not pushed: the Pushgateway at \(pushgateway.url) had not answered \(SignalHub.networkBudgetText) after the signal")
            case let problem??:
                printError("meshprobe: warning: \(problem)")
            case .some(nil):
                break
            }
        }
    }

    private func write(_ data: Data, to path: String, flag: String) throws {
        do { try data.write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw CLIError(message: "cannot write \(flag) '\(path)': \(error.localizedDescription)", exitCode: 2)
        }
    }
}

/// The files a run read, with their SHA-256, for the result's `meta.inputs`.
func resultInputs(_ files: [(role: String, path: String)]) -> [LoadReport.Input] {
    files.compactMap { file in
        (try? InputFile.read(file.path, limit: .yaml)).map {
            LoadReport.Input(role: file.role, path: file.path, sha256: Digest.sha256Hex($0))
        }
    }
}
