import Foundation
import MeshprobeGRPC
import MeshprobeHTTP2
import MeshprobeIdentity
import MeshprobeSpec
import MeshprobeTLS
import NIOCore
import NIOPosix

/// Asks a gRPC target's server reflection service for the files that declare a service, before a run: one connection
/// made as the run makes its own (TLS with the run's context, or h2c; the run's metadata; its connect timeout), one
/// `ServerReflectionInfo` stream a round (`GRPCReflectionStateMachine`), each bounded by the run's request timeout.
package enum GRPCReflectionClient {
    /// What the connection and its calls are made with: the run's settings.
    package struct Settings: Sendable {
        package var target: LoadTarget
        /// The run's client TLS context (a grpcs:// target); nil for h2c.
        package var tls: TLSContext?
        /// The run's `-H` metadata.
        package var headers: [HTTP2HeaderPair]
        package var connectTimeout: Double
        /// Each stream's deadline (sent as `grpc-timeout` too).
        package var timeout: Double

        package init(target: LoadTarget, tls: TLSContext?, headers: [HTTP2HeaderPair], connectTimeout: Double, timeout: Double) {
            self.target = target
            self.tls = tls
            self.headers = headers
            self.connectTimeout = connectTimeout
            self.timeout = timeout
        }
    }

    /// The most bytes of replies one stream may carry.
    static let maximumReplyBytes = 32 << 20

    /// A binary `FileDescriptorSet` with the file declaring `service` and every file it imports.
    package static func descriptorSet(service: String, settings: Settings,
                                      group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws(GRPCReflectionError) -> [UInt8] {
        let target = settings.target
        let address: SocketAddress
        do { address = try SocketAddress.makeAddressResolvingHost(target.host, port: target.port) } catch {
            throw .connection("cannot resolve host '\(target.host)': \(error)")
        }
        let eventLoop = group.next()
        let promise = eventLoop.makePromise(of: [UInt8].self)
        eventLoop.execute {
            ReflectionSession(service: service, settings: settings, address: address, eventLoop: eventLoop, promise: promise).start()
        }
        do { return try await promise.futureResult.get() } catch let error as GRPCReflectionError { throw error } catch {
            throw .connection("\(error)")
        }
    }
}

/// One reflection connection's state, on its event loop; it ends by completing `promise`, once.
final class ReflectionSession: HTTP2ClientDelegate {
    private let settings: GRPCReflectionClient.Settings
    private let address: SocketAddress
    private let eventLoop: any EventLoop
    private var promise: EventLoopPromise<[UInt8]>?
    private var machine: GRPCReflectionStateMachine
    private var channel: (any Channel)?
    private var handler: HTTP2ClientConnectionHandler?
    /// The pending action's stream, once the connection is ready for it.
    private var waiting: (GRPCReflection.Version, [GRPCReflection.Request])?
    private var token: UInt64 = 0
    private var deadline: Scheduled<Void>?
    /// Why the connection closed, when something said so before it did (TLS, a protocol error).
    private var closeReason: String?

    init(service: String, settings: GRPCReflectionClient.Settings, address: SocketAddress, eventLoop: any EventLoop,
         promise: EventLoopPromise<[UInt8]>) {
        self.settings = settings
        self.address = address
        self.eventLoop = eventLoop
        self.promise = promise
        machine = GRPCReflectionStateMachine(service: service)
    }

    private var authority: String { settings.target.authority }

    func start() {
        let seconds = settings.connectTimeout
        arm(seconds) { "connecting to \(self.authority) for gRPC reflection took more than \(Self.format(seconds)) (the run's connect timeout)" }
        ClientBootstrap(group: eventLoop)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(.nanoseconds(Int64(seconds * 1e9)))
            .connect(to: address)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel): self.connected(channel)
                case .failure(let error): self.finish(.fail(.connection(self.settings.target.connectFailure(error).why)))
                }
            }
    }

    private func connected(_ channel: any Channel) {
        guard promise != nil else {
            channel.close(promise: nil)
            return
        }
        self.channel = channel
        let sync = channel.pipeline.syncOperations
        do {
            try sync.addHandler(ConnectionEventsHandler(owner: self))
            if settings.target.scheme == .https, let tls = settings.tls {
                let handler = settings.target.serverName.map { tls.makeHandler(serverName: $0) } ?? tls.makeHandler(connectingTo: settings.target.host)
                try sync.addHandler(handler, position: .first)
            } else {
                try installHTTP2()
            }
        } catch {
            finish(.fail(.connection("could not set up the connection to \(authority): \(error)")))
        }
    }

    func handshakeCompleted(_ event: TLSHandshakeCompleted) {
        guard promise != nil else { return }
        guard event.negotiatedProtocol == "h2" else {
            finish(.fail(.connection("\(ErrorKind.tlsALPNMismatch.rawValue): gRPC needs HTTP/2 but the server's ALPN answer was \(event.negotiatedProtocol.map { "'\($0)'" } ?? "none")")))
            return
        }
        do { try installHTTP2() } catch { finish(.fail(.connection("could not install the HTTP/2 handler: \(error)"))) }
    }

    private func installHTTP2() throws {
        guard let channel else { return }
        var h2 = HTTP2Settings()
        h2.maxCollectedBodyBytes = GRPCReflectionClient.maximumReplyBytes
        let handler = HTTP2ClientConnectionHandler(settings: h2, collectBodies: true, delegate: self)
        self.handler = handler
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(handler, position: .before(try sync.handler(type: ConnectionEventsHandler.self)))
    }

    /// A TLS failure or another error in the pipeline: the reason the connection closes.
    func errorCaught(_ error: any Error) {
        if closeReason == nil {
            closeReason = (error as? TLSError).map { "\($0.kind.rawValue): \($0.message)" } ?? "\(error)"
        }
        channel?.close(promise: nil)
    }

    func channelClosed() {
        guard promise != nil else { return }
        let stage = handler == nil ? (settings.tls == nil ? "as it was made" : "during the TLS handshake") : "before answering"
        finish(.fail(.connection(closeReason.map { "\(authority): \($0)" } ?? "\(authority) closed the connection \(stage)")))
    }

    /// Performs what the state machine asked.
    private func finish(_ action: GRPCReflectionStateMachine.Action) {
        switch action {
        case .send(let version, let requests):
            waiting = (version, requests)
            if let handler, handler.availableStreams > 0 { sendWaiting(on: handler) }
        case .finish(let set):
            complete(.success(set))
        case .fail(let error):
            complete(.failure(error))
        }
    }

    private func complete(_ result: Result<[UInt8], GRPCReflectionError>) {
        deadline?.cancel()
        deadline = nil
        guard let promise else { return }
        self.promise = nil
        switch result {
        case .success(let set): promise.succeed(set)
        case .failure(let error): promise.fail(error)
        }
        if let handler { handler.close(goAway: true) } else { channel?.close(promise: nil) }
    }

    private func sendWaiting(on handler: HTTP2ClientConnectionHandler) {
        guard let (version, requests) = waiting else { return }
        waiting = nil
        var body = ByteBuffer()
        for request in requests { GRPCMessageFraming.write(ByteBuffer(bytes: request.encoded), to: &body) }
        var headers = [HTTP2Header("content-type", GRPCMetadata.contentType), HTTP2Header("te", "trailers")]
        if let timeout = GRPCMetadata.timeout(seconds: settings.timeout) { headers.append(HTTP2Header("grpc-timeout", timeout)) }
        headers += settings.headers.map { HTTP2Header($0.name, $0.value) }
        let request = HTTP2Request(method: "POST", scheme: settings.tls == nil ? "http" : "https", authority: authority,
                                   path: version.path, headers: headers, body: body)
        token += 1
        guard handler.send(request, token: token) else {
            finish(.fail(.connection("\(authority) took no stream for gRPC reflection")))
            return
        }
        handler.flush()
        let seconds = settings.timeout
        arm(seconds) { "the server's reflection service did not answer within \(Self.format(seconds)) (the run's request timeout)" }
    }

    /// Fails the session with `reason` unless it ends (or the next wait is armed) within `seconds`.
    private func arm(_ seconds: Double, _ reason: @escaping () -> String) {
        deadline?.cancel()
        deadline = eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(seconds * 1e9))) {
            self.deadline = nil
            self.finish(.fail(.timedOut(reason())))
        }
    }

    static func format(_ seconds: Double) -> String { seconds == seconds.rounded() ? "\(Int(seconds))s" : "\(seconds)s" }

    // MARK: HTTP2ClientDelegate

    func http2ConnectionReady(_ connection: HTTP2ClientConnectionHandler) {
        if token == 0, waiting == nil { finish(machine.start()) }
        if waiting != nil { sendWaiting(on: connection) }
    }

    func http2Response(_ connection: HTTP2ClientConnectionHandler, token: UInt64, response: HTTP2Response) {
        guard token == self.token, promise != nil else { return }
        var grpcStatus: String?
        var grpcMessage: String?
        var encoding: String?
        for header in response.headers {
            switch header.name {
            case "grpc-status": grpcStatus = header.value
            case "grpc-message": grpcMessage = GRPCMetadata.percentDecode(header.value)
            case "grpc-encoding": encoding = header.value
            default: break
            }
        }
        let status: GRPCStatusCode
        if let grpcStatus {
            status = Int(grpcStatus).flatMap(GRPCStatusCode.init(rawValue:)) ?? .unknown
        } else {
            // No gRPC answer: the HTTP status as gRPC clients map it (404 is UNIMPLEMENTED).
            status = response.status == 200 ? .internal : GRPCStatusCode(httpStatus: response.status)
            if grpcMessage == nil { grpcMessage = "HTTP status \(response.status) without grpc-status" }
        }
        var replies: [[UInt8]] = []
        if status == .ok {
            do {
                for message in try GRPCMessageFraming.messages(in: response.body ?? ByteBuffer(), encoding: encoding) {
                    replies.append(Array(message.readableBytesView))
                }
            } catch {
                finish(machine.streamFailed(.badReply("the reply stream: \(error)")))
                return
            }
        }
        finish(machine.streamEnded(status: status, message: grpcMessage, replies: replies))
    }

    func http2StreamFailed(_ connection: HTTP2ClientConnectionHandler, token: UInt64, failure: HTTP2StreamFailure) {
        guard token == self.token else { return }
        let reason: String = switch failure {
        case .reset(let code): "the server reset the reflection stream (HTTP/2 error code \(code))"
        case .refusedByGoAway: "the server refused the reflection stream (GOAWAY)"
        case .connectionLost: "\(authority): the connection was lost during the reflection call"
        case .protocolError(let text): "the reflection stream: \(text)"
        }
        finish(machine.streamFailed(.connection(closeReason.map { "\(authority): \($0)" } ?? reason)))
    }

    func http2GoAwayReceived(_ connection: HTTP2ClientConnectionHandler, errorCode: UInt32) {}

    func http2ConnectionClosed(_ connection: HTTP2ClientConnectionHandler, error: (any Error)?) {
        if closeReason == nil, let error { closeReason = "\(error)" }
    }
}
