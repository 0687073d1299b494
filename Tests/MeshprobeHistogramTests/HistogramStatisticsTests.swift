import Histogram
import MeshprobeHistogram
import MeshprobeLoad
import Testing

/// The specialised percentiles and mean give exactly what hdrhistogram-swift's own `valueAtPercentile` and `mean`
/// give (the reports and merges depend on the numbers being the same whichever way they are computed).
@Suite struct HistogramStatisticsTests {
    static let percentiles: [Double] = [0, 1e-9, 0.1, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 99.999, 100, 150, -5, .nan]

    static let shapes: [(String, [UInt64])] = {
        let low: [UInt64] = (0..<5000).map { UInt64(100 + $0 % 50) }
        let high: [UInt64] = (0..<50).map { UInt64(500_000 + $0 * 997) }
        return [
            ("empty", []),
            ("one value", [42]),
            ("one value, many times", Array(repeating: 1500, count: 1000)),
            ("zero and a large value", [0, 0, 3_500_000_000]),
            ("two clusters", low + high),
        ]
    }()

    @Test func fixedShapes() {
        for (name, values) in Self.shapes {
            var h = latencyHistogram()
            for v in values { _ = h.record(v) }
            check(h, name)
        }
    }

    @Test func randomHistogramsAcrossTheRange() {
        var rng = SplitMix64(seed: 7)
        for round in 0..<20 {
            var h = latencyHistogram()
            let count = Int(rng.next() % 20_000) + 1
            let scale = UInt64(1) << (rng.next() % 30)
            for _ in 0..<count { _ = h.record(1 + rng.next() % scale + (rng.next() % 4 == 0 ? rng.next() % (scale * 50) : 0)) }
            check(h, "round \(round)")
        }
    }

    @Test func twoSignificantDigitsToo() {
        var h = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .two)
        for v in stride(from: UInt64(1), to: 2_000_000, by: 7919) { _ = h.record(v) }
        check(h, "2 digits")
    }

    @Test func mergeEqualsAddWhicheverSideIsEmpty() {
        var full = latencyHistogram()
        for v in [UInt64(5), 900, 1_200, 70_000] { _ = full.record(v) }
        let empty = latencyHistogram()
        for (a, b) in [(empty, full), (full, empty), (full, full), (empty, empty)] {
            var added = a
            added.add(b)
            var merged = a
            merged.merge(b)
            #expect(merged == added)
            #expect(merged.totalCount == added.totalCount && merged.max == added.max && merged.min == added.min)
        }
        // An empty histogram of another layout keeps its own layout (it is added to, not replaced).
        var narrow = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 10_000_000, numberOfSignificantValueDigits: .three)
        narrow.merge(full)
        #expect(narrow.highestTrackableValue == 10_000_000)
        #expect(narrow.totalCount == 4 && narrow.valueAtPercentile(100) == full.valueAtPercentile(100))
    }

    private func check(_ h: Histogram<UInt64>, _ name: String) {
        let expected = Self.percentiles.map { h.valueAtPercentile($0) }
        #expect(h.values(atPercentiles: Self.percentiles) == expected, "\(name)")
        for (p, value) in zip(Self.percentiles, expected) {
            #expect(h.value(atPercentile: p) == value, "\(name) p\(p)")
        }
        // Shuffled and repeated percentiles come back in the order asked.
        let asked: [Double] = [99, 50, 99, 0.5, 100]
        #expect(h.values(atPercentiles: asked) == asked.map { h.valueAtPercentile($0) }, "\(name)")
        #expect(h.meanValue == h.mean, "\(name)")
    }
}
