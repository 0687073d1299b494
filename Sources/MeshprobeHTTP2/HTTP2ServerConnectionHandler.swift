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

    /// Submits a response that ends with trailers (gRPC): HEADERS, the body's DATA without END_STREAM, then
    /// `trailers` in a HEADERS frame with END_STREAM. With no trailers, the last frame of the headers or the body
    /// ends the stream (a gRPC trailers-only response: HEADERS with END_STREAM). Adds no content-length. No-op if the
    /// stream is gone.
    public func respond(status: Int, headers: [HTTP2Header], body: ByteBuffer?, trailers: [HTTP2Header]) {
        onLoop { $0.submitResponse(streamID: streamID, status: status, headers: headers, body: body, trailers: trailers) }
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
        /// Sent once `responseBody` is used up, in place of END_STREAM on its last DATA frame.
        var responseTrailers: [HTTP2Header]?
    }

    private let settings: HTTP2Settings
    private let responder: any HTTP2Responder

    private let connection: NGHTTP2Connection
    private var writerReference: NIOLoopBound<WeakReference>?
    private var emptyBody: ByteBuffer
    private var streams: [Int32: Stream] = [:]
    /// Streams whose request is complete, to be handed to the responder once nghttp2 has returned.
    private let completed = DeliveryQueue<Int32>()
    private var headerBlock = HeaderBlockBuilder()

    public init(settings: HTTP2Settings = .init(), responder: any HTTP2Responder) {
        self.settings = settings
        self.responder = responder
        self.emptyBody = ByteBufferAllocator().buffer(capacity: 0)
        self.connection = NGHTTP2Connection(isServer: true, settings: settings)
        self.connection.owner = self
    }

    /// Number of streams the peer has open that have not been closed yet.
    public var openStreams: Int { streams.count }

    /// Graceful: GOAWAY(NO_ERROR) then close once the streams drain (at once if none). Abrupt without `goAway`.
    public func close(goAway: Bool) {
        connection.close(graceful: goAway)
    }

    // MARK: Channel events

    public func handlerAdded(context: ChannelHandlerContext) {
        self.writerReference = NIOLoopBound(WeakReference(self), eventLoop: context.eventLoop)
        connection.handlerAdded(context: context)
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        connection.handlerRemoved()
    }

    public func channelActive(context: ChannelHandlerContext) {
        connection.channelActive()
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        connection.channelInactive()
        context.fireChannelInactive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection.channelRead(unwrapInboundIn(data))
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        connection.channelReadComplete()
        context.fireChannelReadComplete()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        connection.errorCaught(error)
    }

    // MARK: Responses (through HTTP2ResponseWriter)

    func submitResponse(streamID: Int32, status: Int, headers: [HTTP2Header], body: ByteBuffer?) {
        guard let session = connection.openSession, let stream = streams[streamID], !stream.responded else { return }
        stream.responded = true

        headerBlock.reset()
        headerBlock.append(name: ":status", decimal: status)
        let hasContentLength = headerBlock.append(headers)
        let bodyBytes = body?.readableBytes ?? 0
        // 204 and 304 must not carry content-length (RFC 9110 8.6).
        if !hasContentLength && status != 204 && status != 304 { headerBlock.append(name: "content-length", decimal: bodyBytes) }
        if bodyBytes > 0 { stream.responseBody = body }
        if session.submitResponse(streamID: streamID, &headerBlock, hasBody: bodyBytes > 0) != 0 {
            // The stream cannot take a response any more (e.g. it is closing); make sure it does not linger.
            stream.responseBody = nil
            connection.resetStream(streamID, errorCode: NGHTTP2_INTERNAL_ERROR.rawValue)
        }
        connection.scheduleFlush()
    }

    /// `HTTP2ResponseWriter.respond(status:headers:body:trailers:)`: no content-length; non-empty trailers go
    /// through the data provider, which submits them once the body is used up (`readBody`).
    func submitResponse(streamID: Int32, status: Int, headers: [HTTP2Header], body: ByteBuffer?, trailers: [HTTP2Header]) {
        guard let session = connection.openSession, let stream = streams[streamID], !stream.responded else { return }
        stream.responded = true

        headerBlock.reset()
        headerBlock.append(name: ":status", decimal: status)
        _ = headerBlock.append(headers)
        if let body, body.readableBytes > 0 { stream.responseBody = body }
        if !trailers.isEmpty { stream.responseTrailers = trailers }
        if session.submitResponse(streamID: streamID, &headerBlock, hasBody: stream.responseBody != nil || !trailers.isEmpty) != 0 {
            stream.responseBody = nil
            stream.responseTrailers = nil
            connection.resetStream(streamID, errorCode: NGHTTP2_INTERNAL_ERROR.rawValue)
        }
        connection.scheduleFlush()
    }

    func resetStream(streamID: Int32, errorCode: UInt32) {
        guard streams[streamID] != nil else { return }
        connection.resetStream(streamID, errorCode: errorCode)
        connection.scheduleFlush()
    }

    func sendGoAway(lastStreamID: Int32?, errorCode: UInt32) {
        guard let session = connection.openSession else { return }
        let last = lastStreamID ?? nghttp2_session_get_last_proc_stream_id(session.pointer)
        _ = nghttp2_submit_goaway(session.pointer, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, errorCode, nil, 0)
        connection.scheduleFlush()
    }
}

// MARK: - Connection events

extension HTTP2ServerConnectionHandler: NGHTTP2ConnectionOwner {
    /// Hands every request completed in the last session call to the responder.
    func deliverPendingEvents() {
        completed.drain { streamID in
            guard connection.state.isOpen, let stream = streams[streamID], !stream.dispatched,
                let writerReference, let context = connection.context
            else { return }
            stream.dispatched = true
            let request = HTTP2ServerRequest(
                method: stream.method, scheme: stream.scheme, authority: stream.authority, path: stream.path,
                headers: stream.headers, body: stream.body ?? emptyBody, streamID: streamID)
            stream.headers = []
            stream.body = nil
            let writer = HTTP2ResponseWriter(eventLoop: context.eventLoop, streamID: streamID, connection: writerReference)
            responder.respond(to: request, writer: writer)
        }
    }

    func connectionFailed(_ error: HTTP2ConnectionError) {
        // Requests completed in the failing read are dropped with their streams.
        streams.removeAll()
        completed.drain { _ in }
    }

    func connectionClosed(error: (any Error)?) {
        streams.removeAll()
    }

    // MARK: nghttp2 callbacks (called only from inside mem_recv / mem_send)

    func onBeginHeaders(streamID: Int32, isRequest: Bool) {
        if isRequest { streams[streamID] = Stream() }
    }

    func onFrameReceived(_ frame: UnsafePointer<nghttp2_frame>) {
        let header = frame.pointee.hd
        let type = UInt32(header.type)
        if type == NGHTTP2_HEADERS.rawValue || type == NGHTTP2_DATA.rawValue,
            header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0,
            let stream = streams[header.stream_id], !stream.dispatched
        {
            completed.append(header.stream_id)
        }
    }

    func onStreamClose(streamID: Int32, errorCode: UInt32) {
        streams.removeValue(forKey: streamID)
    }

    func onHeader(
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

    func onDataChunk(streamID: Int32, data: UnsafePointer<UInt8>?, length: Int) {
        guard let stream = streams[streamID], let data, length > 0 else { return }
        stream.bodyLength += length
        connection.collect(data, length: length, into: &stream.body, total: stream.bodyLength, streamID: streamID)
    }

    func readBody(
        streamID: Int32, into destination: UnsafeMutablePointer<UInt8>, length: Int,
        flags: UnsafeMutablePointer<UInt32>
    ) -> Int {
        guard let stream = streams[streamID] else {
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            return 0
        }
        let count = NGHTTP2Session.provideData(from: &stream.responseBody, into: destination, length: length, flags: flags)
        if stream.responseBody == nil, let trailers = stream.responseTrailers {
            // nghttp2's rule: the last DATA frame leaves the stream open, and the trailers are submitted from here.
            stream.responseTrailers = nil
            flags.pointee |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
            guard let pointer = connection.sessionPointer else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
            headerBlock.reset()
            _ = headerBlock.append(trailers)
            if NGHTTP2Session.submitTrailer(pointer, streamID: streamID, &headerBlock) != 0 {
                return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
            }
        }
        return count
    }
}
