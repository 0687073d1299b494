internal import CNGHTTP2
import Glibc
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
    /// A DATA chunk of a request sent with `streamingData: true`, as it arrives (a server-streaming gRPC call reads
    /// its messages before the stream ends); the final `http2Response` then has no body. Optional.
    func http2Data(_ connection: HTTP2ClientConnectionHandler, token: UInt64, data: ByteBuffer)
    /// Everything collected from one read (or one send) has been delivered: the responses and failures since the
    /// last call arrived together. Optional (a default does nothing).
    func http2DeliveryEnded(_ connection: HTTP2ClientConnectionHandler)
    /// Requests that write coalescing held (see `HTTP2WriteCoalescer`) have just been written: `tokens` are the
    /// requests submitted since the previous write, so a load generator can time them from now. Optional.
    func http2HeldRequestsWritten(_ connection: HTTP2ClientConnectionHandler, tokens: [UInt64])
    /// The connection is gone.
    ///
    /// Called exactly once, after every in-flight stream got `http2StreamFailed(.connectionLost)` or a response.
    func http2ConnectionClosed(_ connection: HTTP2ClientConnectionHandler, error: (any Error)?)
}

extension HTTP2ClientDelegate {
    public func http2Data(_ connection: HTTP2ClientConnectionHandler, token: UInt64, data: ByteBuffer) {}
    public func http2DeliveryEnded(_ connection: HTTP2ClientConnectionHandler) {}
    public func http2HeldRequestsWritten(_ connection: HTTP2ClientConnectionHandler, tokens: [UInt64]) {}
}

/// Client side of one HTTP/2 connection on nghttp2. All methods must be called on the channel's event loop.
///
/// Sits on a plaintext byte stream (h2c with prior knowledge) or above a TLS handler; it only reads and writes
/// `ByteBuffer`s. The delegate is held strongly until `http2ConnectionClosed` has been delivered, then released.
public final class HTTP2ClientConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    /// One request in flight, updated in place by the nghttp2 callbacks, which find it through nghttp2's stream
    /// user data. Reused for later requests once its stream has closed (see `StreamTable`).
    fileprivate final class Stream {
        var token: UInt64 = 0
        var streamID: Int32 = 0
        /// Between `StreamTable.open` and `StreamTable.release`.
        var isOpen = false
        var requestBody: ByteBuffer?
        var status = 0
        var headers: [HTTP2Header] = []
        var headerFields = 0
        var bodyLength = 0
        var body: ByteBuffer?
        var resetCode: UInt32?
        var delivered = false
        /// DATA goes to the delegate chunk by chunk instead of into `body` (only on a handler that collects bodies).
        var streamsData = false
    }

    /// Delegate calls collected while nghttp2 is running, delivered once it has returned.
    private enum Event {
        case ready
        case response(token: UInt64, HTTP2Response)
        case data(token: UInt64, ByteBuffer)
        case failure(token: UInt64, HTTP2StreamFailure)
        case goAway(errorCode: UInt32)
    }

    private let settings: HTTP2Settings
    private let collectBodies: Bool
    /// Without `collectBodies`: keep this many bytes from the start of the body of a response whose status is 400
    /// or above (a load generator reads a proxy's error page to tell why it refused).
    private let errorBodyPrefix: Int
    /// Lower-case name prefixes of the response headers to hand over; nil hands over all of them.
    private let keepHeaderPrefixes: [[UInt8]]?
    /// The first bytes of `keepHeaderPrefixes` as a 256-bit set: most header names are skipped on their first byte.
    private let keptFirstBytes: ByteSet
    /// Kept headers whose names are known in advance (see `init`), and the last value seen under each.
    private var interned: InternedHeaders
    /// How many headers the last response with any kept: the next response's array is sized for as many.
    private var keptPerResponse = 4
    private var delegate: (any HTTP2ClientDelegate)?

    private let connection: NGHTTP2Connection
    private var streams = StreamTable()
    private var headerBlock = HeaderBlockBuilder()
    /// The stream the last header callback was for: a response's header fields arrive one callback each, all
    /// for the same stream, so this skips a dictionary lookup per field.
    /// Unmanaged: the stream table owns every stream object for the handler's lifetime.
    private var headerStream: (id: Int32, stream: Unmanaged<Stream>)?
    /// The request `headerBlock` holds, so that an identical next request (a load generator's usual case) is
    /// submitted without encoding its headers again. Comparing is cheap: equal strings and arrays that share storage
    /// compare by identity.
    private var encodedRequest: (method: String, scheme: String, authority: String, path: String, headers: [HTTP2Header], bodyBytes: Int?)?
    private let events = DeliveryQueue<Event>()
    /// Write coalescing across read bursts (see `HTTP2WriteCoalescer`); nil: every burst sends what it produced.
    private let coalescer: HTTP2WriteCoalescer?
    /// Requests of earlier read bursts are held (see `HTTP2WriteCoalescer`), waiting for a burst that does not hold
    /// or for the coalescer's deadline.
    private var holdingWrites = false
    /// Counted among the coalescer's open connections (from handlerAdded to channelInactive or handlerRemoved).
    private var countedByCoalescer = false
    /// With a coalescer: the tokens submitted since nghttp2's output was last drained, and whether a burst held
    /// them (then the delegate hears when they are written).
    private var unwrittenTokens: [UInt64] = []
    private var unwrittenHeld = false

    /// - Parameter keepingHeadersWithPrefixes: when given, only response headers whose names start with one of
    ///   these (lower-case) prefixes are turned into `HTTP2Header` values; the rest are skipped without copying
    ///   (a load generator needs only the few headers that identify the server).
    /// - Parameter keepingErrorBodyPrefix: bytes kept from the start of the body of 4xx/5xx responses when bodies
    ///   are not collected.
    /// - Parameter writeCoalescer: the event loop's coalescer, to send the requests of consecutive read bursts together
    ///   when responses arrive in quick succession; nil sends after every read burst.
    /// - Parameter internedNames: kept header names expected on most responses (lower-case). A header of one of these
    ///   names is handed over with that very `String` as its name, and with the `String` of the last value seen under
    ///   that name when its value has not changed: no allocation per header, and the receiver's comparisons of equal
    ///   strings end at their shared storage; its index there is the header's `known`. A name no kept prefix covers is
    ///   not handed over at all.
    public init(settings: HTTP2Settings = .init(), collectBodies: Bool = false,
                keepingHeadersWithPrefixes: [String]? = nil, keepingErrorBodyPrefix: Int = 0, internedNames: [String] = [],
                writeCoalescer: HTTP2WriteCoalescer? = nil, delegate: any HTTP2ClientDelegate) {
        self.settings = settings
        self.coalescer = writeCoalescer
        self.collectBodies = collectBodies
        self.errorBodyPrefix = keepingErrorBodyPrefix
        self.keepHeaderPrefixes = keepingHeadersWithPrefixes.map { $0.map { Array($0.utf8) } }
        // An empty prefix keeps every name: then every first byte passes the filter.
        let prefixes = keepHeaderPrefixes ?? []
        self.keptFirstBytes = ByteSet(prefixes.contains { $0.isEmpty } ? Array(0...255) : prefixes.compactMap(\.first))
        self.interned = InternedHeaders(names: internedNames, kept: { name in
            prefixes.isEmpty && keepingHeadersWithPrefixes == nil || prefixes.contains { Array(name.utf8).starts(with: $0) }
        })
        self.delegate = delegate
        self.connection = NGHTTP2Connection(isServer: false, settings: settings)
        self.connection.owner = self
        self.connection.reportsDrains = writeCoalescer != nil
    }

    // MARK: Public API

    /// Streams that can be opened now: min(peer SETTINGS_MAX_CONCURRENT_STREAMS, local cap) minus open streams.
    ///
    /// 0 before the connection is ready, after GOAWAY, or while closing.
    public var availableStreams: Int {
        guard let peerLimit = connection.state.peerStreamLimit else { return 0 }
        let cap = min(Int(peerLimit), Int(settings.maxConcurrentStreams))
        return max(0, cap - streams.openCount)
    }

    /// Active, preface sent, no GOAWAY received, not closing.
    public var isUsable: Bool {
        connection.state.isUsable
    }

    /// Submits one request; returns false (and does not call the delegate) if no stream can be opened now.
    ///
    /// `token` is handed back in exactly one `http2Response` or `http2StreamFailed`. Bytes go out at the end of the
    /// current read burst, on `flush()`, or at the latest on the next event loop tick.
    public func send(_ request: HTTP2Request, token: UInt64) -> Bool {
        submit(request, token: token, streamingData: false)
    }

    /// Submits one request whose response body is handed over as it arrives (`http2Data`), for a handler made with
    /// `collectBodies: true`; otherwise as `send`. The load engine's requests never take this path.
    public func send(_ request: HTTP2Request, token: UInt64, streamingData: Bool) -> Bool {
        submit(request, token: token, streamingData: streamingData && collectBodies)
    }

    @inline(__always)
    private func submit(_ request: HTTP2Request, token: UInt64, streamingData: Bool) -> Bool {
        guard availableStreams > 0, let session = connection.openSession else { return false }

        var body = request.body
        let bodyBytes = body?.readableBytes
        if let last = encodedRequest, last.bodyBytes == bodyBytes, last.path == request.path, last.method == request.method,
           last.authority == request.authority, last.scheme == request.scheme, last.headers == request.headers {
            // Same request as the last one: the encoded block is still in headerBlock.
        } else {
            headerBlock.reset()
            headerBlock.append(name: ":method", value: request.method)
            headerBlock.append(name: ":scheme", value: request.scheme)
            headerBlock.append(name: ":authority", value: request.authority)
            headerBlock.append(name: ":path", value: request.path)
            let hasContentLength = headerBlock.append(request.headers)
            if let bodyBytes, !hasContentLength { headerBlock.append(name: "content-length", decimal: bodyBytes) }
            encodedRequest = (request.method, request.scheme, request.authority, request.path, request.headers, bodyBytes)
        }
        if bodyBytes == 0 { body = nil }
        let stream = streams.open(token: token, requestBody: body)
        if streamingData { stream.streamsData = true }
        let streamID = session.submitRequest(&headerBlock, hasBody: body != nil,
                                             streamUserData: Unmanaged.passUnretained(stream).toOpaque())
        guard streamID > 0 else {
            streams.release(stream)
            return false
        }
        stream.streamID = streamID
        connection.submittedSinceFlush += 1
        if coalescer != nil { unwrittenTokens.append(token) }
        connection.scheduleFlush()
        return true
    }

    /// Gives up the request of `token`: its stream is reset with CANCEL (RST_STREAM), the other streams go on, and
    /// the delegate hears nothing more of it. False when `token` is not in flight (answered or failed already).
    ///
    /// Linear in the streams made so far (at most the concurrent-stream cap): meant for timeouts, not every request.
    public func cancel(token: UInt64) -> Bool {
        guard let stream = streams.openStream(withToken: token), !stream.delivered else { return false }
        stream.delivered = true
        connection.resetStream(stream.streamID, errorCode: NGHTTP2_CANCEL.rawValue)
        connection.scheduleFlush()
        return true
    }

    /// Sends everything nghttp2 has pending, in one ByteBuffer and one writeAndFlush.
    public func flush() {
        connection.flush()
    }

    /// Sends flushed bytes to `writer` by a direct call instead of `writeAndFlush` through the pipeline: for a TLS
    /// handler right below this one (one pipeline hop less per write). Dropped when this handler is removed.
    public func writeDirectly(through writer: @escaping (ByteBuffer) -> Void) {
        connection.directWriter = writer
    }

    /// Bytes from the handler right below, handed over by a direct call: what `channelRead` does.
    public func receive(_ buffer: ByteBuffer) {
        connection.channelRead(buffer)
    }

    /// Graceful close: GOAWAY(NO_ERROR), then close once the in-flight streams are done (at once if none).
    ///
    /// With `goAway: false` the channel is closed right away and in-flight streams fail with `.connectionLost`.
    public func close(goAway: Bool) {
        connection.close(graceful: goAway)
    }

    // MARK: Channel events

    public func handlerAdded(context: ChannelHandlerContext) {
        connection.handlerAdded(context: context)
        if context.channel.isActive { countInCoalescer() }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        connection.handlerRemoved()
        uncountFromCoalescer()
    }

    public func channelActive(context: ChannelHandlerContext) {
        countInCoalescer()
        connection.channelActive()
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        uncountFromCoalescer()
        connection.channelInactive()
        context.fireChannelInactive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection.channelRead(unwrapInboundIn(data))
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        connection.channelReadComplete(holdingWrites: shouldHoldWrites())
        context.fireChannelReadComplete()
    }

    /// Whether this read burst's requests wait for a later burst (see `HTTP2WriteCoalescer`): it submitted requests,
    /// and the coalescer allows a hold with the requests still in flight besides them.
    private func shouldHoldWrites() -> Bool {
        guard let coalescer else { return false }
        let submitted = connection.submittedSinceFlush
        guard submitted > 0, connection.openSession != nil,
              coalescer.mayHold(othersInFlight: streams.openCount - submitted) else {
            // Sent now, with whatever earlier bursts held.
            holdingWrites = false
            return false
        }
        unwrittenHeld = true
        if !holdingWrites {
            holdingWrites = true
            coalescer.hold(self)
        }
        return true
    }

    private func countInCoalescer() {
        guard let coalescer, !countedByCoalescer else { return }
        countedByCoalescer = true
        coalescer.connectionOpened()
    }

    private func uncountFromCoalescer() {
        guard countedByCoalescer else { return }
        countedByCoalescer = false
        coalescer?.connectionClosed()
    }

    /// The coalescer's deadline: send what the last read burst held (nothing if a later burst already sent it).
    func sendHeldRequests() {
        guard holdingWrites else { return }
        holdingWrites = false
        guard connection.openSession != nil else { return }
        connection.flush()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        connection.errorCaught(error)
    }
}

// MARK: - Connection events

extension HTTP2ClientConnectionHandler: NGHTTP2ConnectionOwner {
    func outputDrained() {
        guard !unwrittenTokens.isEmpty else { return }
        if unwrittenHeld {
            unwrittenHeld = false
            let tokens = unwrittenTokens
            unwrittenTokens.removeAll(keepingCapacity: true)
            delegate?.http2HeldRequestsWritten(self, tokens: tokens)
        } else {
            unwrittenTokens.removeAll(keepingCapacity: true)
        }
    }

    func deliverPendingEvents() {
        guard !events.isEmpty else { return }
        events.drain { event in
            guard let delegate else { return }
            switch event {
            case .ready:
                delegate.http2ConnectionReady(self)
            case .response(let token, let response):
                delegate.http2Response(self, token: token, response: response)
            case .data(let token, let data):
                delegate.http2Data(self, token: token, data: data)
            case .failure(let token, let failure):
                delegate.http2StreamFailed(self, token: token, failure: failure)
            case .goAway(let errorCode):
                delegate.http2GoAwayReceived(self, errorCode: errorCode)
            }
        }
        delegate?.http2DeliveryEnded(self)
    }

    func connectionFailed(_ error: HTTP2ConnectionError) {
        let message: String
        switch error {
        case .protocolError(let text): message = text
        }
        failAllStreams(with: .protocolError(message))
    }

    func connectionClosed(error: (any Error)?) {
        deliverPendingEvents()
        failAllStreams(with: .connectionLost)
        let delegate = self.delegate
        self.delegate = nil
        delegate?.http2ConnectionClosed(self, error: error)
    }

    private func failAllStreams(with failure: HTTP2StreamFailure) {
        for stream in streams.openStreams.sorted(by: { $0.streamID < $1.streamID }) {
            if !stream.delivered {
                stream.delivered = true
                events.append(.failure(token: stream.token, failure))
            }
            detach(stream)
            streams.release(stream)
        }
        headerStream = nil
        deliverPendingEvents()
    }

    /// The open stream `streamID`, from nghttp2's stream user data, unretained.
    ///
    /// The per-response callbacks use it through `_withUnsafeGuaranteedRef`: no retain and release per callback
    /// (the stream table owns every stream object for the handler's lifetime).
    @inline(__always)
    private func unmanagedStream(_ streamID: Int32) -> Unmanaged<Stream>? {
        guard let session = connection.sessionPointer,
              let raw = nghttp2_session_get_stream_user_data(session, streamID) else { return nil }
        return Unmanaged<Stream>.fromOpaque(raw)
    }

    /// The open stream `streamID`, from nghttp2's stream user data.
    @inline(__always)
    private func lookUpStream(_ streamID: Int32) -> Stream? {
        unmanagedStream(streamID)?.takeUnretainedValue()
    }

    /// The stream `streamID` as it closes (or its HEADERS could not be sent): detached from nghttp2 and returned
    /// to the table, still readable until the next `send`. Unretained, like `unmanagedStream`.
    private func closedStream(_ streamID: Int32) -> Unmanaged<Stream>? {
        if headerStream?.id == streamID { headerStream = nil }
        let stream: Unmanaged<Stream>
        if let found = unmanagedStream(streamID) {
            stream = found
            found._withUnsafeGuaranteedRef { detach($0) }
        } else if let found = streams.openStream(withID: streamID) {
            // HEADERS that never left: nghttp2 never opened the stream, so it holds no user data for it.
            stream = Unmanaged.passUnretained(found)
        } else {
            return nil
        }
        stream._withUnsafeGuaranteedRef { streams.release($0) }
        return stream
    }

    /// Clears nghttp2's pointer to `stream`, whose object is about to be reused.
    private func detach(_ stream: Stream) {
        guard stream.streamID > 0, let session = connection.sessionPointer else { return }
        _ = nghttp2_session_set_stream_user_data(session, stream.streamID, nil)
    }

    // MARK: nghttp2 callbacks (called only from inside mem_recv / mem_send)

    func onHeader(
        streamID: Int32, name: UnsafePointer<UInt8>?, nameLength: Int, value: UnsafePointer<UInt8>?,
        valueLength: Int
    ) -> Int32 {
        let unmanaged: Unmanaged<Stream>
        if let cached = headerStream, cached.id == streamID {
            unmanaged = cached.stream
        } else {
            guard let found = lookUpStream(streamID) else { return 0 }
            unmanaged = Unmanaged.passUnretained(found)
            headerStream = (streamID, unmanaged)
        }
        return unmanaged._withUnsafeGuaranteedRef {
            onHeader(of: $0, name: name, nameLength: nameLength, value: value, valueLength: valueLength)
        }
    }

    private func onHeader(
        of stream: Stream, name: UnsafePointer<UInt8>?, nameLength: Int, value: UnsafePointer<UInt8>?, valueLength: Int
    ) -> Int32 {
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
                if !stream.headers.isEmpty { stream.headers.removeAll(keepingCapacity: true) }
            }
            return 0
        }
        // The array leaves with the response: sized once for as many headers as the last response kept, instead of
        // growing 1, 2, 4, 8, 16 (an allocation each) for a response with the echo's 14 stamps.
        // An interned name is a kept one (see `init`): no prefix test for it.
        if let header = interned.header(name: name, nameLength: nameLength, value: value, valueLength: valueLength) {
            if stream.headers.capacity == 0 { stream.headers.reserveCapacity(keptPerResponse) }
            stream.headers.append(header)
            return 0
        }
        if let prefixes = keepHeaderPrefixes {
            guard let name, nameLength > 0, keptFirstBytes.contains(name[0]), Self.hasPrefix(name, nameLength, prefixes) else { return 0 }
        }
        if stream.headers.capacity == 0 { stream.headers.reserveCapacity(keptPerResponse) }
        stream.headers.append(
            HTTP2Header(String(nghttp2Bytes: name, count: nameLength), String(nghttp2Bytes: value, count: valueLength)))
        return 0
    }

    private static func hasPrefix(_ name: UnsafePointer<UInt8>?, _ length: Int, _ prefixes: [[UInt8]]) -> Bool {
        guard let name else { return false }
        for prefix in prefixes where prefix.count <= length {
            var i = 0
            while i < prefix.count && name[i] == prefix[i] { i += 1 }
            if i == prefix.count { return true }
        }
        return false
    }

    func onFrameReceived(_ frame: UnsafePointer<nghttp2_frame>) {
        let header = frame.pointee.hd
        switch UInt32(header.type) {
        case NGHTTP2_DATA.rawValue, NGHTTP2_HEADERS.rawValue:
            guard header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0,
                let unmanaged = unmanagedStream(header.stream_id)
            else { return }
            unmanaged._withUnsafeGuaranteedRef { stream in
                guard !stream.delivered, stream.status >= 200 else { return }
                stream.delivered = true
                if !stream.headers.isEmpty { keptPerResponse = stream.headers.count }
                let response = HTTP2Response(
                    status: stream.status, headers: stream.headers, bodyLength: stream.bodyLength, body: stream.body)
                stream.headers = []
                stream.body = nil
                events.append(.response(token: stream.token, response))
            }
        case NGHTTP2_SETTINGS.rawValue:
            guard header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0, let session = connection.session else { return }
            let peerMax = nghttp2_session_get_remote_settings(session.pointer, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)
            if case .notifyReady = connection.state.peerSettingsReceived(maxConcurrentStreams: peerMax) {
                events.append(.ready)
            }
        case NGHTTP2_RST_STREAM.rawValue:
            lookUpStream(header.stream_id)?.resetCode = frame.pointee.rst_stream.error_code
        case NGHTTP2_GOAWAY.rawValue:
            let goAway = frame.pointee.goaway
            let action = connection.state.goAwayReceived(
                lastStreamID: goAway.last_stream_id, errorCode: goAway.error_code)
            if case .notifyGoAway(let errorCode) = action { events.append(.goAway(errorCode: errorCode)) }
        default:
            break
        }
    }

    func onDataChunk(streamID: Int32, data: UnsafePointer<UInt8>?, length: Int) {
        guard let unmanaged = unmanagedStream(streamID) else { return }
        unmanaged._withUnsafeGuaranteedRef { stream in
            stream.bodyLength += length
            guard let data, length > 0 else { return }
            if collectBodies {
                if stream.streamsData {
                    var chunk = connection.allocator.buffer(capacity: length)
                    chunk.writeBytes(UnsafeRawBufferPointer(start: data, count: length))
                    events.append(.data(token: stream.token, chunk))
                } else {
                    connection.collect(data, length: length, into: &stream.body, total: stream.bodyLength, streamID: streamID)
                }
            } else if errorBodyPrefix > 0 && stream.status >= 400 {
                connection.collectPrefix(data, length: length, into: &stream.body, limit: errorBodyPrefix)
            }
        }
    }

    func onStreamClose(streamID: Int32, errorCode: UInt32) {
        guard let unmanaged = closedStream(streamID) else { return }
        unmanaged._withUnsafeGuaranteedRef { onStreamClose(unmanaged: $0, streamID: streamID, errorCode: errorCode) }
    }

    private func onStreamClose(unmanaged stream: Stream, streamID: Int32, errorCode: UInt32) {
        guard !stream.delivered else { return }
        stream.delivered = true
        let failure: HTTP2StreamFailure
        if let resetCode = stream.resetCode {
            failure = .reset(errorCode: resetCode)
        } else if let goAway = connection.state.goAwayReceived, streamID > goAway.lastStreamID {
            failure = .refusedByGoAway(lastStreamID: goAway.lastStreamID, errorCode: goAway.errorCode)
        } else {
            failure = .protocolError("stream \(streamID) closed without a complete response (error code \(errorCode))")
        }
        events.append(.failure(token: stream.token, failure))
    }

    func onFrameNotSent(_ frame: UnsafePointer<nghttp2_frame>, libErrorCode: Int32) {
        let header = frame.pointee.hd
        guard UInt32(header.type) == NGHTTP2_HEADERS.rawValue,
              let stream = closedStream(header.stream_id)?.takeUnretainedValue(), !stream.delivered
        else { return }
        stream.delivered = true
        let failure: HTTP2StreamFailure
        if let goAway = connection.state.goAwayReceived {
            failure = .refusedByGoAway(lastStreamID: goAway.lastStreamID, errorCode: goAway.errorCode)
        } else {
            failure = .protocolError("request not sent: \(NGHTTP2Session.describe(Int(libErrorCode)))")
        }
        events.append(.failure(token: stream.token, failure))
    }

    func readBody(
        streamID: Int32, into destination: UnsafeMutablePointer<UInt8>, length: Int,
        flags: UnsafeMutablePointer<UInt32>
    ) -> Int {
        guard let stream = lookUpStream(streamID) else {
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            return 0
        }
        return NGHTTP2Session.provideData(from: &stream.requestBody, into: destination, length: length, flags: flags)
    }
}

/// The client's streams: every `Stream` object made so far (this table owns them; nghttp2's stream user data
/// points at them unretained), the ones free for reuse, and how many are open.
///
/// A load generator opens millions of streams, a few at a time: reusing their objects saves an allocation and a
/// dictionary insert and removal per request.
private struct StreamTable {
    private var all: [HTTP2ClientConnectionHandler.Stream] = []
    private var free: [HTTP2ClientConnectionHandler.Stream] = []
    private(set) var openCount = 0

    var openStreams: [HTTP2ClientConnectionHandler.Stream] { all.filter(\.isOpen) }

    /// Linear: only for the rare stream nghttp2 has no user data for.
    func openStream(withID streamID: Int32) -> HTTP2ClientConnectionHandler.Stream? {
        all.first { $0.isOpen && $0.streamID == streamID }
    }

    /// Linear: for a request given up (see `HTTP2ClientConnectionHandler.cancel(token:)`).
    func openStream(withToken token: UInt64) -> HTTP2ClientConnectionHandler.Stream? {
        all.first { $0.isOpen && $0.token == token }
    }

    /// A stream object for a new request, fresh or reused.
    mutating func open(token: UInt64, requestBody: ByteBuffer?) -> HTTP2ClientConnectionHandler.Stream {
        let stream: HTTP2ClientConnectionHandler.Stream
        if let reused = free.popLast() {
            stream = reused
            stream.status = 0
            if !stream.headers.isEmpty { stream.headers.removeAll(keepingCapacity: true) }
            stream.headerFields = 0
            stream.bodyLength = 0
            stream.body = nil
            stream.resetCode = nil
            stream.delivered = false
            stream.streamsData = false
        } else {
            stream = HTTP2ClientConnectionHandler.Stream()
            all.append(stream)
        }
        stream.token = token
        stream.streamID = 0
        stream.requestBody = requestBody
        stream.isOpen = true
        openCount += 1
        return stream
    }

    /// The stream is closed: its object may be handed out again. Releasing a stream twice does nothing.
    mutating func release(_ stream: HTTP2ClientConnectionHandler.Stream) {
        guard stream.isOpen else { return }
        stream.isOpen = false
        stream.requestBody = nil
        openCount -= 1
        free.append(stream)
    }
}

/// Header names known in advance, each with the last value seen under it, so that a load generator's responses (the
/// same few stamps, mostly with the same values) are handed over without making two `String`s per header. Flat
/// arrays: a lookup touches no nested array (no reference counting per header).
private struct InternedHeaders {
    private let names: [String]
    /// Every name's bytes, one after the other: name i at `nameStart[i]..<nameStart[i + 1]`.
    private let nameBytes: [UInt8]
    private let nameStart: [Int]
    /// The entries by name length (the lengths of a few stamps coincide): `byLength[lengthStart[n]..<lengthStart[n + 1]]`
    /// are the indices of the names of length n.
    private let byLength: [Int]
    private let lengthStart: [Int]
    private var values: [String]

    /// `kept`: whether a name is handed over at all (a name no kept prefix covers is looked up, and skipped).
    init(names: [String], kept: (String) -> Bool) {
        let handed = names.map { kept($0) ? $0 : nil }
        self.names = names
        var bytes: [UInt8] = [], starts: [Int] = []
        for name in names {
            starts.append(bytes.count)
            bytes += Array(name.utf8)
        }
        starts.append(bytes.count)
        nameBytes = bytes
        nameStart = starts
        let longest = names.map(\.utf8.count).max() ?? 0
        var order: [Int] = [], lengthStart: [Int] = []
        for length in 0...(longest + 1) {
            lengthStart.append(order.count)
            guard length <= longest else { continue }
            order += names.indices.filter { handed[$0] != nil && names[$0].utf8.count == length }
        }
        byLength = order
        self.lengthStart = lengthStart
        values = Array(repeating: "", count: names.count)
    }

    /// The header, with the known name's `String` and, when the value is the last one's, that value's; nil when the
    /// name is not known (or not handed over).
    @inline(__always)
    mutating func header(name: UnsafePointer<UInt8>?, nameLength: Int, value: UnsafePointer<UInt8>?, valueLength: Int) -> HTTP2Header? {
        guard let name, nameLength + 1 < lengthStart.count else { return nil }
        let found: Int? = byLength.withUnsafeBufferPointer { order in
            nameBytes.withUnsafeBufferPointer { bytes in
                nameStart.withUnsafeBufferPointer { start in
                    for k in lengthStart[nameLength]..<lengthStart[nameLength + 1] {
                        let i = order[k]
                        if memcmp(bytes.baseAddress! + start[i], name, nameLength) == 0 { return i }
                    }
                    return nil
                }
            }
        }
        guard let i = found else { return nil }
        // Compared with the last value's own bytes (a native string's are contiguous; a small one's are copied to the
        // stack): no second copy of each value to keep up to date.
        let same = values[i].utf8.withContiguousStorageIfAvailable { last in
            last.count == valueLength && (valueLength == 0 || memcmp(last.baseAddress!, value!, valueLength) == 0)
        } ?? false
        if !same { values[i] = String(nghttp2Bytes: value, count: valueLength) }
        return HTTP2Header(names[i], values[i], known: i)
    }
}

/// A set of bytes as four 64-bit words, for a one-test filter on the first byte of a header name.
private struct ByteSet {
    private var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    init(_ bytes: [UInt8]) {
        for byte in bytes {
            let bit = UInt64(1) << (byte & 63)
            switch byte >> 6 {
            case 0: words.0 |= bit
            case 1: words.1 |= bit
            case 2: words.2 |= bit
            default: words.3 |= bit
            }
        }
    }

    @inline(__always)
    func contains(_ byte: UInt8) -> Bool {
        let bit = UInt64(1) << (byte & 63)
        switch byte >> 6 {
        case 0: return words.0 & bit != 0
        case 1: return words.1 & bit != 0
        case 2: return words.2 & bit != 0
        default: return words.3 & bit != 0
        }
    }
}
