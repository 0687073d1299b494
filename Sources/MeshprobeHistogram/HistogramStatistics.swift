import Histogram

/// Percentiles and the mean of a `Histogram<UInt64>`, with the same results as hdrhistogram-swift's
/// `valueAtPercentile(_:)` and `mean`, computed in code the compiler specialises for `UInt64` counts.
///
/// The package's own `valueAtPercentile` and `mean` are not `@inlinable`, so they run as unspecialised generic code
/// (every count read and conversion through a witness table) over every bucket up to the value asked for: about
/// 50 us per percentile of a millisecond-scale latency histogram. A run's report asks for dozens of them, which cost
/// a few milliseconds of CPU per run. These walk the package's `@inlinable` iterator over the recorded buckets
/// instead, and several percentiles share one walk.
extension Histogram where Count == UInt64 {
    /// The same value as `valueAtPercentile(percentile)`.
    public func value(atPercentile percentile: Double) -> UInt64 {
        values(atPercentiles: [percentile])[0]
    }

    /// `valueAtPercentile(_:)` of each of `percentiles` (in any order), from one walk over the recorded buckets.
    public func values(atPercentiles percentiles: [Double]) -> [UInt64] {
        var results = [UInt64](repeating: 0, count: percentiles.count)
        // The count each percentile needs, as the package computes it (one ulp below, rounded up, at least 1).
        var pending: [(index: Int, count: UInt64)] = []
        pending.reserveCapacity(percentiles.count)
        for (index, percentile) in percentiles.enumerated() {
            if percentile == 0 {
                results[index] = min
            } else if !(percentile < 100) {
                results[index] = maxRecorded
            } else {
                let requested = Swift.min(Swift.max(percentile.nextDown, 0), 100)
                let count = (requested * Double(totalCount)) / 100
                pending.append((index, Swift.max(1, UInt64(count.rounded(.up)))))
            }
        }
        guard !pending.isEmpty else { return results }
        pending.sort { $0.count < $1.count }
        let lowest = min
        let highest = maxRecorded
        var next = 0
        for step in recordedValues() {
            // `step.value` is the highest value equivalent to the bucket's, as `valueAtPercentile` returns it.
            while next < pending.count, step.totalCountToThisValue >= pending[next].count {
                results[pending[next].index] = Swift.max(Swift.min(step.value, highest), lowest)
                next += 1
            }
            if next == pending.count { break }
        }
        return results
    }

    /// The same value as `mean`.
    public var meanValue: Double {
        guard totalCount > 0 else { return 0 }
        var total: Double = 0
        for step in recordedValues() {
            total += Double(medianEquivalentForValue(step.value)) * Double(step.count)
        }
        return total / Double(totalCount)
    }
}

extension Histogram where Count == UInt64 {
    /// `add(other)`, without copying or walking a counts array when either side is empty: an empty `other` changes
    /// nothing, and an empty `self` with the same layout becomes a copy of `other` (sharing its counts array until
    /// one of them records). The engine merges each worker's histograms, most of them empty (a histogram per
    /// identity, per failure class, the open model's send delay in a closed run), into fresh ones.
    public mutating func merge(_ other: Histogram<UInt64>) {
        guard other.totalCount > 0 else { return }
        if totalCount == 0, numberOfSignificantValueDigits == other.numberOfSignificantValueDigits,
           lowestDiscernibleValue == other.lowestDiscernibleValue, highestTrackableValue == other.highestTrackableValue {
            self = other
            return
        }
        add(other)
    }
}
