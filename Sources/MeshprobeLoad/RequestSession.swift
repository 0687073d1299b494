import MeshprobeHTTP1
import MeshprobeHTTP2

/// A connection's HTTP session as the engine sends on it, HTTP/2 (many streams) or HTTP/1.1 (one request at a time),
/// so that a connection has one sending path whatever the protocol.
protocol RequestSession: AnyObject {
    /// Requests the session can take now.
    var availableStreams: Int { get }
    /// Carries several requests at once (HTTP/2); false: one at a time (HTTP/1.1), so a connection has one slot.
    var isMultiplexed: Bool { get }
    /// Sends `request`; false when the session cannot take it after all (the request is then owed again).
    func send(_ request: HTTP2Request, authority: String, token: UInt64) -> Bool
    /// Writes what `send` held back: HTTP/2 writes a burst's frames together; HTTP/1.1 writes each request at once.
    func flush()
}

extension HTTP2ClientConnectionHandler: RequestSession {
    var isMultiplexed: Bool { true }

    @inline(__always) func send(_ request: HTTP2Request, authority: String, token: UInt64) -> Bool {
        send(request, token: token)
    }
}

extension HTTP1ClientHandler: RequestSession {
    var isMultiplexed: Bool { false }

    func send(_ request: HTTP2Request, authority: String, token: UInt64) -> Bool {
        send(method: request.method, authority: authority, path: request.path,
             headers: request.headers.map { ($0.name, $0.value) }, body: request.body, token: token)
    }

    func flush() {}
}
