import Foundation
import MeshprobeIdentity
import MeshprobeStatistics

/// The verdict of `verify`, for the terminal and as JSON (`verdicts[]` with `name`, `passed`, `evidence`).
public struct VerifyReport: Codable, Sendable {
    public struct Evidence: Codable, Sendable {
        /// The requests the verdict judged.
        public var requests: Int
        public var declared: [String: Double]
        public var observed: [String: Double]
        public var test: String
        // The fields of a statistical test (splits) and counts by key (splits, mTLS, clusters) are left out of the
        // JSON of verdicts that have none, rather than written as zeros; read here, an absent one is 0 or empty.
        var countsIfAny: [String: Int]?
        var toleranceIfAny: Double?
        var falseFailRateIfAny: Double?
        var missRateIfAny: Double?
        var truncatedIfAny: Bool?
        var unsuccessfulIfAny: Int?
        var matchHeadersIfAny: [String: String]?
        public var counts: [String: Int] { get { countsIfAny ?? [:] } set { countsIfAny = newValue } }
        public var tolerance: Double { get { toleranceIfAny ?? 0 } set { toleranceIfAny = newValue } }
        public var falseFailRate: Double { get { falseFailRateIfAny ?? 0 } set { falseFailRateIfAny = newValue } }
        public var missRate: Double { get { missRateIfAny ?? 0 } set { missRateIfAny = newValue } }
        public var truncated: Bool { get { truncatedIfAny ?? false } set { truncatedIfAny = newValue } }
        public var unsuccessfulResponses: Int { get { unsuccessfulIfAny ?? 0 } set { unsuccessfulIfAny = newValue } }
        public var matchHeaders: [String: String] { get { matchHeadersIfAny ?? [:] } set { matchHeadersIfAny = newValue } }
        /// A split: the unsuccessful responses (left out of the split) by the destination that gave them, where it was
        /// recognised; absent when there were none (and in results of an older meshprobe, where the failing-destination
        /// rule then cannot be applied by a merge).
        public var unsuccessfulByDestination: [String: Int]? = nil
        public var matchPath: String?
        public var matchMethod: String? = nil
        /// The route's conditions in words (`header x-group ~ ^beta-[0-9]+$ (sent beta-7)`).
        public var match: [String]? = nil
        /// Connections the route's requests used (fresh connections spread the samples over upstreams).
        public var connections: Int? = nil
        public var propagation: Propagation? = nil
        /// What happened when, in seconds from the start of the procedure (outlier detection).
        public var timeline: [TimelineEvent]? = nil
        /// A split's sampling unit and what the run saw of how responses cluster by connection.
        public var sampling: Sampling? = nil
        /// A split: how the counts grew until the test decided (at most 200 points, evenly spread, the last the
        /// verdict's counts); absent in a merge of several results (their runs were not one sequence).
        public var trajectory: [TrajectoryPoint]? = nil
        /// Where a procedure's limit was checked: `service` (all endpoints together, where Envoy applies its
        /// connection-pool limits), `endpoint` (each endpoint on its own), or `client proxy`.
        public var scope: String? = nil
        /// Where the expectation was declared (`policy.yaml:12`, `reviews-dr.yaml:8`): here, not in the verdict's
        /// name, so that editing the file does not rename the verdict in CI's history.
        public var declaredAt: String? = nil
        /// An access cell: who called, what, what was declared and what the tries showed.
        public var access: AccessCellEvidence? = nil
        /// A circuit-breaker procedure over time (with its last check): its phases, requests in flight at the upstream,
        /// and the responses by kind, interval by interval.
        public var overTime: OverTime? = nil

        public init(requests: Int, counts: [String: Int], declared: [String: Double], observed: [String: Double], tolerance: Double,
                    falseFailRate: Double, missRate: Double, test: String, truncated: Bool, unsuccessfulResponses: Int,
                    matchHeaders: [String: String], matchPath: String?, matchMethod: String? = nil, match: [String]? = nil,
                    connections: Int? = nil, propagation: Propagation? = nil, timeline: [TimelineEvent]? = nil) {
            self.requests = requests
            self.countsIfAny = counts
            self.declared = declared
            self.observed = observed
            self.toleranceIfAny = tolerance
            self.falseFailRateIfAny = falseFailRate
            self.missRateIfAny = missRate
            self.test = test
            self.truncatedIfAny = truncated
            self.unsuccessfulIfAny = unsuccessfulResponses
            self.matchHeadersIfAny = matchHeaders
            self.matchPath = matchPath
            self.matchMethod = matchMethod
            self.match = match
            self.connections = connections
            self.propagation = propagation
            self.timeline = timeline
        }

        /// Evidence of a verdict that is not a statistical test (mTLS, clusters, SLOs, procedures): no tolerance, error
        /// rates, truncation or match headers; counts only when given.
        public static func facts(requests: Int, counts: [String: Int]? = nil, declared: [String: Double], observed: [String: Double],
                                 test: String, scope: String? = nil, declaredAt: String? = nil) -> Evidence {
            var e = Evidence(requests: requests, counts: [:], declared: declared, observed: observed, tolerance: 0, falseFailRate: 0,
                             missRate: 0, test: test, truncated: false, unsuccessfulResponses: 0, matchHeaders: [:], matchPath: nil)
            (e.countsIfAny, e.toleranceIfAny, e.falseFailRateIfAny, e.missRateIfAny) = (counts, nil, nil, nil)
            (e.truncatedIfAny, e.unsuccessfulIfAny, e.matchHeadersIfAny) = (nil, nil, nil)
            e.scope = scope
            e.declaredAt = declaredAt
            return e
        }

        enum CodingKeys: String, CodingKey {
            case requests, declared, observed, test, match, connections, propagation, timeline, scope, sampling, trajectory, access
            case declaredAt = "declared_at"
            case overTime = "over_time"
            case countsIfAny = "counts"
            case toleranceIfAny = "tolerance"
            case truncatedIfAny = "truncated"
            case matchHeadersIfAny = "match_headers"
            case matchPath = "match_path"
            case matchMethod = "match_method"
            case falseFailRateIfAny = "false_fail_rate"
            case missRateIfAny = "miss_rate"
            case unsuccessfulIfAny = "unsuccessful_responses"
            case unsuccessfulByDestination = "unsuccessful_by_destination"
        }
    }

    /// A split's counts by destination after `samples` judged responses.
    public struct TrajectoryPoint: Codable, Sendable, Equatable {
        public var samples: Int
        public var counts: [String: Int]

        public init(samples: Int, counts: [String: Int]) {
            self.samples = samples
            self.counts = counts
        }
    }

    /// A procedure over time (a circuit breaker's phases): what was sent at once, what the upstream held, and what
    /// came back, interval by interval, seconds from the start of the procedure.
    public struct OverTime: Codable, Sendable, Equatable {
        /// A phase: requests sent at once (`concurrency`) from `start` to `end`.
        public struct Phase: Codable, Sendable, Equatable {
            public var name: String
            public var concurrency: Int
            public var start: Double
            public var end: Double

            public init(name: String, concurrency: Int, start: Double, end: Double) {
                self.name = name
                self.concurrency = concurrency
                self.start = start
                self.end = end
            }
        }

        /// The interval from `at` to `at` + `interval`.
        public struct Point: Codable, Sendable, Equatable {
            public var at: Double
            /// The most successful requests the upstream held at once, estimated from the answers' arrival times and
            /// the hold; absent without a hold.
            public var held: Int?
            public var succeeded: Int
            /// Overflow replies: a proxy refusing for a limit.
            public var overflow: Int
            /// Other failed responses.
            public var failed: Int

            public init(at: Double, held: Int?, succeeded: Int, overflow: Int, failed: Int) {
                self.at = at
                self.held = held
                self.succeeded = succeeded
                self.overflow = overflow
                self.failed = failed
            }
        }

        public var interval: Double
        public var phases: [Phase]
        public var points: [Point]

        public init(interval: Double, phases: [Phase], points: [Point]) {
            self.interval = interval
            self.phases = phases
            self.points = points
        }
    }

    /// How a split verdict sampled the routing.
    public struct Sampling: Codable, Sendable, Equatable {
        /// The policy's `routing`: auto, per-request or per-connection.
        public var routing: String
        /// What one sample was: `request` or `connection`.
        public var unit: String
        /// Connections whose responses were judged.
        public var connections: Int
        /// Requests each connection carried, load phase by phase (0: the policy's own churn).
        public var requestsPerConnection: [Int]
        /// Independent samples the responses were worth, from the measured clustering (absent when not measured).
        public var effectiveSamples: Double?
        /// Connections with two or more responses, those of them that saw more than one destination, and how many
        /// would have under per-request routing (expected).
        public var pairedConnections: Int
        public var mixedConnections: Int
        public var expectedMixedConnections: Double?
        /// The estimated intra-connection correlation (0: per request, 1: per connection).
        public var correlation: Double?
        /// What the verdict assumed, in words.
        public var assumption: String
        /// Each one-sided test's log evidence (connection unit), which a merge of independent runs adds.
        public var tests: [SplitTest.OneSidedEvidence]?

        public init(routing: String, unit: String, connections: Int, requestsPerConnection: [Int], effectiveSamples: Double?,
                    pairedConnections: Int, mixedConnections: Int, expectedMixedConnections: Double?, correlation: Double?,
                    assumption: String, tests: [SplitTest.OneSidedEvidence]?) {
            self.routing = routing
            self.unit = unit
            self.connections = connections
            self.requestsPerConnection = requestsPerConnection
            self.effectiveSamples = effectiveSamples
            self.pairedConnections = pairedConnections
            self.mixedConnections = mixedConnections
            self.expectedMixedConnections = expectedMixedConnections
            self.correlation = correlation
            self.assumption = assumption
            self.tests = tests
        }

        enum CodingKeys: String, CodingKey {
            case routing, unit, connections, correlation, assumption, tests
            case requestsPerConnection = "requests_per_connection"
            case effectiveSamples = "effective_samples"
            case pairedConnections = "paired_connections"
            case mixedConnections = "mixed_connections"
            case expectedMixedConnections = "expected_mixed_connections"
        }
    }

    public struct TimelineEvent: Codable, Sendable {
        public var at: Double
        public var event: String

        public init(at: Double, event: String) {
            self.at = at
            self.event = event
        }
    }

    /// The wait for the split to settle before the test.
    public struct Propagation: Codable, Sendable {
        public var settled: Bool
        public var seconds: Double
        public var requests: Int
        public var connections: Int
        public var windows: [[String: Int]]

        public init(settled: Bool, seconds: Double, requests: Int, connections: Int, windows: [[String: Int]]) {
            self.settled = settled
            self.seconds = seconds
            self.requests = requests
            self.connections = connections
            self.windows = windows
        }
    }

    public struct Verdict: Codable, Sendable {
        /// What was checked, one of the schema's `verdict.kind` values: split, mtls, clusters, slo, circuit_breaker
        /// (also the connection-pool checks: concurrent retries, requests per connection), outlier_detection, retries
        /// or timeout.
        public var kind = "split"
        public var name: String
        public var passed: Bool
        public var decided: Bool
        public var reason: String?
        public var evidence: Evidence

        public init(kind: String = "split", name: String, passed: Bool, decided: Bool, reason: String?, evidence: Evidence) {
            self.kind = kind
            self.name = name
            self.passed = passed
            self.decided = decided
            self.reason = reason
            self.evidence = evidence
        }
    }

    public static let schemaVersion = "meshprobe.verify/v2"
    public var schema = Self.schemaVersion
    public var policy: String
    /// SHA-256 of the policy file: `merge` combines only results of the same policy.
    public var policySHA256: String?
    public var passed: Bool
    public var decided: Bool
    public var verdicts: [Verdict]
    /// Each route's load as a lossless result (meshprobe.load/v2), in the order of the split verdicts: `merge`
    /// re-evaluates the SLOs from their histograms.
    public var results: [LoadReport]?
    /// The files merged into this one, when it is a merge.
    public var mergedFrom: [String]?
    /// Set when a signal (or an abort) stopped the run: the verdicts decided before it stand, the rest are undecided.
    public var aborted: Bool?
    /// The last word (`outcome`), written with the result; recomputed, never read back.
    var writtenOutcome: ResultOutcome?

    enum CodingKeys: String, CodingKey {
        case schema, policy, passed, decided, verdicts, results, aborted
        case writtenOutcome = "outcome"
        case policySHA256 = "policy_sha256"
        case mergedFrom = "merged_from"
    }

    /// Adds a verdict that is decided as soon as it is evaluated.
    public mutating func append(kind: String, name: String, passed ok: Bool, reason: String?, evidence: Evidence) {
        verdicts.append(Verdict(kind: kind, name: name, passed: ok, decided: true, reason: reason, evidence: evidence))
        passed = passed && ok
    }

    /// Adds one check of a procedure: what it observed against what was declared, on `requests` requests (by
    /// default its `requests` figure); undecided when it could not judge.
    public mutating func appendProcedureCheck(kind: String, name: String, passed: Bool, decided: Bool = true, reason: String?,
                                               requests: Int? = nil, observed: [String: Double], declared: [String: Double],
                                               test: String, scope: String? = nil, declaredAt: String? = nil) {
        let evidence = Evidence.facts(requests: requests ?? Int(observed["requests"] ?? 0), declared: declared, observed: observed,
                                      test: test, scope: scope, declaredAt: declaredAt)
        appendVerdict(Verdict(kind: kind, name: name, passed: decided && passed, decided: decided, reason: reason, evidence: evidence))
    }

    /// Adds a verdict that could not be reached (the procedure could not run), with why.
    public mutating func addUndecided(kind: String, name: String, reason: String, declaredAt: String? = nil) {
        verdicts.append(Verdict(kind: kind, name: name, passed: false, decided: false, reason: reason,
                                evidence: Evidence.facts(requests: 0, declared: [:], observed: [:], test: "not run", declaredAt: declaredAt)))
        passed = false
        decided = false
    }

    /// A report to add verdicts to (a game-day step's).
    public init(file: String) {
        policy = file
        passed = true
        decided = true
        verdicts = []
    }

    /// Marks the run aborted: every verdict not decided yet says it was cut short.
    /// The verdicts from `index` on were reached on evidence a signal cut short: they decide nothing, and their
    /// reason says why first.
    public mutating func undecide(from index: Int, because why: String) {
        for i in verdicts.indices where i >= index && verdicts[i].decided {
            verdicts[i].decided = false
            verdicts[i].passed = false
            verdicts[i].reason = why + (verdicts[i].reason.map { "; as cut short: \($0)" } ?? "")
        }
    }

    public mutating func markAborted(_ why: String) {
        aborted = true
        passed = false
        decided = false
        for i in verdicts.indices where !verdicts[i].decided {
            verdicts[i].reason = "aborted (\(why)) before this verdict was decided" + (verdicts[i].reason.map { "; \($0)" } ?? "")
        }
    }

    /// Every verdict with its evidence, a few lines each.
    public var verdictText: String {
        var out = aborted == true ? "ABORTED: the verdicts decided before the signal stand; the others are undecided\n" : ""
        for v in verdicts {
            let status = !v.decided ? "UNDECIDED" : v.passed ? "PASS" : "FAIL"
            let (headline, details) = Self.describe(v)
            out += "\(status)  \(headline)\n"
            for line in details { out += "      \(line)\n" }
        }
        let matrix = accessMatrix
        if !matrix.isEmpty { out += matrix.map { $0 + "\n" }.joined() }
        return out
    }

    /// The access cells as a matrix, callers by requests: each cell the observed decision, `ok` when it is the
    /// declared one, `FAIL (declared D)` when not, `?` when the tries did not decide. Empty without access verdicts.
    public var accessMatrix: [String] {
        let cells = verdicts.compactMap { v in v.evidence.access.map { (v, $0) } }
        guard !cells.isEmpty else { return [] }
        var callers: [String] = []
        var requests: [String] = []
        for (_, a) in cells {
            if !callers.contains(a.caller) { callers.append(a.caller) }
            let r = a.requestText
            if !requests.contains(r) { requests.append(r) }
        }
        func text(_ v: Verdict, _ a: AccessCellEvidence) -> String {
            if !v.decided { return a.observed == "inconclusive" ? "? inconclusive" : "? \(a.observed)" }
            let by = ["denied_l7": " (L7)", "refused_tls": " (TLS)", "reset": " (reset)"][a.mainKind ?? ""] ?? ""
            return v.passed ? "\(a.observed)\(by) ok" : "\(a.observed)\(by) FAIL (declared \(a.expected))"
        }
        var rows: [[String]] = [["caller \\ request"] + requests]
        for caller in callers {
            rows.append([caller] + requests.map { r in
                cells.first { $0.1.caller == caller && $0.1.requestText == r }.map { text($0.0, $0.1) } ?? "-"
            })
        }
        let widths = (0..<rows[0].count).map { i in rows.map { $0[i].count }.max() ?? 0 }
        let tries = cells.first?.1.tries.reduce(0) { $0 + $1.count } ?? 0
        return ["access matrix (observed decision per cell, \(tries) tries each):"] + rows.map { row in
            "  " + row.enumerated().map { i, t in t.padding(toLength: widths[i], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }
    }

    /// A verdict in words: its headline (what was observed) and the lines under it; the reason and the timeline
    /// only when asked (the report views carry them on their own).
    public static func describe(_ v: Verdict, reason withReason: Bool = true, timeline withTimeline: Bool = true) -> (headline: String, details: [String]) {
        var details: [String] = []
        let reason = withReason ? v.reason : nil
        if v.kind == "slo" {
            let o = v.evidence.observed
            let share = o["observed"] ?? 0
            var headline = "\(v.name): "
            let what = v.evidence.declared["percentile"] == nil ? "succeeded" : "under the ceiling"
            if !v.decided, o["interval_low"] != nil {
                // Undecided: how far the PASS bound is, not an interval that reads like a result.
                headline += String(format: "%.4f %@ over %d samples; ", share, what, v.evidence.requests)
                    + (o["samples_to_pass"].map { "a PASS needs about \(Int($0)) more that all meet it" } ?? "a PASS is out of reach at this share")
            } else if let low = o["interval_low"], let high = o["interval_high"] {
                headline += String(format: "%.4f %@ (95%% interval %.4f-%.4f) over %d samples", share, what, low, high, v.evidence.requests)
            } else {
                headline += v.name.contains("latency") ? String(format: "observed %.3f ms", share * 1000) : String(format: "observed %.4f", share)
            }
            details.append(String(format: "test: %@; false-fail <= %g, miss <= %g", v.evidence.test, v.evidence.falseFailRate, v.evidence.missRate))
            if let reason { details.insert(reason, at: 0) }
            return (headline, details)
        }
        if ["circuit_breaker", "retries", "timeout", "outlier_detection"].contains(v.kind) {
            let observed = v.evidence.observed.sorted { $0.key < $1.key }.map { "\($0.key) \(Self.format($0.value))" }
            if let reason { details.append(reason) }
            if let scope = v.evidence.scope { details.append("checked at the scope of the \(scope), on \(counted(v.evidence.requests, "request"))") }
            if withTimeline {
                for event in v.evidence.timeline ?? [] { details.append(String(format: "%8.3f s  %@", event.at, event.event)) }
            }
            return ("\(v.name): \(observed.joined(separator: ", "))", details)
        }
        if v.kind == "clusters" {
            let seen = v.evidence.counts.sorted { $0.value > $1.value }
                .map { "\($0.key.isEmpty ? "(no stamp)" : $0.key) \($0.value)" }.joined(separator: ", ")
            return ("\(v.name): responses by cluster: \(seen.isEmpty ? "none" : seen)", reason.map { [$0] } ?? [])
        }
        if v.kind == "access", let a = v.evidence.access {
            let observed = ["allow": "allowed", "deny": "denied"][a.observed] ?? "inconclusive"
            var lines: [String] = []
            // A passing cell is one line; the others say why and what each try showed.
            if !(v.decided && v.passed) {
                if let reason { lines.append(reason) }
                lines += a.tries.map { "\($0.count) \($0.kind): \($0.origin)" }
                if let at = v.evidence.declaredAt { lines.append("declared at \(at)") }
            }
            return ("\(v.name): \(observed) (\(a.origin)), declared \(a.expected)", lines)
        }
        if v.kind == "server_identity" {
            return ("\(v.name): none of \(counted(v.evidence.requests, "request")) reached the expected server", reason.map { [$0] } ?? [])
        }
        if v.kind == "mtls" {
            let callers = v.evidence.counts.sorted { $0.value > $1.value }
                .map { "\($0.key.isEmpty ? "(none)" : $0.key) on \($0.value)" }.joined(separator: ", ")
            return ("\(v.name): callers seen: \(callers) of \(v.evidence.requests) responses", reason.map { [$0] } ?? [])
        }
        let shares = v.evidence.declared.keys.sorted().map { name in
            String(format: "%@ %.1f%% (declared %.1f%%)", name, (v.evidence.observed[name] ?? 0) * 100, v.evidence.declared[name]! * 100)
        }.joined(separator: ", ")
        let match = v.evidence.match ?? []
        let matching = match.isEmpty ? "" : " [requests with \(match.joined(separator: ", "))]"
        var headline = "\(v.name)\(matching): \(shares) after \(v.evidence.requests) responses"
        if let connections = v.evidence.sampling?.connections ?? v.evidence.connections { headline += " on \(connections) connections" }
        if v.evidence.truncated { headline += " (the request cap came first)" }
        if let p = v.evidence.propagation {
            details.append(p.settled
                ? String(format: "propagation: the split settled after %.1f s (%d requests, not part of the test)", p.seconds, p.requests)
                : String(format: "propagation: the split had not settled after %.1f s (%d requests); tested anyway", p.seconds, p.requests))
        }
        if let reason { details.append(reason) }
        if let sampling = v.evidence.sampling { details.append("sampling: \(sampling.assumption)") }
        details.append(String(format: "test: %@; tolerance %.3f, false-fail <= %g, miss <= %g", v.evidence.test,
                              v.evidence.tolerance, v.evidence.falseFailRate, v.evidence.missRate))
        if v.evidence.unsuccessfulResponses > 0 {
            details.append("\(v.evidence.unsuccessfulResponses) unsuccessful responses were left out of the split")
        }
        return (headline, details)
    }

    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        var written = self
        written.writtenOutcome = outcome
        return try encoder.encode(written)
    }

    /// A number as a policy file writes it: an integer without a fraction, else as Swift prints it.
    static func format(_ v: Double) -> String { numberText(v) }

    /// Adds a verdict as it is (a merge's).
    public mutating func appendVerdict(_ v: Verdict) {
        verdicts.append(v)
        passed = passed && v.passed
        decided = decided && v.decided
    }
}

extension VerifyReport {
    /// Why a split that would FAIL on connections is withheld: every successful response came from one declared
    /// destination while the split declares others. A balancer keyed by the client (a Service's `sessionAffinity:
    /// ClientIP`, consistent hashing on the source address or on a header the prober sends unchanged, HAProxy `balance
    /// source`) sends one client to one destination whatever the weights: then all of this prober's connections are
    /// one sample, and a correct split looks like none. Applies to `routing: auto` only; `per-connection` and
    /// `per-request` assert that each connection or request is routed on its own, and such a run FAILs. Nil when the
    /// rule does not apply.
    public static func clientKeyedReason(counts: [String: Int], declared: [String: Double], routing: String?,
                                         connections: Int) -> String? {
        guard routing == nil || routing == "auto" else { return nil }
        let seen = counts.filter { $0.value > 0 }
        guard seen.count == 1, let (only, responses) = seen.first, (declared[only] ?? 0) > 0,
              declared.contains(where: { $0.key != only && $0.value > 0 }) else { return nil }
        return "undecided: all \(counted(responses, "successful response")) on \(counted(connections, "connection")) came from \(only): "
            + "either the split is not in effect, or routing is keyed by the client (a Service's sessionAffinity: ClientIP, "
            + "consistent hashing on the source address or on a header this prober sends unchanged, HAProxy balance source), "
            + "which sends one client to one destination and which one client cannot see past; if each connection is routed "
            + "on its own, declare expect.routing: per-connection and such a run fails"
    }
}

extension VerifyReport {
    /// Why a split that fails on its successful responses is withheld: a declared destination answered with errors
    /// (left out of the split), and counted with them every declared destination is within half the tolerance of its
    /// share. The routing may then be right and that destination failing, which the split of successes cannot tell
    /// apart from a wrong weight. Nil when the rule does not apply. `verify` and `merge` apply it alike.
    public static func failingDestinationReason(counts: [String: Int], unsuccessful: [String: Int], declared: [String: Double],
                                                tolerance: Double) -> String? {
        let failing = unsuccessful.filter { declared[$0.key] != nil && $0.value > 0 }
        guard !failing.isEmpty else { return nil }
        let all = counts.merging(failing, uniquingKeysWith: +)
        let total = Double(all.values.reduce(0, +))
        guard total > 0, all.keys.allSatisfy({ declared[$0] != nil }),
              declared.allSatisfy({ abs(Double(all[$0.key] ?? 0) / total - $0.value) <= tolerance / 2 }) else { return nil }
        let names = failing.sorted { $0.key < $1.key }.map { "\($0.key) (\(counted($0.value, "error response")))" }.joined(separator: ", ")
        let shares = declared.keys.sorted().map { String(format: "%@ %.1f%%", $0, Double(all[$0] ?? 0) / total * 100) }.joined(separator: ", ")
        return "undecided: \(names) answered with errors, which the split of successful responses leaves out; counted with "
            + "them the shares are as declared (\(shares)): the routing may be right and \(failing.count == 1 ? "that destination" : "those destinations") "
            + "failing (see the failures), which a split of successes cannot tell apart from a wrong weight"
    }
}

extension VerifyReport {
    /// Why a split that fails on its successful responses is withheld when failures no destination stamped (a
    /// proxy's 503 for a workload that is down) fill exactly the gap: the destinations short of their share, given
    /// those failures as theirs, are each within half the tolerance. The routing may be right and a destination down,
    /// which a split of successes cannot tell apart from a wrong weight or a split not in effect; every other
    /// destination must be at its share already. Nil when the rule does not apply. `verify` applies it after
    /// `failingDestinationReason`; `merge` does not (a result of an older meshprobe does not say which failures a
    /// destination stamped).
    public static func unattributedFailuresReason(counts: [String: Int], unattributed: Int, declared: [String: Double],
                                                  tolerance: Double, failures: String?) -> String? {
        guard unattributed > 0, counts.keys.allSatisfy({ declared[$0] != nil }) else { return nil }
        let total = Double(counts.values.reduce(0, +) + unattributed)
        let short = declared.filter { Double(counts[$0.key] ?? 0) / total < $0.value - tolerance / 2 }
        let atShare = declared.filter { abs(Double(counts[$0.key] ?? 0) / total - $0.value) <= tolerance / 2 }
        guard !short.isEmpty, !atShare.isEmpty, short.count + atShare.count == declared.count else { return nil }
        let missing = short.reduce(0.0) { $0 + $1.value - Double(counts[$1.key] ?? 0) / total }
        guard abs(missing - Double(unattributed) / total) <= tolerance / 2 else { return nil }
        let names = short.keys.sorted().joined(separator: ", ")
        return "undecided: \(names) got fewer successful responses than declared while \(counted(unattributed, "response")) failed "
            + "without a workload's stamp\(failures.map { " (\($0))" } ?? ""): given to \(short.count == 1 ? "it" : "them"), the shares are "
            + "as declared, so the routing may be right and \(short.count == 1 ? "that destination" : "those destinations") down (a proxy "
            + "answering for a workload it cannot reach), which a split of successes cannot tell apart from a wrong weight; "
            + "declare an slo (successRate) to fail a canary that fails"
    }
}

/// An expectation's source (`policy.yaml:12 expect.circuitBreaker`, `dr.yaml:8 DestinationRule reviews`) as a verdict
/// names it: the declaration's name, stable when the file is edited, and its position, which goes into the evidence.
public struct DeclarationSite: Sendable, Equatable {
    /// `expect.circuitBreaker`, `DestinationRule reviews`; the whole source when it has no position.
    public var name: String
    /// `policy.yaml:12`; nil when the source has none.
    public var position: String?

    public init(name: String, position: String?) {
        self.name = name
        self.position = position
    }

    /// Splits `FILE:LINE NAME` after the first `:LINE` followed by a space or the end.
    public init(_ source: String) {
        let scalars = Array(source)
        var i = 0
        while i < scalars.count {
            if scalars[i] == ":" {
                var j = i + 1
                while j < scalars.count, scalars[j].isASCII, scalars[j].isNumber { j += 1 }
                if j > i + 1, j == scalars.count || scalars[j] == " " {
                    position = String(scalars[..<j])
                    let rest = String(scalars[min(j + 1, scalars.count)...])
                    name = rest.isEmpty ? String(scalars[..<i]) : rest
                    return
                }
            }
            i += 1
        }
        name = source
        position = nil
    }
}

/// One access cell in a verify result (`evidence.access`): the caller, the request, the declared decision, and what
/// the tries showed, by kind and origin.
public struct AccessCellEvidence: Codable, Sendable, Equatable {
    /// A SPIFFE ID, `anonymous`, `plaintext` or `foreign`.
    public var caller: String
    /// The caller's SPIFFE ID when it presented one (`foreign`'s too).
    public var callerID: String?
    public var method: String
    public var path: String
    public var headers: [String: String]?
    public var port: Int?
    /// `allow` or `deny`.
    public var expected: String
    /// `allow`, `deny`, or `inconclusive` when the tries do not show one decision.
    public var observed: String
    /// The origin of the most frequent try: `envoy RBAC: 403`, `TLS refused by the server (...)`, ...
    public var origin: String
    /// The servers' SPIFFE IDs seen in the handshakes.
    public var servers: [String]
    public var tries: [Try]

    public struct Try: Codable, Sendable, Equatable {
        /// allowed, denied_l7, refused_tls, reset or inconclusive.
        public var kind: String
        public var origin: String
        public var count: Int

        public init(kind: String, origin: String, count: Int) {
            self.kind = kind
            self.origin = origin
            self.count = count
        }
    }

    enum CodingKeys: String, CodingKey {
        case caller, method, path, headers, port, expected, observed, origin, servers, tries
        case callerID = "caller_id"
    }

    /// The kind of the most frequent try.
    public var mainKind: String? { tries.max { ($0.count, $1.kind) < ($1.count, $0.kind) }?.kind }

    /// `GET /reviews`, `POST :9080/admin [x-user: a]`, as the cell's name writes the request.
    public var requestText: String {
        var text = "\(method) " + (port.map { ":\($0)" } ?? "") + path
        if let headers, !headers.isEmpty {
            text += " [" + headers.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "]"
        }
        return text
    }

    public init(caller: String, callerID: String?, method: String, path: String, headers: [String: String]?, port: Int?,
                expected: String, observed: String, origin: String, servers: [String], tries: [Try]) {
        self.caller = caller
        self.callerID = callerID
        self.method = method
        self.path = path
        self.headers = headers
        self.port = port
        self.expected = expected
        self.observed = observed
        self.origin = origin
        self.servers = servers
        self.tries = tries
    }
}
