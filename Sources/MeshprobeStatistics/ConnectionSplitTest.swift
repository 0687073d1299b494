import Foundation

/// A sequential split test whose sample is a connection: its error rates hold however requests on one connection
/// are routed, from every request on its own to every connection stuck to one destination.
///
/// Method (docs/statistics.md). A connection `c` contributes, for each destination `d`, the share `Y_c` of its
/// successful responses that `d` served. Connections are independent and, under the declared split, `E[Y_c] = p0`
/// whatever the routing does inside a connection. For each destination with `0 < p0 < 1` four one-sided tests run,
/// each a product of bets `1 + lambda * (Y_c - s)` (or `1 - lambda * (Y_c - s)` when betting below `s`), a nonnegative
/// martingale when the true mean is `s` and a supermartingale beyond it on the side bet against:
/// - two FAIL tests with `s = p0 + tolerance/2` (betting above) and `s = p0 - tolerance/2` (betting below), each at
///   `falseFailRate / (2k)` (Bonferroni over the `k` destinations), crossing `ln(2k / falseFailRate)`;
/// - two PASS tests with `s = p0 + tolerance` (betting below) and `s = p0 - tolerance` (betting above), crossing
///   `ln(1 / missRate)`.
/// By Ville's inequality a martingale started at 1 reaches `1/a` with probability at most `a`, at any stopping
/// time: a split within half the tolerance of the declaration fails at most `falseFailRate` of the time, and one off
/// by the tolerance or more passes at most `missRate` of the time (the PASS test on its side must cross); in between,
/// either verdict may come. The test passes when every
/// PASS test has crossed and fails when any FAIL test does.
///
/// A PASS test is the mixture (3/4, 1/4) of two such products: one with bets sized for a truth at the declared share,
/// one for a truth half the tolerance off (a bet sized for the declared share is twice too large there and would not
/// grow). A mixture of test martingales is one; it costs ln(4/3) of evidence at the declared share.
///
/// The bets only decide how fast. A connection of `m` responses is worth `n_eff = m / (1 + (m - 1) rho)` independent
/// responses (Kish), where `rho` is the intra-connection correlation estimated from the connections before it
/// (`ConnectionClustering`, shrunk towards 0.5 by four pseudo-pairs). The bet is Wald's for one Bernoulli response,
/// `lambda = tolerance / (s (1 - s))`, times `n_eff`, capped at 95% of what keeps the factor positive. With one
/// response per connection it is exactly the Bernoulli SPRT; under per-request routing it spends about as many
/// responses as the per-request SPRT; under sticky routing about as many connections.
///
/// Connections must be recorded in the order they were opened (a connection's destination may change how soon it
/// ends; taking them as they end would favour the fast destinations).
public struct ConnectionSplitTest: Sendable {
    public typealias Verdict = SplitTest.Verdict

    struct Bet: Sendable {
        let destination: Int
        let role: SplitTest.OneSidedEvidence.Role
        /// The share the bet is against, and whether it bets the truth is above it.
        let null: Double
        let above: Bool
        /// Wald's bet for one response, and the largest bet that keeps every factor above 5%.
        let base: Double
        let cap: Double
        /// PASS bets only: a second bet sized for a truth only half the tolerance away (see the type's comment).
        let nearBase: Double?
        var logWealth = 0.0
        var nearLogWealth = 0.0
        var crossed = false

        /// The test's log evidence: its own wealth, or for a PASS bet the mixture of its two wealths.
        var logEvidence: Double {
            get {
                guard nearBase != nil else { return logWealth }
                let (a, b) = (log(0.75) + logWealth, log(0.25) + nearLogWealth)
                return max(a, b) + log1p(exp(-abs(a - b)))
            }
            set {
                logWealth = newValue
                nearLogWealth = newValue
            }
        }
    }

    public let configuration: SplitTestConfiguration
    private let split: DeclaredSplit
    public var declared: [String: Double] { split.declared }
    public var destinations: [String] { split.destinations }
    private var shares: [Double] { split.shares }
    private var index: [String: Int] { split.index }
    private var bets: [Bet]
    private let failBound: Double
    private let passBound: Double
    /// Connections with no other destination that a destination declared at 100% needs.
    private let neededForCertain: Int
    private var counts: [Int]
    private var undeclared: [String: Int] = [:]
    private var requests = 0
    private var connections = 0
    /// Connections with no successful response: nothing to judge.
    public private(set) var emptyConnections = 0
    public private(set) var clustering: ConnectionClustering
    private var verdict: Verdict?
    private var capped = false

    /// The prior guess at the intra-connection correlation, and how many pairs of responses it weighs.
    static let priorCorrelation = 0.5
    static let priorPairs = 4.0

    public init(weights: [String: Double], configuration: SplitTestConfiguration = .init()) throws(SplitTestError) {
        try configuration.validate()
        let split = try DeclaredSplit(weights: weights)
        self.configuration = configuration
        self.split = split
        failBound = log(Double(2 * split.uncertain) / configuration.falseFailRate)
        passBound = log(1 / configuration.missRate)
        let delta = configuration.tolerance
        var bets: [Bet] = []
        for (d, p0) in split.shares.enumerated() where p0 > 0 && p0 < 1 {
            // Wald's bet for one response against the share `s`, towards a share `gap` away (and for PASS, also half that).
            func bet(_ role: SplitTest.OneSidedEvidence.Role, null s: Double, above: Bool, gap: Double) -> Bet {
                Bet(destination: d, role: role, null: s, above: above, base: gap / (s * (1 - s)), cap: 0.95 / (above ? s : 1 - s),
                    nearBase: role == .pass ? gap / 2 / (s * (1 - s)) : nil)
            }
            // A side exists when the share off by the tolerance on it is possible (as in `SplitTest`). FAIL rejects a
            // share within half the tolerance, PASS one off by the tolerance.
            if p0 + delta < 1 {
                bets.append(bet(.fail, null: p0 + delta / 2, above: true, gap: delta / 2))
                bets.append(bet(.pass, null: p0 + delta, above: false, gap: delta))
            }
            if p0 - delta > 0 {
                bets.append(bet(.fail, null: p0 - delta / 2, above: false, gap: delta / 2))
                bets.append(bet(.pass, null: p0 - delta, above: true, gap: delta))
            }
        }
        self.bets = bets
        counts = Array(repeating: 0, count: split.destinations.count)
        clustering = ConnectionClustering(destinations: split.destinations)
        neededForCertain = split.neededForCertain(configuration)
    }

    public var currentVerdict: Verdict? { verdict }
    public var connectionCount: Int { connections }

    /// How many requests the next connections should carry, for `routing: auto`: two while clustering is unknown or
    /// weak (a pair per connection measures it, and under per-request routing two responses are worth nearly two
    /// samples), one once 30 connections show it strong (rho >= 0.5: a second response on a sticky connection adds
    /// little). The error rates do not depend on it: each connection's bet is sized before it is seen.
    public var suggestedRequestsPerConnection: Int {
        guard clustering.connections >= 30, let rho = clustering.correlation else { return 2 }
        return rho >= 0.5 ? 1 : 2
    }
    public var responseCount: Int { requests }
    /// Ran into `maxSamples` connections undecided.
    public var isCapped: Bool { capped }

    /// The correlation the next connection's bets assume.
    var assumedCorrelation: Double {
        let pairs = clustering.correlation == nil ? 0 : clustering.pairs
        let observed = clustering.correlation ?? Self.priorCorrelation
        return (Self.priorCorrelation * Self.priorPairs + observed * pairs) / (Self.priorPairs + pairs)
    }

    public var evidence: SplitTest.SplitEvidence {
        var all = undeclared
        for (i, name) in destinations.enumerated() { all[name] = counts[i] }
        var e = SplitTest.SplitEvidence(samples: requests, counts: all, declared: declared, truncated: capped)
        e.unit = .connection
        e.connections = connections
        e.clustering = clustering
        e.effectiveSamples = clustering.effectiveSampleSize(requests: requests, connections: connections)
        e.tests = bets.map {
            SplitTest.OneSidedEvidence(destination: destinations[$0.destination], role: $0.role, null: $0.null, above: $0.above,
                                       logEvidence: $0.logEvidence)
        }
        return e
    }

    /// Records one connection's successful responses by destination (after it ended, in the order connections were
    /// opened); returns the verdict once it is decided.
    @discardableResult
    public mutating func record(connection: [String: Int]) -> Verdict? {
        if let verdict { return verdict }
        if capped { return nil }
        var indexed = Array(repeating: 0, count: destinations.count)
        var foreign: [String: Int] = [:]
        for (name, n) in connection where n > 0 {
            if let i = index[name] { indexed[i] += n } else { foreign[name, default: 0] += n }
        }
        if let name = foreign.keys.sorted().first {
            count(indexed, foreign: foreign)
            verdict = .fail(reason: "\(name) answered but is not a declared destination", evidence)
            return verdict
        }
        return record(counts: indexed)
    }

    /// Records a connection's responses by destination index (the fast path for simulations).
    @discardableResult
    public mutating func record(counts connection: [Int]) -> Verdict? {
        if let verdict { return verdict }
        if capped { return nil }
        let m = connection.reduce(0, +)
        guard m > 0 else {
            emptyConnections += 1
            return nil
        }
        let rho = assumedCorrelation
        count(connection, foreign: [:])
        for i in connection.indices where connection[i] > 0 {
            if let failure = split.immediateFailure(i) {
                verdict = .fail(reason: failure, evidence)
                return verdict
            }
        }
        let effective = Double(m) / (1 + Double(m - 1) * rho)
        for b in bets.indices where !bets[b].crossed {
            let y = Double(connection[bets[b].destination]) / Double(m)
            let difference = bets[b].above ? y - bets[b].null : bets[b].null - y
            bets[b].logWealth += log1p(min(bets[b].base * effective, bets[b].cap) * difference)
            if let near = bets[b].nearBase { bets[b].nearLogWealth += log1p(min(near * effective, bets[b].cap) * difference) }
            switch bets[b].role {
            case .fail where bets[b].logEvidence >= failBound:
                let d = bets[b].destination
                verdict = .fail(reason: String(format: "%@ gets %@ than declared: observed %.1f%% of %d responses on %d connections, declared %.1f%% +- %.1f",
                                               destinations[d], bets[b].above ? "more" : "less",
                                               Double(counts[d]) / Double(requests) * 100, requests, connections,
                                               shares[d] * 100, configuration.tolerance * 100), evidence)
                return verdict
            case .pass where bets[b].logEvidence >= passBound:
                // Stopping a bet that has made its point keeps its guarantee (a stopped martingale).
                bets[b].crossed = true
            default:
                break
            }
        }
        clustering.add(counts: connection)
        if bets.allSatisfy({ $0.role == .fail || $0.crossed }) && connections >= neededForCertain {
            verdict = .pass(evidence)
            return verdict
        }
        if connections >= configuration.maxSamples { capped = true }
        return verdict
    }

    private mutating func count(_ indexed: [Int], foreign: [String: Int]) {
        connections += 1
        for (i, n) in indexed.enumerated() { counts[i] += n }
        undeclared.merge(foreign, uniquingKeysWith: +)
        requests += indexed.reduce(0, +) + foreign.values.reduce(0, +)
    }

    /// The verdict on independent runs merged (shards): each one-sided test's evidence is the product of the runs'
    /// (the sum of the logarithms). Independent nonnegative supermartingales stopped at their own times have a product
    /// whose mean is at most 1, so Markov's inequality keeps the stated rates for this one look. nil: undecided.
    public static func evaluate(_ tests: [SplitTest.OneSidedEvidence], counts: [String: Int], connections: Int,
                                weights: [String: Double], configuration: SplitTestConfiguration) throws(SplitTestError) -> Verdict? {
        var test = try ConnectionSplitTest(weights: weights, configuration: configuration)
        var indexed = Array(repeating: 0, count: test.destinations.count)
        var foreign: [String: Int] = [:]
        for (name, n) in counts where n > 0 {
            if let i = test.index[name] { indexed[i] = n } else { foreign[name] = n }
        }
        test.count(indexed, foreign: foreign)
        test.connections = connections
        if let name = foreign.keys.sorted().first {
            return .fail(reason: "\(name) answered but is not a declared destination", test.evidence)
        }
        for (i, n) in indexed.enumerated() where n > 0 {
            if let failure = test.split.immediateFailure(i) { return .fail(reason: failure, test.evidence) }
        }
        for b in test.bets.indices {
            let name = test.destinations[test.bets[b].destination]
            test.bets[b].logEvidence = tests.filter {
                $0.destination == name && $0.role == test.bets[b].role && $0.above == test.bets[b].above && abs($0.null - test.bets[b].null) < 1e-9
            }.reduce(0) { $0 + $1.logEvidence }
            test.bets[b].crossed = test.bets[b].role == .pass && test.bets[b].logEvidence >= test.passBound
        }
        if let b = test.bets.first(where: { $0.role == .fail && $0.logEvidence >= test.failBound }) {
            let d = b.destination
            return .fail(reason: String(format: "%@ gets %@ than declared: observed %.1f%% of %d responses on %d connections (merged), declared %.1f%% +- %.1f",
                                        test.destinations[d], b.above ? "more" : "less", Double(indexed[d]) / Double(max(1, test.requests)) * 100,
                                        test.requests, connections, test.shares[d] * 100, configuration.tolerance * 100), test.evidence)
        }
        if test.bets.allSatisfy({ $0.role == .fail || $0.crossed }) && connections >= test.neededForCertain && test.requests > 0 {
            return .pass(test.evidence)
        }
        return nil
    }
}
