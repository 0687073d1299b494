import MeshprobeHTTP2
import NIOCore
import NIOPosix
import Testing

/// Writes fixed bytes on connect and records what comes back until the peer closes.
private final class RawPeerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let bytes: [UInt8]
    private var received: [UInt8] = []
    let closed: EventLoopPromise<[UInt8]>

    init(bytes: [UInt8], closed: EventLoopPromise<[UInt8]>) {
        self.bytes = bytes
        self.closed = closed
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(NIOAny(ByteBuffer(bytes: bytes)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += Array(unwrapInboundIn(data).readableBytesView)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed.succeed(received)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        closed.succeed(received)  // never leak an unfulfilled promise
    }
}

private func sendRaw(_ bytes: [UInt8], to port: Int) async throws -> [UInt8] {
    let loop = MultiThreadedEventLoopGroup.singleton.next()
    let closed = loop.makePromise(of: [UInt8].self)
    let channel = try await ClientBootstrap(group: loop)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(RawPeerHandler(bytes: bytes, closed: closed))
            }
        }
        .connect(host: "127.0.0.1", port: port).get()
    defer { channel.close(promise: nil) }
    return try await wait(closed.futureResult, seconds: 10, for: "the server to close the connection")
}

@Suite("Hostile peers", .timeLimit(.minutes(1)), .tags(.endToEnd))
struct HostilePeerTests {
    @Test func serverClosesTheConnectionOnGarbageAndKeepsServing() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        var garbage = SystemRandomNumberGenerator()
        let bytes = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &garbage) }
        _ = try await sendRaw(bytes, to: server.port)
        _ = try await sendRaw(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8), to: server.port)

        let run = try await ClientRun.connect(port: server.port, requests: [getRequest("/", port: server.port)])
        #expect(try await run.outcomes().outcomes[0]?.status == 200)
        try await run.channel.close()
    }

    @Test func serverAnswersAMalformedFrameAfterThePrefaceWithGoAwayProtocolError() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        // Preface, empty SETTINGS, then a DATA frame on stream 0 (a connection error).
        let settings: [UInt8] = [0, 0, 0, 4, 0, 0, 0, 0, 0]
        let dataOnStreamZero: [UInt8] = [0, 0, 4, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]
        let reply = try await sendRaw(HTTP2ConnectionPreface.bytes + settings + dataOnStreamZero, to: server.port)
        // Somewhere in the reply: a GOAWAY frame (type 7) carrying PROTOCOL_ERROR (1).
        var index = 0
        var sawGoAway = false
        while index + 9 <= reply.count {
            let length = Int(reply[index]) << 16 | Int(reply[index + 1]) << 8 | Int(reply[index + 2])
            if reply[index + 3] == 7, index + 9 + 8 <= reply.count, reply[index + 9 + 7] == 1 { sawGoAway = true }
            index += 9 + length
        }
        #expect(sawGoAway)
    }

    @Test func clientReportsAProtocolErrorWhenTheServerSpeaksGarbage() async throws {
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let bytes = Array("HTTP/1.1 400 Bad Request\r\n\r\n garbage garbage".utf8)
                    let handler = RawPeerHandler(bytes: bytes, closed: channel.eventLoop.makePromise())
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { listener.close(promise: nil) }
        let port = listener.localAddress?.port ?? 0
        let run = try await ClientRun.connect(port: port, requests: [getRequest("/", port: port)])
        let report = try await run.closed()
        #expect(report.closedCount == 1)
        #expect(report.closedError != nil)
        #expect(report.outcomes.count <= 1)
    }

    @Test func prefaceMatcherTellsMatchFromPrefixFromMismatch() {
        let preface = HTTP2ServerConnectionHandler.connectionPreface
        #expect(String(decoding: preface, as: UTF8.self) == "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        #expect(HTTP2ConnectionPreface.match(ByteBuffer(bytes: preface + [0, 0])) == .match)
        #expect(HTTP2ConnectionPreface.match(ByteBuffer(bytes: preface.prefix(5))) == .needMoreData)
        #expect(HTTP2ConnectionPreface.match(ByteBuffer(string: "GET / HTTP/1.1\r\n")) == .mismatch)
    }
}
