import Atomics
import MeshprobeEchoAPI
import MeshprobeHTTP2
import MeshprobeIdentity
import MeshprobeTLS
import NIOCore
import NIOHTTP1
import NIOPosix

/// Configuration of `meshprobe echo`.
public struct EchoConfiguration: Sendable {
    public var host: String = "127.0.0.1"
    public var port: Int = 8443
    /// The server TLS context (mTLS when it requires client certificates); nil serves plaintext (h2c and HTTP/1.1).
    public var tls: TLSContext?
    public var identity: EchoIdentity
    public var limits = FaultSpec.Limits()
    public var http2 = HTTP2Settings()
    /// mTLS callers that may use the control API (`/.meshprobe/faults`); empty: the API is disabled (404).
    public var controlAllowList: Set<SPIFFEID> = []
    /// Who may call the workload's paths (`--authorize`); nil lets every request through.
    public var authorization: EchoAuthorization?
    /// Called with one line per notable event (rejected handshakes, bad requests, control API refusals and
    /// changes); nil is silent.
    public var log: (@Sendable (String) -> Void)?

    public init(identity: EchoIdentity) {
        self.identity = identity
    }
}

/// State shared by all connections of one echo server.
final class EchoState: Sendable {
    let planner: EchoPlanner
    let inFlight = ManagedAtomic<Int>(0)
    let served = ManagedAtomic<Int>(0)
    let peakInFlight = ManagedAtomic<Int>(0)
    /// Retries in flight (requests whose id this echo had seen before).
    let retriesInFlight = ManagedAtomic<Int>(0)
    let log: (@Sendable (String) -> Void)?

    /// Counts a retry (an `attempt` above 1) in and returns how many are in flight with it, for its stamp; nil for a
    /// first attempt. The caller counts a retry out (`exitRetry`) when it answers.
    func enterRetry(attempt: Int) -> Int? {
        guard attempt > 1 else { return nil }
        return retriesInFlight.wrappingIncrementThenLoad(ordering: .relaxed)
    }

    /// Counts a request out as its answer leaves: served, out of flight, and out of the retries when it was one.
    func exit(retry: Bool) {
        served.wrappingIncrement(ordering: .relaxed)
        inFlight.wrappingDecrement(ordering: .relaxed)
        if retry { retriesInFlight.wrappingDecrement(ordering: .relaxed) }
    }

    /// Counts a request in; returns the in-flight count including it, and keeps the peak.
    func enter() -> Int {
        let now = inFlight.wrappingIncrementThenLoad(ordering: .relaxed)
        var peak = peakInFlight.load(ordering: .relaxed)
        while now > peak {
            let (exchanged, original) = peakInFlight.compareExchange(expected: peak, desired: now, ordering: .relaxed)
            if exchanged { break }
            peak = original
        }
        return now
    }

    init(planner: EchoPlanner, log: (@Sendable (String) -> Void)?) {
        self.planner = planner
        self.log = log
    }
}

/// A running echo workload.
public final class EchoServer: Sendable {
    public let localAddress: SocketAddress
    public let configuration: EchoConfiguration
    private let channel: any Channel
    private let state: EchoState

    /// Requests answered so far (including faults).
    public var requestsServed: Int { state.served.load(ordering: .relaxed) }

    /// The most requests this echo has had in flight at once.
    public var peakInFlight: Int { state.peakInFlight.load(ordering: .relaxed) }

    private init(channel: any Channel, configuration: EchoConfiguration, state: EchoState) throws {
        guard let address = channel.localAddress else { throw EchoServerError.noLocalAddress }
        self.channel = channel
        self.localAddress = address
        self.configuration = configuration
        self.state = state
    }

    /// Binds and starts serving.
    public static func start(_ configuration: EchoConfiguration, group: any EventLoopGroup) async throws -> EchoServer {
        var identity = configuration.identity
        if identity.spiffeID.isEmpty, let own = configuration.tls?.localIdentity {
            identity.spiffeID = own.description
        }
        var planner = EchoPlanner(identity: identity, limits: configuration.limits,
                                  controlAllowList: Set(configuration.controlAllowList.map(\.description)), log: configuration.log)
        planner.authorization = configuration.authorization
        let state = EchoState(planner: planner, log: configuration.log)
        let tls = configuration.tls
        let settings = configuration.http2
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls {
                        try sync.addHandler(tls.makeHandler())
                    }
                    try sync.addHandler(EchoProtocolSelector(state: state, settings: settings, tls: tls != nil))
                }
            }
            .bind(host: configuration.host, port: configuration.port)
            .get()
        return try EchoServer(channel: channel, configuration: configuration, state: state)
    }

    public func close() async {
        try? await channel.close()
    }
}

public enum EchoServerError: Error, CustomStringConvertible {
    case noLocalAddress
    public var description: String { "the echo server's socket has no local address" }
}

/// Chooses HTTP/2 or HTTP/1.1 for a connection: by ALPN after a TLS handshake, else by sniffing the
/// HTTP/2 connection preface (prior-knowledge h2c) in the first bytes.
final class EchoProtocolSelector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let state: EchoState
    private let settings: HTTP2Settings
    private let tls: Bool
    private var buffered: ByteBuffer?
    private var peerSPIFFEID: String?
    private var serverName: String?
    private var decided = false

    init(state: EchoState, settings: HTTP2Settings, tls: Bool) {
        self.state = state
        self.settings = settings
        self.tls = tls
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let done = event as? TLSHandshakeCompleted {
            peerSPIFFEID = done.peer?.spiffeID?.description
            serverName = done.serverName
            if done.negotiatedProtocol == "h2" {
                install(http2: true, context: context)
            } else {
                install(http2: false, context: context)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if decided {
            context.fireChannelRead(data)
            return
        }
        if tls {
            // Plaintext before the handshake event cannot happen; keep it for after the switch.
            buffered.setOrWriteBuffer(&bytes)
            return
        }
        buffered.setOrWriteBuffer(&bytes)
        guard let seen = buffered else { return }
        let preface = EchoProtocolSelector.preface
        let n = min(seen.readableBytes, preface.count)
        let prefix = seen.getBytes(at: seen.readerIndex, length: n) ?? []
        if prefix == Array(preface.prefix(n)) {
            if n == preface.count { install(http2: true, context: context) }
            // Otherwise wait for more bytes.
        } else {
            install(http2: false, context: context)
        }
    }

    static let preface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let tlsError = error as? TLSError {
            let peer = context.remoteAddress.map { "\($0)" } ?? "unknown peer"
            state.log?("rejected TLS connection from \(peer): [\(tlsError.kind.rawValue)] \(tlsError.message)")
        }
        context.close(promise: nil)
    }

    private func install(http2: Bool, context: ChannelHandlerContext) {
        decided = true
        let sync = context.pipeline.syncOperations
        do {
            if http2 {
                let responder = EchoHTTP2Responder(state: state, peerSPIFFEID: peerSPIFFEID, serverName: serverName)
                try sync.addHandler(HTTP2ServerConnectionHandler(settings: settings, responder: responder), position: .after(self))
            } else {
                let handler = EchoHTTP1Handler(state: state, peerSPIFFEID: peerSPIFFEID, serverName: serverName)
                try sync.addHandler(handler, position: .after(self))
                try sync.configureHTTPServerPipeline(position: .after(self), withPipeliningAssistance: true, withErrorHandling: true)
            }
        } catch {
            context.close(promise: nil)
            return
        }
        if let pending = buffered, pending.readableBytes > 0 {
            buffered = nil
            context.fireChannelRead(wrapInboundOut(pending))
            context.fireChannelReadComplete()
        }
        buffered = nil
        sync.removeHandler(self, promise: nil)
    }
}
