import MeshprobeTLS
import NIOCore
import NIOPosix
import Testing

/// The direct path the load engine uses between TLS and HTTP/2: plaintext handed to a closure instead of up the
/// pipeline, and written with `writeAndFlush(plaintext:)` instead of down it, against a real TLS echo server.
@Suite(.timeLimit(.minutes(1)), .tags(.endToEnd)) struct DirectCallTests {
    let serverID = "spiffe://td.test/ns/default/sa/server"
    let clientID = "spiffe://td.test/ns/default/sa/client"

    @Test func plaintextGoesBothWaysByDirectCallsAndNotThroughThePipeline() async throws {
        let lab = try LabPKIFixture(trustDomain: "td.test")
        let server = try TLSContext(configuration: lab.serverConfiguration(lab.svid("server", uris: [serverID])))
        let client = try TLSContext(configuration: lab.clientConfiguration(lab.svid("client", uris: [clientID])))
        try await withEventLoopGroup { group in
            let echo = try await EchoServer.start(group: group, context: server)
            let promise = group.next().makePromise(of: DirectUser.Outcome.self)
            let channel = try await ClientBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers([client.makeHandler(), DirectUser(promise: promise)])
                    }
                }
                .connect(host: "127.0.0.1", port: echo.port).get()
            let outcome = try await wait(promise, what: "direct echo")
            // The echo server got our bytes (so the direct write was encrypted and sent), and its answer reached
            // the closure whole, with nothing going up the pipeline.
            #expect(outcome.direct.utf8.count == DirectUser.message.utf8.count)
            #expect(outcome.direct == DirectUser.message, "the echo came back changed")
            #expect(outcome.throughPipeline == 0)
            try await channel.close()
            let serverSide = try await echo.result()
            #expect(serverSide.received == outcome.direct)
            try await echo.channel.close()
        }
    }
}

/// After the handshake: routes the TLS handler's plaintext to a closure, writes a message with a direct call, and
/// reports what came back once all of it has.
private final class DirectUser: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    struct Outcome: Sendable {
        var direct = ""
        var throughPipeline = 0
    }

    private let promise: EventLoopPromise<Outcome>
    private var outcome = Outcome()
    private var reported = false
    /// Larger than one TLS record (16 KB), so it is encrypted and decrypted in pieces.
    static let message = "direct call, " + String(repeating: "0123456789", count: 4_000)

    init(promise: EventLoopPromise<Outcome>) {
        self.promise = promise
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is TLSHandshakeCompleted, let tls = try? context.pipeline.syncOperations.handler(type: TLSHandler.self) else {
            return
        }
        tls.deliverPlaintext { [self] buffer in
            outcome.direct += String(buffer: buffer)
            if outcome.direct.utf8.count >= Self.message.utf8.count { report() }
        }
        tls.writeAndFlush(plaintext: ByteBuffer(string: Self.message))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        outcome.throughPipeline += 1
    }

    func channelInactive(context: ChannelHandlerContext) {
        report()
    }

    private func report() {
        guard !reported else { return }
        reported = true
        promise.succeed(outcome)
    }
}
