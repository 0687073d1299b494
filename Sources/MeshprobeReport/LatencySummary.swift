import Histogram
import MeshprobeHistogram
import MeshprobeLoad

/// Latency percentiles in milliseconds, as written to the JSON result and the terminal.
///
/// Each percentile is the highest value equivalent to it at the histogram's resolution (HdrHistogram's own
/// convention), so it is the same whether computed from the run's histogram or from its compressed V2 encoding
/// (which keeps counts per bucket, not the raw largest value): a merged result's percentiles match a single run's.
public struct LatencySummary: Codable, Sendable, Equatable {
    public var p50: Double
    public var p90: Double
    public var p99: Double
    public var p999: Double
    public var max: Double
    public var mean: Double

    public init(_ histogram: LatencyHistogram) {
        func ms(_ micros: UInt64) -> Double { (Double(micros) / 1000 * 1000).rounded() / 1000 }
        if histogram.totalCount == 0 {
            p50 = 0; p90 = 0; p99 = 0; p999 = 0; max = 0; mean = 0
            return
        }
        let percentiles = histogram.highestEquivalentValues(atPercentiles: [50, 90, 99, 99.9])
        p50 = ms(percentiles[0])
        p90 = ms(percentiles[1])
        p99 = ms(percentiles[2])
        p999 = ms(percentiles[3])
        max = ms(histogram.max)
        mean = (histogram.meanValue / 1000 * 1000).rounded() / 1000
    }

    /// The value at `percentile`, microseconds, as the highest equivalent value of its bucket.
    public static func percentile(_ histogram: LatencyHistogram, _ percentile: Double) -> UInt64 {
        histogram.highestEquivalentValue(atPercentile: percentile)
    }
}
