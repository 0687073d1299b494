internal import CNGHTTP2
import NIOCore

/// The role-specific half of a connection: the client or server handler that owns an `NGHTTP2Connection`.
///
/// The `on...` methods are nghttp2 callbacks and run only inside a session call; they must not call the user.
/// The others run after nghttp2 has returned.
protocol NGHTTP2ConnectionOwner: AnyObject {
    func onBeginHeaders(streamID: Int32, isRequest: Bool)
    func onHeader(
        streamID: Int32, name: UnsafePointer<UInt8>?, nameLength: Int, value: UnsafePointer<UInt8>?,
        valueLength: Int
    ) -> Int32
    func onFrameReceived(_ frame: UnsafePointer<nghttp2_frame>)
    func onDataChunk(streamID: Int32, data: UnsafePointer<UInt8>?, length: Int)
    func onStreamClose(streamID: Int32, errorCode: UInt32)
    func onFrameNotSent(_ frame: UnsafePointer<nghttp2_frame>, libErrorCode: Int32)
    /// The data provider of a stream submitted with a body: copy up to `length` bytes, set EOF at the end.
    func readBody(
        streamID: Int32, into destination: UnsafeMutablePointer<UInt8>, length: Int,
        flags: UnsafeMutablePointer<UInt32>
    ) -> Int

    /// nghttp2 has returned: hand what its callbacks collected to the user.
    func deliverPendingEvents()
    /// nghttp2's output was drained into a write (optional).
    func outputDrained()
    /// The session failed fatally and is ending; fail whatever is in flight.
    func connectionFailed(_ error: HTTP2ConnectionError)
    /// The channel is gone; called exactly once, last.
    func connectionClosed(error: (any Error)?)
}

/// The machinery both handlers share: the session, its lifecycle, reading, and batched writing.
///
/// Reads in one burst are fed to nghttp2 as they come; what nghttp2 wants to send is drained once per burst (at
/// `channelReadComplete`), or on the next event loop tick for sends made outside a burst, into one reused
/// `ByteBuffer` and written with one `writeAndFlush`. The session's `user_data` is this object, unretained; the
/// owner holds it strongly, and it holds the owner unowned, so every callback (which only runs inside a session
/// call the owner made) reaches a live owner.
final class NGHTTP2Connection {
    let isServer: Bool
    let settings: HTTP2Settings
    /// Set once by the owner's initializer.
    unowned(unsafe) var owner: (any NGHTTP2ConnectionOwner)? {
        didSet { callbackOwner = CallbackOwner(owner) }
    }
    /// The owner again, by its concrete type and unretained, for the nghttp2 callbacks (see `withOwner`).
    private var callbackOwner: CallbackOwner?

    private(set) var session: NGHTTP2Session? {
        didSet { sessionPointer = session?.pointer }
    }
    /// `session?.pointer`, read by the owner's callbacks without touching the session object.
    private(set) var sessionPointer: OpaquePointer?
    private(set) var context: ChannelHandlerContext?
    private(set) var allocator = ByteBufferAllocator()
    var state = HTTP2ConnectionStateMachine()
    private var outBuffer: ByteBuffer
    /// Where flushed bytes go instead of `context.writeAndFlush` (a TLS handler right below, called directly).
    var directWriter: ((ByteBuffer) -> Void)?

    // Write batching.
    /// nghttp2 is running (mem_recv / mem_send): no re-entrant session calls, no writes.
    private var inSessionCall = false
    /// Between the first channelRead of a burst and channelReadComplete: sends wait for the burst to end.
    private var inReadBurst = false
    private var flushScheduled = false
    /// A channelReadComplete has reached us: the handlers below forward it.
    private var readCompleteSeen = false

    init(isServer: Bool, settings: HTTP2Settings) {
        self.isServer = isServer
        self.settings = settings
        self.outBuffer = ByteBufferAllocator().buffer(capacity: 0)
    }

    /// The session, while it may be driven (open: not closing or closed).
    var openSession: NGHTTP2Session? {
        state.isOpen ? session : nil
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.allocator = context.channel.allocator
        if context.channel.isActive {
            perform(state.channelActive())
        }
    }

    func handlerRemoved() {
        perform(state.channelClosed())
        context = nil
        directWriter = nil
    }

    func channelActive() {
        perform(state.channelActive())
    }

    func channelInactive() {
        perform(state.channelClosed())
    }

    func channelRead(_ buffer: ByteBuffer) {
        guard state.isRunning, let session else { return }
        inReadBurst = true
        inSessionCall = true
        let rv = session.receive(buffer)
        inSessionCall = false
        if rv < 0 {
            perform(state.sessionFailed(.protocolError(NGHTTP2Session.describe(rv))))
            return
        }
        owner?.deliverPendingEvents()
        // Normally channelReadComplete flushes; until one has been seen, a task covers a handler below us that does
        // not forward it. Once the pipeline has shown that it forwards it, the task (an allocation and a queue
        // round trip per read) is not needed any more.
        if !readCompleteSeen, !flushScheduled { scheduleFlush(evenDuringRead: true) }
    }

    /// The read burst is over: send what it produced, or (`holdingWrites`, see `HTTP2WriteCoalescer`) only hand
    /// over what it delivered and keep the submitted frames for later.
    func channelReadComplete(holdingWrites: Bool = false) {
        readCompleteSeen = true
        inReadBurst = false
        if holdingWrites {
            owner?.deliverPendingEvents()
        } else {
            flushNow()
        }
    }

    /// Requests submitted since nghttp2's output was last drained.
    var submittedSinceFlush = 0
    /// The owner wants `outputDrained()` (a client with write coalescing); off, no call per write.
    var reportsDrains = false

    func errorCaught(_ error: any Error) {
        perform(state.errorCaught(error))
    }

    // MARK: Owner requests

    /// Graceful (GOAWAY, then close when the streams are done) or abrupt close.
    func close(graceful: Bool) {
        perform(state.closeRequested(graceful: graceful))
    }

    /// Sends what nghttp2 has pending now, unless nghttp2 is running (then its caller flushes).
    func flush() {
        if !inSessionCall { flushNow() }
    }

    /// Frames were submitted: flush at the end of the read burst, or on the next tick outside one.
    func scheduleFlush(evenDuringRead: Bool = false) {
        guard !flushScheduled, let context else { return }
        if inReadBurst && !evenDuringRead { return }
        flushScheduled = true
        // The owner is kept alive until the task has run, as the handler itself was before.
        let owner = self.owner
        context.eventLoop.assumeIsolated().execute {
            withExtendedLifetime(owner) {
                self.flushScheduled = false
                self.inReadBurst = false
                self.flushNow()
            }
        }
    }

    /// RST_STREAM `streamID` if the session is open.
    func resetStream(_ streamID: Int32, errorCode: UInt32) {
        guard let session = openSession else { return }
        _ = nghttp2_submit_rst_stream(session.pointer, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, errorCode)
    }

    /// Appends the part of a DATA chunk that fits in the first `limit` bytes of `body`; the rest is dropped (the
    /// stream goes on).
    func collectPrefix(_ data: UnsafePointer<UInt8>, length: Int, into body: inout ByteBuffer?, limit: Int) {
        let room = limit - (body?.readableBytes ?? 0)
        guard room > 0 else { return }
        if body == nil { body = allocator.buffer(capacity: min(limit, max(length, 256))) }
        body?.writeBytes(UnsafeRawBufferPointer(start: data, count: min(room, length)))
    }

    /// Appends a received DATA chunk to `body`, or resets the stream with ENHANCE_YOUR_CALM once `total` (the
    /// stream's byte count including this chunk) is above `settings.maxCollectedBodyBytes`.
    func collect(
        _ data: UnsafePointer<UInt8>, length: Int, into body: inout ByteBuffer?, total: Int, streamID: Int32
    ) {
        guard total <= settings.maxCollectedBodyBytes else {
            resetStream(streamID, errorCode: NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
            return
        }
        if body == nil { body = allocator.buffer(capacity: max(length, 1024)) }
        body?.writeBytes(UnsafeRawBufferPointer(start: data, count: length))
    }

    // MARK: Actions

    private func perform(_ action: HTTP2ConnectionStateMachine.Action) {
        switch action {
        case .none, .notifyReady, .notifyGoAway:
            // The last two are the client's to deliver; they come from its own frame callbacks.
            break
        case .startSession:
            startSession()
        case .sendGoAway:
            guard let session else { return }
            let lastStreamID = nghttp2_session_get_last_proc_stream_id(session.pointer)
            _ = nghttp2_submit_goaway(
                session.pointer, UInt8(NGHTTP2_FLAG_NONE.rawValue), lastStreamID, NGHTTP2_NO_ERROR.rawValue, nil, 0)
            flush()
        case .closeChannel:
            closeChannel(after: nil)
        case .failConnection(let error):
            failConnection(error)
        case .reportClosed(let error):
            owner?.connectionClosed(error: error)
        }
    }

    private func startSession() {
        guard
            let session = NGHTTP2Session(
                isServer: isServer, userData: Unmanaged.passUnretained(self).toOpaque(),
                installCallbacks: Self.installCallbacks)
        else {
            perform(state.sessionFailed(.protocolError("nghttp2 could not allocate a session")))
            return
        }
        self.session = session
        let rv = session.submitSettings(settings, isServer: isServer)
        if rv != 0 {
            perform(state.sessionFailed(.protocolError(NGHTTP2Session.describe(Int(rv)))))
            return
        }
        flushNow()
    }

    private func flushNow() {
        guard state.isRunning, let session, let context, !inSessionCall else { return }
        if session.wantsWrite {
            outBuffer.clear()
            inSessionCall = true
            let rv = session.drainOutput(into: &outBuffer)
            inSessionCall = false
            submittedSinceFlush = 0
            if rv < 0 {
                perform(state.sessionFailed(.protocolError(NGHTTP2Session.describe(rv))))
                return
            }
            if outBuffer.readableBytes > 0 {
                if let directWriter {
                    directWriter(outBuffer)
                } else {
                    context.writeAndFlush(NIOAny(outBuffer), promise: nil)
                }
            }
            if reportsDrains { owner?.outputDrained() }
        }
        owner?.deliverPendingEvents()
        // The close follows the write just made in order; waiting for the write's promise here left connections
        // that nginx had retired with GOAWAY open for seconds.
        if session.isFinished { perform(state.sessionFinished()) }
    }

    /// Closes the channel now, or once `write` (our last bytes) has completed.
    private func closeChannel(after write: EventLoopFuture<Void>?) {
        guard let context else { return }
        if let write {
            write.assumeIsolated().whenComplete { _ in self.context?.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }

    /// GOAWAY(PROTOCOL_ERROR) if a session exists, the owner fails what is in flight, then close.
    private func failConnection(_ error: HTTP2ConnectionError) {
        var lastWrite: EventLoopFuture<Void>?
        if let session, let context {
            _ = nghttp2_session_terminate_session(session.pointer, NGHTTP2_PROTOCOL_ERROR.rawValue)
            outBuffer.clear()
            inSessionCall = true
            let rv = session.drainOutput(into: &outBuffer)
            inSessionCall = false
            if rv >= 0, outBuffer.readableBytes > 0 {
                lastWrite = context.writeAndFlush(NIOAny(outBuffer))
            }
        }
        owner?.connectionFailed(error)
        closeChannel(after: lastWrite)
    }

    // MARK: nghttp2 callbacks (called only from inside mem_recv / mem_send)

    private static func installCallbacks(_ callbacks: OpaquePointer) {
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, userData in
            guard let frame, let userData else { return 0 }
            guard UInt32(frame.pointee.hd.type) == NGHTTP2_HEADERS.rawValue else { return 0 }
            NGHTTP2Connection.withOwner(userData) {
                $0.onBeginHeaders(
                    streamID: frame.pointee.hd.stream_id, isRequest: frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST)
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) {
            _, frame, name, nameLength, value, valueLength, _, userData in
            guard let frame, let userData else { return 0 }
            return NGHTTP2Connection.withOwner(userData) {
                $0.onHeader(
                    streamID: frame.pointee.hd.stream_id, name: name, nameLength: nameLength, value: value,
                    valueLength: valueLength)
            }
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
            guard let frame, let userData else { return 0 }
            NGHTTP2Connection.withOwner(userData) { $0.onFrameReceived(frame) }
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) {
            _, _, streamID, data, length, userData in
            guard let userData else { return 0 }
            NGHTTP2Connection.withOwner(userData) { $0.onDataChunk(streamID: streamID, data: data, length: length) }
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, errorCode, userData in
            guard let userData else { return 0 }
            NGHTTP2Connection.withOwner(userData) { $0.onStreamClose(streamID: streamID, errorCode: errorCode) }
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks) { _, frame, userData in
            guard let frame, let userData else { return 0 }
            // nghttp2 answers most protocol violations itself with GOAWAY(error) and then ends the session.
            if UInt32(frame.pointee.hd.type) == NGHTTP2_GOAWAY.rawValue {
                let connection = Unmanaged<NGHTTP2Connection>.fromOpaque(userData).takeUnretainedValue()
                connection.state.goAwaySent(errorCode: frame.pointee.goaway.error_code)
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_not_send_callback(callbacks) { _, frame, libErrorCode, userData in
            guard let frame, let userData else { return 0 }
            NGHTTP2Connection.withOwner(userData) { $0.onFrameNotSent(frame, libErrorCode: libErrorCode) }
            return 0
        }
    }

    /// A data provider whose reads go to the owner's `readBody`.
    static func bodyProvider() -> nghttp2_data_provider {
        var provider = nghttp2_data_provider()
        provider.read_callback = { _, streamID, buffer, length, flags, _, userData in
            guard let userData, let buffer, let flags else { return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
            return NGHTTP2Connection.withOwner(userData) {
                $0.readBody(streamID: streamID, into: buffer, length: length, flags: flags)
            }
        }
        return provider
    }
}

/// No-op defaults for the callbacks only one role needs.
extension NGHTTP2ConnectionOwner {
    func outputDrained() {}
    func onBeginHeaders(streamID: Int32, isRequest: Bool) {}
    func onFrameNotSent(_ frame: UnsafePointer<nghttp2_frame>, libErrorCode: Int32) {}
}

/// The owner of a connection by its concrete type, unretained.
private enum CallbackOwner {
    case client(Unmanaged<HTTP2ClientConnectionHandler>)
    case server(Unmanaged<HTTP2ServerConnectionHandler>)

    init?(_ owner: (any NGHTTP2ConnectionOwner)?) {
        if let client = owner as? HTTP2ClientConnectionHandler {
            self = .client(.passUnretained(client))
        } else if let server = owner as? HTTP2ServerConnectionHandler {
            self = .server(.passUnretained(server))
        } else {
            return nil
        }
    }
}

extension NGHTTP2Connection {
    /// Calls `body` with the owner of the connection whose `user_data` nghttp2 passes to a callback.
    ///
    /// Through the concrete type and `_withUnsafeGuaranteedRef`, the call costs no reference count; reading the
    /// `unowned(unsafe)` existential `owner` costs a retain and a release, and a response has a callback per
    /// header field. The owner is alive: callbacks run only inside session calls the owner makes.
    @inline(__always)
    fileprivate static func withOwner<R>(_ userData: UnsafeMutableRawPointer, _ body: (any NGHTTP2ConnectionOwner) -> R) -> R {
        Unmanaged<NGHTTP2Connection>.fromOpaque(userData)._withUnsafeGuaranteedRef { connection in
            switch connection.callbackOwner {
            case .client(let client): return client._withUnsafeGuaranteedRef { body($0) }
            case .server(let server): return server._withUnsafeGuaranteedRef { body($0) }
            case nil: return body(connection.owner!)
            }
        }
    }
}
