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

/// Pushes the exposition text to a Prometheus Pushgateway (`PUT URL/metrics/job/JOB`, replacing the job's group), for
/// Jobs that end before a scrape. Plain `http://` only.
public enum PushgatewayClient {
    public struct PushError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Where the push goes: `URL/metrics/job/JOB` (the URL's own path kept as a prefix).
    public static func pushTarget(url: String, job: String) throws -> (host: String, port: Int, path: String) {
        guard let components = URLComponents(string: url), components.scheme == "http", let host = components.host, !host.isEmpty else {
            throw PushError(description: "--pushgateway '\(url)': expected http://HOST:PORT (https is not supported)")
        }
        guard !job.isEmpty, job.allSatisfy({ $0.isLetter || $0.isNumber || "_-.".contains($0) }) else {
            throw PushError(description: "--pushgateway-job '\(job)': letters, digits, '_', '-' and '.' only")
        }
        var prefix = components.path
        while prefix.hasSuffix("/") { prefix.removeLast() }
        return (host, components.port ?? 9091, "\(prefix)/metrics/job/\(job)")
    }

    /// Sends `text`; throws unless the gateway answers 2xx.
    public static func push(_ text: String, url: String, job: String, group: any EventLoopGroup,
                            timeout: TimeAmount = .seconds(10)) async throws {
        let target = try pushTarget(url: url, job: job)
        let answer: HTTPResponseStatus
        do {
            answer = try await HTTP1Exchange.status(.PUT, host: target.host, port: target.port, path: target.path,
                                                    headers: ["content-type": "text/plain; version=0.0.4; charset=utf-8"],
                                                    body: text, timeout: timeout, group: group)
        } catch let failure as HTTP1Exchange.Failure {
            throw PushError(description: "the Pushgateway at \(url): \(failure.description)")
        } catch {
            throw PushError(description: "cannot reach the Pushgateway at \(url): \(error)")
        }
        guard (200..<300).contains(Int(answer.code)) else {
            throw PushError(description: "the Pushgateway at \(url) answered \(answer.code) \(answer.reasonPhrase)")
        }
    }
}
