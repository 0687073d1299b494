import Foundation
import MeshprobeHistogram
import MeshprobeLoad
import MeshprobeReport
import NIOPosix

/// One command's report outputs while it runs and when it ends.
// @unchecked: the server is set once in `ReportOutputs.start`, before the session is shared, and read after.
package final class ReportSession: @unchecked Sendable {
    package let options: ReportOutputs
    package let export = PrometheusExport()
    package var server: MetricsServer?
    package let pushgateway: PushgatewayClient.Target?

    /// A session whose https Pushgateway's certificate is checked first: one that does not verify (another CA, a
    /// certificate for another host) is bad input (exit 2) before anything runs.
    package init(checking options: ReportOutputs) async throws {
        self.options = options
        pushgateway = options.pushgateway
        if let pushgateway {
            do { try await PushgatewayClient.checkCertificate(pushgateway, group: MultiThreadedEventLoopGroup.singleton) } catch {
                throw ExitError.badInput("--pushgateway: \(error.description)")
            }
        }
    }

    /// Writes the end-of-run outputs (atomically) and pushes to the gateway; stops the live endpoint.
    package func finish(report: LoadReport?, json: String?) async throws {
        defer { Task { [server] in await server?.stop() } }
        let text = export.text()
        if let path = options.prometheus { try write(Data(text.utf8), to: path, flag: "--prometheus") }
        if let report {
            if let path = options.hgrm {
                let latency: LatencyHistogram
                do { latency = try HistogramCodec.decode(report.histograms.latency) } catch {
                    throw ExitError(message: "--hgrm: \(error)", exitCode: 2)
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
        try writeResult(data, to: path, flag: flag)
    }
}
