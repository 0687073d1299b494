import Histogram
import MeshprobeHistogram
import Testing
@testable import MeshprobeLoad

@Suite struct TimelinePointTests {
    /// A busy second: 20,000 responses from 100 us to 30 s (a body, a tail, and outliers), deterministic.
    func busySecond() -> TimelineBucket {
        var bucket = TimelineBucket(second: 7)
        var state: UInt64 = 42
        for _ in 0..<20_000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let r = Double(state >> 11) / Double(1 << 53)
            _ = bucket.latency.record(r < 0.02 ? UInt64(100_000 + r * 1_500_000_000) : UInt64(100 + r * 20_000))
        }
        bucket.responses = 20_000
        bucket.succeeded = 19_990
        bucket.failed = 10
        bucket.sent = 20_010
        return bucket
    }

    @Test func aFinishedSecondKeepsItsHistogramCompressedAndExact() throws {
        let bucket = busySecond()
        let point = TimelinePoint(bucket)
        // The whole counts array of a 2-digit histogram over 1 us to 1 h is about 3,300 counts of 8 bytes; the point
        // keeps a small fraction of that per second.
        #expect(point.histogram.count < 2_048, "\(point.histogram.count) bytes")
        let back = try HistogramCodec.decompress(point.histogram)
        #expect(back == bucket.latency)
        #expect(back.numberOfSignificantValueDigits == .two)
        // The percentiles are the same from the compressed histogram as from the live one.
        #expect(TimelinePoint(point.bucket) == point)
        #expect(point.p99 == back.highestEquivalentValue(atPercentile: 99))
        #expect(point.p50 <= point.p90 && point.p90 <= point.p99 && point.p99 <= point.max)
    }

    @Test func aSecondWithoutResponsesKeepsNoHistogram() {
        var bucket = TimelineBucket(second: 3)
        bucket.sent = 5
        bucket.failed = 5
        let point = TimelinePoint(bucket)
        #expect(point.histogram.isEmpty)
        #expect(point.p99 == 0 && point.max == 0)
        #expect(point.latency.totalCount == 0)
    }
}
