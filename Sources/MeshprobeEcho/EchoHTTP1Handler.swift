import MeshprobeIdentity
import NIOCore
import NIOHTTP1

/// Answers HTTP/1.1 requests (keep-alive) on one connection.
final class EchoHTTP1Handler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let state: EchoState
    private let peerSPIFFEID: String?
    private let serverName: String?
    private var head: HTTPRequestHead?
    private var bodyLength = 0
    /// Kept for control requests only (they carry JSON); ordinary bodies are only counted.
    private var body: ByteBuffer?
    private var random = SystemRandomNumberGenerator()
    /// Requests received on this connection so far.
    private var requestsOnConnection = 0

    init(state: EchoState, peerSPIFFEID: String?, serverName: String?) {
        self.state = state
        self.peerSPIFFEID = peerSPIFFEID
        self.serverName = serverName
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            bodyLength = 0
            body = FaultControlAPI.isControlPath(h.uri) ? context.channel.allocator.buffer(capacity: 0) : nil
        case .body(var b):
            bodyLength += b.readableBytes
            // One byte over the limit is enough for the control API to refuse the body as too large.
            if body != nil, (body?.readableBytes ?? 0) <= FaultControlAPI.maxBodyBytes { body?.writeBuffer(&b) }
        case .end:
            guard let head else { return }
            self.head = nil
            answer(head, context: context)
        }
    }

    private func answer(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let inFlight = state.enter()
        requestsOnConnection += 1
        let request = EchoRequest(
            method: head.method.rawValue,
            path: head.uri,
            headers: head.headers.map { ($0.name.lowercased(), $0.value) },
            bodyLength: bodyLength,
            peerSPIFFEID: peerSPIFFEID,
            serverName: serverName,
            body: body,
            connectionRequest: requestsOnConnection
        )
        body = nil
        var plan = state.planner.plan(request, inFlight: inFlight, allocator: context.channel.allocator, random: &random)
        let retries = state.enterRetry(attempt: plan.attempt)
        if let retries { plan.headers.append((EchoStamp.retriesInFlight, String(retries))) }
        let keepAlive = head.isKeepAlive
        let isHead = head.method == .HEAD
        let version = head.version
        let state = self.state
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let finish: () -> Void = {
            let context = loopBound.value
            // Out of flight before the answer leaves: a proxy that sends its next request as soon as it has this
            // answer must never see it counted (the circuit-breaker check compares this count with a limit).
            state.exit(retry: retries != nil)
            if case .reset = plan.action {
                context.close(promise: nil)
                return
            }
            var headers = HTTPHeaders(plan.headers.map { ($0.name, $0.value) })
            if plan.status != 204 && plan.status != 304 {
                headers.add(name: "content-length", value: String(plan.body.readableBytes))
            }
            if !keepAlive { headers.add(name: "connection", value: "close") }
            let responseHead = HTTPResponseHead(version: version, status: .init(statusCode: plan.status), headers: headers)
            context.write(self.wrapOutboundOut(.head(responseHead)), promise: nil)
            // A HEAD response has the GET's headers and no body (RFC 9110 9.3.2).
            if !isHead { context.write(self.wrapOutboundOut(.body(.byteBuffer(plan.body))), promise: nil) }
            let done = context.writeAndFlush(self.wrapOutboundOut(.end(nil)))
            if !keepAlive {
                done.assumeIsolated().whenComplete { _ in loopBound.value.close(promise: nil) }
            }
        }
        if plan.delayNanoseconds > 0 {
            context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(plan.delayNanoseconds))) { finish() }
        } else {
            finish()
        }
    }
}
