import Foundation
import MeshprobeLoad
import MeshprobeTestSupport
import Testing
@testable import MeshprobeStatistics

@Suite(.inTheBackground, .tags(.simulation)) struct StabilityCheckTests {
    @Test func chiSquareQuantilesAreCloseToTheTables() {
        // Critical values at 0.99 from the chi-square table.
        for (df, exact) in [(1, 6.635), (2, 9.210), (4, 13.277), (10, 23.209)] {
            let approx = StabilityCheck.chiSquareQuantile(0.99, degreesOfFreedom: df)
            #expect(abs(approx - exact) / exact < 0.01, "df \(df): \(approx) vs \(exact)")
        }
    }

    @Test func theStatisticOfATextbookTable() throws {
        // Rows (30, 10) and (10, 30): expected 20 in every cell, statistic 4 * 100 / 20 = 20, one degree of freedom.
        let s = try #require(StabilityCheck.chiSquare([["a": 30, "b": 10], ["a": 10, "b": 30]]))
        #expect(abs(s.value - 20) < 1e-9 && s.degreesOfFreedom == 1)
        #expect(StabilityCheck.chiSquare([["a": 5], ["a": 7]]) == nil)
    }

    @Test func aSteadySplitSettlesAndAChangingOneDoesNot() {
        let check = StabilityCheck(stableWindows: 3)
        let steady = [["v1": 180, "v2": 20], ["v1": 178, "v2": 22], ["v1": 183, "v2": 17]]
        #expect(check.settled(steady))
        #expect(check.settled(steady, declared: ["v1": 0.9, "v2": 0.1], tolerance: 0.05))
        // Steady, but at the old weights: not settled at the declared ones.
        let old = [["v1": 100, "v2": 100], ["v1": 98, "v2": 102], ["v1": 103, "v2": 97]]
        #expect(check.settled(old))
        #expect(!check.settled(old, declared: ["v1": 0.9, "v2": 0.1], tolerance: 0.05))
        // Moving from 50/50 to 90/10: the pooled share may be near 90/10 but the windows disagree.
        let moving = [["v1": 150, "v2": 50], ["v1": 185, "v2": 15], ["v1": 199, "v2": 1]]
        #expect(!check.settled(moving))
        // Too few windows or too few samples per window.
        #expect(!check.settled(Array(steady.prefix(2))))
        #expect(!check.settled([["v1": 9, "v2": 1], ["v1": 9, "v2": 1], ["v1": 9, "v2": 1]]))
        // An undeclared destination counts against settling.
        #expect(!check.settled([["v1": 150, "v3": 50], ["v1": 150, "v3": 50], ["v1": 150, "v3": 50]], declared: ["v1": 1], tolerance: 0.05))
    }

    /// Seeded windows drawn from one steady split settle almost always at 1% significance: the wait does not drag on
    /// for a proxy that has converged.
    @Test func steadyRandomWindowsSettleAtTheStatedRate() {
        var generator = SplitMix64(seed: 42)
        let check = StabilityCheck(stableWindows: 3, significance: 0.01)
        var settled = 0
        let runs = 2000
        for _ in 0..<runs {
            let windows = (0..<3).map { _ -> [String: Int] in
                var w: [String: Int] = [:]
                for _ in 0..<200 { w[Double.random(in: 0..<1, using: &generator) < 0.9 ? "v1" : "v2", default: 0] += 1 }
                return w
            }
            if check.settled(windows) { settled += 1 }
        }
        // Expected 99%; allow for sampling noise over 2000 runs.
        #expect(Double(settled) / Double(runs) > 0.975, "\(settled) of \(runs)")
    }
}
