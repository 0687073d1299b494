internal import CNGHTTP2
import NIOCore

/// A complete request (END_STREAM received) as handed to an `HTTP2Responder`.
public struct HTTP2ServerRequest: Sendable {
    public var method: String
    public var scheme: String
    public var authority: String
    public var path: String
    /// Regular headers (and trailers), without pseudo-headers.
    public var headers: [HTTP2Header]
    public var body: ByteBuffer
    public var streamID: Int32

    public init(
        method: String, scheme: String, authority: String, path: String, headers: [HTTP2Header],
        body: ByteBuffer, streamID: Int32
    ) {
        self.method = method
        self.scheme = scheme
        self.authority = authority
        self.path = path
        self.headers = headers
        self.body = body
        self.streamID = streamID
    }
}

/// Called on the connection's event loop once a request is complete (END_STREAM).
public protocol HTTP2Responder: AnyObject {
    func respond(to request: HTTP2ServerRequest, writer: HTTP2ResponseWriter)
}

/// Lets a responder answer now or later, e.g. after a delay scheduled on the event loop.
///
/// Sendable so it can be captured by `eventLoop.scheduleTask`; every method may be called from any thread (off the
/// loop it hops onto it). It holds the connection weakly: once the connection or stream is gone, calls do nothing.
public struct HTTP2ResponseWriter: Sendable {
    public var eventLoop: any EventLoop
    /// The request's stream.
    public let streamID: Int32
    private let connection: NIOLoopBound<HTTP2ServerConnectionHandler.WeakReference>

    init(
        eventLoop: any EventLoop, streamID: Int32,
        connection: NIOLoopBound<HTTP2ServerConnectionHandler.WeakReference>
    ) {
        self.eventLoop = eventLoop
        self.streamID = streamID
        self.connection = connection
    }

    /// Submits the response; sets content-length from `body` unless `headers` has one. No-op if the stream is gone.
    public func respond(status: Int, headers: [HTTP2Header], body: ByteBuffer?) {
        onLoop { $0.submitResponse(streamID: streamID, status: status, headers: headers, body: body) }
    }

    /// RST_STREAM this stream with `errorCode`.
    public func reset(errorCode: UInt32) {
        onLoop { $0.resetStream(streamID: streamID, errorCode: errorCode) }
    }

    /// Abrupt close of the whole connection (fault injection).
    public func closeConnection() {
        onLoop { $0.close(goAway: false) }
    }

    /// Sends GOAWAY(`errorCode`) with last-stream-id `lastStreamID` (default: the last stream the server has seen),
    /// then closes the connection once the streams at or below it are done. Streams above it are refused.
    public func goAway(lastStreamID: Int32? = nil, errorCode: UInt32 = 0) {
        onLoop { $0.sendGoAway(lastStreamID: lastStreamID, errorCode: errorCode) }
    }

    private func onLoop(_ body: @escaping @Sendable (HTTP2ServerConnectionHandler) -> Void) {
        if eventLoop.inEventLoop {
            if let handler = connection.value.handler { body(handler) }
        } else {
            let connection = self.connection
            eventLoop.execute {
                if let handler = connection.value.handler { body(handler) }
            }
        }
    }
}

/// Server side of one HTTP/2 connection on nghttp2.
///
/// Sends the server SETTINGS on channelActive (or on handlerAdded if the channel is already active), parses
/// requests, collects their bodies and calls the responder on END_STREAM. Bad peer input ends the connection with
/// GOAWAY(PROTOCOL_ERROR); nothing the peer sends can crash the process.
public final class HTTP2ServerConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    /// Lets `HTTP2ResponseWriter` reach the handler without keeping it alive.
    final class WeakReference {
        weak var handler: HTTP2ServerConnectionHandler?
        init(_ handler: HTTP2ServerConnectionHandler) { self.handler = handler }
    }

    private final class Stream {
        var method = ""
        var scheme = ""
        var authority = ""
        var path = ""
        var headers: [HTTP2Header] = []
        var headerFields = 0
        var body: ByteBuffer?
        var bodyLength = 0
        var dispatched = false
        var responded = false
        var responseBody: ByteBuffer?
    }

    private let settings: HTTP2Settings
    private let responder: any HTTP2Responder

    private var session: NGHTTP2Session?
    private var context: ChannelHandlerContext?
    private var writerReference: NIOLoopBound<WeakReference>?
    private var allocator = ByteBufferAllocator()
    private var emptyBody: ByteBuffer
    private var streams: [Int32: Stream] = [:]
    private var completed: [Int32] = []
    private var completedCursor = 0
    private var dispatchDepth = 0
    private var headerBlock = HeaderBlockBuilder()
    private var outBuffer: ByteBuffer

    private var closeInitiated = false
    private var channelClosed = false
    private var inSessionCall = false
    private var inReadBurst = false
    private var flushScheduled = false

    public init(settings: HTTP2Settings = .init(), responder: any HTTP2Responder) {
        self.settings = settings
        self.responder = responder
        self.emptyBody = ByteBufferAllocator().buffer(capacity: 0)
        self.outBuffer = ByteBufferAllocator().buffer(capacity: 0)
        self.completed.reserveCapacity(64)
    }

    /// Number of streams the peer has open that have not been closed yet.
    public var openStreams: Int { streams.count }

    /// Graceful: GOAWAY(NO_ERROR) then close once the streams drain (at once if none). Abrupt without `goAway`.
    public func close(goAway: Bool) {
        if goAway {
            sendGoAway(lastStreamID: nil, errorCode: NGHTTP2_NO_ERROR.rawValue)
        } else {
            closeChannel()
        }
    }

    // MARK: Channel events

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.allocator = context.channel.allocator
        self.writerReference = NIOLoopBound(WeakReference(self), eventLoop: context.eventLoop)
        if context.channel.isActive {
            start(context: context)
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        channelClosed = true
        streams.removeAll()
        self.context = nil
    }

    public func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        channelClosed = true
        streams.removeAll()
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
            failConnection()
            return
        }
        dispatchRequests()
        // Normally channelReadComplete flushes; this covers a handler below us that does not forward it.
        if !flushScheduled { scheduleFlush(evenDuringRead: true) }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        inReadBurst = false
        flushNow()
        context.fireChannelReadComplete()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closeChannel()
    }

    // MARK: Responses (through HTTP2ResponseWriter)

    func submitResponse(streamID: Int32, status: Int, headers: [HTTP2Header], body: ByteBuffer?) {
        guard let session, !channelClosed, let stream = streams[streamID], !stream.responded else { return }
        stream.responded = true

        headerBlock.reset()
        headerBlock.append(name: ":status", decimal: status)
        var hasContentLength = false
        for header in headers {
            if !hasContentLength && header.name.utf8.count == 14 && header.name == "content-length" {
                hasContentLength = true
            }
            headerBlock.append(name: header.name, value: header.value)
        }
        let bodyBytes = body?.readableBytes ?? 0
        // 204 and 304 must not carry content-length (RFC 9110 8.6).
        if !hasContentLength && status != 204 && status != 304 { headerBlock.append(name: "content-length", decimal: bodyBytes) }

        let rv: Int32
        if bodyBytes > 0 {
            stream.responseBody = body
            var provider = nghttp2_data_provider()
            provider.read_callback = { _, streamID, buffer, length, flags, _, userData in
                guard let userData, let buffer, let flags else { return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
                let handler = Unmanaged<HTTP2ServerConnectionHandler>.fromOpaque(userData).takeUnretainedValue()
                return handler.readResponseBody(streamID: streamID, into: buffer, length: length, flags: flags)
            }
            rv = headerBlock.withNV { nv, count in
                withUnsafePointer(to: &provider) { nghttp2_submit_response(session.pointer, streamID, nv, count, $0) }
            }
        } else {
            rv = headerBlock.withNV { nv, count in
                nghttp2_submit_response(session.pointer, streamID, nv, count, nil)
            }
        }
        if rv != 0 {
            // The stream cannot take a response any more (e.g. it is closing); make sure it does not linger.
            _ = nghttp2_submit_rst_stream(
                session.pointer, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, NGHTTP2_INTERNAL_ERROR.rawValue)
        }
        scheduleFlush()
    }

    func resetStream(streamID: Int32, errorCode: UInt32) {
        guard let session, !channelClosed, streams[streamID] != nil else { return }
        _ = nghttp2_submit_rst_stream(session.pointer, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, errorCode)
        scheduleFlush()
    }

    func sendGoAway(lastStreamID: Int32?, errorCode: UInt32) {
        guard let session, !channelClosed else { return }
        let last = lastStreamID ?? nghttp2_session_get_last_proc_stream_id(session.pointer)
        _ = nghttp2_submit_goaway(session.pointer, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, errorCode, nil, 0)
        scheduleFlush()
    }

    // MARK: Internals

    private func start(context: ChannelHandlerContext) {
        guard session == nil, !channelClosed else { return }
        guard
            let session = NGHTTP2Session(
                isServer: true,
                userData: Unmanaged.passUnretained(self).toOpaque(),
                installCallbacks: Self.installCallbacks)
        else {
            closeChannel()
            return
        }
        self.session = session
        guard session.submitSettings(settings, isServer: true) == 0 else {
            closeChannel()
            return
        }
        flushNow()
    }

    private func dispatchRequests() {
        dispatchDepth += 1
        while completedCursor < completed.count {
            let streamID = completed[completedCursor]
            completedCursor += 1
            guard !channelClosed, let stream = streams[streamID], !stream.dispatched,
                let writerReference, let context
            else { continue }
            stream.dispatched = true
            let request = HTTP2ServerRequest(
                method: stream.method, scheme: stream.scheme, authority: stream.authority, path: stream.path,
                headers: stream.headers, body: stream.body ?? emptyBody, streamID: streamID)
            stream.headers = []
            stream.body = nil
            let writer = HTTP2ResponseWriter(
                eventLoop: context.eventLoop, streamID: streamID, connection: writerReference)
            responder.respond(to: request, writer: writer)
        }
        dispatchDepth -= 1
        if dispatchDepth == 0 {
            completed.removeAll(keepingCapacity: true)
            completedCursor = 0
        }
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
                closeChannel()
                return
            }
            if outBuffer.readableBytes > 0 {
                if session.isFinished {
                    let written = context.writeAndFlush(wrapOutboundOut(outBuffer))
                    written.assumeIsolated().whenComplete { _ in self.closeChannel() }
                    return
                }
                context.writeAndFlush(wrapOutboundOut(outBuffer), promise: nil)
            }
        }
        if session.isFinished {
            closeChannel()
        }
    }

    private func closeChannel() {
        guard !closeInitiated, let context else { return }
        closeInitiated = true
        context.close(promise: nil)
    }

    /// The peer's bytes were fatal to nghttp2: GOAWAY(PROTOCOL_ERROR), then close.
    private func failConnection() {
        if let session, let context, !channelClosed {
            _ = nghttp2_session_terminate_session(session.pointer, NGHTTP2_PROTOCOL_ERROR.rawValue)
            var goAwayBytes = allocator.buffer(capacity: 64)
            inSessionCall = true
            let rv = session.drainOutput(into: &goAwayBytes)
            inSessionCall = false
            if rv >= 0, goAwayBytes.readableBytes > 0 {
                let written = context.writeAndFlush(wrapOutboundOut(goAwayBytes))
                written.assumeIsolated().whenComplete { _ in self.closeChannel() }
                return
            }
        }
        closeChannel()
    }

    // MARK: nghttp2 callbacks (called only from inside mem_recv / mem_send)

    private static func installCallbacks(_ callbacks: OpaquePointer) {
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, userData in
            guard let frame, let userData else { return 0 }
            let handler = Unmanaged<HTTP2ServerConnectionHandler>.fromOpaque(userData).takeUnretainedValue()
            if UInt32(frame.pointee.hd.type) == NGHTTP2_HEADERS.rawValue,
                frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST
            {
                handler.streams[frame.pointee.hd.stream_id] = Stream()
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) {
            _, frame, name, nameLength, value, valueLength, _, userData in
            guard let frame, let userData else { return 0 }
            let handler = Unmanaged<HTTP2ServerConnectionHandler>.fromOpaque(userData).takeUnretainedValue()
            return handler.onHeader(
                streamID: frame.pointee.hd.stream_id, name: name, nameLength: nameLength, value: value,
                valueLength: valueLength)
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
            guard let frame, let userData else { return 0 }
            let handler = Unmanaged<HTTP2ServerConnectionHandler>.fromOpaque(userData).takeUnretainedValue()
            let header = frame.pointee.hd
            let type = UInt32(header.type)
            if type == NGHTTP2_HEADERS.rawValue || type == NGHTTP2_DATA.rawValue,
                header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0,
                let stream = handler.streams[header.stream_id], !stream.dispatched
            {
                handler.completed.append(header.stream_id)
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) {
            _, _, streamID, data, length, userData in
            guard let userData else { return 0 }
            let handler = Unmanaged<HTTP2ServerConnectionHandler>.fromOpaque(userData).takeUnretainedValue()
            handler.onDataChunk(streamID: streamID, data: data, length: length)
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, _, userData in
            guard let userData else { return 0 }
            let handler = Unmanaged<HTTP2ServerConnectionHandler>.fromOpaque(userData).takeUnretainedValue()
            handler.streams.removeValue(forKey: streamID)
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
            // nghttp2 has already checked that pseudo-headers are known, unique and come first.
            let text = String(nghttp2Bytes: value, count: valueLength)
            if bytesEqual(name, nameLength, ":method") {
                stream.method = text
            } else if bytesEqual(name, nameLength, ":path") {
                stream.path = text
            } else if bytesEqual(name, nameLength, ":scheme") {
                stream.scheme = text
            } else if bytesEqual(name, nameLength, ":authority") {
                stream.authority = text
            }
            return 0
        }
        stream.headers.append(
            HTTP2Header(String(nghttp2Bytes: name, count: nameLength), String(nghttp2Bytes: value, count: valueLength)))
        return 0
    }

    private func onDataChunk(streamID: Int32, data: UnsafePointer<UInt8>?, length: Int) {
        guard let stream = streams[streamID], let data, length > 0 else { return }
        stream.bodyLength += length
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

    private func readResponseBody(
        streamID: Int32, into destination: UnsafeMutablePointer<UInt8>, length: Int,
        flags: UnsafeMutablePointer<UInt32>
    ) -> Int {
        guard let stream = streams[streamID] else {
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            return 0
        }
        return NGHTTP2Session.provideData(from: &stream.responseBody, into: destination, length: length, flags: flags)
    }
}
