import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A stand-in HTTP/1.1 server on 127.0.0.1 (an ephemeral port) that records every request and answers with what
/// `respond` decides: a Pushgateway, a sidecar proxy's admin endpoints. Each answer closes the connection.
public final class RecordingHTTPServer: Sendable {
    public struct Request: Sendable {
        public var method: String
        public var uri: String
        public var headers: [(String, String)]
        public var body: String
        /// The status it was answered with.
        public var status: Int
        /// What `respond` noted about it (e.g. how many requests a target had served when it arrived).
        public var note: Int
    }

    /// The answer to one request: a status, a body, and a note kept with the request.
    public struct Answer: Sendable {
        public var status: Int
        public var body: String
        public var note: Int

        public init(status: Int, body: String = "", note: Int = 0) {
            self.status = status
            self.body = body
            self.note = note
        }
    }

    private let respond: @Sendable (_ method: String, _ uri: String) -> Answer
    private let log = NIOLockedValueBox<[Request]>([])
    private let channel = NIOLockedValueBox<(any Channel)?>(nil)

    private init(respond: @escaping @Sendable (_ method: String, _ uri: String) -> Answer) {
        self.respond = respond
    }

    public static func start(respond: @escaping @Sendable (_ method: String, _ uri: String) -> Answer) async throws -> RecordingHTTPServer {
        let server = RecordingHTTPServer(respond: respond)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(RecordingHandler(server: server))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        server.channel.withLockedValue { $0 = channel }
        return server
    }

    public var port: Int { channel.withLockedValue { $0?.localAddress?.port ?? 0 } }
    public var requests: [Request] { log.withLockedValue { $0 } }

    public func stop() async {
        try? await channel.withLockedValue { $0 }?.close()
    }

    fileprivate func answer(_ head: HTTPRequestHead, body: String) -> Answer {
        let answer = respond(head.method.rawValue, head.uri)
        let request = Request(method: head.method.rawValue, uri: head.uri, headers: head.headers.map { ($0.name, $0.value) },
                              body: body, status: answer.status, note: answer.note)
        log.withLockedValue { $0.append(request) }
        return answer
    }
}

private final class RecordingHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let server: RecordingHTTPServer
    private var head: HTTPRequestHead?
    private var body = ""

    init(server: RecordingHTTPServer) {
        self.server = server
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = ""
        case .body(let buffer):
            body += String(buffer: buffer)
        case .end:
            guard let head else { return }
            let answer = server.answer(head, body: body)
            let response = HTTPResponseHead(version: head.version, status: HTTPResponseStatus(statusCode: answer.status),
                                            headers: ["content-length": String(answer.body.utf8.count), "connection": "close"])
            context.write(wrapOutboundOut(.head(response)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: answer.body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { [channel = context.channel] _ in channel.close(promise: nil) }
            self.head = nil
        }
    }
}
