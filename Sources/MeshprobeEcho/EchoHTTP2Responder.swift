import MeshprobeHTTP2
import NIOCore

/// Answers HTTP/2 requests on one connection.
final class EchoHTTP2Responder: HTTP2Responder {
    private let state: EchoState
    private let peerSPIFFEID: String?
    private let serverName: String?
    private let allocator = ByteBufferAllocator()
    private var random = SystemRandomNumberGenerator()
    /// Requests received on this connection so far.
    private var requestsOnConnection = 0

    init(state: EchoState, peerSPIFFEID: String?, serverName: String?) {
        self.state = state
        self.peerSPIFFEID = peerSPIFFEID
        self.serverName = serverName
    }

    func respond(to request: HTTP2ServerRequest, writer: HTTP2ResponseWriter) {
        let inFlight = state.enter()
        requestsOnConnection += 1
        let echoRequest = EchoRequest(
            method: request.method,
            path: request.path,
            headers: request.headers.map { ($0.name, $0.value) },
            bodyLength: request.body.readableBytes,
            peerSPIFFEID: peerSPIFFEID,
            serverName: serverName,
            body: request.body,
            connectionRequest: requestsOnConnection
        )
        var plan = state.planner.plan(echoRequest, inFlight: inFlight, allocator: allocator, random: &random)
        let retry = state.enterRetry(&plan)
        let state = self.state
        let finish: () -> Void = {
            // Out of flight before the answer leaves (see EchoHTTP1Handler).
            state.served.wrappingIncrement(ordering: .relaxed)
            state.inFlight.wrappingDecrement(ordering: .relaxed)
            if retry { state.retriesInFlight.wrappingDecrement(ordering: .relaxed) }
            switch plan.action {
            case .reset:
                writer.reset(errorCode: 0x2)  // INTERNAL_ERROR, as a crashing upstream would
            case .respond:
                var headers = plan.headers.map { HTTP2Header($0.name, $0.value) }
                if plan.status != 204 && plan.status != 304 {
                    headers.append(HTTP2Header("content-length", String(plan.body.readableBytes)))
                }
                // A HEAD response has the GET's headers and no body (RFC 9110 9.3.2): DATA would be a protocol error.
                let head = request.method == "HEAD"
                writer.respond(status: plan.status, headers: headers, body: plan.body.readableBytes > 0 && !head ? plan.body : nil)
            }
        }
        if plan.delayNanoseconds > 0 {
            writer.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(plan.delayNanoseconds))) { finish() }
        } else {
            finish()
        }
    }
}
