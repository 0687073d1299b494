import Foundation
import MeshprobeIdentity
import MeshprobeTLS
import NIOCore
import NIOPosix

// Every file of this target sees the shared test support (processes, ports, the PKI fixture, waiting).
@_exported import MeshprobeTestSupport

struct TestTimeout: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out: \(what)" }
}

/// What one side of a connection saw, complete when its channel went inactive.
struct SideResult: Sendable {
    var completed: TLSHandshakeCompleted?
    var error: TLSError?
    var received = ""
}

/// Records the TLS events of one side. A client sends `request` after the handshake and closes once
/// `isDone` says the response is complete; a server echoes.
final class Recorder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let promise: EventLoopPromise<SideResult>
    private let request: String?
    private let isDone: @Sendable (String) -> Bool
    private var result = SideResult()

    init(promise: EventLoopPromise<SideResult>, request: String?, isDone: @escaping @Sendable (String) -> Bool = { _ in false }) {
        self.promise = promise
        self.request = request
        self.isDone = isDone
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let completed = event as? TLSHandshakeCompleted {
            result.completed = completed
            if let request {
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: request)), promise: nil)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if request == nil {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)  // echo
        }
        result.received += String(buffer: buffer)
        if request != nil && isDone(result.received) { context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if result.error == nil, let error = error as? TLSError { result.error = error }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.succeed(result)
    }
}

/// Waits for a future, failing it after `seconds`.
func wait<T: Sendable>(_ promise: EventLoopPromise<T>, seconds: Int64 = 10, what: String) async throws -> T {
    let timeout = promise.futureResult.eventLoop.scheduleTask(in: .seconds(seconds)) {
        promise.fail(TestTimeout(what: what))
    }
    defer { timeout.cancel() }
    return try await promise.futureResult.get()
}

/// Hands out one result promise per accepted connection.
final class AcceptedResults: @unchecked Sendable {
    // @unchecked Sendable: `promises` and `next` are only touched under `lock`.
    private let lock = NSLock()
    private var promises: [EventLoopPromise<SideResult>]
    private var next = 0

    init(count: Int, on loop: any EventLoop) {
        promises = (0..<count).map { _ in loop.makePromise(of: SideResult.self) }
    }

    func take() -> EventLoopPromise<SideResult>? {
        lock.withLock {
            guard next < promises.count else { return nil }
            defer { next += 1 }
            return promises[next]
        }
    }

    func promise(_ index: Int) -> EventLoopPromise<SideResult> { lock.withLock { promises[index] } }
}

/// A TLS echo server on 127.0.0.1, port chosen by the kernel.
struct EchoServer {
    let channel: any Channel
    let accepted: AcceptedResults
    var port: Int { channel.localAddress?.port ?? 0 }

    static func start(group: MultiThreadedEventLoopGroup, context: TLSContext, connections: Int = 1) async throws -> EchoServer {
        let accepted = AcceptedResults(count: connections, on: group.next())
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let promise = accepted.take() ?? channel.eventLoop.makePromise(of: SideResult.self)
                    try channel.pipeline.syncOperations.addHandlers([
                        context.makeHandler(), Recorder(promise: promise, request: nil),
                    ])
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return EchoServer(channel: channel, accepted: accepted)
    }

    func result(_ index: Int = 0) async throws -> SideResult {
        try await wait(accepted.promise(index), what: "server side of connection \(index)")
    }
}

/// Connects with TLS, sends `request` after the handshake, and returns what the client saw.
///
/// `connectingTo` makes the handler with `makeHandler(connectingTo:)` (the load engine's SNI rule) instead of
/// `makeHandler(serverName:)`.
func connect(group: MultiThreadedEventLoopGroup, port: Int, context: TLSContext, request: String = "ping",
             serverName: String? = nil, connectingTo host: String? = nil,
             isDone: @escaping @Sendable (String) -> Bool = { $0 == "ping" }) async throws -> SideResult {
    let promise = group.next().makePromise(of: SideResult.self)
    let channel = try await ClientBootstrap(group: group)
        .connectTimeout(.seconds(5))
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandlers([
                    host.map { context.makeHandler(connectingTo: $0) } ?? context.makeHandler(serverName: serverName),
                    Recorder(promise: promise, request: request, isDone: isDone),
                ])
            }
        }
        .connect(host: "127.0.0.1", port: port).get()
    do {
        return try await wait(promise, what: "client connection")
    } catch {
        try? await channel.close()
        throw error
    }
}

/// One connection from `client` to an echo server with `server`: what each side saw.
func handshake(server: TLSContext, client: TLSContext, connectingTo host: String? = nil) async throws -> (client: SideResult, server: SideResult) {
    try await withEventLoopGroup { group in
        let echo = try await EchoServer.start(group: group, context: server)
        defer { echo.channel.close(promise: nil) }
        let clientSide = try await connect(group: group, port: echo.port, context: client, connectingTo: host)
        let serverSide = try await echo.result()
        return (clientSide, serverSide)
    }
}

func withEventLoopGroup<T>(_ body: (MultiThreadedEventLoopGroup) async throws -> T) async throws -> T {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    do {
        let value = try await body(group)
        try await group.shutdownGracefully()
        return value
    } catch {
        try? await group.shutdownGracefully()
        throw error
    }
}
