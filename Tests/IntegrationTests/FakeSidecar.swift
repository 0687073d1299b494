import Foundation
import MeshprobeTestSupport
import NIOConcurrencyHelpers

/// A sidecar proxy's admin endpoint as Istio and Linkerd document it (neither proxy runs here): the readiness path
/// answers 503 until it has been probed `readyAfter` times, then 200 (never, with nil); the shutdown path answers
/// `shutdownStatus` to a POST (Linkerd answers 404 when its shutdown endpoint is not enabled). Every request is
/// recorded with what `observe` said when it arrived.
struct FakeSidecarAdmin {
    let server: RecordingHTTPServer
    let readyPath: String?
    let shutdownPath: String?

    static func start(readyPath: String?, shutdownPath: String?, readyAfter: Int?, shutdownStatus: Int = 200,
                      observe: @escaping @Sendable () -> Int = { 0 }) async throws -> FakeSidecarAdmin {
        let probes = NIOLockedValueBox(0)
        let server = try await RecordingHTTPServer.start { method, uri in
            if method == "GET", uri == readyPath {
                let count = probes.withLockedValue { $0 += 1; return $0 }
                let ready = readyAfter.map { count > $0 } ?? false
                return .init(status: ready ? 200 : 503, body: ready ? "ready\n" : "not ready\n", note: observe())
            }
            if method == "POST", uri == shutdownPath { return .init(status: shutdownStatus, note: observe()) }
            return .init(status: 404, note: observe())
        }
        return FakeSidecarAdmin(server: server, readyPath: readyPath, shutdownPath: shutdownPath)
    }

    /// Istio's status port: `/healthz/ready` only.
    static func istioStatus(readyAfter: Int?, observe: @escaping @Sendable () -> Int = { 0 }) async throws -> FakeSidecarAdmin {
        try await start(readyPath: "/healthz/ready", shutdownPath: nil, readyAfter: readyAfter, observe: observe)
    }

    /// Istio's pilot-agent port: `/quitquitquit` only.
    static func istioAgent() async throws -> FakeSidecarAdmin {
        try await start(readyPath: nil, shutdownPath: "/quitquitquit", readyAfter: nil)
    }

    /// Linkerd's admin port: `/ready` and `/shutdown`.
    static func linkerd(readyAfter: Int?, shutdownStatus: Int = 200, observe: @escaping @Sendable () -> Int = { 0 }) async throws -> FakeSidecarAdmin {
        try await start(readyPath: "/ready", shutdownPath: "/shutdown", readyAfter: readyAfter, shutdownStatus: shutdownStatus, observe: observe)
    }

    var port: Int { server.port }
    var requests: [RecordingHTTPServer.Request] { server.requests }
    var readinessProbes: [RecordingHTTPServer.Request] { requests.filter { $0.method == "GET" && $0.uri == readyPath } }
    var shutdowns: [RecordingHTTPServer.Request] { requests.filter { $0.method == "POST" && $0.uri == shutdownPath } }

    func close() async { await server.stop() }
}
