#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MeshprobeHTTP1
import NIOCore
import NIOHTTP1
import NIOPosix

/// A request to a sidecar's admin endpoint on loopback, answered by its status code, or `.unreachable` with the
/// reason (refused, reset, no answer in time): readiness probes and shutdown calls need nothing more.
enum AdminHTTPClient {
    static func request(_ method: HTTPMethod, host: String, port: Int, path: String, timeout: TimeAmount,
                        group: any EventLoopGroup) async -> ProbeOutcome {
        do {
            let status = try await HTTP1Exchange.status(method, host: host, port: port, path: path,
                                                        headers: ["connection": "close"], timeout: timeout, group: group)
            return .status(Int(status.code))
        } catch {
            return .unreachable(describe(error))
        }
    }

    static func describe(_ error: any Error) -> String {
        if let connect = error as? NIOConnectionError, let first = connect.connectionErrors.first { return describe(first.error) }
        if let io = error as? IOError, io.errnoCode == ECONNREFUSED { return "connection refused" }
        if let channel = error as? ChannelError, case .connectTimeout = channel { return "connect timed out" }
        return "\(error)"
    }
}
