import Foundation
import Histogram
import MeshprobeHistogram
import MeshprobeTestSupport
import Testing

/// HdrHistogram's compressed V2 encoding: exact round trips, and interop with a real decoder and encoder (Python's
/// `hdrh`, from PyPI).
@Suite struct HistogramCodecTests {
    @Test func encodeThenDecodeGivesTheSameHistogram() throws {
        for (n, seed) in [(0, 1), (1, 2), (10_000, 3), (200_000, 4)] as [(Int, UInt64)] {
            var h = latencyHistogram()
            for v in samples(n, seed: seed) { _ = h.record(v) }
            if n > 0 { _ = h.record(3_599_000_000) }  // near the top of the range
            let back = try HistogramCodec.decode(HistogramCodec.encode(h))
            #expect(back == h)
            #expect(back.totalCount == h.totalCount)
            // The encoding keeps counts per bucket (not the raw largest value), so percentiles agree as HdrHistogram
            // states them: the highest value of their bucket.
            for p in [0.0, 50, 90, 99, 99.9, 100] {
                #expect(percentile(back, p) == percentile(h, p), "p\(p) of \(n)")
            }
            #expect(back.max == h.max)
            #expect(back.mean == h.mean)
        }
    }

    @Test func theTextIsHdrHistogramsCompressedFormat() {
        var h = latencyHistogram()
        _ = h.record(1000)
        // Every HdrHistogram library's compressed V2 text starts so (cookie 0x1c849314, base64).
        #expect(HistogramCodec.encode(h).hasPrefix("HISTFAAA"))
    }

    @Test func corruptedAndTruncatedTextIsRefused() {
        var h = latencyHistogram()
        for v in samples(1000, seed: 9) { _ = h.record(v) }
        let text = HistogramCodec.encode(h)
        #expect(throws: HistogramCodec.DecodingError.self) { try HistogramCodec.decode(String(text.prefix(text.count / 2))) }
        #expect(throws: HistogramCodec.DecodingError.self) { try HistogramCodec.decode("not base64 at all!") }
        var bytes = Array(Data(base64Encoded: text)!)
        bytes[20] ^= 0xFF  // inside the deflated payload
        #expect(throws: HistogramCodec.DecodingError.self) { try HistogramCodec.decode(Data(bytes).base64EncodedString()) }
        bytes = Array(Data(base64Encoded: text)!)
        bytes[0] = 0x00  // the cookie
        #expect(throws: HistogramCodec.DecodingError.self) { try HistogramCodec.decode(Data(bytes).base64EncodedString()) }
    }

    /// The decoding error for `bytes`, which must be refused.
    func refusal(_ bytes: [UInt8]) -> HistogramCodec.DecodingError? {
        do {
            _ = try HistogramCodec.decode(CraftedHistogram.text(bytes))
            Issue.record("decoded a histogram that should have been refused")
            return nil
        } catch {
            return error
        }
    }

    /// A payload for meshprobe's layout with these counts, compressed.
    func encoded(_ counts: [Int64], digits: UInt32 = 3, lowest: UInt64 = 1, highest: UInt64 = 3_600_000_000) throws -> [UInt8] {
        let body = counts.flatMap(CraftedHistogram.zigZag)
        return try CraftedHistogram.compressed([CraftedHistogram.header(payloadLength: body.count, digits: digits, lowest: lowest, highest: highest), body])
    }

    @Test func refusesAPayloadThatInflatesPastItsLimit() throws {
        // 64 MiB of zeros after a valid header, compressed to about 64 KB: refused once the inflated bytes pass the
        // limit, before the rest is expanded.
        let bomb = try CraftedHistogram.bomb(inflatedBytes: 64 << 20)
        #expect(bomb.count < 128 << 10)
        let error = try #require(refusal(bomb))
        #expect(error.kind == .exceedsLimit)
        #expect(error.description.contains("inflates to more than \(HistogramCodec.Limits.maximumPayloadBytes) bytes"), "\(error)")
        // Just under the limit it inflates, and is then refused for what it says (a zero count per byte, past the
        // counts array), not for its size.
        let under = try #require(refusal(try CraftedHistogram.bomb(inflatedBytes: HistogramCodec.Limits.maximumPayloadBytes)))
        #expect(under.kind == .malformed, "\(under)")
    }

    @Test func refusesParametersWhoseCountsArrayIsTooLong() throws {
        // 5 significant digits over the whole 64-bit range: 6 million counts (48 MiB) for a few bytes of text.
        let error = try #require(refusal(try encoded([1], digits: 5, highest: UInt64.max / 2)))
        #expect(error.kind == .exceedsLimit)
        #expect(error.description.contains("a decoded histogram has at most \(HistogramCodec.Limits.maximumCountsLength)"), "\(error)")
    }

    @Test func refusesParametersTheHistogramPackageWouldTrapOn() throws {
        // The package's preconditions: unit magnitude plus sub-bucket magnitude within 61 bits, lowest at most
        // UInt64.max / 2 (twice it must not overflow).
        for (digits, lowest, highest) in [(3, UInt64(1) << 60, UInt64.max), (3, UInt64.max / 2 + 1, UInt64.max), (6, 1, 1000)] as [(UInt32, UInt64, UInt64)] {
            let error = try #require(refusal(try encoded([1], digits: digits, lowest: lowest, highest: highest)))
            #expect(error.kind == .malformed, "\(error)")
            #expect(error.description.hasPrefix("bad parameters"), "\(error)")
        }
    }

    @Test func refusesRunsAndCountsOutOfRange() throws {
        // A run of zeros of -(2^63) (whose negation traps), runs past the counts array, counts past it.
        // meshprobe's layout has 23552 counts.
        for counts in [[Int64.min], [-23_552, 1], [-23_000, -552, 0], [-(Int64.max)], Array(repeating: -10_000, count: 3)] {
            let error = try #require(refusal(try encoded(counts)), "\(counts)")
            #expect(error.kind == .malformed, "\(counts): \(error)")
        }
        // Counts whose total would wrap a 64-bit count.
        let error = try #require(refusal(try encoded([Int64.max, Int64.max])))
        #expect(error.kind == .exceedsLimit, "\(error)")
        // A count at the highest trackable value (index 23220: 1716 << 21 us) still decodes.
        let last = try HistogramCodec.decode(CraftedHistogram.text(try encoded([-23_220, 7])))
        #expect(last.totalCount == 7)
        #expect(last.max >= 3_598_712_832)
    }

    @Test func pythonHdrhReadsOurEncodingAndWeReadItsEncoding() async throws {
        let values = samples(20_000, seed: 11)
        var h = latencyHistogram()
        for v in values { _ = h.record(v) }
        let script = """
            import sys
            from hdrh.histogram import HdrHistogram
            ours = HdrHistogram.decode(sys.argv[1])
            print(ours.get_total_count(), ours.get_max_value(), ours.get_min_value(),
                  ' '.join(str(ours.get_value_at_percentile(p)) for p in (50, 90, 99, 99.9)))
            theirs = HdrHistogram(1, 3600000000, 3)
            for line in sys.stdin:
                theirs.record_value(int(line))
            print(theirs.encode().decode())
            """
        let out = try await python(script, [HistogramCodec.encode(h)], stdin: values.map(String.init).joined(separator: "\n") + "\n")
        #expect(out.status == 0, "\(out.stderr)")
        let lines = out.stdout.split(separator: "\n").map(String.init)
        try #require(lines.count == 2, "\(out.stdout)\(out.stderr)")
        let fields = lines[0].split(separator: " ").compactMap { UInt64($0) }
        #expect(fields[0] == h.totalCount)
        #expect(h.valuesAreEquivalent(fields[1], h.max))
        #expect(h.valuesAreEquivalent(fields[2], h.min))
        for (i, p) in [50.0, 90, 99, 99.9].enumerated() { #expect(h.valuesAreEquivalent(fields[3 + i], h.valueAtPercentile(p)), "p\(p)") }
        // Python's encoding of the same samples decodes to our histogram, count for count.
        let theirs = try HistogramCodec.decode(lines[1])
        #expect(theirs == h)
    }
}

/// The histogram of meshprobe's results: microseconds, 1 us to 1 hour, 3 significant digits.
func latencyHistogram() -> Histogram<UInt64> {
    Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
}

/// A percentile as the highest value of its bucket (HdrHistogram's convention, and meshprobe's).
func percentile(_ h: Histogram<UInt64>, _ p: Double) -> UInt64 {
    h.totalCount == 0 ? 0 : h.highestEquivalentForValue(h.valueAtPercentile(p))
}
