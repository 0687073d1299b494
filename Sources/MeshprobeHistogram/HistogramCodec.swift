import CompressNIO
import Foundation
import Histogram
import NIOCore

/// HdrHistogram's standard compressed V2 encoding (`HISTFAAA...` in base64), as HdrHistogram's Java, C, Go and
/// Python libraries write and read it (`encodeIntoCompressedByteBuffer` / `decodeFromCompressedByteBuffer`).
///
/// hdrhistogram-swift has no codec of its own, so this one writes the format from its specification: an outer
/// header (cookie `0x1c849314`, compressed length), then zlib-deflated: the payload header (cookie `0x1c849313`,
/// payload length, normalizing index offset 0, significant digits, lowest and highest trackable values, conversion
/// ratio 1.0; all big-endian) and the counts array up to the maximum's index as ZigZag LEB128 varints, a run of
/// zeros written as its negated length. Decoding rebuilds an equal histogram (same parameters, counts, min, max).
///
/// Decoding reads untrusted text (a result file, a shard's upload) and bounds everything it expands or allocates
/// (`Limits`): a payload that inflates past its limit, parameters whose counts array would be too long, a count array
/// index or a total count out of range are refused with `DecodingError.Kind.exceedsLimit` before the memory is taken.
public enum HistogramCodec {
    static let encodingCookie: UInt32 = 0x1c84_9313
    static let compressedCookie: UInt32 = 0x1c84_9314
    /// The payload header: cookie, length, offset, digits (4 bytes each), lowest, highest, ratio (8 bytes each).
    static let payloadHeaderBytes = 40

    /// What a decoded histogram may hold.
    public enum Limits {
        /// The longest counts array a decoded histogram may have: 2^20 entries (8 MiB of counts), 44 times the
        /// 23552 of meshprobe's own latency histograms (1 us to 1 h at 3 significant digits).
        public static let maximumCountsLength = 1 << 20
        /// The most bytes a compressed payload may inflate to: the header and the longest varint (9 bytes) for every
        /// entry of the longest counts array, about 9 MiB. meshprobe's own are a few hundred bytes to about 200 KB.
        public static let maximumPayloadBytes = payloadHeaderBytes + 9 * maximumCountsLength
        /// The largest total count: what a 64-bit signed count holds, so sums never wrap.
        public static let maximumTotalCount = UInt64(Int64.max)
    }

    public struct DecodingError: Error, CustomStringConvertible, Equatable {
        public enum Kind: Sendable, Equatable {
            /// Not the format, or corrupted.
            case malformed
            /// Well-formed so far, but it would expand or allocate past `Limits`.
            case exceedsLimit
        }

        public var kind: Kind
        public var description: String

        init(_ kind: Kind, description: String) {
            self.kind = kind
            self.description = description
        }

        init(description: String) {
            self.init(.malformed, description: description)
        }
    }

    /// The histogram as base64 text.
    public static func encode(_ histogram: Histogram<UInt64>) -> String {
        Data(compressed(histogram)).base64EncodedString()
    }

    /// The compressed bytes as base64 text (what `encode` writes).
    public static func encode(compressed bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
    }

    /// A histogram from `encode`'s text (or any HdrHistogram library's compressed V2 base64 with 64-bit counts).
    public static func decode(_ text: String) throws(DecodingError) -> Histogram<UInt64> {
        guard let data = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw DecodingError(description: "not base64")
        }
        return try decompress(Array(data))
    }

    /// The uncompressed V2 encoding (payload header and counts).
    static func payload(_ h: Histogram<UInt64>) -> [UInt8] {
        let layout = Layout(h)
        var counts: [UInt8] = []
        if h.totalCount > 0 {
            let limit = layout.index(of: h.maxRecorded) + 1
            var next = 0
            func zeros(upTo index: Int) {
                let run = index - next
                if run == 1 { putZigZag(0, into: &counts) } else if run > 1 { putZigZag(-Int64(run), into: &counts) }
            }
            for value in h.recordedValues() {
                let index = layout.index(of: value.value)
                guard index < limit else { break }
                zeros(upTo: index)
                putZigZag(Int64(value.count), into: &counts)
                next = index + 1
            }
            zeros(upTo: limit)
        }
        var out: [UInt8] = []
        put32(encodingCookie, &out)
        put32(UInt32(counts.count), &out)
        put32(0, &out)  // normalizing index offset
        put32(UInt32(h.numberOfSignificantValueDigits.rawValue), &out)
        put64(h.lowestDiscernibleValue, &out)
        put64(h.highestTrackableValue, &out)
        put64(Double(1).bitPattern, &out)
        return out + counts
    }

    /// The compressed V2 encoding as bytes: a few hundred bytes for a second of latencies, where the histogram itself
    /// holds its whole counts array (about 25 KB at 2 significant digits over 1 us to 1 h).
    public static func compressed(_ h: Histogram<UInt64>) -> [UInt8] {
        var input = ByteBuffer(bytes: payload(h))
        // Deflate never fails on a buffer it sized itself; an empty result would be refused by `decode`.
        let deflated = (try? input.compress(with: .zlib())).map { Array($0.readableBytesView) } ?? []
        var out: [UInt8] = []
        put32(compressedCookie, &out)
        put32(UInt32(deflated.count), &out)
        return out + deflated
    }

    /// A histogram from `compressed`'s bytes.
    public static func decompress(_ bytes: [UInt8]) throws(DecodingError) -> Histogram<UInt64> {
        var reader = Reader(bytes: bytes)
        let cookie = try reader.u32()
        guard cookie & ~0xF0 == compressedCookie & ~0xF0 else {
            throw DecodingError(description: String(format: "not a compressed V2 HdrHistogram (cookie 0x%08x)", cookie))
        }
        let length = Int(try reader.u32())
        guard bytes.count - 8 >= length else { throw DecodingError(description: "truncated: \(bytes.count - 8) of \(length) compressed bytes") }
        var buffer = ByteBuffer(bytes: bytes[8..<(8 + length)])
        let inflated: ByteBuffer
        do { inflated = try buffer.decompress(with: .zlib(), maxSize: Limits.maximumPayloadBytes) } catch let error as CompressNIOError where error == .bufferOverflow {
            throw DecodingError(.exceedsLimit, description: "the compressed payload inflates to more than \(Limits.maximumPayloadBytes) bytes, the most a histogram's encoding takes (a decompression bomb?)")
        } catch {
            throw DecodingError(description: "the compressed payload does not inflate: \(error)")
        }
        return try decodePayload(Array(inflated.readableBytesView))
    }

    static func decodePayload(_ bytes: [UInt8]) throws(DecodingError) -> Histogram<UInt64> {
        var r = Reader(bytes: bytes)
        let cookie = try r.u32()
        guard cookie & ~0xF0 == encodingCookie & ~0xF0 else {
            throw DecodingError(description: String(format: "not a V2 HdrHistogram payload (cookie 0x%08x)", cookie))
        }
        let payloadLength = Int(try r.u32())
        let offset = try r.u32()
        let digits = try r.u32()
        let lowest = try r.u64()
        let highest = try r.u64()
        _ = try r.u64()  // integer-to-double conversion ratio (1.0 for integer histograms)
        guard offset == 0 else { throw DecodingError(description: "normalizing index offset \(offset) is not supported") }
        // The package traps on parameters it cannot represent: check them all here first.
        guard let significant = SignificantDigits(rawValue: Int8(clamping: digits)), digits <= 5, lowest >= 1,
              lowest <= UInt64.max / 2, highest >= 2 * lowest else {
            throw DecodingError(description: "bad parameters: \(digits) digits, lowest \(lowest), highest \(highest)")
        }
        guard let countsLength = Layout.countsLength(lowest: lowest, highest: highest, digits: Int(digits)) else {
            throw DecodingError(description: "bad parameters: \(digits) significant digits cannot be kept above a lowest value of \(lowest)")
        }
        guard countsLength <= Limits.maximumCountsLength else {
            throw DecodingError(.exceedsLimit, description: "\(digits) significant digits from \(lowest) to \(highest) need \(countsLength) counts; a decoded histogram has at most \(Limits.maximumCountsLength)")
        }
        guard r.remaining == payloadLength else {
            throw DecodingError(description: "payload is \(r.remaining) bytes, its header says \(payloadLength)")
        }
        var h = Histogram<UInt64>(lowestDiscernibleValue: lowest, highestTrackableValue: highest, numberOfSignificantValueDigits: significant)
        let layout = Layout(h)
        var index = 0
        var total: UInt64 = 0
        while r.remaining > 0 {
            let count = try r.zigZag()
            if count < 0 {
                // A run of zeros, as its negated length: never past the counts array (nor `Int64.min`, whose negation traps).
                guard count != .min, Int(-count) <= countsLength - index else {
                    throw DecodingError(description: "a run of \(count == .min ? "2^63" : String(-count)) zero counts from index \(index) runs past the \(countsLength) counts")
                }
                index += Int(-count)
                continue
            }
            guard index < countsLength else {
                throw DecodingError(description: "more than the \(countsLength) counts its parameters allow")
            }
            if count > 0 {
                guard UInt64(count) <= Limits.maximumTotalCount - total else {
                    throw DecodingError(.exceedsLimit, description: "the counts add up to more than \(Limits.maximumTotalCount)")
                }
                total += UInt64(count)
                let value = layout.value(at: index)
                guard value <= highest, h.record(value, count: UInt64(count)) else {
                    throw DecodingError(description: "count at index \(index) is beyond the highest trackable value \(highest)")
                }
            }
            index += 1
        }
        return h
    }

    // MARK: the counts array layout (HdrHistogram's, shared by every implementation)

    struct Layout {
        let unitMagnitude: Int
        let subBucketHalfCountMagnitude: Int
        let subBucketHalfCount: Int
        let subBucketMask: UInt64
        let leadingZeroCountBase: Int

        init(_ h: Histogram<UInt64>) {
            let largest = 2 * pow(10.0, Double(h.numberOfSignificantValueDigits.rawValue))
            let subBucketCountMagnitude = Int(ceil(log2(largest)))
            subBucketHalfCountMagnitude = max(subBucketCountMagnitude, 1) - 1
            subBucketHalfCount = 1 << subBucketHalfCountMagnitude
            unitMagnitude = Int(floor(log2(Double(h.lowestDiscernibleValue))))
            subBucketMask = UInt64(2 * subBucketHalfCount - 1) << UInt64(unitMagnitude)
            leadingZeroCountBase = 64 - unitMagnitude - subBucketHalfCountMagnitude - 1
        }

        /// The length of the counts array that `Histogram(lowestDiscernibleValue: lowest, highestTrackableValue:
        /// highest, numberOfSignificantValueDigits: digits)` allocates, computed as the package does without allocating;
        /// nil when the package would trap (the digits' sub-buckets do not fit above `lowest` in 64 bits).
        static func countsLength(lowest: UInt64, highest: UInt64, digits: Int) -> Int? {
            let largestWithUnitResolution = 2 * pow(10.0, Double(digits))
            let subBucketCountMagnitude = Int(ceil(log2(largestWithUnitResolution)))
            let subBucketHalfCountMagnitude = max(subBucketCountMagnitude, 1) - 1
            let unitMagnitude = Int(log2(Double(lowest)))
            guard unitMagnitude + subBucketHalfCountMagnitude <= 61 else { return nil }
            let subBucketCount = 1 << subBucketCountMagnitude
            var smallestUntrackable = UInt64(subBucketCount) << UInt64(unitMagnitude)
            var buckets = 1
            while smallestUntrackable <= highest {
                if smallestUntrackable > UInt64.max / 2 {
                    buckets += 1
                    break
                }
                smallestUntrackable <<= 1
                buckets += 1
            }
            return (buckets + 1) * (subBucketCount / 2)
        }

        func index(of value: UInt64) -> Int {
            let bucket = leadingZeroCountBase - (value | subBucketMask).leadingZeroBitCount
            let subBucket = Int(value >> UInt64(bucket + unitMagnitude))
            return ((bucket + 1) << subBucketHalfCountMagnitude) + (subBucket - subBucketHalfCount)
        }

        func value(at index: Int) -> UInt64 {
            var bucket = (index >> subBucketHalfCountMagnitude) - 1
            var subBucket = (index & (subBucketHalfCount - 1)) + subBucketHalfCount
            if bucket < 0 {
                subBucket -= subBucketHalfCount
                bucket = 0
            }
            return UInt64(subBucket) << UInt64(bucket + unitMagnitude)
        }
    }

    // MARK: bytes

    static func put32(_ v: UInt32, _ out: inout [UInt8]) {
        for shift in stride(from: 24, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: v >> UInt32(shift))) }
    }

    static func put64(_ v: UInt64, _ out: inout [UInt8]) {
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) }
    }

    /// HdrHistogram's ZigZag LEB128: 7 bits a byte for 8 bytes, then a ninth byte with all 8 bits.
    static func putZigZag(_ value: Int64, into out: inout [UInt8]) {
        var v = UInt64(bitPattern: (value << 1) ^ (value >> 63))
        for _ in 0..<8 {
            if v >> 7 == 0 {
                out.append(UInt8(v))
                return
            }
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(truncatingIfNeeded: v))
    }

    struct Reader {
        let bytes: [UInt8]
        var at = 0
        var remaining: Int { bytes.count - at }

        mutating func byte() throws(DecodingError) -> UInt8 {
            guard at < bytes.count else { throw DecodingError(description: "truncated at byte \(at)") }
            defer { at += 1 }
            return bytes[at]
        }

        mutating func u32() throws(DecodingError) -> UInt32 {
            var v: UInt32 = 0
            for _ in 0..<4 { v = v << 8 | UInt32(try byte()) }
            return v
        }

        mutating func u64() throws(DecodingError) -> UInt64 {
            var v: UInt64 = 0
            for _ in 0..<8 { v = v << 8 | UInt64(try byte()) }
            return v
        }

        mutating func zigZag() throws(DecodingError) -> Int64 {
            var v: UInt64 = 0
            var shift: UInt64 = 0
            for i in 0..<9 {
                let b = try byte()
                if i == 8 {
                    v |= UInt64(b) << 56
                    break
                }
                v |= UInt64(b & 0x7F) << shift
                if b & 0x80 == 0 { break }
                shift += 7
            }
            return Int64(bitPattern: v >> 1) ^ -Int64(bitPattern: v & 1)
        }
    }
}
