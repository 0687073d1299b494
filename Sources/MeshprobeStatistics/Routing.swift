import Foundation

/// How a proxy picks a destination: for every request, or once for a connection and every request on it.
///
/// Per-request routing (an L7 proxy: Envoy, HAProxy `mode http`, linkerd2-proxy on HTTP) makes every response an
/// independent sample of the split. Per-connection routing (L4: Istio ambient's ztunnel, Linkerd on opaque ports,
/// kube-proxy, cloud load balancers, HAProxy `mode tcp`; or consistent hashing and session affinity) sends every
/// request of a connection to one destination, so a connection is one sample however many requests it carries.
public enum RoutingAssumption: String, Sendable, Equatable, CaseIterable {
    /// Every response is an independent sample: the per-request test (`SplitTest`) on the policy's connections. The
    /// run checks the assumption (`ConnectionClustering.contradictsPerRequestRouting`) and is undecided if it fails.
    case perRequest = "per-request"
    /// One request per connection: a connection is a sample (the connection-unit test with one request each).
    case perConnection = "per-connection"
    /// The connection-unit test (`ConnectionSplitTest`), whose error rates hold for any routing; it measures how
    /// requests cluster and sizes its bets and its requests per connection by what it sees.
    case auto
}

/// How the destinations of requests on one connection cluster: the intra-connection correlation.
///
/// Two requests on one connection go to the same destination with probability `sum(p_d^2) + rho * (1 - sum(p_d^2))`
/// where `p_d` are the destinations' shares and `rho` the intra-connection correlation: 0 when every request is
/// routed independently, 1 when a connection sticks to one destination. Estimated from the pairs of responses on
/// each connection (`rho = (same - sum(p^2)) / (1 - sum(p^2))`, the moment estimator of Fleiss' kappa), with the
/// shares taken from the same responses.
public struct ConnectionClustering: Sendable, Equatable {
    /// Connections that carried two or more successful responses (the only ones that say anything about clustering).
    public private(set) var connections = 0
    /// Of those, the ones whose responses came from more than one destination.
    public private(set) var mixedConnections = 0
    /// Pairs of responses on one connection, and the pairs from the same destination.
    public private(set) var pairs = 0.0
    public private(set) var samePairs = 0.0
    /// Destinations in the order first seen, and responses from each over the connections counted.
    public private(set) var destinations: [String]
    private var responses: [Int]
    /// Connections counted, by their number of responses.
    private var connectionSizes: [Int: Int] = [:]

    public init(destinations: [String] = []) {
        self.destinations = destinations
        responses = Array(repeating: 0, count: destinations.count)
    }

    /// Adds one connection's successful responses by destination name.
    public mutating func add(_ named: [String: Int]) {
        var counts = Array(repeating: 0, count: destinations.count)
        for (name, n) in named where n > 0 {
            if let i = destinations.firstIndex(of: name) {
                counts[i] += n
            } else {
                destinations.append(name)
                responses.append(0)
                counts.append(n)
            }
        }
        add(counts: counts)
    }

    /// Adds one connection's successful responses, indexed as `destinations`.
    public mutating func add(counts: [Int]) {
        var m = 0, seen = 0, same = 0
        for n in counts where n > 0 {
            m += n
            seen += 1
            same += n * (n - 1) / 2
        }
        guard m >= 2 else { return }
        connections += 1
        if seen > 1 { mixedConnections += 1 }
        pairs += Double(m * (m - 1) / 2)
        samePairs += Double(same)
        for i in counts.indices { responses[i] += counts[i] }
        connectionSizes[m, default: 0] += 1
    }

    /// The chance that two independently routed requests meet the same destination, at the observed shares.
    var sameByChance: Double? {
        let total = Double(responses.reduce(0, +))
        guard total > 0 else { return nil }
        return responses.reduce(0.0) { $0 + pow(Double($1) / total, 2) }
    }

    /// The estimated intra-connection correlation, between 0 and 1; nil before any pair, or while a single
    /// destination has answered (then nothing tells sticky from independent routing).
    public var correlation: Double? {
        guard pairs > 0, let chance = sameByChance, chance < 1 else { return nil }
        return min(1, max(0, (samePairs / pairs - chance) / (1 - chance)))
    }

    /// Connections of two or more responses that would have seen more than one destination had every request been
    /// routed on its own, at the observed shares (expected value).
    public var expectedMixedConnections: Double? {
        let total = Double(responses.reduce(0, +))
        guard total > 0 else { return nil }
        let shares = responses.map { Double($0) / total }
        return connectionSizes.reduce(0.0) { sum, entry in
            let (m, count) = entry
            // P(all m on one destination) = sum p^m.
            let single = shares.reduce(0.0) { $0 + pow($1, Double(m)) }
            return sum + Double(count) * (1 - single)
        }
    }

    /// Requests worth as many independent samples: `n / (1 + (m - 1) * rho)` (Kish's design effect) with `m` the
    /// mean responses per connection. nil without an estimate of `rho`.
    public func effectiveSampleSize(requests: Int, connections total: Int) -> Double? {
        guard total > 0 else { return nil }
        let m = Double(requests) / Double(total)
        guard let rho = correlation else { return m <= 1 ? Double(requests) : nil }
        return Double(requests) / (1 + max(0, m - 1) * rho)
    }

    /// True when the responses are too clustered by connection for per-request routing, at `significance`: fewer
    /// connections than per-request routing would give saw more than one destination (a one-sided normal test on the
    /// count of mixed connections, whose variance under independence is the sum of each connection's Bernoulli
    /// variance). Needs at least ten expected mixed connections to say anything.
    public func contradictsPerRequestRouting(significance: Double = 0.001) -> Bool {
        let total = Double(responses.reduce(0, +))
        guard total > 0, let expected = expectedMixedConnections, expected >= 10 else { return false }
        let shares = responses.map { Double($0) / total }
        var variance = 0.0
        for (m, count) in connectionSizes {
            let mixed = 1 - shares.reduce(0.0) { $0 + pow($1, Double(m)) }
            variance += Double(count) * mixed * (1 - mixed)
        }
        guard variance > 0 else { return false }
        let z = (expected - Double(mixedConnections)) / variance.squareRoot()
        return z > SplitTest.normalQuantile(1 - significance)
    }

    /// One line for a verdict: what was seen, against what per-request routing would give.
    public var summary: String {
        guard connections > 0 else { return "no connection carried two successful responses: clustering not measured" }
        var text = "\(mixedConnections) of \(connections) connections with 2+ responses saw more than one destination"
        if let expected = expectedMixedConnections {
            text += String(format: " (%.1f expected if routed per request)", expected)
        }
        if let rho = correlation { text += String(format: ", intra-connection correlation %.2f", rho) }
        return text
    }
}

/// Declared weights as both split tests read them: shares in a fixed order of destinations, and the verdicts a single
/// response decides at once.
struct DeclaredSplit: Sendable {
    let declared: [String: Double]
    /// Destinations in a fixed order (sorted); shares and indices follow it.
    let destinations: [String]
    let shares: [Double]
    let index: [String: Int]

    init(weights: [String: Double]) throws(SplitTestError) {
        let total = weights.values.reduce(0, +)
        guard total > 0, weights.values.allSatisfy({ $0 >= 0 && $0.isFinite }) else {
            throw SplitTestError("weights must be zero or more, with at least one above zero")
        }
        let declared = weights.mapValues { $0 / total }
        let destinations = declared.keys.sorted()
        self.declared = declared
        self.destinations = destinations
        shares = destinations.map { declared[$0] ?? 0 }
        index = Dictionary(uniqueKeysWithValues: destinations.enumerated().map { ($1, $0) })
    }

    /// Destinations whose share is neither 0 nor 1: the Bonferroni split of the false-fail rate is over these.
    var uncertain: Int { max(1, shares.filter { $0 > 0 && $0 < 1 }.count) }

    /// Responses from other destinations that a destination declared at 100% must be without, for the miss rate.
    func neededForCertain(_ configuration: SplitTestConfiguration) -> Int {
        shares.contains(1) ? Int((log(configuration.missRate) / log(1 - configuration.tolerance)).rounded(.up)) : 0
    }

    /// Why one response from destination `i` fails the split at once (declared at weight 0, or another declared at
    /// 100%); nil when it does not.
    func immediateFailure(_ i: Int) -> String? {
        if shares[i] == 0 { return "\(destinations[i]) is declared at weight 0 but answered" }
        if shares[i] < 1, let certain = shares.firstIndex(of: 1) {
            return "\(destinations[certain]) is declared at 100% but \(destinations[i]) answered"
        }
        return nil
    }
}
