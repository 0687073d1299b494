import MeshprobeTLS
import NIOCore
import NIOHTTP1
import NIOPosix

/// One HTTP/1.1 request on a fresh connection, for the small control calls around a run (a Pushgateway push, a
/// sidecar's readiness probe and shutdown, the echo's control API): sent as soon as the connection is up, answered by
/// the response's status, or its status and body. Not the load path: that is `LoadConnection`.
public enum HTTP1Exchange {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        /// No answer came within the exchange's timeout.
        public var timedOut = false
    }

    /// A response's status and body.
    public struct Response: Sendable {
        public var status: HTTPResponseStatus
        public var body: [UInt8]
    }

    /// Sends `method path` (with `headers` and `body`) to `host:port`, over `tls` when given (sent once the handshake
    /// is done), and returns the response's status (its body is read and dropped). Throws the connection's error as
    /// NIO gives it (refused, connect timeout), or a `Failure` when no answer comes within `timeout` or the peer
    /// closes first (a refused handshake closes it).
    public static func status(_ method: HTTPMethod, host: String, port: Int, path: String, headers: HTTPHeaders = [:],
                              body: String = "", tls: TLSContext? = nil, timeout: TimeAmount,
                              group: any EventLoopGroup) async throws -> HTTPResponseStatus {
        try await exchange(method, host: host, port: port, path: path, headers: headers, body: body, tls: tls, readingBody: false,
                           connectTimeout: timeout, timeout: timeout, graceOnCancel: nil, group: group).status
    }

    /// As `status`, but the answer is the whole response: its status and body, once the body has ended. The connection
    /// may take `connectTimeout`, then the answer `timeout`. With `graceOnCancel`, cancelling the calling task ends
    /// the exchange that much later with a `Failure` (an answer that comes meanwhile is returned).
    public static func response(_ method: HTTPMethod, host: String, port: Int, path: String, headers: HTTPHeaders = [:],
                                body: String = "", tls: TLSContext? = nil, connectTimeout: TimeAmount, timeout: TimeAmount,
                                graceOnCancel: TimeAmount? = nil, group: any EventLoopGroup) async throws -> Response {
        try await exchange(method, host: host, port: port, path: path, headers: headers, body: body, tls: tls, readingBody: true,
                           connectTimeout: connectTimeout, timeout: timeout, graceOnCancel: graceOnCancel, group: group)
    }

    static func exchange(_ method: HTTPMethod, host: String, port: Int, path: String, headers: HTTPHeaders, body: String,
                         tls: TLSContext?, readingBody: Bool, connectTimeout: TimeAmount, timeout: TimeAmount,
                         graceOnCancel: TimeAmount?, group: any EventLoopGroup) async throws -> Response {
        let loop = group.next()
        let answer = loop.makePromise(of: Response.self)
        var headers = headers
        headers.replaceOrAdd(name: "host", value: "\(host):\(port)")
        headers.replaceOrAdd(name: "content-length", value: String(body.utf8.count))
        let request = HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)
        ClientBootstrap(group: loop)
            .connectTimeout(connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(tls.makeHandler(connectingTo: host)) }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ExchangeHandler(request: request, body: body, answer: answer,
                                                                                    readingBody: readingBody, afterHandshake: tls != nil))
                }
            }
            .connect(host: host, port: port)
            .whenComplete { connected in
                switch connected {
                case .failure(let error):
                    answer.fail(error)
                case .success(let channel):
                    let timer = channel.eventLoop.scheduleTask(in: timeout) {
                        answer.fail(Failure(description: "no answer within \(timeout.nanoseconds / 1_000_000) ms", timedOut: true))
                    }
                    answer.futureResult.whenComplete { _ in
                        timer.cancel()
                        channel.close(promise: nil)
                    }
                }
            }
        return try await withTaskCancellationHandler {
            try await answer.futureResult.get()
        } onCancel: {
            guard let graceOnCancel else { return }
            loop.scheduleTask(in: graceOnCancel) { answer.fail(Failure(description: "cancelled, and no answer within the grace after it")) }
        }
    }
}

/// Writes the request once the connection is active and completes `answer` with the response head's status (and,
/// when `readingBody`, its body once it has ended).
final class ExchangeHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let request: HTTPRequestHead
    private let body: String
    private let answer: EventLoopPromise<HTTP1Exchange.Response>
    private let readingBody: Bool
    /// Over TLS: the request goes once the handshake is done.
    private let afterHandshake: Bool
    private var head: HTTPResponseHead?
    private var received: [UInt8] = []

    init(request: HTTPRequestHead, body: String, answer: EventLoopPromise<HTTP1Exchange.Response>, readingBody: Bool,
         afterHandshake: Bool = false) {
        self.request = request
        self.body = body
        self.answer = answer
        self.readingBody = readingBody
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
        switch unwrapInboundIn(data) {
        case .head(let head):
            // An interim answer (100 Continue) is not the response.
            if head.status.code >= 200 || !readingBody {
                self.head = head
                if !readingBody { answer.succeed(HTTP1Exchange.Response(status: head.status, body: [])) }
            }
        case .body(var buffer):
            if readingBody, head != nil { received += buffer.readBytes(length: buffer.readableBytes) ?? [] }
        case .end:
            if readingBody, let head { answer.succeed(HTTP1Exchange.Response(status: head.status, body: received)) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        answer.fail(HTTP1Exchange.Failure(description: "the connection closed without an answer"))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        answer.fail(error)
        context.close(promise: nil)
    }
}
