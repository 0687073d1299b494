import Histogram
import MeshprobeHistogram

/// HdrHistogram's percentile-distribution text (`.hgrm`), as `outputPercentileDistribution` writes it, so existing
/// plotters (HdrHistogram's plotFiles.html, hdr-plot) read meshprobe's latency: columns Value (milliseconds),
/// Percentile, TotalCount, 1/(1-Percentile), then the Mean/StdDeviation, Max/Total count and Buckets footer.
public enum PercentileDistribution {
    /// The distribution of `histogram` (microseconds) with values in milliseconds, 5 ticks per half distance.
    public static func text(_ histogram: LatencyHistogram, ticksPerHalfDistance: Int = 5) -> String {
        var out = ""
        histogram.outputPercentileDistribution(to: &out, outputValueUnitScalingRatio: 1000, percentileTicksPerHalfDistance: ticksPerHalfDistance)
        return out
    }
}
