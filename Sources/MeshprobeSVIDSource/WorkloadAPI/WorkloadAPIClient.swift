import Foundation
import MeshprobeGRPC
import MeshprobeHTTP2
import MeshprobeIdentity
import MeshprobeSpec
import NIOCore
import NIOPosix

/// A `FetchX509SVID` stream to the SPIFFE Workload API, kept open for the client's life: gRPC over h2c on the
/// agent's Unix socket, on meshprobe's HTTP/2 client, reconnected with backoff when it ends.
///
/// Every update goes to `onUpdate`; a failure to `onError` (the stream is retried unless the state machine gives
/// up, then `onError` gets the final error and nothing more happens). Both are called on the client's event loop.
public final class WorkloadAPIClient: Sendable {
    /// The method's path.
    public static let fetchX509SVIDPath = "/SpiffeWorkloadAPI/FetchX509SVID"
    /// The header every Workload API call carries; an agent answers InvalidArgument without it.
    public static let securityHeader = HTTP2Header("workload.spiffe.io", "true")

    public let endpoint: WorkloadAPIEndpoint
    private let core: NIOLoopBoundBox<Core>

    public init(endpoint: WorkloadAPIEndpoint, eventLoop: any EventLoop, backoff: (initial: Double, maximum: Double) = (0.2, 10),
                onUpdate: @escaping @Sendable (X509SVIDUpdate) -> Void,
                onError: @escaping @Sendable (_ error: WorkloadAPIError, _ final: Bool) -> Void) {
        self.endpoint = endpoint
        let machine = WorkloadAPIStreamStateMachine(initialBackoff: backoff.initial, maximumBackoff: backoff.maximum)
        core = NIOLoopBoundBox.makeBoxSendingValue(
            Core(endpoint: endpoint, eventLoop: eventLoop, machine: machine, onUpdate: onUpdate, onError: onError), eventLoop: eventLoop)
    }

    public func start() {
        core.eventLoop.execute { self.core.value.perform(self.core.value.machine.start()) }
    }

    /// Connects now if the stream is waiting to reconnect (someone needs an SVID sooner than the backoff allows).
    public func retryNow() {
        core.eventLoop.execute {
            let core = self.core.value
            let action = core.machine.retryNow()
            if action == .connect { core.cancelReconnect() }
            core.perform(action)
        }
    }

    /// Closes the stream; no reconnect follows.
    public func stop() {
        core.eventLoop.execute { self.core.value.perform(self.core.value.machine.stop()) }
    }

    /// The connection's state, on the client's event loop.
    final class Core: HTTP2ClientDelegate {
        let endpoint: WorkloadAPIEndpoint
        let eventLoop: any EventLoop
        var machine: WorkloadAPIStreamStateMachine
        let onUpdate: @Sendable (X509SVIDUpdate) -> Void
        let onError: @Sendable (WorkloadAPIError, Bool) -> Void
        private var channel: (any Channel)?
        /// The connection the current stream is on; events of an older one are ignored.
        private var connection: ObjectIdentifier?
        private var requested = false
        private var pending = ByteBuffer()
        private var reader = GRPCMessageReader(encoding: nil)
        private var reconnect: Scheduled<Void>?

        init(endpoint: WorkloadAPIEndpoint, eventLoop: any EventLoop, machine: WorkloadAPIStreamStateMachine,
             onUpdate: @escaping @Sendable (X509SVIDUpdate) -> Void, onError: @escaping @Sendable (WorkloadAPIError, Bool) -> Void) {
            self.endpoint = endpoint
            self.eventLoop = eventLoop
            self.machine = machine
            self.onUpdate = onUpdate
            self.onError = onError
        }

        func perform(_ action: WorkloadAPIStreamStateMachine.Action) {
            switch action {
            case .none:
                break
            case .connect:
                connect()
            case .reconnect(let delay):
                closeChannel()
                reconnect = eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(delay * 1e9))) {
                    self.perform(self.machine.backoffElapsed())
                }
            case .fail(let error):
                closeChannel()
                onError(error, true)
            case .close:
                reconnect?.cancel()
                reconnect = nil
                closeChannel()
            }
        }

        func cancelReconnect() {
            reconnect?.cancel()
            reconnect = nil
        }

        private func closeChannel() {
            connection = nil
            channel?.close(promise: nil)
            channel = nil
        }

        private func ended(_ error: WorkloadAPIError) {
            let action = machine.ended(error)
            if case .fail = action {} else if action != .none { onError(error, false) }
            perform(action)
        }

        private func connect() {
            let path = endpoint.path
            guard FileManager.default.fileExists(atPath: path) else {
                ended(.socketMissing(path: path))
                return
            }
            requested = false
            pending.clear()
            reader = GRPCMessageReader(encoding: nil)
            ClientBootstrap(group: eventLoop)
                .connectTimeout(.seconds(5))
                .connect(unixDomainSocketPath: path)
                .assumeIsolated()
                .whenComplete { result in
                    switch result {
                    case .success(let channel): self.connected(channel)
                    case .failure(let error): self.ended(Self.connectError(error, path: path))
                    }
                }
        }

        static func connectError(_ error: any Error, path: String) -> WorkloadAPIError {
            if let e = error as? IOError {
                if e.errnoCode == ECONNREFUSED { return .connectionRefused(path: path) }
                if e.errnoCode == ENOENT { return .socketMissing(path: path) }
            }
            return .connectFailed(path: path, reason: "\(error)")
        }

        private func connected(_ channel: any Channel) {
            guard machine.state == .connecting else {
                channel.close(promise: nil)
                return
            }
            let handler = HTTP2ClientConnectionHandler(collectBodies: true, delegate: self)
            do {
                try channel.pipeline.syncOperations.addHandler(handler)
            } catch {
                channel.close(promise: nil)
                ended(.connectFailed(path: endpoint.path, reason: "\(error)"))
                return
            }
            self.channel = channel
            connection = ObjectIdentifier(handler)
            perform(machine.connected())
        }

        private func isCurrent(_ handler: HTTP2ClientConnectionHandler) -> Bool { connection == ObjectIdentifier(handler) }

        // MARK: HTTP2ClientDelegate

        func http2ConnectionReady(_ handler: HTTP2ClientConnectionHandler) {
            guard isCurrent(handler), !requested else { return }
            requested = true
            // X509SVIDRequest has no fields: its encoding is empty.
            let body = GRPCMessageFraming.framed(ByteBuffer())
            let request = HTTP2Request(method: "POST", scheme: "http", authority: "localhost", path: WorkloadAPIClient.fetchX509SVIDPath,
                                       headers: [HTTP2Header("content-type", GRPCMetadata.contentType), HTTP2Header("te", "trailers"),
                                                 WorkloadAPIClient.securityHeader],
                                       body: body)
            guard handler.send(request, token: 1, streamingData: true) else {
                ended(.streamEnded(reason: "the agent's connection took no stream"))
                return
            }
            handler.flush()
        }

        func http2Data(_ handler: HTTP2ClientConnectionHandler, token: UInt64, data: ByteBuffer) {
            guard isCurrent(handler) else { return }
            var data = data
            pending.writeBuffer(&data)
            do {
                while let message = try reader.next(from: &pending) {
                    let update = try X509SVIDUpdate(decoding: message)
                    machine.updated()
                    onUpdate(update)
                }
                pending.discardReadBytes()
            } catch let error as GRPCFramingError {
                ended(.badResponse("\(error)"))
            } catch let error as WorkloadAPIError {
                ended(error)
            } catch {
                ended(.badResponse("\(error)"))
            }
        }

        func http2Response(_ handler: HTTP2ClientConnectionHandler, token: UInt64, response: HTTP2Response) {
            guard isCurrent(handler) else { return }
            let headers = response.headers.map { (name: $0.name, value: $0.value) }
            let (code, message) = GRPCMetadata.responseCode(httpStatus: response.status, headers: headers)
            let status = ResponseCode.grpcStatus(code)
            switch status {
            case .ok?: ended(.streamEnded(reason: "the agent closed it (OK)"))
            case let status?: ended(.status(status, message: message))
            case nil: ended(.badResponse("HTTP status \(response.status) without grpc-status"))
            }
        }

        func http2StreamFailed(_ handler: HTTP2ClientConnectionHandler, token: UInt64, failure: HTTP2StreamFailure) {
            guard isCurrent(handler) else { return }
            ended(.streamEnded(reason: "\(failure)"))
        }

        func http2GoAwayReceived(_ handler: HTTP2ClientConnectionHandler, errorCode: UInt32) {}

        func http2ConnectionClosed(_ handler: HTTP2ClientConnectionHandler, error: (any Error)?) {
            guard isCurrent(handler) else { return }
            ended(.streamEnded(reason: "the connection closed" + (error.map { " (\($0))" } ?? "")))
        }
    }
}
