import CompressNIO
import Foundation
import NIOCore

/// HdrHistogram compressed V2 encodings built by hand, for tests of what a decoder refuses: decompression bombs and
/// payloads whose parameters or counts are out of range.
public enum CraftedHistogram {
    /// The payload header: cookie, payload length, normalizing offset 0, significant digits, lowest and highest
    /// trackable values, conversion ratio 1.0 (big-endian).
    public static func header(payloadLength: Int, digits: UInt32 = 3, lowest: UInt64 = 1, highest: UInt64 = 3_600_000_000) -> [UInt8] {
        var out: [UInt8] = []
        put(UInt32(0x1c84_9313), &out)
        put(UInt32(truncatingIfNeeded: payloadLength), &out)
        put(UInt32(0), &out)
        put(digits, &out)
        put(lowest, &out)
        put(highest, &out)
        put(Double(1).bitPattern, &out)
        return out
    }

    /// HdrHistogram's ZigZag LEB128 of one count (a negative one is a run of zeros).
    public static func zigZag(_ value: Int64) -> [UInt8] {
        var v = UInt64(bitPattern: (value << 1) ^ (value >> 63))
        var out: [UInt8] = []
        for _ in 0..<8 {
            if v >> 7 == 0 {
                out.append(UInt8(v))
                return out
            }
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(truncatingIfNeeded: v))
        return out
    }

    /// The compressed encoding (cookie, compressed length, zlib stream) of a payload given in parts, deflated as a
    /// stream so that a large payload never exists whole in memory.
    public static func compressed(_ parts: some Sequence<[UInt8]>) throws -> [UInt8] {
        let compressor = try ZlibCompressor(algorithm: .zlib)
        var window = ByteBufferAllocator().buffer(capacity: 64 << 10)
        var deflated: [UInt8] = []
        let collect: (ByteBuffer) -> Void = { deflated.append(contentsOf: $0.readableBytesView) }
        for part in parts {
            var buffer = ByteBuffer(bytes: part)
            try buffer.compressStream(with: compressor, window: &window, flush: .no, process: collect)
        }
        var end = ByteBuffer()
        try end.compressStream(with: compressor, window: &window, flush: .finish, process: collect)
        var out: [UInt8] = []
        put(UInt32(0x1c84_9314), &out)
        put(UInt32(deflated.count), &out)
        return out + deflated
    }

    /// A decompression bomb: a valid header for meshprobe's layout (1 us to 1 h, 3 digits) that declares
    /// `inflatedBytes`, then zeros up to that size; it compresses about a thousandfold.
    public static func bomb(inflatedBytes: Int) throws -> [UInt8] {
        let head = header(payloadLength: inflatedBytes - 40)
        let chunk = [UInt8](repeating: 0, count: 1 << 20)
        let body = inflatedBytes - head.count
        let parts = [head] + Array(repeating: chunk, count: body / chunk.count) + [[UInt8](repeating: 0, count: body % chunk.count)]
        return try compressed(parts)
    }

    /// As base64 text, the way results carry histograms.
    public static func text(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    static func put<T: FixedWidthInteger>(_ v: T, _ out: inout [UInt8]) {
        withUnsafeBytes(of: v.bigEndian) { out.append(contentsOf: $0) }
    }
}
