import Foundation

/// A sequential test that the share of samples with some property (a success; a latency at or under a ceiling) is at
/// least `minimum`: a service-level objective decided by a bound at stated error rates, never by a point estimate.
///
/// Method (docs/statistics.md). With `S` samples that have the property and `F` that do not, two mixture test
/// martingales (Robbins) are kept:
/// - PASS evidence against "share <= minimum": the likelihood ratio of share `q` to `minimum`, averaged over `q`
///   uniform on (minimum, 1]: `int_m^1 q^S (1-q)^F dq / ((1 - m) m^S (1 - m)^F)`;
/// - FAIL evidence against "share >= minimum": the same averaged over `q` uniform on [0, minimum).
/// Each is a nonnegative supermartingale under its hypothesis (for every `q` on the other side the ratio's mean is at
/// most 1), so by Ville's inequality a service at or below the objective passes with probability at most `missRate`
/// (PASS when the evidence reaches `1 / missRate`), and one at or above it fails with probability at most
/// `falseFailRate`, however often the test looks. A service exactly at the objective decides neither: undecided at
/// the cap. The integrals are incomplete beta functions.
///
/// A sample may be a fraction (a connection's share of successes: the unit when requests cluster by connection):
/// `q^y (1-q)^(1-y)` is convex in `y`, so its mean over any `y` in [0, 1] with mean `share` is at most its mean over
/// a Bernoulli(`share`), and the guarantee holds for any clustering within a connection.
public struct ShareBoundTest: Sendable, Equatable {
    public enum Verdict: Sendable, Equatable {
        case pass
        case fail
    }

    public let minimum: Double
    public let falseFailRate: Double
    public let missRate: Double
    /// Samples with the property and without it (fractions allowed).
    public private(set) var successes = 0.0
    public private(set) var failures = 0.0
    public private(set) var samples = 0
    public private(set) var verdict: Verdict?
    /// Keep counting after the verdict (a load of fixed length, whose report and merges want every sample): the
    /// verdict stays the one reached first; the counts and the evidence go on to the end, which is a valid stopping
    /// time too.
    public var countsAfterVerdict = false

    public init(minimum: Double, falseFailRate: Double, missRate: Double) throws(SplitTestError) {
        guard minimum > 0, minimum < 1 else { throw SplitTestError("the objective must be a share between 0 and 1 (exclusive), got \(minimum)") }
        guard falseFailRate > 0, falseFailRate < 0.5, missRate > 0, missRate < 0.5 else {
            throw SplitTestError("the error rates must be between 0 and 0.5")
        }
        self.minimum = minimum
        self.falseFailRate = falseFailRate
        self.missRate = missRate
    }

    /// Records one sample: `share` of it had the property (1 or 0 for a request, a fraction for a connection).
    @discardableResult
    public mutating func record(_ share: Double) -> Verdict? {
        if let verdict, !countsAfterVerdict { return verdict }
        let y = min(1, max(0, share))
        successes += y
        failures += 1 - y
        samples += 1
        return decide()
    }

    /// Adds counts whose order is unknown (a finished load), then decides on them: one look at the end.
    @discardableResult
    public mutating func add(successes s: Double, failures f: Double) -> Verdict? {
        if let verdict { return verdict }
        successes += max(0, s)
        failures += max(0, f)
        samples += Int((max(0, s) + max(0, f)).rounded())
        return decide()
    }

    private mutating func decide() -> Verdict? {
        if verdict == nil {
            let (pass, fail) = logEvidence
            if fail >= log(1 / falseFailRate) {
                verdict = .fail
            } else if pass >= log(1 / missRate) {
                verdict = .pass
            }
        }
        return verdict
    }

    /// The logarithms of the PASS and FAIL evidence now.
    public var logEvidence: (pass: Double, fail: Double) {
        let m = minimum
        let (a, b) = (successes + 1, failures + 1)
        let null = successes * log(m) + failures * log(1 - m)
        let above = Self.logBetaIntegral(m, a, b, upper: true) - log(1 - m) - null
        let below = Self.logBetaIntegral(m, a, b, upper: false) - log(m) - null
        return (above, below)
    }

    /// How many more samples, each meeting the objective, would make it pass from here: the distance to the PASS
    /// bound, in the units a run can add (a request, a connection). Nil when decided, or beyond `limit`.
    public func samplesToPass(limit: Int = 100_000_000) -> Int? {
        guard verdict == nil else { return nil }
        var probe = self
        func passes(_ k: Int) -> Bool {
            probe.successes = successes + Double(k)
            return probe.logEvidence.pass >= log(1 / missRate)
        }
        guard passes(limit) else { return nil }
        var (lo, hi) = (0, limit)
        while lo < hi {
            let mid = lo + (hi - lo) / 2
            if passes(mid) { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }

    /// A two-sided interval for the share at `confidence`, from the observed counts (Clopper-Pearson by bisection on
    /// the incomplete beta): what the report prints beside the verdict. Fixed-sample, not anytime: a description.
    public func interval(confidence: Double = 0.95) -> (low: Double, high: Double) {
        let tail = (1 - confidence) / 2
        let (s, f) = (successes, failures)
        func lowerTail(_ x: Double, _ a: Double, _ b: Double) -> Double {
            exp(Self.logBetaIntegral(x, a, b, upper: false) - Self.logBeta(a, b))
        }
        func solve(_ target: Double, _ a: Double, _ b: Double) -> Double {
            var (lo, hi) = (0.0, 1.0)
            for _ in 0..<60 {
                let mid = (lo + hi) / 2
                if lowerTail(mid, a, b) < target { lo = mid } else { hi = mid }
            }
            return (lo + hi) / 2
        }
        let low = s <= 0 ? 0 : solve(tail, s, f + 1)
        let high = f <= 0 ? 1 : solve(1 - tail, s + 1, f)
        return (low, high)
    }

    static func logBeta(_ a: Double, _ b: Double) -> Double { lgamma(a) + lgamma(b) - lgamma(a + b) }

    /// `ln int_0^x t^(a-1) (1-t)^(b-1) dt` (or from `x` to 1 when `upper`), for 0 < x < 1 and a, b >= 1: the continued
    /// fraction of the incomplete beta function (modified Lentz) on the side where it converges fast, the other side
    /// as the complement.
    static func logBetaIntegral(_ x: Double, _ a: Double, _ b: Double, upper: Bool) -> Double {
        let total = logBeta(a, b)
        let direct = x < (a + 1) / (a + b + 2)
        let near = direct
            ? a * log(x) + b * log(1 - x) - log(a) + log(continuedFraction(x, a, b))
            : b * log(1 - x) + a * log(x) - log(b) + log(continuedFraction(1 - x, b, a))
        // `near` is the lower integral when direct, else the upper one.
        if direct != upper { return near }
        return total + log(max(1e-300, -expm1(near - total)))
    }

    static func continuedFraction(_ x: Double, _ a: Double, _ b: Double) -> Double {
        let tiny = 1e-300
        var c = 1.0
        var d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var h = d
        for m in 1...100_000 {
            let m = Double(m)
            let even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
            d = 1 + even * d
            if abs(d) < tiny { d = tiny }
            c = 1 + even / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            h *= d * c
            let odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
            d = 1 + odd * d
            if abs(d) < tiny { d = tiny }
            c = 1 + odd / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < 1e-14 { break }
        }
        return h
    }
}
