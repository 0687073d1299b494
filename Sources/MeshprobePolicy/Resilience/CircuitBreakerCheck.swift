import Foundation
import MeshprobeIdentity
import MeshprobeLoad
import NIOCore

/// A declared connection-pool limit (Istio DestinationRule `connectionPool`, or a policy's `circuitBreaker`).
public struct CircuitBreakerExpectation: Sendable, Equatable {
    /// Requests the upstream may have in flight from this client's proxy (`http2MaxRequests`, or
    /// `tcp.maxConnections` for HTTP/1.1 upstreams: one request per connection).
    public var maxRequests: Int
    /// Requests the proxy queues beyond that before it refuses (`http1MaxPendingRequests`); nil: unbounded, so
    /// nothing is expected to overflow and only the in-flight limit is checked.
    public var maxPending: Int?
    /// How long the upstream holds each request during the check (sent as the echo's `delay` parameter), so that
    /// requests pile up; nil when the upstream is slow on its own.
    public var hold: Double? = 0.1
    /// Requests in each phase (below and above the limit).
    public var requestsPerPhase: Int = 400
    /// Where the limit came from (file and line, or the DestinationRule), for the verdict.
    public var source: String

    public init(maxRequests: Int, maxPending: Int?, source: String) {
        self.maxRequests = maxRequests
        self.maxPending = maxPending
        self.source = source
    }

    /// The concurrency the proxy admits without refusing: in flight plus queued.
    public var admitted: Int { maxRequests + (maxPending ?? 0) }
}

/// Ramps concurrency below and above a declared connection-pool limit and checks the proxy's behaviour:
/// (a) at the limit nothing overflows, (b) well above it overflow replies appear and come back fast (faster than
/// half the upstream's hold time), (c) the upstream never has more requests in flight than the limit (the echo's
/// in-flight stamp: exact with one upstream endpoint; with several, each endpoint's own count is compared).
///
/// Limits are per client proxy: every sidecar enforces its own counters (envoy#24579, istio#37009), so N callers
/// can put N times the limit on a service. This check is one client, and the verdict says so.
public enum CircuitBreakerCheck {
    public struct Phase: Sendable {
        public var concurrency: Int
        public var result: LoadResult
        /// Failed responses that are a proxy refusing for a limit.
        public var overflow: Int
        public var overflowLatency: FailureStats?
    }

    public struct Outcome: Sendable {
        public var expectation: CircuitBreakerExpectation
        public var below: Phase
        public var above: Phase
        public var checks: [Check]
    }

    public struct Check: Sendable {
        public var name: String
        public var passed: Bool
        public var reason: String?
        public var evidence: [String: Double]
    }

    /// A limit checked against the peak a stamp reported: passes when 0 < peak <= limit; `missing` and `over` say
    /// why not.
    static func peakCheck(name: String, peak: Int, limit: Int, missing: String, over: String, evidence: [String: Double]) -> Check {
        let reason = peak == 0 ? missing : peak > limit ? over : nil
        return Check(name: name, passed: reason == nil, reason: reason, evidence: evidence)
    }

    static func overflow(in result: LoadResult) -> (count: Int, stats: FailureStats?) {
        var merged: FailureStats?
        var count = 0
        for (failure, stats) in result.failedResponses where failure.isOverflow {
            count += stats.count
            if merged == nil { merged = stats } else { merged?.merge(stats) }
        }
        return (count, merged)
    }

    public static func run(_ expectation: CircuitBreakerExpectation, configuration base: LoadConfiguration,
                           group: any EventLoopGroup) async throws -> Outcome {
        var base = base
        base.model = .closedAsFastAsPossible
        base.duration = nil
        base.warmup = 0
        base.churn = .reuse
        base.responseObserver = nil
        base.requests = expectation.requestsPerPhase
        if let hold = expectation.hold {
            let delay = "delay=\(Int((hold * 1000).rounded()))ms"
            for i in base.targets.indices {
                base.targets[i].path += base.targets[i].path.contains("?") ? "&\(delay)" : "?\(delay)"
            }
        }
        func phase(_ concurrency: Int) async throws -> Phase {
            var c = base
            c.connections = min(concurrency, 4)
            c.streamsPerConnection = (concurrency + c.connections - 1) / c.connections
            // Exactly `concurrency` in flight, whatever the rounding of streams per connection.
            c.model = .closed(concurrency: .constant(Double(concurrency)), thinkTime: 0)
            let result = try await LoadGenerator(configuration: c, group: group).run()
            let (count, stats) = overflow(in: result)
            return Phase(concurrency: concurrency, result: result, overflow: count, overflowLatency: stats)
        }
        let below = try await phase(expectation.maxRequests)
        let above = try await phase(max(expectation.admitted * 2, expectation.admitted + 4))
        return Outcome(expectation: expectation, below: below, above: above, checks: evaluate(expectation, below: below, above: above))
    }

    static func evaluate(_ e: CircuitBreakerExpectation, below: Phase, above: Phase) -> [Check] {
        var checks: [Check] = []
        let belowFailed = below.result.failed
        checks.append(Check(
            name: "at the limit (\(below.concurrency) concurrent): nothing overflows",
            passed: below.overflow == 0 && below.result.succeeded > 0,
            reason: below.overflow > 0
                ? "\(below.overflow) of \(below.result.totalRequests) requests were refused by the proxy at \(below.concurrency) concurrent requests: the limit is tighter than \(e.maxRequests)"
                : (below.result.succeeded == 0 ? "no request succeeded (\(belowFailed) failed)" : nil),
            evidence: ["concurrency": Double(below.concurrency), "requests": Double(below.result.totalRequests),
                       "overflow": Double(below.overflow), "failed": Double(belowFailed)]))
        if e.maxPending != nil {
            let p99 = above.overflowLatency.map { Double($0.latency.valueAtPercentile(99)) / 1000 } ?? 0
            var reason: String?
            if above.overflow == 0 {
                reason = "no request was refused at \(above.concurrency) concurrent requests (the proxy admits \(e.admitted)): the limit is looser, or not enforced"
            } else if let hold = e.hold, p99 > hold * 1000 / 2 {
                reason = String(format: "overflow replies took %.1f ms at p99, not fast (the upstream holds requests %.0f ms)", p99, hold * 1000)
            }
            checks.append(Check(
                name: "above the limit (\(above.concurrency) concurrent): overflow replies, fast",
                passed: reason == nil, reason: reason,
                evidence: ["concurrency": Double(above.concurrency), "requests": Double(above.result.totalRequests),
                           "overflow": Double(above.overflow), "overflow_p99_ms": (p99 * 1000).rounded() / 1000]))
        }
        let peak = max(below.result.upstreamPeakInFlight, above.result.upstreamPeakInFlight)
        var reason: String?
        if peak == 0 {
            reason = "no response carried the echo's in-flight stamp (x-meshprobe-inflight): the upstream's view is unknown"
        } else if peak > e.maxRequests {
            reason = "the upstream had \(peak) requests in flight, more than the limit of \(e.maxRequests)"
        }
        checks.append(Check(
            name: "the upstream never had more than \(e.maxRequests) in flight",
            passed: reason == nil, reason: reason, evidence: ["peak_in_flight": Double(peak), "limit": Double(e.maxRequests)]))
        return checks
    }
}
