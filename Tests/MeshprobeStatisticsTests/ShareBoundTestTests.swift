import Foundation
import MeshprobeLoad
import MeshprobeTestSupport
import Testing
@testable import MeshprobeStatistics

@Suite(.inTheBackground, .tags(.simulation)) struct ShareBoundTestTests {
    /// The incomplete beta integral against a plain numerical integration (Simpson, 20000 steps).
    @Test func betaIntegralsMatchNumericalIntegration() {
        for (x, a, b) in [(0.3, 2.0, 5.0), (0.9, 30.0, 4.0), (0.5, 1.0, 1.0), (0.99, 500.0, 3.0), (0.2, 3.0, 40.0)] {
            let n = 20_000
            func f(_ t: Double) -> Double { pow(t, a - 1) * pow(1 - t, b - 1) }
            func simpson(_ lo: Double, _ hi: Double) -> Double {
                let h = (hi - lo) / Double(n)
                var sum = f(lo) + f(hi)
                for i in 1..<n { sum += f(lo + Double(i) * h) * (i % 2 == 1 ? 4 : 2) }
                return sum * h / 3
            }
            let lower = exp(ShareBoundTest.logBetaIntegral(x, a, b, upper: false))
            let upper = exp(ShareBoundTest.logBetaIntegral(x, a, b, upper: true))
            #expect(abs(lower / simpson(0, x) - 1) < 1e-6, "lower \(x) \(a) \(b)")
            #expect(abs(upper / simpson(x, 1) - 1) < 1e-6, "upper \(x) \(a) \(b)")
        }
    }

    /// A fixed-length load counts every sample: the first verdict stays, the counts go on.
    @Test func countingAfterTheVerdictKeepsTheFirstVerdict() throws {
        var test = try ShareBoundTest(minimum: 0.5, falseFailRate: 0.001, missRate: 0.01)
        test.countsAfterVerdict = true
        var n = 0
        while test.verdict == nil { test.record(1); n += 1 }
        #expect(test.verdict == .pass)
        for _ in 0..<100 { test.record(0) }
        #expect(test.verdict == .pass && test.samples == n + 100 && test.failures == 100)
    }

    /// What an undecided test says it needs is what recording that many more successes takes, to the sample.
    @Test func samplesToPassIsTheDistanceToThePassBound() throws {
        var test = try ShareBoundTest(minimum: 0.999, falseFailRate: 0.001, missRate: 0.01)
        test.add(successes: 800, failures: 0)
        let need = try #require(test.samplesToPass())
        var fewer = test
        fewer.add(successes: Double(need - 1), failures: 0)
        #expect(fewer.verdict == nil)
        var enough = test
        enough.add(successes: Double(need), failures: 0)
        #expect(enough.verdict == .pass)
        #expect((5000...6500).contains(800 + need), "about 6500 in all with no failure: \(800 + need)")
        // A share at the objective never passes: out of reach within the limit.
        var even = try ShareBoundTest(minimum: 0.5, falseFailRate: 0.001, missRate: 0.01)
        even.add(successes: 500, failures: 500)
        #expect(even.samplesToPass(limit: 10) == nil)
    }

    /// With no failure at all, 0.999 needs about 6500 successes (an anytime bound; a fixed-size exact test needs
    /// 4603): the price of looking after every request.
    @Test func aPerfectServicePassesAHighObjectiveAfterEnoughRequests() throws {
        var test = try ShareBoundTest(minimum: 0.999, falseFailRate: 0.001, missRate: 0.01)
        var n = 0
        while test.verdict == nil && n < 20_000 {
            test.record(1)
            n += 1
        }
        #expect(test.verdict == .pass)
        #expect(n > 4603 && n < 8000, "\(n) requests")
        let (low, high) = test.interval()
        #expect(low > 0.999 && high == 1)
    }

    @Test func aFewFailuresTooManyFail() throws {
        var test = try ShareBoundTest(minimum: 0.99, falseFailRate: 0.001, missRate: 0.01)
        for i in 0..<400 { test.record(i % 20 == 0 ? 0 : 1) }  // 95%
        #expect(test.verdict == .fail)
    }

    /// Both error rates, measured at the objective itself (the hardest case for each side), requests and sticky
    /// connections (whole connections fail or succeed) alike.
    @Test(arguments: [1, 4])
    func errorRatesHoldAtTheObjective(requestsPerConnection m: Int) throws {
        var random = SplitMix64(seed: 77 + UInt64(m))
        let runs = 400, cap = 3000
        var passes = 0, fails = 0
        for _ in 0..<runs {
            var test = try ShareBoundTest(minimum: 0.9, falseFailRate: 0.05, missRate: 0.05)
            var n = 0
            while test.verdict == nil && n < cap {
                // Sticky when m > 1: every request of the connection shares one outcome.
                let ok = Double(random.next() >> 11) / Double(1 << 53) < 0.9
                test.record(ok ? 1 : 0)
                n += m
            }
            if test.verdict == .pass { passes += 1 }
            if test.verdict == .fail { fails += 1 }
        }
        #expect(Double(passes) / Double(runs) <= allowance(0.05, runs: runs), "pass \(passes)")
        #expect(Double(fails) / Double(runs) <= allowance(0.05, runs: runs), "fail \(fails)")
    }

    @Test func badObjectivesAreRefused() {
        #expect(throws: SplitTestError.self) { try ShareBoundTest(minimum: 1, falseFailRate: 0.001, missRate: 0.01) }
        #expect(throws: SplitTestError.self) { try ShareBoundTest(minimum: 0.9, falseFailRate: 0, missRate: 0.01) }
    }
}
