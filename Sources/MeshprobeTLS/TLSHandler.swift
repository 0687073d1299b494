import MeshprobeIdentity
import NIOCore

/// TLS for one connection: ciphertext `ByteBuffer`s below, plaintext `ByteBuffer`s above.
///
/// Drives OpenSSL through a pair of memory BIOs. The handshake starts on `channelActive` (or when added to an
/// active channel); a client sends its ClientHello then, a server waits for it. On success the handler fires
/// ``TLSHandshakeCompleted`` as a user inbound event; on failure it fires `errorCaught(TLSError)` once, sends
/// any pending alert, and closes the channel. Plaintext written before the handshake completes is buffered
/// and sent after it. `close` sends close_notify first.
///
/// Hot path: every channelRead feeds all its bytes to OpenSSL and decrypts everything available into one
/// reused buffer; ciphertext is coalesced into one `ByteBuffer` per flush.
public final class TLSHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private enum State {
        case idle, handshaking, active, closing, closed
    }

    private let tlsContext: TLSContext
    private let connectionResult: Result<TLSConnection, TLSError>
    private var state: State = .idle
    /// Set once a TLSError has been reported, so it is reported only once.
    private var failed = false
    private var handshakeStart = NIODeadline.now()

    /// Plaintext written before the handshake completed.
    private var bufferedWrites = CircularBuffer<(ByteBuffer, EventLoopPromise<Void>?)>()
    private var flushRequestedDuringHandshake = false
    /// Promises of plaintext already encrypted but not yet flushed.
    private var unflushedPromises: [EventLoopPromise<Void>] = []
    /// Reused for decrypted data and for ciphertext; reallocated only when a consumer keeps the last one.
    private var plaintextBuffer: ByteBuffer?
    private var ciphertextBuffer: ByteBuffer?

    /// Decrypt at most this much before handing it up, so one huge read does not grow the buffer without bound.
    private static let plaintextChunkLimit = 256 * 1024

    /// The protocol handler right above, when it takes plaintext by a direct call (`deliverPlaintext(to:)`).
    private var plaintextSink: ((ByteBuffer) -> Void)?
    /// This handler's context, for `writeAndFlush(plaintext:)` (set while the handler is in a pipeline).
    private var context: ChannelHandlerContext?

    init(context: TLSContext, serverName: String?) {
        self.tlsContext = context
        do {
            self.connectionResult = .success(try TLSConnection(context: context, serverName: serverName))
        } catch {
            self.connectionResult = .failure(error)
        }
    }

    // MARK: Lifecycle

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { start(context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard state == .idle else { return }
        state = .handshaking
        handshakeStart = .now()
        switch connectionResult {
        case .failure(let error):
            fail(context: context, error: error)
        case .success(let connection):
            if connection.role == .client { advanceHandshake(context: context, connection: connection) }
        }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        let wasHandshaking = state == .idle || state == .handshaking
        state = .closed
        if wasHandshaking && !failed {
            failed = true
            context.fireErrorCaught(TLSError(kind: .tlsHandshakeFailed, message: "connection closed during the TLS handshake"))
        }
        failBufferedWrites(ChannelError.ioOnClosedChannel)
        failUnflushedPromises(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        failBufferedWrites(ChannelError.ioOnClosedChannel)
        failUnflushedPromises(ChannelError.ioOnClosedChannel)
        plaintextSink = nil
        self.context = nil
    }

    // MARK: Direct calls from the handler above

    /// Hands decrypted bytes to `sink` by a direct call instead of `fireChannelRead`: one pipeline hop (and its
    /// `NIOAny` wrapping) less per read, for the handler right above this one. Everything else (read complete,
    /// user events, errors, inactive) still goes through the pipeline. Dropped when this handler is removed.
    public func deliverPlaintext(to sink: @escaping (ByteBuffer) -> Void) {
        plaintextSink = sink
    }

    /// Encrypts and sends `plaintext` now: the same as a `writeAndFlush` from the handler right above, without the
    /// pipeline hop.
    public func writeAndFlush(plaintext: ByteBuffer) {
        guard let context else { return }
        write(context: context, data: NIOAny(plaintext), promise: nil)
        flush(context: context)
    }

    // MARK: Inbound

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let ciphertext = unwrapInboundIn(data)
        guard case .success(let connection) = connectionResult else { return }
        if state == .idle { start(context: context) }
        switch state {
        case .handshaking:
            OpenSSLErrorQueue.clear()
            connection.feed(ciphertext)
            advanceHandshake(context: context, connection: connection)
        case .active, .closing:
            OpenSSLErrorQueue.clear()
            connection.feed(ciphertext)
            deliverPlaintext(context: context, connection: connection)
        case .idle, .closed:
            break
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        if case .success(let connection) = connectionResult, connection.pendingCiphertext > 0 {
            flushCiphertext(context: context, connection: connection)
        }
        context.fireChannelReadComplete()
    }

    private func advanceHandshake(context: ChannelHandlerContext, connection: TLSConnection) {
        switch connection.handshake() {
        case .wantRead:
            flushCiphertext(context: context, connection: connection)
        case .failed(let error):
            fail(context: context, error: error)
        case .complete:
            state = .active
            flushCiphertext(context: context, connection: connection)
            if connection.resumed, tlsContext.configuration.verifyPeer || connection.role == .server,
               let error = tlsContext.verifier.recheck(resumedPeer: connection.peerCertificate) {
                fail(context: context, error: error)
                return
            }
            context.fireUserInboundEventTriggered(connection.handshakeCompleted(startedAt: handshakeStart))
            guard state == .active else { return }
            sendBufferedWrites(context: context, connection: connection)
            guard state == .active else { return }
            // Application data may have arrived together with the last handshake message.
            deliverPlaintext(context: context, connection: connection)
        }
    }

    private func deliverPlaintext(context: ChannelHandlerContext, connection: TLSConnection) {
        while state == .active || state == .closing {
            var buffer = plaintextBuffer ?? context.channel.allocator.buffer(capacity: 16_384)
            plaintextBuffer = nil
            let result = connection.readPlaintext(into: &buffer, limit: Self.plaintextChunkLimit)
            if buffer.readableBytes > 0 {
                if let plaintextSink {
                    plaintextSink(buffer)
                } else {
                    context.fireChannelRead(wrapInboundOut(buffer))
                }
            }
            // Reuses the storage when the consumer did not keep the buffer, else allocates anew.
            buffer.clear()
            plaintextBuffer = buffer
            switch result {
            case .bufferFull:
                continue
            case .wouldBlock:
                if connection.pendingCiphertext > 0 { flushCiphertext(context: context, connection: connection) }
                return
            case .closeNotify:
                // The peer finished cleanly: answer with our close_notify and close.
                if state == .active {
                    state = .closing
                    connection.shutdown()
                    flushCiphertext(context: context, connection: connection)
                    context.close(promise: nil)
                }
                return
            case .failed(let error):
                fail(context: context, error: error)
                return
            }
        }
    }

    // MARK: Outbound

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let plaintext = unwrapOutboundIn(data)
        switch state {
        case .idle, .handshaking:
            bufferedWrites.append((plaintext, promise))
        case .active:
            guard case .success(let connection) = connectionResult else { return }
            encrypt(context: context, connection: connection, plaintext: plaintext, promise: promise)
        case .closing, .closed:
            promise?.fail(ChannelError.ioOnClosedChannel)
        }
    }

    public func flush(context: ChannelHandlerContext) {
        switch state {
        case .idle, .handshaking:
            flushRequestedDuringHandshake = true
        case .active, .closing:
            guard case .success(let connection) = connectionResult else { return }
            flushCiphertext(context: context, connection: connection)
        case .closed:
            break
        }
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode != .input else {
            context.close(mode: mode, promise: promise)
            return
        }
        if state == .active, case .success(let connection) = connectionResult {
            state = .closing
            OpenSSLErrorQueue.clear()
            connection.shutdown()
            flushCiphertext(context: context, connection: connection)
        } else if state == .idle || state == .handshaking {
            failBufferedWrites(ChannelError.ioOnClosedChannel)
        }
        context.close(mode: mode, promise: promise)
    }

    private func encrypt(context: ChannelHandlerContext, connection: TLSConnection, plaintext: ByteBuffer,
                         promise: EventLoopPromise<Void>?) {
        OpenSSLErrorQueue.clear()
        if let error = connection.write(plaintext) {
            promise?.fail(error)
            fail(context: context, error: error)
            return
        }
        if let promise { unflushedPromises.append(promise) }
    }

    private func sendBufferedWrites(context: ChannelHandlerContext, connection: TLSConnection) {
        while let (plaintext, promise) = bufferedWrites.popFirst() {
            encrypt(context: context, connection: connection, plaintext: plaintext, promise: promise)
            guard state == .active else { return }
        }
        if flushRequestedDuringHandshake {
            flushRequestedDuringHandshake = false
            flushCiphertext(context: context, connection: connection)
        }
    }

    /// Sends everything OpenSSL produced as one buffer, completing the promises of the plaintext it carries.
    private func flushCiphertext(context: ChannelHandlerContext, connection: TLSConnection) {
        let promise = takeUnflushedPromise(context: context)
        guard connection.pendingCiphertext > 0 else {
            promise?.succeed(())
            return
        }
        var buffer = ciphertextBuffer ?? context.channel.allocator.buffer(capacity: connection.pendingCiphertext)
        ciphertextBuffer = nil
        connection.drainCiphertext(into: &buffer)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: promise)
        buffer.clear()
        ciphertextBuffer = buffer
    }

    /// The promise for the plaintext encrypted since the last flush (the context's event loop, a retained
    /// existential, is read only when several promises must be combined).
    private func takeUnflushedPromise(context: ChannelHandlerContext) -> EventLoopPromise<Void>? {
        switch unflushedPromises.count {
        case 0:
            return nil
        case 1:
            let promise = unflushedPromises[0]
            unflushedPromises.removeAll(keepingCapacity: true)
            return promise
        default:
            let promises = unflushedPromises
            unflushedPromises.removeAll(keepingCapacity: true)
            let combined = context.eventLoop.makePromise(of: Void.self)
            combined.futureResult.whenComplete { result in
                for promise in promises { promise.completeWith(result) }
            }
            return combined
        }
    }

    // MARK: Failure

    /// A TLS 1.2 record holding a fatal `protocol_version` alert (level 2, description 70).
    static let protocolVersionAlert: [UInt8] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46]

    private func fail(context: ChannelHandlerContext, error: TLSError) {
        guard !failed else { return }
        failed = true
        let wasOpen = state != .closed
        state = .closing
        // Plaintext not yet sent will never be: fail its promises before the alert goes out.
        failBufferedWrites(error)
        failUnflushedPromises(error)
        if case .success(let connection) = connectionResult, connection.pendingCiphertext > 0, wasOpen {
            flushCiphertext(context: context, connection: connection)  // the alert
        } else if case .success(let connection) = connectionResult, connection.role == .server, error.kind == .wrongScheme, wasOpen {
            // OpenSSL closes without a word on plaintext; a fatal protocol_version alert lets an http:// client
            // see that this port speaks TLS (its first bytes are a TLS record).
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: Self.protocolVersionAlert)), promise: nil)
        }
        context.fireErrorCaught(error)
        if wasOpen { context.close(promise: nil) }
    }

    private func failUnflushedPromises(_ error: any Error) {
        guard !unflushedPromises.isEmpty else { return }
        let promises = unflushedPromises
        unflushedPromises.removeAll()
        for promise in promises { promise.fail(error) }
    }

    private func failBufferedWrites(_ error: any Error) {
        while let (_, promise) = bufferedWrites.popFirst() { promise?.fail(error) }
    }
}

@available(*, unavailable)
extension TLSHandler: Sendable {}
