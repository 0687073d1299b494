import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A loopback TCP listener that accepts connections and never answers: a stalled server (a Pushgateway that hangs).
public final class SilentListener: Sendable {
    private let listener = NIOLockedValueBox<(any Channel)?>(nil)
    private let accepted = NIOLockedValueBox<[any Channel]>([])

    private init() {}

    public static func start() async throws -> SilentListener {
        let server = SilentListener()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                // Reads are left to the pipeline's end, which drops them.
                server.accepted.withLockedValue { $0.append(channel) }
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            .bind(host: "127.0.0.1", port: 0).get()
        server.listener.withLockedValue { $0 = channel }
        return server
    }

    public var port: Int { listener.withLockedValue { $0?.localAddress?.port ?? 0 } }
    /// Connections accepted so far.
    public var acceptedCount: Int { accepted.withLockedValue { $0.count } }

    public func stop() async {
        for channel in accepted.withLockedValue({ $0 }) { try? await channel.close() }
        try? await listener.withLockedValue { $0 }?.close()
    }
}

/// A loopback TCP relay to a port whose answers can be held: `holdAnswers()` stops the bytes from the server to the
/// client on every connection open at that moment (what the client sent still goes through: a request that reached the
/// server and whose answer never comes back); later connections pass both ways, unless `holdAll()` holds them too.
public final class StallingRelay: Sendable {
    final class Link: Sendable {
        let holding: NIOLockedValueBox<Bool>
        let channels = NIOLockedValueBox<[any Channel]>([])

        init(holding: Bool) { self.holding = NIOLockedValueBox(holding) }
    }

    private let listener = NIOLockedValueBox<(any Channel)?>(nil)
    private let links = NIOLockedValueBox<[Link]>([])
    private let holdingNew = NIOLockedValueBox(false)

    private init() {}

    public static func start(to port: Int) async throws -> StallingRelay {
        let relay = StallingRelay()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { client in
                let link = Link(holding: relay.holdingNew.withLockedValue { $0 })
                relay.links.withLockedValue { $0.append(link) }
                // The client's channel starts reading once this future succeeds: after the server side is connected.
                return ClientBootstrap(group: client.eventLoop)
                    .channelInitializer { server in
                        server.eventLoop.makeCompletedFuture {
                            try server.pipeline.syncOperations.addHandler(Forward(to: client, holdingBy: link))
                        }
                    }
                    .connect(host: "127.0.0.1", port: port)
                    .flatMapThrowing { server in
                        link.channels.withLockedValue { $0 = [client, server] }
                        try client.pipeline.syncOperations.addHandler(Forward(to: server, holdingBy: nil))
                    }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        relay.listener.withLockedValue { $0 = channel }
        return relay
    }

    public var port: Int { listener.withLockedValue { $0?.localAddress?.port ?? 0 } }

    /// Connections accepted so far.
    public var connectionCount: Int { links.withLockedValue { $0.count } }

    /// Holds the server's bytes on every connection open now.
    public func holdAnswers() {
        for link in links.withLockedValue({ $0 }) { link.holding.withLockedValue { $0 = true } }
    }

    /// Holds the server's bytes on every connection, open now or later: a server that stopped answering.
    public func holdAll() {
        holdingNew.withLockedValue { $0 = true }
        holdAnswers()
    }

    public func stop() async {
        for link in links.withLockedValue({ $0 }) {
            for channel in link.channels.withLockedValue({ $0 }) { try? await channel.close() }
        }
        try? await listener.withLockedValue { $0 }?.close()
    }

    /// Copies what one side reads to the other; with a link, drops it while the link holds.
    final class Forward: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer

        let peer: any Channel
        let link: Link?

        init(to peer: any Channel, holdingBy link: Link?) {
            self.peer = peer
            self.link = link
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if link?.holding.withLockedValue({ $0 }) == true { return }
            peer.writeAndFlush(unwrapInboundIn(data), promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            peer.close(promise: nil)
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
