import Foundation

/// Has a split stopped changing, at the declared weights? The propagation wait before a split test.
///
/// A new routing policy reaches the proxies one by one over seconds, so the split a prober sees drifts from the old
/// weights to the new ones. `StabilityCheck` looks at the counts of consecutive time windows and calls the split
/// settled when the last `stableWindows` windows are consistent with one and the same split (Pearson's chi-square
/// test of homogeneity on the windows x destinations table does not reject at `significance`) and their pooled
/// shares are within the tolerance of the declared ones. Stability alone is not enough: the old policy is stable
/// too until the first proxy takes the new one. The split test then runs on fresh samples, so the wait decides
/// only when judging starts; a proxy that never takes the declared split costs the whole timeout, then fails.
///
/// The chi-square quantile uses the Wilson-Hilferty approximation (within 1% of the exact critical value for one
/// degree of freedom, closer above).
public struct StabilityCheck: Sendable {
    public var stableWindows: Int
    public var significance: Double
    /// Windows with fewer samples than this say too little; they never count as settled.
    public var minimumSamplesPerWindow: Int

    public init(stableWindows: Int = 3, significance: Double = 0.01, minimumSamplesPerWindow: Int = 30) {
        self.stableWindows = stableWindows
        self.significance = significance
        self.minimumSamplesPerWindow = minimumSamplesPerWindow
    }

    /// True when the last `stableWindows` windows (destination -> count) look like one split, and (when `declared`
    /// shares are given) every pooled share is within `tolerance` of its declared share (0 for undeclared ones).
    public func settled(_ windows: [[String: Int]], declared: [String: Double]? = nil, tolerance: Double = 0) -> Bool {
        guard windows.count >= stableWindows, stableWindows >= 2 else { return false }
        let last = Array(windows.suffix(stableWindows))
        guard last.allSatisfy({ $0.values.reduce(0, +) >= minimumSamplesPerWindow }) else { return false }
        if let declared {
            var pooled: [String: Int] = [:]
            for window in last { pooled.merge(window, uniquingKeysWith: +) }
            let total = Double(pooled.values.reduce(0, +))
            for name in Set(pooled.keys).union(declared.keys)
            where abs(Double(pooled[name, default: 0]) / total - declared[name, default: 0]) > tolerance {
                return false
            }
        }
        guard let statistic = Self.chiSquare(last) else { return true }  // One destination only: nothing can differ.
        return statistic.value <= Self.chiSquareQuantile(1 - significance, degreesOfFreedom: statistic.degreesOfFreedom)
    }

    /// Pearson's statistic for homogeneity of the rows; nil when fewer than two destinations were seen.
    public static func chiSquare(_ rows: [[String: Int]]) -> (value: Double, degreesOfFreedom: Int)? {
        let columns = Set(rows.flatMap { $0.filter { $0.value > 0 }.keys }).sorted()
        guard columns.count >= 2, rows.count >= 2 else { return nil }
        let rowTotals = rows.map { Double($0.values.reduce(0, +)) }
        let total = rowTotals.reduce(0, +)
        var value = 0.0
        for column in columns {
            let columnTotal = Double(rows.reduce(0) { $0 + $1[column, default: 0] })
            for (i, row) in rows.enumerated() {
                let expected = rowTotals[i] * columnTotal / total
                let observed = Double(row[column, default: 0])
                value += (observed - expected) * (observed - expected) / expected
            }
        }
        return (value, (rows.count - 1) * (columns.count - 1))
    }

    /// The chi-square distribution's quantile (Wilson-Hilferty).
    public static func chiSquareQuantile(_ p: Double, degreesOfFreedom k: Int) -> Double {
        let df = Double(k)
        let z = SplitTest.normalQuantile(p)
        let h = 2 / (9 * df)
        return df * pow(1 - h + z * h.squareRoot(), 3)
    }
}
