import Foundation

/// What a weighted-split check must guarantee, in the user's terms.
public struct SplitTestConfiguration: Sendable, Equatable {
    /// The largest deviation of a destination's share from its declared share that still counts as correct
    /// (absolute, e.g. 0.05 for five percentage points).
    public var tolerance: Double
    /// The chance of failing a split that is exactly as declared (e.g. 0.001: once in 1000 runs).
    public var falseFailRate: Double
    /// The chance of passing a split in which some destination is off by the tolerance or more (e.g. 0.01).
    public var missRate: Double
    /// A hard cap on samples; an undecided test is decided at the cap by the closer hypothesis (and says so).
    public var maxSamples: Int

    public init(tolerance: Double = 0.05, falseFailRate: Double = 0.001, missRate: Double = 0.01, maxSamples: Int = 20_000) {
        self.tolerance = tolerance
        self.falseFailRate = falseFailRate
        self.missRate = missRate
        self.maxSamples = maxSamples
    }

    /// Checks the values; the message names the setting.
    public func validate() throws(SplitTestError) {
        if !(tolerance > 0 && tolerance < 0.5) { throw SplitTestError("tolerance must be between 0 and 0.5, got \(tolerance)") }
        if !(falseFailRate > 0 && falseFailRate < 0.5) { throw SplitTestError("falseFailRate must be between 0 and 0.5, got \(falseFailRate)") }
        if !(missRate > 0 && missRate < 0.5) { throw SplitTestError("missRate must be between 0 and 0.5, got \(missRate)") }
        if maxSamples < 1 { throw SplitTestError("maxSamples must be at least 1") }
    }
}

public struct SplitTestError: Error, Sendable, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A sequential test that the observed split of responses over destinations matches declared weights.
///
/// Method (documented in the README): for each destination with declared share `p0` (0 < p0 < 1) two Wald SPRTs
/// run on its Bernoulli indicator: `p = p0` against `p = p0 + tolerance` and against `p = p0 - tolerance`, with
/// boundaries `ln((1 - beta) / a)` and `ln(beta / (1 - a))`, where `a = alpha / (2k)` is the false-fail rate
/// split over the `2k` one-sided tests (Bonferroni) and `beta` the miss rate. A destination passes when both its
/// tests accept `p0`; the split passes when every destination has; it fails as soon as any test accepts a
/// deviation. A destination declared at 0 fails on its first response; one declared at 1 fails on the first
/// response elsewhere and passes after `ln(beta) / ln(1 - tolerance)` responses. A response from an undeclared
/// destination fails at once. At `maxSamples` an undecided test is decided by whether every observed share is
/// within half the tolerance (truncated SPRT; the verdict says so).
///
/// The error rates are Wald's bounds (approximately `alpha` and `beta`, conservative with the Bonferroni split);
/// `Tests/MeshprobeVerifyTests` measures them by simulation.
public struct SplitTest: Sendable {
    public enum Verdict: Sendable, Equatable {
        case pass(SplitEvidence)
        case fail(reason: String, SplitEvidence)

        public var passed: Bool {
            if case .pass = self { return true }
            return false
        }

        public var evidence: SplitEvidence {
            switch self {
            case .pass(let e), .fail(_, let e): return e
            }
        }
    }

    /// What the verdict rests on.
    public struct SplitEvidence: Sendable, Equatable {
        public var samples: Int
        public var counts: [String: Int]
        public var declared: [String: Double]
        /// True when the test ran into `maxSamples` and was decided by the observed shares.
        public var truncated: Bool

        public func observedShare(_ destination: String) -> Double {
            samples == 0 ? 0 : Double(counts[destination, default: 0]) / Double(samples)
        }
    }

    struct OneSided: Sendable {
        let stepSuccess: Double  // log-likelihood ratio added when the destination is hit
        let stepFailure: Double  // added when another destination is hit
        var llr = 0.0
        var acceptedNull = false
    }

    public let configuration: SplitTestConfiguration
    public let declared: [String: Double]
    /// Destinations in a fixed order; everything below is indexed by it.
    public let destinations: [String]
    private let shares: [Double]
    private let index: [String: Int]
    private var sides: [[OneSided]]
    private var counts: [Int]
    private var undeclared: [String: Int] = [:]
    private var samples = 0
    private let upper: Double
    private let lower: Double
    private let neededForCertain: Int
    private var open: Int
    private var verdict: Verdict?

    /// - Parameter weights: declared weights by destination (normalised to shares; Istio's weights sum to 100).
    public init(weights: [String: Double], configuration: SplitTestConfiguration = .init()) throws(SplitTestError) {
        try configuration.validate()
        let total = weights.values.reduce(0, +)
        guard total > 0, weights.values.allSatisfy({ $0 >= 0 && $0.isFinite }) else {
            throw SplitTestError("weights must be zero or more, with at least one above zero")
        }
        self.configuration = configuration
        self.declared = weights.mapValues { $0 / total }
        let normalised = weights.mapValues { $0 / total }
        let names = normalised.keys.sorted()
        let shares = names.map { normalised[$0] ?? 0 }
        destinations = names
        self.shares = shares
        index = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        let k = max(1, shares.filter { $0 > 0 && $0 < 1 }.count)
        let a = configuration.falseFailRate / Double(2 * k)
        let beta = configuration.missRate
        upper = log((1 - beta) / a)
        lower = log(beta / (1 - a))
        let delta = configuration.tolerance
        sides = shares.map { p0 in
            guard p0 > 0 && p0 < 1 else { return [] }
            return [p0 + delta, p0 - delta].filter { $0 > 0 && $0 < 1 }.map { p1 in
                OneSided(stepSuccess: log(p1 / p0), stepFailure: log((1 - p1) / (1 - p0)))
            }
        }
        open = sides.reduce(0) { $0 + $1.count }
        counts = Array(repeating: 0, count: destinations.count)
        neededForCertain = shares.contains(1) ? Int((log(beta) / log(1 - delta)).rounded(.up)) : 0
    }

    public var sampleCount: Int { samples }
    public var currentVerdict: Verdict? { verdict }

    private var evidence: SplitEvidence {
        var all = undeclared
        for (i, name) in destinations.enumerated() { all[name] = counts[i] }
        return SplitEvidence(samples: samples, counts: all, declared: declared, truncated: false)
    }

    /// Records which destination answered one request; returns the verdict once it is decided.
    @discardableResult
    public mutating func record(_ destination: String) -> Verdict? {
        if let verdict { return verdict }
        guard let i = index[destination] else {
            samples += 1
            undeclared[destination, default: 0] += 1
            verdict = .fail(reason: "\(destination) answered but is not a declared destination", evidence)
            return verdict
        }
        return record(index: i)
    }

    /// Records a response from `destinations[i]` (the fast path for simulations).
    @discardableResult
    public mutating func record(index i: Int) -> Verdict? {
        if let verdict { return verdict }
        samples += 1
        counts[i] += 1
        if shares[i] == 0 {
            verdict = .fail(reason: "\(destinations[i]) is declared at weight 0 but answered", evidence)
            return verdict
        }
        if shares[i] < 1, let certain = shares.firstIndex(of: 1) {
            verdict = .fail(reason: "\(destinations[certain]) is declared at 100% but \(destinations[i]) answered", evidence)
            return verdict
        }
        for d in sides.indices where !sides[d].isEmpty {
            let hit = d == i
            for s in sides[d].indices where !sides[d][s].acceptedNull {
                sides[d][s].llr += hit ? sides[d][s].stepSuccess : sides[d][s].stepFailure
                if sides[d][s].llr >= upper {
                    let observed = Double(counts[d]) / Double(samples)
                    let direction = sides[d][s].stepSuccess > 0 ? "more" : "less"
                    verdict = .fail(reason: String(format: "%@ gets %@ than declared: observed %.1f%% after %d requests, declared %.1f%% +- %.1f",
                                                   destinations[d], direction, observed * 100, samples, shares[d] * 100,
                                                   configuration.tolerance * 100), evidence)
                    return verdict
                }
                if sides[d][s].llr <= lower {
                    sides[d][s].acceptedNull = true
                    open -= 1
                }
            }
        }
        if open == 0 && samples >= neededForCertain {
            verdict = .pass(evidence)
            return verdict
        }
        if samples >= configuration.maxSamples {
            verdict = truncatedVerdict()
        }
        return verdict
    }

    /// The verdict on counts gathered elsewhere (shards merged, results of several runs): the order of the samples
    /// is unknown, so each one-sided test is judged by its log-likelihood ratio after all of them. The likelihood
    /// ratio is a martingale under the null, so crossing a boundary at the end is no likelier than crossing it at some
    /// point (Ville's inequality): the stated error rates hold. Undecided (nil) when no boundary is crossed and the
    /// counts stay below the cap; at the cap, the truncation rule of a sequential run.
    public static func evaluate(counts: [String: Int], weights: [String: Double],
                                configuration: SplitTestConfiguration) throws(SplitTestError) -> Verdict? {
        var test = try SplitTest(weights: weights, configuration: configuration)
        return test.judge(counts)
    }

    private mutating func judge(_ all: [String: Int]) -> Verdict? {
        samples = all.values.reduce(0, +)
        for (name, n) in all where n > 0 {
            if let i = index[name] { counts[i] = n } else { undeclared[name] = n }
        }
        guard samples > 0 else { return nil }
        if let name = undeclared.keys.sorted().first {
            return .fail(reason: "\(name) answered but is not a declared destination", evidence)
        }
        for i in destinations.indices where counts[i] > 0 {
            if shares[i] == 0 { return .fail(reason: "\(destinations[i]) is declared at weight 0 but answered", evidence) }
            if shares[i] < 1, let certain = shares.firstIndex(of: 1) {
                return .fail(reason: "\(destinations[certain]) is declared at 100% but \(destinations[i]) answered", evidence)
            }
        }
        var accepted = true
        for d in sides.indices {
            for side in sides[d] {
                let llr = Double(counts[d]) * side.stepSuccess + Double(samples - counts[d]) * side.stepFailure
                if llr >= upper {
                    let direction = side.stepSuccess > 0 ? "more" : "less"
                    return .fail(reason: String(format: "%@ gets %@ than declared: observed %.1f%% after %d requests, declared %.1f%% +- %.1f",
                                                destinations[d], direction, Double(counts[d]) / Double(samples) * 100, samples,
                                                shares[d] * 100, configuration.tolerance * 100), evidence)
                }
                if llr > lower { accepted = false }
            }
        }
        if accepted && samples >= neededForCertain { return .pass(evidence) }
        return samples >= configuration.maxSamples ? truncatedVerdict() : nil
    }

    private func truncatedVerdict() -> Verdict {
        var e = evidence
        e.truncated = true
        for (i, p0) in shares.enumerated() where abs(Double(counts[i]) / Double(samples) - p0) > configuration.tolerance / 2 {
            return .fail(reason: String(format: "undecided after the cap of %d requests; %@ observed %.1f%% against %.1f%% declared",
                                        samples, destinations[i], Double(counts[i]) / Double(samples) * 100, p0 * 100), e)
        }
        return .pass(e)
    }

    /// The sample size a fixed-size two-sided test needs for the same error rates on one destination (normal
    /// approximation): the comparison the README makes with fixed-count rules such as Gateway API conformance's.
    public static func fixedSampleSize(share p0: Double, configuration c: SplitTestConfiguration, destinations k: Int) -> Int {
        let za = normalQuantile(1 - c.falseFailRate / Double(2 * max(1, k)))
        let zb = normalQuantile(1 - c.missRate)
        let p1 = min(0.999_999, p0 + c.tolerance)
        let n = pow((za * (p0 * (1 - p0)).squareRoot() + zb * (p1 * (1 - p1)).squareRoot()) / c.tolerance, 2)
        return Int(n.rounded(.up))
    }

    /// The standard normal quantile (Acklam's rational approximation, relative error below 1.2e-9).
    static func normalQuantile(_ p: Double) -> Double {
        let a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
                 -3.066479806614716e+01, 2.506628277459239e+00]
        let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
                 -1.328068155288572e+01]
        let c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
                 4.374664141464968e+00, 2.938163982698783e+00]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        let low = 0.02425
        if p < low {
            let q = (-2 * log(p)).squareRoot()
            return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        if p > 1 - low {
            let q = (-2 * log(1 - p)).squareRoot()
            return -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        let q = p - 0.5
        let r = q * q
        return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    }
}
