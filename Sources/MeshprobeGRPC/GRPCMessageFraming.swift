import CompressNIO
import NIOCore

/// A message's compression on the wire (`grpc-encoding`): the two every gRPC implementation has.
public enum GRPCCompression: String, Sendable, Hashable, CaseIterable {
    case identity
    case gzip
}

/// Why a gRPC body could not be read as length-prefixed messages.
public enum GRPCFramingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The body ended inside a message's prefix or payload.
    case truncated(have: Int, need: Int)
    /// A message's declared length is above the limit the reader was given.
    case tooLarge(length: Int, limit: Int)
    /// The compressed flag is set but the response named no encoding, or one this reader does not know.
    case compressedWithout(encoding: String?)
    /// The compressed flag is neither 0 nor 1.
    case badFlag(UInt8)
    /// A gzip payload that does not inflate (or inflates past the limit).
    case badCompressedPayload

    public var description: String {
        switch self {
        case .truncated(let have, let need): "the body ends inside a message (\(have) of \(need) bytes)"
        case .tooLarge(let length, let limit): "a message of \(length) bytes, above the limit of \(limit)"
        case .compressedWithout(nil): "a compressed message without a grpc-encoding header"
        case .compressedWithout(let encoding?): "a message compressed with '\(encoding)', which is not supported (identity, gzip)"
        case .badFlag(let flag): "a message prefix with compressed flag \(flag) (must be 0 or 1)"
        case .badCompressedPayload: "a gzip-compressed message that does not inflate"
        }
    }
}

/// gRPC's length-prefixed message (PROTOCOL-HTTP2.md): a compressed flag byte, a 4-byte big-endian length, the payload.
public enum GRPCMessageFraming {
    /// Bytes of the prefix before each payload.
    public static let prefixLength = 5

    /// Appends one message to `buffer`, compressed with `compression` (gzip sets the flag; identity does not).
    public static func write(_ payload: ByteBuffer, compression: GRPCCompression = .identity, to buffer: inout ByteBuffer) {
        var payload = payload
        if compression == .gzip, let compressed = try? payload.compress(with: .gzip()) {
            buffer.writeInteger(UInt8(1))
            buffer.writeInteger(UInt32(compressed.readableBytes))
            buffer.writeImmutableBuffer(compressed)
            return
        }
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(payload.readableBytes))
        buffer.writeImmutableBuffer(payload)
    }

    /// One message framed in a new buffer.
    public static func framed(_ payload: ByteBuffer, compression: GRPCCompression = .identity) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(prefixLength + payload.readableBytes)
        write(payload, compression: compression, to: &buffer)
        return buffer
    }

    /// Reads every message of a whole body: each payload, inflated when its flag says so (`encoding` is the
    /// response's `grpc-encoding`). At most `limit` bytes a message, before and after inflating.
    public static func messages(in body: ByteBuffer, encoding: String?, limit: Int = 4 << 20) throws(GRPCFramingError) -> [ByteBuffer] {
        var reader = GRPCMessageReader(encoding: encoding, limit: limit)
        var body = body
        var out: [ByteBuffer] = []
        while let message = try reader.next(from: &body) { out.append(message) }
        try reader.finish(remaining: body)
        return out
    }
}

/// Reads length-prefixed messages from bytes as they arrive (a server-streaming response read message by message).
public struct GRPCMessageReader: Sendable {
    public let encoding: String?
    public let limit: Int

    public init(encoding: String?, limit: Int = 4 << 20) {
        self.encoding = encoding
        self.limit = limit
    }

    /// The next whole message at the front of `buffer` (consumed), or nil when `buffer` does not hold one yet.
    public mutating func next(from buffer: inout ByteBuffer) throws(GRPCFramingError) -> ByteBuffer? {
        guard buffer.readableBytes >= GRPCMessageFraming.prefixLength,
              let flag = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
              let length32 = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt32.self) else { return nil }
        let length = Int(length32)
        guard flag <= 1 else { throw .badFlag(flag) }
        guard length <= limit else { throw .tooLarge(length: length, limit: limit) }
        guard buffer.readableBytes >= GRPCMessageFraming.prefixLength + length else { return nil }
        buffer.moveReaderIndex(forwardBy: GRPCMessageFraming.prefixLength)
        guard var payload = buffer.readSlice(length: length) else { return nil }
        guard flag == 1 else { return payload }
        guard encoding == GRPCCompression.gzip.rawValue else { throw .compressedWithout(encoding: encoding) }
        do {
            return try payload.decompress(with: .gzip(), maxSize: limit)
        } catch {
            throw .badCompressedPayload
        }
    }

    /// At the end of the body: what is left must be nothing (a partial message is a truncated body).
    public func finish(remaining buffer: ByteBuffer) throws(GRPCFramingError) {
        guard buffer.readableBytes > 0 else { return }
        let need = buffer.readableBytes >= GRPCMessageFraming.prefixLength
            ? GRPCMessageFraming.prefixLength + Int(buffer.getInteger(at: buffer.readerIndex + 1, as: UInt32.self) ?? 0)
            : GRPCMessageFraming.prefixLength
        throw .truncated(have: buffer.readableBytes, need: need)
    }
}
