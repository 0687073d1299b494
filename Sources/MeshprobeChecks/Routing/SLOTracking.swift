import Foundation
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobePolicy
import MeshprobeStatistics

/// One connection's outcomes as a verification counts them.
struct ConnectionTally: Sendable {
    /// Successful responses by destination.
    var destinations: [String: Int] = [:]
    var succeeded = 0
    /// Requests that failed: a non-2xx/3xx response or none at all.
    var failed = 0
    var responses = 0
    /// Responses at or under each latency ceiling, in the order of `SLOTracker.ceilings`.
    var withinCeiling: [Int] = []

    /// Adds one response's 0-or-1 per ceiling (`SLOTracker.within`).
    mutating func count(within: [Int]) {
        if withinCeiling.isEmpty { withinCeiling = Array(repeating: 0, count: within.count) }
        for i in within.indices { withinCeiling[i] += within[i] }
    }
}

/// Connections' tallies handed on in the order the connections were opened, each once it has ended: a connection's
/// destination may change how soon it ends, and taking them as they end would favour the fast destinations.
struct OpenOrderQueue: Sendable {
    private(set) var next = 0
    private var opened = 0
    private var tallies: [Int: ConnectionTally] = [:]
    private var ended = Set<Int>()

    mutating func open() -> Int {
        defer { opened += 1 }
        return opened
    }

    /// The tally of connection `number` to add to (created on first use).
    subscript(number: Int) -> ConnectionTally {
        get { tallies[number] ?? ConnectionTally() }
        set { tallies[number] = newValue }
    }

    /// Marks `number` ended; returns the tallies now due, in opening order.
    mutating func end(_ number: Int) -> [ConnectionTally] {
        ended.insert(number)
        var due: [ConnectionTally] = []
        while ended.remove(next) != nil {
            due.append(tallies.removeValue(forKey: next) ?? ConnectionTally())
            next += 1
        }
        return due
    }

    /// Everything left when a run is over (connections cut by its end), in opening order; the queue starts afresh.
    mutating func drain() -> [ConnectionTally] {
        let left = tallies.keys.filter { $0 >= next }.sorted().map { tallies[$0]! }
        tallies = [:]
        ended = []
        next = opened
        return left
    }
}

/// The policy's service-level objectives, decided by `ShareBoundTest`s over every request the verification sends:
/// the success rate, and for each latency ceiling the share of responses at or under it (p99 <= 250 ms is "at least
/// 99% of responses take 250 ms or less"). With the connection as the unit (`routing: auto` or `per-connection`)
/// each connection is one sample (its share of successes, of fast responses), whatever the clustering; with
/// `routing: per-request` each request is.
// @unchecked: every access to the mutable state holds `lock`.
final class SLOTracker: @unchecked Sendable {
    private let lock = NSLock()
    let unit: SplitTest.SamplingUnit
    let minimumSuccessRate: Double?
    let ceilings: [(percentile: Double, seconds: Double)]
    private var success: ShareBoundTest?
    private var latency: [ShareBoundTest]
    /// What the tests saw, for the report (responses, requests, connections as samples).
    private(set) var requests = 0
    private(set) var responses = 0

    convenience init(policy: Policy, unit: SplitTest.SamplingUnit) throws(SplitTestError) {
        try self.init(minimumSuccessRate: policy.minimumSuccessRate, latencyCeilings: policy.latencyCeilings,
                      statistics: policy.statistics, unit: unit)
    }

    /// - Parameter countsAfterVerdict: keep counting once decided (a load of fixed length: a game day's step).
    init(minimumSuccessRate: Double?, latencyCeilings: [(percentile: Double, seconds: Double)], statistics: SplitTestConfiguration,
         unit: SplitTest.SamplingUnit, countsAfterVerdict: Bool = false) throws(SplitTestError) {
        self.unit = unit
        self.minimumSuccessRate = minimumSuccessRate
        ceilings = latencyCeilings
        let (alpha, beta) = (statistics.falseFailRate, statistics.missRate)
        success = try minimumSuccessRate.map { r throws(SplitTestError) in try ShareBoundTest(minimum: r, falseFailRate: alpha, missRate: beta) }
        success?.countsAfterVerdict = countsAfterVerdict
        latency = []
        for (percentile, _) in latencyCeilings {
            var test = try ShareBoundTest(minimum: percentile / 100, falseFailRate: alpha, missRate: beta)
            test.countsAfterVerdict = countsAfterVerdict
            latency.append(test)
        }
    }

    var isEmpty: Bool { success == nil && latency.isEmpty }

    var decided: Bool { lock.withLock { unlockedDecided } }

    /// A tally for the ceilings: 0 or 1 per ceiling for a response of `latencyMicros`.
    func within(_ latencyMicros: UInt64) -> [Int] {
        ceilings.map { Double(latencyMicros) <= $0.seconds * 1e6 ? 1 : 0 }
    }

    /// Records one request (the request unit): whether it succeeded and, when it has a response, its latency.
    /// True once every objective is decided.
    func record(succeeded: Bool, latencyMicros: UInt64?) -> Bool {
        lock.withLock {
            requests += 1
            success?.record(succeeded ? 1 : 0)
            if let latencyMicros {
                responses += 1
                for (i, ok) in within(latencyMicros).enumerated() { latency[i].record(Double(ok)) }
            }
            return unlockedDecided
        }
    }

    /// Records one connection (the connection unit): its shares of successes and of fast responses.
    func record(_ tally: ConnectionTally) -> Bool {
        lock.withLock {
            let total = tally.succeeded + tally.failed
            guard total > 0 else { return unlockedDecided }
            requests += total
            responses += tally.responses
            success?.record(Double(tally.succeeded) / Double(total))
            if tally.responses > 0 {
                for i in latency.indices where i < tally.withinCeiling.count {
                    latency[i].record(Double(tally.withinCeiling[i]) / Double(tally.responses))
                }
            }
            return unlockedDecided
        }
    }

    private var unlockedDecided: Bool { (success?.verdict != nil || success == nil) && latency.allSatisfy { $0.verdict != nil } }

    /// The verdicts: decided by the bounds, or undecided with the figures.
    func checks() -> [SLOCheck] {
        lock.withLock {
            var out: [SLOCheck] = []
            if let test = success { out.append(SLOCheck(test, name: String(format: "success rate >= %g", test.minimum), percentile: nil, limit: test.minimum, unit: unit)) }
            for (i, test) in latency.enumerated() {
                let (percentile, ceiling) = ceilings[i]
                out.append(SLOCheck(test, name: String(format: "%@ latency <= %g ms", SLOCheck.label(percentile), ceiling * 1000),
                                    percentile: percentile, limit: ceiling, unit: unit))
            }
            return out
        }
    }
}

/// A service-level objective's verdict: decided by a bound at the policy's error rates (`ShareBoundTest`), or
/// undecided when the requests sent could not decide it.
public struct SLOCheck: Sendable {
    public var name: String
    public var passed: Bool
    public var decided: Bool
    /// The observed share (success rate; share of responses under the ceiling) and the objective's share.
    public var observed: Double
    /// The success rate's minimum, or the latency ceiling in seconds.
    public var limit: Double
    public var reason: String?
    /// The latency percentile the limit is for; nil for the success rate.
    public var percentile: Double? = nil
    /// Samples judged (requests, or connections with the connection as the unit) and the unit.
    public var samples: Int
    public var unit: SplitTest.SamplingUnit
    /// A 95% interval for the share (Clopper-Pearson, descriptive) and the two tests' log evidence (which a merge
    /// of independent runs adds).
    public var interval: (low: Double, high: Double)
    public var logEvidence: (pass: Double, fail: Double)
    public var falseFailRate: Double
    public var missRate: Double
    /// Undecided: the samples, each meeting the objective, that a PASS would still need (nil when decided or out of
    /// reach).
    public var samplesToPass: Int?

    static func label(_ percentile: Double) -> String {
        percentile == percentile.rounded() ? "p\(Int(percentile))" : "p\(String(format: "%g", percentile))"
    }

    init(_ test: ShareBoundTest, name: String, percentile: Double?, limit: Double, unit: SplitTest.SamplingUnit) {
        self.name = name
        self.percentile = percentile
        self.limit = limit
        self.unit = unit
        samples = test.samples
        let total = test.successes + test.failures
        observed = total > 0 ? test.successes / total : 0
        interval = test.interval()
        logEvidence = test.logEvidence
        falseFailRate = test.falseFailRate
        missRate = test.missRate
        decided = test.verdict != nil
        passed = test.verdict == .pass
        let what = percentile == nil ? "succeeded" : String(format: "took %g ms or less", limit * 1000)
        let units = unit == .connection ? "connections (each one sample: its share)" : "requests"
        let figures = String(format: "%.4f %@ over %d %@ (95%% interval %.4f-%.4f), objective %.4f", observed, what, samples, units,
                             interval.low, interval.high, test.minimum)
        switch test.verdict {
        case .pass?: reason = nil
        case .fail?: reason = figures + ": below the objective at false-fail <= \(test.falseFailRate)"
        case nil where test.samples == 0: reason = "undecided: no request completed, nothing to judge"
        case nil:
            // What deciding would take, not an interval: the distance to the PASS bound at the policy's error rates.
            let sample = unit == .connection ? "connection" : "request"
            samplesToPass = test.samplesToPass()
            let need = samplesToPass.map { "a PASS needs about \(counted($0, "more \(sample)", plural: "more \(sample)s")) that all meet it" }
                ?? "a PASS is out of reach at this share"
            reason = String(format: "undecided: %.4f %@ over %d %@, objective %.4f: ", observed, what, samples, units, test.minimum)
                + "\(need) (miss <= \(numberText(test.missRate))), a FAIL a share clearly below the objective "
                + "(false-fail <= \(numberText(test.falseFailRate))); the run ended first"
        }
    }

    /// The objectives over one finished load (a game day's step), requests as the unit, at the default error rates.
    public static func evaluate(_ result: LoadResult, minimumSuccessRate: Double?, latencyCeilings: [(percentile: Double, seconds: Double)],
                                configuration: SplitTestConfiguration = .init()) -> [SLOCheck] {
        var checks: [SLOCheck] = []
        if let r = minimumSuccessRate, var test = try? ShareBoundTest(minimum: r, falseFailRate: configuration.falseFailRate, missRate: configuration.missRate) {
            test.add(successes: Double(result.succeeded), failures: Double(result.failed))
            checks.append(SLOCheck(test, name: String(format: "success rate >= %g", r), percentile: nil, limit: r, unit: .request))
        }
        for (percentile, ceiling) in latencyCeilings {
            guard var test = try? ShareBoundTest(minimum: percentile / 100, falseFailRate: configuration.falseFailRate,
                                                 missRate: configuration.missRate) else { continue }
            let total = result.latency.totalCount
            let fast = result.latency.count(within: 0...UInt64(ceiling * 1e6))
            test.add(successes: Double(fast), failures: Double(total - fast))
            checks.append(SLOCheck(test, name: String(format: "%@ latency <= %g ms", label(percentile), ceiling * 1000), percentile: percentile,
                                   limit: ceiling, unit: .request))
        }
        return checks
    }
}
