import Foundation
import MeshprobeLoad
import NIOCore
import NIOHTTP1
import NIOPosix

/// A tiny HTTP/1.1 server for `--metrics-listen`: `GET /metrics` answers the exposition text of the moment, anything
/// else 404.
public final class MetricsServer: Sendable {
    private let channel: any Channel

    /// The bound address (port 0 picks a free one).
    public var localAddress: SocketAddress? { channel.localAddress }

    private init(channel: any Channel) {
        self.channel = channel
    }

    /// Binds `host:port` and serves `body()` at `/metrics`.
    public static func start(host: String, port: Int, group: any EventLoopGroup,
                             body: @escaping @Sendable () -> String) async throws -> MetricsServer {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 16)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(MetricsHandler(body: body))
                }
            }
            .bind(host: host, port: port).get()
        return MetricsServer(channel: channel)
    }

    public func stop() async {
        try? await channel.close()
    }
}

final class MetricsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let body: @Sendable () -> String
    private var head: HTTPRequestHead?

    init(body: @escaping @Sendable () -> String) {
        self.body = body
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
            let found = head.method == .GET && path == "/metrics"
            let text = found ? body() : "not found: meshprobe serves GET /metrics\n"
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: found ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain")
            headers.add(name: "content-length", value: String(text.utf8.count))
            let keepAlive = head.isKeepAlive
            if !keepAlive { headers.add(name: "connection", value: "close") }
            let response = HTTPResponseHead(version: head.version, status: found ? .ok : .notFound, headers: headers)
            context.write(wrapOutboundOut(.head(response)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: text)))), promise: nil)
            let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            if !keepAlive { done.whenComplete { [channel = context.channel] _ in channel.close(promise: nil) } }
            self.head = nil
        }
    }
}
