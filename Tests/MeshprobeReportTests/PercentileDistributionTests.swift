import Foundation
import Histogram
import MeshprobeHistogram
import MeshprobeReport
import Testing

/// The `.hgrm` text: HdrHistogram's outputPercentileDistribution (Java's layout and tick positions), checked line by
/// line for a known histogram. (Python's `hdrh` places its percentile ticks differently, so it is no reference here.)
@Suite struct PercentileDistributionTests {
    @Test func aKnownHistogramGivesTheExpectedLines() {
        var h = LatencyHistogram.latency()
        for i in 1...10 { _ = h.record(UInt64(i) * 100) }  // 0.1, 0.2, ... 1 ms: below 2048 us, every value is exact
        let lines = PercentileDistribution.text(h).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines[0] == "       Value     Percentile TotalCount 1/(1-Percentile)")
        #expect(lines[1] == "")
        #expect(lines[2] == "       0.100 0.000000000000          1           1.00")
        #expect(lines.contains("       0.500 0.500000000000          5           2.00"))
        #expect(lines.contains("       0.900 0.900000000000          9          10.00"))
        #expect(lines.contains("       1.000 1.000000000000         10"))
        // Mean 550 us; population standard deviation 100 * sqrt(8.25) = 287.2 us.
        #expect(lines.contains("#[Mean    =        0.550, StdDeviation   =        0.287]"))
        #expect(lines.contains("#[Max     =        1.000, Total count    =           10]"))
        #expect(lines.contains("#[Buckets =           22, SubBuckets     =         2048]"))
    }
}
