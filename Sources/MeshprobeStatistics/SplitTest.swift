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
    /// A hard cap on samples (responses; connections with the connection as the unit): a test still undecided
    /// there stays undecided, never guessed.
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
/// Method (documented in docs/statistics.md): for each destination with declared share `p0` (0 < p0 < 1) two Wald SPRTs
/// run on its Bernoulli indicator: `p = p0 + tolerance/2` against `p = p0 + tolerance`, and `p = p0 - tolerance/2`
/// against `p = p0 - tolerance` (a share within half the tolerance must pass, one off by the tolerance must fail), with
/// boundaries `ln((1 - beta) / a)` and `ln(beta / (1 - a))`, where `a = alpha / (2k)` is the false-fail rate
/// split over the `2k` one-sided tests (Bonferroni) and `beta` the miss rate. A destination passes when both its
/// tests accept `p0`; the split passes when every destination has; it fails as soon as any test accepts a
/// deviation. A destination declared at 0 fails on its first response; one declared at 1 fails on the first
/// response elsewhere and passes after `ln(beta) / ln(1 - tolerance)` responses. A response from an undeclared
/// destination fails at once. At `maxSamples` an undecided test stays undecided (`evidence.truncated`): a guess
/// there would break the stated error rates.
///
/// The error rates are Wald's bounds (approximately `alpha` and `beta`, conservative with the Bonferroni split);
/// `Tests/MeshprobeStatisticsTests` measures them by simulation.
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
        /// Successful responses judged (all of them, with the connection as the unit).
        public var samples: Int
        public var counts: [String: Int]
        public var declared: [String: Double]
        /// True when the test ran into `maxSamples` undecided.
        public var truncated: Bool
        /// What one sample is: a response (per-request routing) or a connection.
        public var unit: SamplingUnit = .request
        /// Connections whose responses were judged (with the connection as the unit; otherwise the connections seen).
        public var connections = 0
        /// How responses clustered by connection, when the run measured it.
        public var clustering: ConnectionClustering?
        /// Independent samples the responses were worth (connections with the connection as the unit, responses with
        /// the request; from the measured clustering when known).
        public var effectiveSamples: Double?
        /// Each one-sided test's log evidence (its test martingale's logarithm) when the verdict was made: what a merge
        /// of independent runs multiplies.
        public var tests: [OneSidedEvidence] = []

        public init(samples: Int, counts: [String: Int], declared: [String: Double], truncated: Bool = false) {
            self.samples = samples
            self.counts = counts
            self.declared = declared
            self.truncated = truncated
        }

        public func observedShare(_ destination: String) -> Double {
            samples == 0 ? 0 : Double(counts[destination, default: 0]) / Double(samples)
        }
    }

    /// The sampling unit of a split verdict.
    public enum SamplingUnit: String, Sendable, Equatable { case request, connection }

    /// One one-sided test of a connection-unit verdict: which destination, against which share, which way, and its
    /// log evidence.
    public struct OneSidedEvidence: Sendable, Equatable, Codable {
        public enum Role: String, Sendable, Codable {
            /// Rejects the declared share (a FAIL when it crosses `ln(2k / falseFailRate)`).
            case fail
            /// Rejects a share off by the tolerance (one of the passes a PASS needs: `ln(1 / missRate)`).
            case pass
        }
        public var destination: String
        public var role: Role
        /// The share the test rejects, and whether it bets that the true share is above it.
        public var null: Double
        public var above: Bool
        public var logEvidence: Double

        enum CodingKeys: String, CodingKey {
            case destination, role, null, above
            case logEvidence = "log_evidence"
        }

        public init(destination: String, role: Role, null: Double, above: Bool, logEvidence: Double) {
            self.destination = destination
            self.role = role
            self.null = null
            self.above = above
            self.logEvidence = logEvidence
        }
    }

    struct OneSided: Sendable {
        let stepSuccess: Double  // log-likelihood ratio added when the destination is hit
        let stepFailure: Double  // added when another destination is hit
        var llr = 0.0
        var acceptedNull = false
    }

    public let configuration: SplitTestConfiguration
    private let split: DeclaredSplit
    public var declared: [String: Double] { split.declared }
    /// Destinations in a fixed order; everything below is indexed by it.
    public var destinations: [String] { split.destinations }
    private var shares: [Double] { split.shares }
    private var index: [String: Int] { split.index }
    private var sides: [[OneSided]]
    private var counts: [Int]
    private var undeclared: [String: Int] = [:]
    private var samples = 0
    private let upper: Double
    private let lower: Double
    private let neededForCertain: Int
    private var open: Int
    private var verdict: Verdict?
    /// Ran into `maxSamples` undecided: later responses are not judged.
    private var capped = false

    /// - Parameter weights: declared weights by destination (normalised to shares; Istio's weights sum to 100).
    public init(weights: [String: Double], configuration: SplitTestConfiguration = .init()) throws(SplitTestError) {
        try configuration.validate()
        let split = try DeclaredSplit(weights: weights)
        self.configuration = configuration
        self.split = split
        let a = configuration.falseFailRate / Double(2 * split.uncertain)
        let beta = configuration.missRate
        upper = log((1 - beta) / a)
        lower = log(beta / (1 - a))
        let delta = configuration.tolerance
        sides = split.shares.map { p0 in
            guard p0 > 0 && p0 < 1 else { return [] }
            // Each side: the share off by half the tolerance (what must still pass) against off by the tolerance.
            return [(p0 + delta / 2, p0 + delta), (p0 - delta / 2, p0 - delta)].filter { $0.1 > 0 && $0.1 < 1 }.map { q0, p1 in
                OneSided(stepSuccess: log(p1 / q0), stepFailure: log((1 - p1) / (1 - q0)))
            }
        }
        open = sides.reduce(0) { $0 + $1.count }
        counts = Array(repeating: 0, count: split.destinations.count)
        neededForCertain = split.neededForCertain(configuration)
    }

    public var sampleCount: Int { samples }
    public var currentVerdict: Verdict? { verdict }
    /// Ran into `maxSamples` undecided.
    public var isCapped: Bool { capped }

    /// What the test has seen so far (the evidence of an undecided test).
    public var evidence: SplitEvidence {
        var all = undeclared
        for (i, name) in destinations.enumerated() { all[name] = counts[i] }
        return SplitEvidence(samples: samples, counts: all, declared: declared, truncated: capped)
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
        if capped { return nil }
        samples += 1
        counts[i] += 1
        if let failure = split.immediateFailure(i) {
            verdict = .fail(reason: failure, evidence)
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
        if samples >= configuration.maxSamples { capped = true }
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
            if let failure = split.immediateFailure(i) { return .fail(reason: failure, evidence) }
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
        if samples >= configuration.maxSamples { capped = true }
        return nil
    }

    /// The sample size a fixed-size two-sided test needs for the same error rates on one destination (normal
    /// approximation): a share off by half the tolerance passes at the false-fail rate, one off by the tolerance fails
    /// at the miss rate. The comparison docs/statistics.md makes with fixed-count rules such as Gateway API conformance's.
    public static func fixedSampleSize(share p0: Double, configuration c: SplitTestConfiguration, destinations k: Int) -> Int {
        let za = normalQuantile(1 - c.falseFailRate / Double(2 * max(1, k)))
        let zb = normalQuantile(1 - c.missRate)
        let q0 = min(0.999_999, p0 + c.tolerance / 2)
        let p1 = min(0.999_999, p0 + c.tolerance)
        let n = pow((za * (q0 * (1 - q0)).squareRoot() + zb * (p1 * (1 - p1)).squareRoot()) / (c.tolerance / 2), 2)
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
