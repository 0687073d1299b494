import Histogram

/// Latency histograms record microseconds, 1 us to 1 hour, 3 significant digits.
public typealias LatencyHistogram = Histogram<UInt64>

extension Histogram where Count == UInt64 {
    /// An empty latency histogram. A copy of one built once: building one fills its 23552-entry counts array an
    /// element at a time through the package's unspecialised generic code (about 0.2 ms each, and a run builds
    /// dozens), while a copy shares the empty array until its first `record`, which copies it with one `memcpy`.
    public static func latency() -> Histogram<UInt64> { emptyLatency }

    private static let emptyLatency = Histogram<UInt64>(
        lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
}

extension Histogram where Count == UInt64 {
    /// The value at `percentile` as the highest value of its bucket (HdrHistogram's convention), 0 when empty: the
    /// same from a histogram and from its compressed encoding (which keeps counts per bucket, not the raw maximum), so
    /// a merged result's percentiles and verdicts match a single run's.
    public func highestEquivalentValue(atPercentile percentile: Double) -> UInt64 {
        totalCount == 0 ? 0 : highestEquivalentForValue(value(atPercentile: percentile))
    }

    /// `highestEquivalentValue(atPercentile:)` of each of `percentiles`, from one walk over the histogram.
    public func highestEquivalentValues(atPercentiles percentiles: [Double]) -> [UInt64] {
        guard totalCount > 0 else { return percentiles.map { _ in 0 } }
        return values(atPercentiles: percentiles).map { highestEquivalentForValue($0) }
    }
}

extension Histogram where Count == UInt64 {
    /// A smaller histogram (2 significant digits) for per-second timeline buckets.
    /// A copy of one built once, like `latency()`.
    public static func timelineLatency() -> Histogram<UInt64> { emptyTimelineLatency }

    private static let emptyTimelineLatency = Histogram<UInt64>(
        lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .two)
}
