import MeshprobeTLS
import NIOCore
import NIOHTTP1
import NIOPosix

/// One HTTP/1.1 request on a fresh connection, for the small control calls around a run (a Pushgateway push, a
/// sidecar's readiness probe and shutdown): sent as soon as the connection is up, answered by the response's status
/// (the response body is read and dropped). Not the load path: that is `LoadConnection`.
public enum HTTP1Exchange {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Sends `method path` (with `headers` and `body`) to `host:port`, over `tls` when given (sent once the handshake
    /// is done). Throws the connection's error as NIO gives it (refused, connect timeout), or a `Failure` when no
    /// answer comes within `timeout` or the peer closes first (a refused handshake closes it).
    public static func status(_ method: HTTPMethod, host: String, port: Int, path: String, headers: HTTPHeaders = [:],
                              body: String = "", tls: TLSContext? = nil, timeout: TimeAmount,
                              group: any EventLoopGroup) async throws -> HTTPResponseStatus {
        let status = group.next().makePromise(of: HTTPResponseStatus.self)
        var headers = headers
        headers.replaceOrAdd(name: "host", value: "\(host):\(port)")
        headers.replaceOrAdd(name: "content-length", value: String(body.utf8.count))
        let request = HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(timeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls { try channel.pipeline.syncOperations.addHandler(tls.makeHandler(connectingTo: host)) }
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(ExchangeHandler(request: request, body: body, status: status,
                                                                                        afterHandshake: tls != nil))
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            status.fail(error)
            throw error
        }
        let timer = channel.eventLoop.scheduleTask(in: timeout) {
            status.fail(Failure(description: "no answer within \(timeout.nanoseconds / 1_000_000) ms"))
        }
        defer {
            timer.cancel()
            channel.close(promise: nil)
        }
        return try await status.futureResult.get()
    }
}

/// Writes the request once the connection is active and completes `status` with the response head's status.
final class ExchangeHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let request: HTTPRequestHead
    private let body: String
    private let status: EventLoopPromise<HTTPResponseStatus>
    /// Over TLS: the request goes once the handshake is done.
    private let afterHandshake: Bool

    init(request: HTTPRequestHead, body: String, status: EventLoopPromise<HTTPResponseStatus>, afterHandshake: Bool = false) {
        self.request = request
        self.body = body
        self.status = status
        self.afterHandshake = afterHandshake
    }

    private func send(_ context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.head(request)), promise: nil)
        if !body.isEmpty { context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelActive(context: ChannelHandlerContext) {
        if !afterHandshake { send(context) }
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if afterHandshake, event is TLSHandshakeCompleted { send(context) }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) { status.succeed(head.status) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        status.fail(HTTP1Exchange.Failure(description: "the connection closed without an answer"))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        status.fail(error)
        context.close(promise: nil)
    }
}
