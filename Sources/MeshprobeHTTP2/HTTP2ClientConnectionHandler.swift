internal import CNGHTTP2
import NIOCore

/// Receives the outcome of every request sent through an `HTTP2ClientConnectionHandler`.
///
/// All calls happen on the channel's event loop, never from inside an nghttp2 callback, so a delegate may call
/// `send`, `flush` and `close` from any of them.
public protocol HTTP2ClientDelegate: AnyObject {
    /// The connection preface and the peer's SETTINGS have been received; `availableStreams` is meaningful.
    ///
    /// Called again when the peer changes SETTINGS_MAX_CONCURRENT_STREAMS.
    func http2ConnectionReady(_ connection: HTTP2ClientConnectionHandler)
    func http2Response(_ connection: HTTP2ClientConnectionHandler, token: UInt64, response: HTTP2Response)
    func http2StreamFailed(_ connection: HTTP2ClientConnectionHandler, token: UInt64, failure: HTTP2StreamFailure)
    /// GOAWAY received: no new streams; in-flight streams below last-stream-id may still complete.
    func http2GoAwayReceived(_ connection: HTTP2ClientConnectionHandler, errorCode: UInt32)
    /// The connection is gone.
    ///
    /// Called exactly once, after every in-flight stream got `http2StreamFailed(.connectionLost)` or a response.
    func http2ConnectionClosed(_ connection: HTTP2ClientConnectionHandler, error: (any Error)?)
}

/// Client side of one HTTP/2 connection on nghttp2. All methods must be called on the channel's event loop.
///
/// Sits on a plaintext byte stream (h2c with prior knowledge) or above a TLS handler; it only reads and writes
/// `ByteBuffer`s. The delegate is held strongly until `http2ConnectionClosed` has been delivered, then released.
public final class HTTP2ClientConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    /// One request in flight. A class so nghttp2 callbacks can update it in place with one dictionary lookup.
    private final class Stream {
        let token: UInt64
        var requestBody: ByteBuffer?
        var status = 0
        var headers: [HTTP2Header] = []
        var headerFields = 0
        var bodyLength = 0
        var body: ByteBuffer?
        var resetCode: UInt32?
        var delivered = false

        init(token: UInt64, requestBody: ByteBuffer?) {
            self.token = token
            self.requestBody = requestBody
        }
    }

    /// Delegate calls collected while nghttp2 is running, delivered once it has returned.
    private enum Event {
        case ready
        case response(token: UInt64, HTTP2Response)
        case failure(token: UInt64, HTTP2StreamFailure)
        case goAway(errorCode: UInt32)
    }

    private let settings: HTTP2Settings
    private let collectBodies: Bool
    private var delegate: (any HTTP2ClientDelegate)?

    private var session: NGHTTP2Session?
    private var context: ChannelHandlerContext?
    private var allocator = ByteBufferAllocator()
    private var streams: [Int32: Stream] = [:]
    private var headerBlock = HeaderBlockBuilder()
    private var outBuffer: ByteBuffer

    private var events: [Event] = []
    private var eventCursor = 0
    private var drainDepth = 0

    // Lifecycle.
    private var prefaceSent = false
    private var peerSettingsReceived = false
    private var peerMaxConcurrentStreams: UInt32 = 0
    private var goAway: (lastStreamID: Int32, errorCode: UInt32)?
    private var closing = false
    private var closeInitiated = false
    private var channelClosed = false
    private var closedNotified = false
    private var connectionError: (any Error)?

    // Write batching.
    private var inSessionCall = false
    private var inReadBurst = false
    private var flushScheduled = false

    public init(settings: HTTP2Settings = .init(), collectBodies: Bool = false, delegate: any HTTP2ClientDelegate) {
        self.settings = settings
        self.collectBodies = collectBodies
        self.delegate = delegate
        self.outBuffer = ByteBufferAllocator().buffer(capacity: 0)
        self.events.reserveCapacity(64)
    }

    // MARK: Public API

    /// Streams that can be opened now: min(peer SETTINGS_MAX_CONCURRENT_STREAMS, local cap) minus open streams.
    ///
    /// 0 before the connection is ready, after GOAWAY, or while closing.
    public var availableStreams: Int {
        guard peerSettingsReceived, goAway == nil, !closing, !channelClosed, session != nil else { return 0 }
        let cap = min(Int(peerMaxConcurrentStreams), Int(settings.maxConcurrentStreams))
        return max(0, cap - streams.count)
    }

    /// Active, preface sent, no GOAWAY received, not closing.
    public var isUsable: Bool {
        prefaceSent && session != nil && goAway == nil && !closing && !channelClosed
    }

    /// Submits one request; returns false (and does not call the delegate) if no stream can be opened now.
    ///
    /// `token` is handed back in exactly one `http2Response` or `http2StreamFailed`. Bytes go out at the end of the
    /// current read burst, on `flush()`, or at the latest on the next event loop tick.
    public func send(_ request: HTTP2Request, token: UInt64) -> Bool {
        guard availableStreams > 0, let session else { return false }

        headerBlock.reset()
        headerBlock.append(name: ":method", value: request.method)
        headerBlock.append(name: ":scheme", value: request.scheme)
        headerBlock.append(name: ":authority", value: request.authority)
        headerBlock.append(name: ":path", value: request.path)
        var hasContentLength = false
        for header in request.headers {
            if !hasContentLength && header.name.utf8.count == 14 && header.name == "content-length" {
                hasContentLength = true
            }
            headerBlock.append(name: header.name, value: header.value)
        }
        var body = request.body
        if let bodyBytes = body?.readableBytes {
            if !hasContentLength { headerBlock.append(name: "content-length", decimal: bodyBytes) }
            if bodyBytes == 0 { body = nil }
        }

        var provider = nghttp2_data_provider()
        provider.read_callback = { _, streamID, buffer, length, flags, _, userData in
            guard let userData, let buffer, let flags else { return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
            let handler = Unmanaged<HTTP2ClientConnectionHandler>.fromOpaque(userData).takeUnretainedValue()
            return handler.readRequestBody(streamID: streamID, into: buffer, length: length, flags: flags)
        }
        let streamID: Int32 = headerBlock.withNV { nv, count in
            if body == nil {
                return nghttp2_submit_request(session.pointer, nil, nv, count, nil, nil)
            }
            return withUnsafePointer(to: &provider) { nghttp2_submit_request(session.pointer, nil, nv, count, $0, nil) }
        }
        guard streamID > 0 else { return false }
        streams[streamID] = Stream(token: token, requestBody: body)
        scheduleFlush()
        return true
    }

    /// Sends everything nghttp2 has pending, in one ByteBuffer and one writeAndFlush.
    public func flush() {
        if inSessionCall {
            // Called from inside nghttp2 (cannot happen through the delegate); the caller of nghttp2 flushes.
            return
        }
        flushNow()
    }

    /// Graceful close: GOAWAY(NO_ERROR), then close once the in-flight streams are done (at once if none).
    ///
    /// With `goAway: false` the channel is closed right away and in-flight streams fail with `.connectionLost`.
    public func close(goAway: Bool) {
        guard !channelClosed else { return }
        guard goAway, let session else {
            closeChannel()
            return
        }
        guard !closing else { return }
        closing = true
        let lastStreamID = nghttp2_session_get_last_proc_stream_id(session.pointer)
        _ = nghttp2_submit_goaway(
            session.pointer, UInt8(NGHTTP2_FLAG_NONE.rawValue), lastStreamID, NGHTTP2_NO_ERROR.rawValue, nil, 0)
        flushNow()
    }

    // MARK: Channel events

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.allocator = context.channel.allocator
        if context.channel.isActive {
            start(context: context)
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        tearDown()
        self.context = nil
    }

    public func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        tearDown()
        context.fireChannelInactive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard let session, !channelClosed else { return }
        inReadBurst = true
        inSessionCall = true
        let rv = session.receive(buffer)
        inSessionCall = false
        if rv < 0 {
            failConnection(.protocolError(NGHTTP2Session.describe(rv)))
            return
        }
        drainEvents()
        // Normally channelReadComplete flushes; this covers a handler below us that does not forward it.
        if !flushScheduled { scheduleFlush(evenDuringRead: true) }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        inReadBurst = false
        flushNow()
        context.fireChannelReadComplete()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if connectionError == nil { connectionError = error }
        closeChannel()
    }

    // MARK: Internals

    private func start(context: ChannelHandlerContext) {
        guard session == nil, !channelClosed else { return }
        guard
            let session = NGHTTP2Session(
                isServer: false,
                userData: Unmanaged.passUnretained(self).toOpaque(),
                installCallbacks: Self.installCallbacks)
        else {
            connectionError = HTTP2ConnectionError.protocolError("nghttp2 could not allocate a session")
            closeChannel()
            return
        }
        self.session = session
        let rv = session.submitSettings(settings, isServer: false)
        if rv != 0 {
            failConnection(.protocolError(NGHTTP2Session.describe(Int(rv))))
            return
        }
        prefaceSent = true
        flushNow()
    }

    private func scheduleFlush(evenDuringRead: Bool = false) {
        guard !flushScheduled, let context else { return }
        if inReadBurst && !evenDuringRead { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            self.inReadBurst = false
            self.flushNow()
        }
    }

    private func flushNow() {
        guard let session, let context, !channelClosed, !inSessionCall else { return }
        if session.wantsWrite {
            outBuffer.clear()
            inSessionCall = true
            let rv = session.drainOutput(into: &outBuffer)
            inSessionCall = false
            if rv < 0 {
                failConnection(.protocolError(NGHTTP2Session.describe(rv)))
                return
            }
            if outBuffer.readableBytes > 0 {
                if session.isFinished {
                    let written = context.writeAndFlush(wrapOutboundOut(outBuffer))
                    written.assumeIsolated().whenComplete { _ in self.closeChannel() }
                } else {
                    context.writeAndFlush(wrapOutboundOut(outBuffer), promise: nil)
                }
            }
        }
        drainEvents()
        if session.isFinished && !session.wantsWrite {
            closeChannel()
        }
    }

    private func closeChannel() {
        guard !closeInitiated, let context else { return }
        closeInitiated = true
        context.close(promise: nil)
    }

    /// nghttp2 failed fatally: GOAWAY(PROTOCOL_ERROR) if possible, fail every stream, close.
    private func failConnection(_ error: HTTP2ConnectionError) {
        if connectionError == nil { connectionError = error }
        if let session, let context, !channelClosed {
            _ = nghttp2_session_terminate_session(session.pointer, NGHTTP2_PROTOCOL_ERROR.rawValue)
            var goAwayBytes = allocator.buffer(capacity: 64)
            inSessionCall = true
            if session.drainOutput(into: &goAwayBytes) >= 0, goAwayBytes.readableBytes > 0 {
                context.writeAndFlush(wrapOutboundOut(goAwayBytes), promise: nil)
            }
            inSessionCall = false
        }
        let message: String
        switch error {
        case .protocolError(let text): message = text
        }
        failAllStreams(with: .protocolError(message))
        closeChannel()
    }

    private func failAllStreams(with failure: HTTP2StreamFailure) {
        for streamID in streams.keys.sorted() {
            guard let stream = streams[streamID], !stream.delivered else { continue }
            stream.delivered = true
            events.append(.failure(token: stream.token, failure))
        }
        streams.removeAll()
        drainEvents()
    }

    private func tearDown() {
        guard !closedNotified else { return }
        channelClosed = true
        drainEvents()
        failAllStreams(with: .connectionLost)
        closedNotified = true
        let delegate = self.delegate
        self.delegate = nil
        delegate?.http2ConnectionClosed(self, error: connectionError)
    }

    private func drainEvents() {
        drainDepth += 1
        while eventCursor < events.count {
            let event = events[eventCursor]
            eventCursor += 1
            guard let delegate else { continue }
            switch event {
            case .ready:
                delegate.http2ConnectionReady(self)
            case .response(let token, let response):
                delegate.http2Response(self, token: token, response: response)
            case .failure(let token, let failure):
                delegate.http2StreamFailed(self, token: token, failure: failure)
            case .goAway(let errorCode):
                delegate.http2GoAwayReceived(self, errorCode: errorCode)
            }
        }
        drainDepth -= 1
        if drainDepth == 0 {
            events.removeAll(keepingCapacity: true)
            eventCursor = 0
        }
    }

    // MARK: nghttp2 callbacks (called only from inside mem_recv / mem_send)

    private static func installCallbacks(_ callbacks: OpaquePointer) {
        nghttp2_session_callbacks_set_on_header_callback(callbacks) {
            _, frame, name, nameLength, value, valueLength, _, userData in
            guard let frame, let userData else { return 0 }
            let handler = Unmanaged<HTTP2ClientConnectionHandler>.fromOpaque(userData).takeUnretainedValue()
            return handler.onHeader(
                streamID: frame.pointee.hd.stream_id, name: name, nameLength: nameLength, value: value,
                valueLength: valueLength)
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
            guard let frame, let userData else { return 0 }
            let handler = Unmanaged<HTTP2ClientConnectionHandler>.fromOpaque(userData).takeUnretainedValue()
            handler.onFrameReceived(frame)
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) {
            _, _, streamID, data, length, userData in
            guard let userData else { return 0 }
            let handler = Unmanaged<HTTP2ClientConnectionHandler>.fromOpaque(userData).takeUnretainedValue()
            handler.onDataChunk(streamID: streamID, data: data, length: length)
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, errorCode, userData in
            guard let userData else { return 0 }
            let handler = Unmanaged<HTTP2ClientConnectionHandler>.fromOpaque(userData).takeUnretainedValue()
            handler.onStreamClose(streamID: streamID, errorCode: errorCode)
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks) { _, frame, userData in
            guard let frame, let userData else { return 0 }
            let handler = Unmanaged<HTTP2ClientConnectionHandler>.fromOpaque(userData).takeUnretainedValue()
            // nghttp2 answers most protocol violations itself with GOAWAY(error) and then ends the session.
            if UInt32(frame.pointee.hd.type) == NGHTTP2_GOAWAY.rawValue, frame.pointee.goaway.error_code != 0,
                handler.connectionError == nil
            {
                handler.connectionError = HTTP2ConnectionError.protocolError(
                    "sent GOAWAY with error code \(frame.pointee.goaway.error_code) after a peer protocol violation")
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_not_send_callback(callbacks) { _, frame, libErrorCode, userData in
            guard let frame, let userData else { return 0 }
            let handler = Unmanaged<HTTP2ClientConnectionHandler>.fromOpaque(userData).takeUnretainedValue()
            handler.onFrameNotSent(frame, libErrorCode: libErrorCode)
            return 0
        }
    }

    private func onHeader(
        streamID: Int32, name: UnsafePointer<UInt8>?, nameLength: Int, value: UnsafePointer<UInt8>?,
        valueLength: Int
    ) -> Int32 {
        guard let stream = streams[streamID] else { return 0 }
        stream.headerFields += 1
        guard stream.headerFields <= settings.maxHeaderFields else {
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue
        }
        if nameLength > 0, let name, name[0] == UInt8(ascii: ":") {
            if bytesEqual(name, nameLength, ":status") {
                guard let status = parseDecimal(value, valueLength) else {
                    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue
                }
                // A new response header block (after a 1xx, the final one) replaces what came before.
                stream.status = status
                stream.headers.removeAll(keepingCapacity: true)
            }
            return 0
        }
        stream.headers.append(
            HTTP2Header(String(nghttp2Bytes: name, count: nameLength), String(nghttp2Bytes: value, count: valueLength)))
        return 0
    }

    private func onFrameReceived(_ frame: UnsafePointer<nghttp2_frame>) {
        let header = frame.pointee.hd
        switch UInt32(header.type) {
        case NGHTTP2_DATA.rawValue, NGHTTP2_HEADERS.rawValue:
            guard header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0,
                let stream = streams[header.stream_id], !stream.delivered, stream.status >= 200
            else { return }
            stream.delivered = true
            let response = HTTP2Response(
                status: stream.status, headers: stream.headers, bodyLength: stream.bodyLength, body: stream.body)
            stream.headers = []
            stream.body = nil
            events.append(.response(token: stream.token, response))
        case NGHTTP2_SETTINGS.rawValue:
            guard header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0, let session else { return }
            let peerMax = nghttp2_session_get_remote_settings(
                session.pointer, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)
            if !peerSettingsReceived || peerMax != peerMaxConcurrentStreams {
                peerSettingsReceived = true
                peerMaxConcurrentStreams = peerMax
                events.append(.ready)
            }
        case NGHTTP2_RST_STREAM.rawValue:
            streams[header.stream_id]?.resetCode = frame.pointee.rst_stream.error_code
        case NGHTTP2_GOAWAY.rawValue:
            let goAway = frame.pointee.goaway
            let first = self.goAway == nil
            // A second GOAWAY may lower last-stream-id further; keep the latest.
            self.goAway = (goAway.last_stream_id, goAway.error_code)
            if goAway.error_code != 0, connectionError == nil {
                connectionError = HTTP2ConnectionError.protocolError(
                    "peer sent GOAWAY with error code \(goAway.error_code)")
            }
            if first { events.append(.goAway(errorCode: goAway.error_code)) }
        default:
            break
        }
    }

    private func onDataChunk(streamID: Int32, data: UnsafePointer<UInt8>?, length: Int) {
        guard let stream = streams[streamID] else { return }
        stream.bodyLength += length
        guard collectBodies, let data, length > 0 else { return }
        guard stream.bodyLength <= settings.maxCollectedBodyBytes else {
            if let session {
                _ = nghttp2_submit_rst_stream(
                    session.pointer, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
            }
            return
        }
        if stream.body == nil { stream.body = allocator.buffer(capacity: max(length, 1024)) }
        stream.body?.writeBytes(UnsafeRawBufferPointer(start: data, count: length))
    }

    private func onStreamClose(streamID: Int32, errorCode: UInt32) {
        guard let stream = streams.removeValue(forKey: streamID), !stream.delivered else { return }
        stream.delivered = true
        let failure: HTTP2StreamFailure
        if let resetCode = stream.resetCode {
            failure = .reset(errorCode: resetCode)
        } else if let goAway, streamID > goAway.lastStreamID {
            failure = .refusedByGoAway(lastStreamID: goAway.lastStreamID, errorCode: goAway.errorCode)
        } else {
            failure = .protocolError("stream \(streamID) closed without a complete response (error code \(errorCode))")
        }
        events.append(.failure(token: stream.token, failure))
    }

    private func onFrameNotSent(_ frame: UnsafePointer<nghttp2_frame>, libErrorCode: Int32) {
        let header = frame.pointee.hd
        guard UInt32(header.type) == NGHTTP2_HEADERS.rawValue,
            let stream = streams.removeValue(forKey: header.stream_id), !stream.delivered
        else { return }
        stream.delivered = true
        let failure: HTTP2StreamFailure
        if let goAway {
            failure = .refusedByGoAway(lastStreamID: goAway.lastStreamID, errorCode: goAway.errorCode)
        } else {
            failure = .protocolError("request not sent: \(NGHTTP2Session.describe(Int(libErrorCode)))")
        }
        events.append(.failure(token: stream.token, failure))
    }

    private func readRequestBody(
        streamID: Int32, into destination: UnsafeMutablePointer<UInt8>, length: Int,
        flags: UnsafeMutablePointer<UInt32>
    ) -> Int {
        guard let stream = streams[streamID] else {
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            return 0
        }
        return NGHTTP2Session.provideData(from: &stream.requestBody, into: destination, length: length, flags: flags)
    }
}
