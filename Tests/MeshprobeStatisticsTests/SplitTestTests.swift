import Foundation
import MeshprobeLoad
import MeshprobeTestSupport
import Testing
@testable import MeshprobeStatistics

/// Runs `runs` seeded tests with responses drawn from `truth` (shares by destination, in `test.destinations`
/// order); returns the fraction that failed and the mean number of samples used.
func simulate(declared: [String: Double], truth: [String: Double], configuration: SplitTestConfiguration, runs: Int,
              seed: UInt64) throws -> (failRate: Double, meanSamples: Double, truncated: Int) {
    var random = SplitMix64(seed: seed)
    var failures = 0
    var samples = 0
    var truncated = 0
    let template = try SplitTest(weights: declared, configuration: configuration)
    let cumulative = template.destinations.reduce(into: [Double]()) { acc, name in acc.append((acc.last ?? 0) + (truth[name] ?? 0)) }
    for _ in 0..<runs {
        var test = template
        var verdict: SplitTest.Verdict?
        while verdict == nil && !test.isCapped {
            let u = Double(random.next() >> 11) / Double(1 << 53)
            let i = cumulative.firstIndex { u < $0 } ?? (cumulative.count - 1)
            verdict = test.record(index: i)
        }
        if verdict?.passed == false { failures += 1 }
        if test.isCapped { truncated += 1 }
        samples += test.sampleCount
    }
    return (Double(failures) / Double(runs), Double(samples) / Double(runs), truncated)
}

/// A bound that a rate measured over `runs` trials stays under with overwhelming probability when the true rate
/// is `rate` (the rate plus four binomial standard errors).
func allowance(_ rate: Double, runs: Int) -> Double {
    rate + 4 * (rate * (1 - rate) / Double(runs)).squareRoot()
}

@Suite(.inTheBackground, .tags(.simulation)) struct SplitTestTests {
    let strict = SplitTestConfiguration(tolerance: 0.05, falseFailRate: 0.001, missRate: 0.01, maxSamples: 20_000)

    @Test func aCorrectCanaryFailsNoMoreOftenThanDeclared() throws {
        let runs = 4000
        let r = try simulate(declared: ["v1": 90, "v2": 10], truth: ["v1": 0.9, "v2": 0.1], configuration: strict, runs: runs, seed: 1)
        print("split 90/10 as declared: false-fail rate \(r.failRate) over \(runs) runs, mean samples \(r.meanSamples)")
        #expect(r.failRate <= allowance(strict.falseFailRate, runs: runs), "false-fail rate \(r.failRate)")
        #expect(r.truncated == 0)
    }

    @Test func aDeviationOfTheToleranceIsCaughtAsOftenAsDeclared() throws {
        let runs = 3000
        // The worst case the test must catch: exactly the tolerance off (85/15 against a declared 90/10), both ways.
        for truth in [["v1": 0.85, "v2": 0.15], ["v1": 0.95, "v2": 0.05]] {
            let r = try simulate(declared: ["v1": 90, "v2": 10], truth: truth, configuration: strict, runs: runs, seed: 2)
            let miss = 1 - r.failRate
            print("split 90/10 declared, true \(truth): miss rate \(miss) over \(runs) runs, mean samples \(r.meanSamples)")
            #expect(miss <= allowance(strict.missRate, runs: runs), "miss rate \(miss) at \(truth)")
        }
    }

    @Test func needsAtMost60PercentOfAFixedSizeTestWithTheSameErrorRates() throws {
        let fixed = Double(SplitTest.fixedSampleSize(share: 0.1, configuration: strict, destinations: 2))
        let atDeclared = try simulate(declared: ["v1": 90, "v2": 10], truth: ["v1": 0.9, "v2": 0.1], configuration: strict,
                                      runs: 1000, seed: 3)
        let atDeviation = try simulate(declared: ["v1": 90, "v2": 10], truth: ["v1": 0.8, "v2": 0.2], configuration: strict,
                                       runs: 1000, seed: 4)
        print("fixed-size test: \(fixed) samples; sequential: \(atDeclared.meanSamples) at 90/10, \(atDeviation.meanSamples) at 80/20")
        #expect(atDeclared.meanSamples <= 0.6 * fixed, "mean \(atDeclared.meanSamples) vs fixed \(fixed)")
        #expect(atDeviation.meanSamples <= 0.6 * fixed, "mean \(atDeviation.meanSamples) vs fixed \(fixed)")
    }

    @Test func threeWaySplitsHoldTheirErrorRates() throws {
        let declared = ["a": 70.0, "b": 20, "c": 10]
        let correct = try simulate(declared: declared, truth: ["a": 0.7, "b": 0.2, "c": 0.1], configuration: strict, runs: 2000, seed: 5)
        #expect(correct.failRate <= allowance(strict.falseFailRate, runs: 2000))
        let off = try simulate(declared: declared, truth: ["a": 0.65, "b": 0.25, "c": 0.1], configuration: strict, runs: 2000, seed: 6)
        #expect(1 - off.failRate <= allowance(strict.missRate, runs: 2000))
    }

    @Test func theGatewayAPIRuleMissesWhatThisTestCatches() throws {
        // Gateway API conformance: 500 requests, |observed - expected| <= 0.05 per backend, up to 10 tries.
        // At a declared 70/30 a true 76/24 passes that rule ~98% of the time; this test (tolerance 0.05) catches it.
        var random = SplitMix64(seed: 7)
        var gatewayPasses = 0
        let runs = 1000
        for _ in 0..<runs {
            var passed = false
            for _ in 0..<10 where !passed {
                var count = 0
                for _ in 0..<500 { if Double(random.next() >> 11) / Double(1 << 53) < 0.76 { count += 1 } }
                passed = abs(Double(count) / 500 - 0.7) <= 0.05
            }
            if passed { gatewayPasses += 1 }
        }
        print("declared 70/30, true 76/24: Gateway API rule passes \(Double(gatewayPasses) / Double(runs))")
        #expect(Double(gatewayPasses) / Double(runs) > 0.9)
        let ours = try simulate(declared: ["a": 70, "b": 30], truth: ["a": 0.76, "b": 0.24], configuration: strict, runs: runs, seed: 8)
        print("declared 70/30, true 76/24: sequential test passes \(1 - ours.failRate), mean samples \(ours.meanSamples)")
        #expect(1 - ours.failRate <= allowance(strict.missRate, runs: runs))
    }

    @Test func zeroWeightFailsOnItsFirstResponse() throws {
        var test = try SplitTest(weights: ["v1": 100, "v2": 0])
        for _ in 0..<50 {
            let verdict = test.record("v1")
            #expect(verdict == nil)
        }
        let recorded = test.record("v2")
        let verdict = try #require(recorded)
        #expect(!verdict.passed)
        #expect(verdict.evidence.samples == 51)
        #expect(verdict.evidence.counts == ["v1": 50, "v2": 1])
    }

    @Test func aHundredPercentRoutePassesAfterEnoughResponses() throws {
        var test = try SplitTest(weights: ["v1": 100], configuration: strict)
        var verdict: SplitTest.Verdict?
        while verdict == nil { verdict = test.record("v1") }
        // ln(0.01) / ln(0.95) = 89.8: 90 responses all from v1 rule out a 5% leak with 99% confidence.
        #expect(verdict?.passed == true)
        #expect(test.sampleCount == 90)
    }

    @Test func anUndeclaredDestinationFailsAtOnce() throws {
        var test = try SplitTest(weights: ["v1": 90, "v2": 10])
        let recorded = test.record("v3")
        let verdict = try #require(recorded)
        guard case .fail(let reason, let evidence) = verdict else {
            Issue.record("expected a failure")
            return
        }
        #expect(reason.contains("v3"))
        #expect(evidence.counts["v3"] == 1)
    }

    /// A guess at the cap would break the stated error rates: the test stays undecided there and says so.
    @Test func theCapLeavesTheTestUndecided() throws {
        let loose = SplitTestConfiguration(tolerance: 0.05, falseFailRate: 0.001, missRate: 0.01, maxSamples: 50)
        var test = try SplitTest(weights: ["v1": 50, "v2": 50], configuration: loose)
        for i in 0..<80 {
            #expect(test.record(i % 2 == 0 ? "v1" : "v2") == nil)
        }
        #expect(test.isCapped)
        #expect(test.evidence.truncated)
        #expect(test.sampleCount == 50)
    }

    @Test func badSettingsAreRefused() {
        #expect(throws: SplitTestError.self) { try SplitTest(weights: ["v1": 1], configuration: .init(tolerance: 0)) }
        #expect(throws: SplitTestError.self) { try SplitTest(weights: ["v1": 1], configuration: .init(falseFailRate: 0.7)) }
        #expect(throws: SplitTestError.self) { try SplitTest(weights: ["v1": 0]) }
        #expect(throws: SplitTestError.self) { try SplitTest(weights: ["v1": -5, "v2": 10]) }
    }

    @Test func normalQuantileMatchesKnownValues() {
        #expect(abs(SplitTest.normalQuantile(0.975) - 1.959964) < 1e-5)
        #expect(abs(SplitTest.normalQuantile(0.99) - 2.326348) < 1e-5)
        #expect(abs(SplitTest.normalQuantile(0.9995) - 3.290527) < 1e-5)
        #expect(abs(SplitTest.normalQuantile(0.5)) < 1e-9)
    }
}

/// The verdict on counts gathered elsewhere (merged shards): judged by each test's ratio after all samples.
@Suite(.inTheBackground, .tags(.simulation)) struct MergedCountsTests {
    let config = SplitTestConfiguration(tolerance: 0.05, falseFailRate: 0.001, missRate: 0.01, maxSamples: 20_000)

    @Test func clearCountsDecideAndTooFewAreUndecided() throws {
        let weights = ["v1": 90.0, "v2": 10.0]
        #expect(try SplitTest.evaluate(counts: ["v1": 9000, "v2": 1000], weights: weights, configuration: config)?.passed == true)
        let off = try SplitTest.evaluate(counts: ["v1": 700, "v2": 300], weights: weights, configuration: config)
        #expect(off?.passed == false)
        if case .fail(let reason, let evidence)? = off {
            #expect((reason.contains("v1 gets less") || reason.contains("v2 gets more")) && evidence.samples == 1000, "\(reason)")
        }
        #expect(try SplitTest.evaluate(counts: ["v1": 9, "v2": 1], weights: weights, configuration: config) == nil)
        #expect(try SplitTest.evaluate(counts: ["v1": 90, "v3": 1], weights: weights, configuration: config)?.passed == false)
        #expect(try SplitTest.evaluate(counts: ["v1": 90, "v2": 1], weights: ["v1": 100, "v2": 0], configuration: config)?.passed == false)
    }

    /// Shards of a split exactly as declared, merged: false fails stay within the stated rate (Ville's inequality).
    @Test func mergedShardsOfACorrectSplitRarelyFail() throws {
        var random = SplitMix64(seed: 42)
        var fails = 0, passes = 0
        let runs = 3000
        for _ in 0..<runs {
            var counts = ["v1": 0, "v2": 0]
            for _ in 0..<1500 { counts[Double.random(in: 0..<1, using: &random) < 0.9 ? "v1" : "v2", default: 0] += 1 }
            switch try SplitTest.evaluate(counts: counts, weights: ["v1": 90, "v2": 10], configuration: config) {
            case .fail?: fails += 1
            case .pass?: passes += 1
            case nil: break
            }
        }
        // 0.001 of 3000 is 3; allow the binomial spread of a rare event.
        #expect(fails <= 8, "\(fails) false fails in \(runs)")
        #expect(passes > runs * 9 / 10, "\(passes) passes: 1500 samples decide a correct 90/10 split")
    }

    /// Merged shards of a split off by the tolerance (80/20 against 90/10, 0.05): caught.
    @Test func mergedShardsOfAWrongSplitFail() throws {
        var random = SplitMix64(seed: 7)
        var missed = 0
        for _ in 0..<1000 {
            var counts = ["v1": 0, "v2": 0]
            for _ in 0..<1500 { counts[Double.random(in: 0..<1, using: &random) < 0.8 ? "v1" : "v2", default: 0] += 1 }
            if try SplitTest.evaluate(counts: counts, weights: ["v1": 90, "v2": 10], configuration: config)?.passed != false { missed += 1 }
        }
        #expect(missed <= 10, "\(missed) of 1000 wrong splits not failed")
    }
}
