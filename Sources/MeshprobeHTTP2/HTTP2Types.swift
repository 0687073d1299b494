import NIOCore

/// Settings for one HTTP/2 connection, client or server.
public struct HTTP2Settings: Sendable {
    /// What we advertise as SETTINGS_MAX_CONCURRENT_STREAMS (server), and our local cap on open streams (client).
    public var maxConcurrentStreams: UInt32 = 100
    /// Per-stream receive window; the connection window is raised to at least the same value.
    public var initialWindowSize: UInt32 = 1 << 20
    /// SETTINGS_MAX_FRAME_SIZE we accept; clamped to 16384...16777215.
    public var maxFrameSize: UInt32 = 16384
    /// Largest request body the server collects (or response body the client collects) before resetting the
    /// stream with ENHANCE_YOUR_CALM, so a hostile peer cannot grow our memory without bound.
    public var maxCollectedBodyBytes: Int = 64 << 20
    /// Most header fields accepted in one header block before the stream is reset.
    public var maxHeaderFields: Int = 256

    public init() {}
}

public struct HTTP2Header: Sendable, Hashable {
    public var name: String
    public var value: String
    /// For a response header whose name the client was told to intern (`internedNames`), the name's index there, so
    /// that a reader tells known headers apart without comparing names; -1 otherwise. Not part of equality.
    public var known: Int

    public init(_ name: String, _ value: String, known: Int = -1) {
        self.name = name
        self.value = value
        self.known = known
    }

    public static func == (a: HTTP2Header, b: HTTP2Header) -> Bool { a.name == b.name && a.value == b.value }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(value)
    }
}

public struct HTTP2Request: Sendable, Equatable {
    public var method: String
    public var scheme: String
    public var authority: String
    public var path: String
    /// Regular headers (lower-case names; upper-case ASCII is lowered on the wire).
    public var headers: [HTTP2Header]
    /// Sent with a data provider; END_STREAM on the last DATA frame.
    public var body: ByteBuffer?

    public init(
        method: String = "GET",
        scheme: String,
        authority: String,
        path: String,
        headers: [HTTP2Header] = [],
        body: ByteBuffer? = nil
    ) {
        self.method = method
        self.scheme = scheme
        self.authority = authority
        self.path = path
        self.headers = headers
        self.body = body
    }
}

public struct HTTP2Response: Sendable, Equatable {
    public var status: Int
    /// Response headers without pseudo-headers; trailers appended.
    public var headers: [HTTP2Header]
    public var bodyLength: Int
    /// Only when the client handler was created with `collectBodies: true`.
    public var body: ByteBuffer?

    public init(status: Int, headers: [HTTP2Header], bodyLength: Int, body: ByteBuffer? = nil) {
        self.status = status
        self.headers = headers
        self.bodyLength = bodyLength
        self.body = body
    }
}

public enum HTTP2StreamFailure: Error, Sendable, Equatable {
    /// RST_STREAM from the peer.
    case reset(errorCode: UInt32)
    /// The stream was above the last-stream-id of the peer's GOAWAY.
    case refusedByGoAway(lastStreamID: Int32, errorCode: UInt32)
    /// The connection closed with the stream in flight.
    case connectionLost
    /// Malformed response, nghttp2 error, etc.
    case protocolError(String)
}

/// Why a connection ended, when it did not end cleanly.
public enum HTTP2ConnectionError: Error, Sendable, Equatable {
    /// nghttp2 rejected the peer's bytes or failed fatally; the message is nghttp2's.
    case protocolError(String)
}

/// Result of looking for the HTTP/2 client connection preface at the start of a byte stream.
public enum HTTP2PrefaceMatch: Sendable, Equatable {
    /// The bytes start with the full 24-byte preface.
    case match
    /// The bytes cannot be the preface.
    case mismatch
    /// The bytes so far are a proper prefix of the preface.
    case needMoreData
}

/// The HTTP/2 client connection preface ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") and a matcher for prior-knowledge h2c.
public enum HTTP2ConnectionPreface {
    public static let bytes: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    /// Compares the readable bytes of `buffer` with the preface without consuming them.
    public static func match(_ buffer: ByteBuffer) -> HTTP2PrefaceMatch {
        let count = min(buffer.readableBytes, bytes.count)
        let matches = buffer.withUnsafeReadableBytes { raw in
            for i in 0..<count where raw[i] != bytes[i] { return false }
            return true
        }
        if !matches { return .mismatch }
        return count == bytes.count ? .match : .needMoreData
    }
}

extension HTTP2ServerConnectionHandler {
    /// "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", for detecting prior-knowledge h2c.
    public static let connectionPreface: [UInt8] = HTTP2ConnectionPreface.bytes
}

extension HTTP2ClientConnectionHandler {
    /// "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".
    public static let connectionPreface: [UInt8] = HTTP2ConnectionPreface.bytes
}
