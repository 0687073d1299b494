internal import CNGHTTP2
import NIOCore

/// Owns one `nghttp2_session` and frees it in `deinit`.
///
/// The session's `user_data` is the handler that owns this object (passed unretained): the handler outlives the
/// session, and `nghttp2_session_del` calls no callbacks, so the callbacks never see a dead handler.
final class NGHTTP2Session {
    let pointer: OpaquePointer

    /// Returns nil if nghttp2 cannot allocate the session.
    init?(
        isServer: Bool,
        userData: UnsafeMutableRawPointer,
        installCallbacks: (OpaquePointer) -> Void
    ) {
        var callbacks: OpaquePointer?
        guard nghttp2_session_callbacks_new(&callbacks) == 0, let callbacks else { return nil }
        defer { nghttp2_session_callbacks_del(callbacks) }
        installCallbacks(callbacks)

        var option: OpaquePointer?
        guard nghttp2_option_new(&option) == 0, let option else { return nil }
        defer { nghttp2_option_del(option) }
        // Streams that finished are not kept around for priority bookkeeping: less work per request.
        nghttp2_option_set_no_closed_streams(option, 1)

        var session: OpaquePointer?
        let rv: Int32
        if isServer {
            rv = nghttp2_session_server_new2(&session, callbacks, userData, option)
        } else {
            rv = nghttp2_session_client_new2(&session, callbacks, userData, option)
        }
        guard rv == 0, let session else { return nil }
        self.pointer = session
    }

    deinit {
        nghttp2_session_del(pointer)
    }

    /// Queues our SETTINGS and raises the connection receive window. Returns an nghttp2 error code or 0.
    func submitSettings(_ settings: HTTP2Settings, isServer: Bool) -> Int32 {
        let frameSize = min(max(settings.maxFrameSize, 16384), 16_777_215)
        let window = min(settings.initialWindowSize, UInt32(Int32.max))
        var entries: [nghttp2_settings_entry] = [
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue),
                value: settings.maxConcurrentStreams),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: window),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_FRAME_SIZE.rawValue), value: frameSize),
        ]
        if !isServer {
            entries.append(nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0))
        }
        var rv = nghttp2_submit_settings(pointer, UInt8(NGHTTP2_FLAG_NONE.rawValue), entries, entries.count)
        guard rv == 0 else { return rv }
        // The connection window is shared by all streams: make it large enough for many full stream windows.
        let connectionWindow = Int32(clamping: max(Int64(window) * 16, 1 << 24))
        rv = nghttp2_session_set_local_window_size(pointer, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, connectionWindow)
        return rv
    }

    /// Feeds received bytes to nghttp2. Returns nghttp2's result: the bytes consumed, or a negative error code.
    func receive(_ buffer: ByteBuffer) -> Int {
        buffer.withUnsafeReadableBytes { raw -> Int in
            guard let base = raw.baseAddress, raw.count > 0 else { return 0 }
            return nghttp2_session_mem_recv(pointer, base.assumingMemoryBound(to: UInt8.self), raw.count)
        }
    }

    /// Appends every byte nghttp2 wants to send to `buffer`. Returns 0, or a negative nghttp2 error code.
    func drainOutput(into buffer: inout ByteBuffer) -> Int {
        while true {
            var data: UnsafePointer<UInt8>?
            let n = nghttp2_session_mem_send(pointer, &data)
            if n < 0 { return n }
            guard n > 0, let data else { return 0 }
            buffer.writeBytes(UnsafeRawBufferPointer(start: data, count: n))
        }
    }

    /// Submits a request with the fields in `headers`; with `hasBody` the body is read through
    /// `NGHTTP2Connection.bodyProvider`; nghttp2 hands `streamUserData` back for the stream
    /// (`nghttp2_session_get_stream_user_data`). Returns the new stream's id, or a negative nghttp2 error code.
    func submitRequest(_ headers: inout HeaderBlockBuilder, hasBody: Bool, streamUserData: UnsafeMutableRawPointer?) -> Int32 {
        headers.withNV { nv, count in
            guard hasBody else { return nghttp2_submit_request(pointer, nil, nv, count, nil, streamUserData) }
            var provider = NGHTTP2Connection.bodyProvider()
            return nghttp2_submit_request(pointer, nil, nv, count, &provider, streamUserData)
        }
    }

    /// Submits a response on `streamID`, like `submitRequest`. Returns 0 or a negative nghttp2 error code.
    func submitResponse(streamID: Int32, _ headers: inout HeaderBlockBuilder, hasBody: Bool) -> Int32 {
        headers.withNV { nv, count in
            guard hasBody else { return nghttp2_submit_response(pointer, streamID, nv, count, nil) }
            var provider = NGHTTP2Connection.bodyProvider()
            return nghttp2_submit_response(pointer, streamID, nv, count, &provider)
        }
    }

    /// Submits trailers (a HEADERS frame with END_STREAM) on `streamID` of the session at `pointer`; callable from a
    /// data provider's read callback. Returns 0 or a negative nghttp2 error code.
    static func submitTrailer(_ pointer: OpaquePointer, streamID: Int32, _ headers: inout HeaderBlockBuilder) -> Int32 {
        headers.withNV { nv, count in nghttp2_submit_trailer(pointer, streamID, nv, count) }
    }

    var wantsRead: Bool { nghttp2_session_want_read(pointer) != 0 }
    var wantsWrite: Bool { nghttp2_session_want_write(pointer) != 0 }

    /// Whether the session has nothing left to do (GOAWAY exchanged and no active streams, or terminated).
    var isFinished: Bool { !wantsRead && !wantsWrite }

    static func describe(_ code: Int) -> String {
        String(cString: nghttp2_strerror(Int32(clamping: code)))
    }
}

/// Builds an `nghttp2_nv` array from Swift strings without a per-header allocation.
///
/// All names and values are copied into one reusable byte array; the nv array points into it and is only valid
/// inside `withNV`. nghttp2 copies the header block on submit (we pass no NO_COPY flags), so the scratch memory
/// can be reused for the next request right away.
struct HeaderBlockBuilder {
    private var bytes: [UInt8] = []
    private var fields: [(nameStart: Int, nameCount: Int, valueStart: Int, valueCount: Int)] = []
    private var nvs: [nghttp2_nv] = []
    /// Whether `withNV` has appended its trailing NUL already (the block can be submitted again unchanged).
    private var terminated = false
    /// The address of `bytes` that `nvs` point into; nil when `nvs` must be built again. A load generator submits
    /// the same block request after request: then the nv array is reused as it is.
    private var nvBase: UnsafePointer<UInt8>?

    init() {
        bytes.reserveCapacity(1024)
        fields.reserveCapacity(16)
        nvs.reserveCapacity(16)
    }

    mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
        fields.removeAll(keepingCapacity: true)
        terminated = false
        nvBase = nil
    }

    /// Adds a field; ASCII upper-case letters in the name are lowered, as HTTP/2 requires.
    mutating func append(name: String, value: String) {
        let nameStart = bytes.count
        for byte in name.utf8 {
            bytes.append(byte &- 65 < 26 ? byte | 0x20 : byte)
        }
        let valueStart = bytes.count
        bytes.append(contentsOf: value.utf8)
        fields.append((nameStart, valueStart - nameStart, valueStart, bytes.count - valueStart))
    }

    mutating func append(name: StaticString, value: String) {
        let nameStart = bytes.count
        name.withUTF8Buffer { bytes.append(contentsOf: $0) }
        let valueStart = bytes.count
        bytes.append(contentsOf: value.utf8)
        fields.append((nameStart, valueStart - nameStart, valueStart, bytes.count - valueStart))
    }

    /// Adds regular header fields; returns whether one of them is content-length.
    mutating func append(_ headers: [HTTP2Header]) -> Bool {
        var hasContentLength = false
        for header in headers {
            if !hasContentLength && header.name.utf8.count == 14 && header.name == "content-length" {
                hasContentLength = true
            }
            append(name: header.name, value: header.value)
        }
        return hasContentLength
    }

    /// Adds `name` with a decimal integer value, formatted without creating a String.
    mutating func append(name: StaticString, decimal: Int) {
        let nameStart = bytes.count
        name.withUTF8Buffer { bytes.append(contentsOf: $0) }
        let valueStart = bytes.count
        var value = decimal.magnitude
        if decimal < 0 { bytes.append(UInt8(ascii: "-")) }
        let digitsStart = bytes.count
        repeat {
            bytes.append(UInt8(ascii: "0") + UInt8(value % 10))
            value /= 10
        } while value > 0
        bytes[digitsStart...].reverse()
        fields.append((nameStart, valueStart - nameStart, valueStart, bytes.count - valueStart))
    }

    mutating func withNV<R>(_ body: (UnsafePointer<nghttp2_nv>?, Int) -> R) -> R {
        // Never empty, so the buffer always has a base address.
        if !terminated {
            bytes.append(0)
            terminated = true
        }
        // Read-only access to the bytes (no uniqueness check): nghttp2 copies names and values without
        // NO_COPY flags and never writes through the nv pointers.
        return bytes.withUnsafeBufferPointer { storage -> R in
            let base = storage.baseAddress!  // non-empty array
            if base != nvBase || nvs.count != fields.count {
                nvs.removeAll(keepingCapacity: true)
                for field in fields {
                    nvs.append(
                        nghttp2_nv(
                            name: UnsafeMutablePointer(mutating: base + field.nameStart),
                            value: UnsafeMutablePointer(mutating: base + field.valueStart),
                            namelen: field.nameCount,
                            valuelen: field.valueCount,
                            flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)))
                }
                nvBase = base
            }
            return nvs.withUnsafeBufferPointer { body($0.baseAddress, $0.count) }
        }
    }
}

extension String {
    /// Decodes an nghttp2 name or value (not NUL-terminated).
    init(nghttp2Bytes pointer: UnsafePointer<UInt8>?, count: Int) {
        guard let pointer, count > 0 else {
            self = ""
            return
        }
        self = String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }
}

/// Compares nghttp2 bytes with an ASCII literal without creating a String.
@inline(__always)
func bytesEqual(_ pointer: UnsafePointer<UInt8>?, _ count: Int, _ literal: StaticString) -> Bool {
    guard count == literal.utf8CodeUnitCount else { return false }
    guard let pointer else { return count == 0 }
    let expected = literal.utf8Start
    for i in 0..<count where pointer[i] != expected[i] { return false }
    return true
}

/// Parses a short decimal number (e.g. `:status`) from nghttp2 bytes; nil if it is not one.
func parseDecimal(_ pointer: UnsafePointer<UInt8>?, _ count: Int) -> Int? {
    guard let pointer, count > 0, count <= 9 else { return nil }
    var value = 0
    for i in 0..<count {
        let digit = pointer[i] &- UInt8(ascii: "0")
        guard digit < 10 else { return nil }
        value = value * 10 + Int(digit)
    }
    return value
}

extension NGHTTP2Session {
    /// Copies up to `length` bytes of `body` into nghttp2's frame buffer for a data provider; sets
    /// NGHTTP2_DATA_FLAG_EOF and empties `body` when it is used up. Returns the bytes copied.
    static func provideData(
        from body: inout ByteBuffer?, into destination: UnsafeMutablePointer<UInt8>, length: Int,
        flags: UnsafeMutablePointer<UInt32>
    ) -> Int {
        guard var buffer = body else {
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            return 0
        }
        let count = min(length, buffer.readableBytes)
        buffer.withUnsafeReadableBytes { source in
            if count > 0, let base = source.baseAddress {
                UnsafeMutableRawPointer(destination).copyMemory(from: base, byteCount: count)
            }
        }
        buffer.moveReaderIndex(forwardBy: count)
        if buffer.readableBytes == 0 {
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            body = nil
        } else {
            body = buffer
        }
        return count
    }
}
