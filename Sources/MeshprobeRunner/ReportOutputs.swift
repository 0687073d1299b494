import Foundation
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeReport
import MeshprobeSpec
import MeshprobeTLS
import NIOPosix

/// The report outputs of a command (`load`, `run`, `verify`, `gameday`, `demo`, `merge`): JUnit and HTML reports,
/// Prometheus (live, file, push), and the interop exports of one load's result.
package struct ReportOutputs: Sendable {
    package var junit: String?
    package var html: String?
    package var metricsListen: HostPort?
    package var prometheus: String?
    /// Resolved: its TLS context built, its CA bundle and credentials read.
    package var pushgateway: PushgatewayClient.Target?
    package var smp: String?
    package var hgrm: String?
    /// `--json-log`, `--junit-log`: the JSON result, the JUnit XML also go to standard output between marker lines
    /// (`ResultLog`).
    package var jsonLog: Bool
    package var junitLog: Bool
    /// How the command line named an output, where not by its flag: `["--json": "-o json"]`, for messages.
    package var spelled: [String: String] = [:]

    package init(junit: String? = nil, html: String? = nil, metricsListen: HostPort? = nil, prometheus: String? = nil,
                 pushgateway: PushgatewayClient.Target? = nil, smp: String? = nil, hgrm: String? = nil, jsonLog: Bool = false,
                 junitLog: Bool = false) {
        self.junit = junit
        self.html = html
        self.metricsListen = metricsListen
        self.prometheus = prometheus
        self.pushgateway = pushgateway
        self.smp = smp
        self.hgrm = hgrm
        self.jsonLog = jsonLog
        self.junitLog = junitLog
    }

    /// Refuses unwritable report paths (exit 2) before anything runs, and exports that need one load's result on a
    /// command that runs several; gives standard output to the one output that asks for it (`-`), or to the results
    /// in the log (their marked blocks share it), the lines for people then going to standard error.
    package func check(singleLoad: Bool = true, json: String? = nil) throws {
        if !singleLoad, smp != nil || hgrm != nil {
            throw ExitError.badInput("--smp and --hgrm describe one load's result: use them with load or run (or merge the results)")
        }
        let outputs = [("--json", json), ("--junit", junit), ("--html", html), ("--prometheus", prometheus), ("--smp", smp),
                       ("--hgrm", hgrm)].filter { $0.1.map(ReportFile.writesStandardOutput) ?? false }.map { spelled[$0.0] ?? $0.0 }
        let logs = [("--json-log", jsonLog), ("--junit-log", junitLog)].filter(\.1).map(\.0)
        let toStandardOutput = outputs + logs
        if outputs.count + (logs.isEmpty ? 0 : 1) > 1 {
            let named = toStandardOutput.dropLast().joined(separator: ", ") + " and " + toStandardOutput.last!
            throw ExitError.badInput("\(named) \(toStandardOutput.count == 2 ? "both" : "all") write to standard output: only one output can (or the logs' marked blocks)")
        }
        if !toStandardOutput.isEmpty { StandardOutput.reserveForResult() }
        do {
            if let json { try ReportFile.checkWritable(json, flag: "--json") }
            if let junit { try ReportFile.checkWritable(junit, flag: "--junit") }
            if let html { try ReportFile.checkWritable(html, flag: "--html") }
            if let prometheus { try ReportFile.checkWritable(prometheus, flag: "--prometheus") }
            if let smp { try ReportFile.checkWritable(smp, flag: "--smp") }
            if let hgrm { try ReportFile.checkWritable(hgrm, flag: "--hgrm") }
        } catch let error as ReportFileError {
            throw ExitError.badInput(error.description)
        }
    }

    /// Writes the JSON result where it was asked for: to `json`'s path (`writeResult`) and, with `--json-log`, to
    /// standard output between the marker lines (`logJSON`).
    package func writeJSON(_ data: @autoclosure () throws -> Data, json: String?) throws {
        guard json != nil || jsonLog else { return }
        let data = try data()
        if let json { try writeResult(data, to: json) }
        try logJSON(data)
    }

    /// With `--json-log`, the JSON result between the marker lines, for standard output at the end of the process,
    /// after every line for people (which go to standard error then: `check` reserved standard output for it;
    /// `ResultLogOutput`).
    package func logJSON(_ data: @autoclosure () throws -> Data) throws {
        guard jsonLog else { return }
        ResultLogOutput.append(ResultLog.json.framed(try data()), flag: "--json-log")
    }

    /// With `--junit-log`, the JUnit XML between its marker lines, for standard output at the end, as `logJSON`.
    package func logJUnit(_ report: @autoclosure () -> RunReport) throws {
        guard junitLog else { return }
        ResultLogOutput.append(ResultLog.junit.framed(Data(JUnitReport(report()).render().utf8)), flag: "--junit-log")
    }

    /// Writes the reports asked for, each whole or not at all (exit 2 when one cannot be written), and the JUnit XML
    /// to the log with `--junit-log` unless `log` is false (a command that logs it once, at its very end).
    package func write(_ report: @autoclosure () -> RunReport, log: Bool = true) throws {
        guard junit != nil || html != nil || (junitLog && log) else { return }
        let report = report()
        do {
            if let junit { try ReportFile.write(JUnitReport(report).render(), to: junit, flag: "--junit") }
            if let html { try ReportFile.write(HTMLReport(report).render(), to: html, flag: "--html") }
        } catch let error as ReportFileError {
            throw ExitError.badInput(error.description)
        }
        if log { try logJUnit(report) }
    }

    /// Starts what must run during the run: the Prometheus export every load feeds (through the configuration's
    /// metrics sink) and the live endpoint.
    package func start(_ configuration: inout LoadConfiguration) async throws -> ReportSession {
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
                throw ExitError.badInput("--metrics-listen: \(listenFailure(metricsListen.description, error))")
            }
        }
        return session
    }
}

/// The files a run read, with their SHA-256, for the result's `meta.inputs`.
package func resultInputs(_ files: [(role: String, path: String)]) -> [LoadReport.Input] {
    files.compactMap { file in
        (try? InputFile.read(file.path, limit: .yaml)).map {
            LoadReport.Input(role: file.role, path: file.path, sha256: Digest.sha256Hex($0))
        }
    }
}

/// Writes a result (`--json`, `--prometheus`, ...) whole or not at all, in place when the path is a special file such
/// as `/dev/stdout` (`ReportFile.write`); one that cannot be written is bad input (exit 2).
package func writeResult(_ data: Data, to path: String, flag: String = "--json") throws {
    do { try ReportFile.write(data, to: path, flag: flag) } catch let error as ReportFileError {
        throw ExitError(message: error.description, exitCode: 2)
    }
}

/// Writes files into a directory, private ones with mode 0600.
package func writeFiles(_ directory: String, _ files: [(name: String, contents: String, secret: Bool)]) throws {
    let fm = FileManager.default
    do {
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for file in files {
            let path = URL(fileURLWithPath: directory).appendingPathComponent(file.name).path
            guard fm.createFile(atPath: path, contents: Data(file.contents.utf8),
                                attributes: [.posixPermissions: file.secret ? 0o600 : 0o644]) else {
                throw ExitError(message: "cannot write \(path)", exitCode: 2)
            }
            if file.secret { try fm.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path) }
        }
    } catch let error as ExitError {
        throw error
    } catch {
        throw ExitError(message: "cannot write to \(directory): \(error.localizedDescription)", exitCode: 2)
    }
}
