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
        #expect(out.status == 0, "\(out.err)")
        let lines = out.out.split(separator: "\n").map(String.init)
        try #require(lines.count == 2, "\(out.out)\(out.err)")
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
