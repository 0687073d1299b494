import Foundation
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobePolicy
import MeshprobeSpec
import NIOCore

/// Ramps concurrency below and above a declared connection-pool limit and checks the proxy's behaviour:
/// (a) at the limit nothing overflows, (b) well above it overflow replies appear and come back fast (faster than
/// half the upstream's hold time), (c) the upstream never has more requests in flight than the limit, at the scope the
/// proxy applies it: for the whole service, the most successful requests held by the upstream at the same instant
/// (seen from the client: each one was held for the hold time before its answer arrived), and never less than what a
/// single endpoint's in-flight stamp reported; per endpoint, each echo's own in-flight stamp.
///
/// A phase in which nothing succeeded says nothing about a limit (no endpoint, or no connection): its checks are
/// undecided and name the failures.
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
        /// The most successful requests the upstream held at once, all endpoints together (nil without a hold).
        public var servicePeak: Int?
    }

    public struct Outcome: Sendable {
        public var expectation: CircuitBreakerExpectation
        public var below: Phase
        public var above: Phase
        public var checks: [ProcedureCheck]
        /// What the procedure did not check, and why.
        public var notes: [String] = []
        /// Both phases over time: what the client sent at once, the most the upstream held, the responses by kind.
        public var overTime: OverTime?
    }

    /// A limit checked against the peak a stamp reported: passes when 0 < peak <= limit. Without a stamp the check
    /// is undecided (`unstamped` says why, after the failures when nothing succeeded), unless `missing` says the
    /// stamp's absence is itself a failure (the echo answered, yet the stamp never came).
    static func peakCheck(name: String, peak: Int, limit: Int, result: LoadResult, unstamped: String, missing: String? = nil,
                          over: String, evidence: [String: Double]) -> ProcedureCheck {
        if peak == 0 {
            if result.succeeded == 0 && missing == nil {
                return .undecided(name, reason: "\(result.nothingSucceeded): the upstream's view is unknown", evidence: evidence,
                                  requests: result.totalRequests)
            }
            guard let missing else { return .undecided(name, reason: unstamped, evidence: evidence, requests: result.totalRequests) }
            return ProcedureCheck(name: name, passed: false, reason: missing, evidence: evidence, requests: result.totalRequests)
        }
        return ProcedureCheck(name: name, passed: peak <= limit, reason: peak > limit ? over : nil, evidence: evidence, requests: result.totalRequests)
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

    /// The most requests held at the same instant, from the arrival times of answers each held `hold` seconds by the
    /// upstream: two overlapped when they arrived less than the hold apart. A margin of a tenth of the hold (at
    /// least 2 ms) keeps back-to-back requests (one sent when the other's answer arrived, or queued in the proxy
    /// until it left) apart, so the figure never counts more than were in flight together; `lag` (seconds, the
    /// generator's worst timer lag in the phase) widens it, since an answer read late looks closer to the next.
    static func peakHeldAtOnce(arrivals: [Double], hold: Double, lag: Double = 0) -> Int {
        let window = hold - max(0.002, hold / 10, lag)
        guard window > 0 else { return arrivals.isEmpty ? 0 : 1 }
        let sorted = arrivals.sorted()
        var peak = 0
        var first = 0
        for (i, t) in sorted.enumerated() {
            while sorted[first] <= t - window { first += 1 }
            peak = max(peak, i - first + 1)
        }
        return peak
    }

    public static func run(_ expectation: CircuitBreakerExpectation, configuration base: LoadConfiguration,
                           group: any EventLoopGroup) async throws -> Outcome {
        var base = base
        base.plan.model = .closedAsFastAsPossible
        base.plan.duration = nil
        base.plan.warmup = 0
        base.plan.churn = .reuse
        base.responseObserver = nil
        base.plan.requests = expectation.requestsPerPhase
        if let hold = expectation.hold { try EchoKnobs.hold(hold, in: &base.plan, check: "circuitBreaker.hold") }
        let recorder = Recorder()
        var lags: [Double] = []
        func phase(_ name: String, concurrency: Int) async throws -> Phase {
            var c = base
            c.responseObserver = { identity, status, failure in recorder.observe(identity, status: status, failure: failure) }
            c.plan.connections = min(concurrency, 4)
            c.plan.streamsPerConnection = (concurrency + c.plan.connections - 1) / c.plan.connections
            // Exactly `concurrency` in flight, whatever the rounding of streams per connection.
            c.plan.model = .closed(concurrency: .constant(Double(concurrency)), thinkTime: 0)
            recorder.beginPhase(name, concurrency: concurrency)
            let result = try await LoadGenerator(configuration: c, group: group).run()
            recorder.endPhase()
            let (count, stats) = overflow(in: result)
            let lag = Double(result.loopLag.max) / 1e6
            lags.append(lag)
            return Phase(concurrency: concurrency, result: result, overflow: count, overflowLatency: stats,
                         servicePeak: expectation.hold.map {
                             peakHeldAtOnce(arrivals: recorder.arrivals(phase: lags.count - 1), hold: $0, lag: lag)
                         })
        }
        let below = try await phase("at the limit", concurrency: expectation.maxRequests)
        let above = try await phase("above it", concurrency: max(expectation.admitted * 2, expectation.admitted + 4))
        var outcome = Outcome(expectation: expectation, below: below, above: above, checks: evaluate(expectation, below: below, above: above))
        let (responses, phases) = recorder.all
        outcome.overTime = overTime(responses, phases: phases, hold: expectation.hold, lag: lags)
        if expectation.hold == nil {
            outcome.notes.append("\(expectation.source): with hold 0s (a target that holds requests on its own, not the echo) the upstream's in-flight count is not checked: it needs the echo's stamp and hold")
        }
        return outcome
    }

    static func evaluate(_ e: CircuitBreakerExpectation, below: Phase, above: Phase) -> [ProcedureCheck] {
        var checks: [ProcedureCheck] = []
        let belowName = "at the limit (\(below.concurrency) concurrent): nothing overflows"
        let belowEvidence = ["concurrency": Double(below.concurrency), "requests": Double(below.result.totalRequests),
                             "overflow": Double(below.overflow), "failed": Double(below.result.failed)]
        if below.result.succeeded == 0 {
            // A proxy with no endpoint answers every request with a 503 that looks like overflow: not a limit.
            checks.append(.undecided(belowName, reason: "\(below.result.nothingSucceeded): no endpoint answered, so no limit can be seen",
                                     evidence: belowEvidence, requests: below.result.totalRequests))
        } else if below.overflow > 0, let hold = e.hold, let stats = below.overflowLatency,
                  Double(stats.latency.valueAtPercentile(50)) / 1e6 > hold {
            // A limit refuses at once (or after a short queue): refusals slower than a held request are something else,
            // such as a proxy's connect retries to an endpoint that is down, which end in the same reply.
            let p50 = Double(stats.latency.valueAtPercentile(50)) / 1000
            var evidence = belowEvidence
            evidence["overflow_p50_ms"] = (p50 * 1000).rounded() / 1000
            checks.append(.undecided(belowName, reason: String(format: "%d of %d requests were refused by the proxy at %d concurrent requests, but the refusals took %.1f ms at the median, longer than a held request (%.0f ms): not a limit's quick refusal; an endpoint that is down (the proxy's connect retries) ends in the same reply", below.overflow, below.result.totalRequests, below.concurrency, p50, hold * 1000),
                                     evidence: evidence, requests: below.result.totalRequests))
        } else {
            checks.append(ProcedureCheck(
                name: belowName, passed: below.overflow == 0,
                reason: below.overflow > 0
                    ? "\(below.overflow) of \(below.result.totalRequests) requests were refused by the proxy at \(below.concurrency) concurrent requests: the limit is tighter than \(e.maxRequests)"
                    : nil,
                evidence: belowEvidence, requests: below.result.totalRequests))
        }
        if e.maxPending != nil {
            let name = "above the limit (\(above.concurrency) concurrent): overflow replies, fast"
            let p50 = above.overflowLatency.map { Double($0.latency.valueAtPercentile(50)) / 1000 } ?? 0
            let p99 = above.overflowLatency.map { Double($0.latency.valueAtPercentile(99)) / 1000 } ?? 0
            // The generator's own timer lag: how late it could read a reply that came on time.
            let lag = Double(above.result.loopLag.valueAtPercentile(99)) / 1000
            var evidence = ["concurrency": Double(above.concurrency), "requests": Double(above.result.totalRequests),
                            "overflow": Double(above.overflow), "generator_lag_p99_ms": (lag * 1000).rounded() / 1000]
            // The overflow replies' percentiles only when there were some: a 0 would read as a measured time.
            if above.overflow > 0, above.overflowLatency != nil {
                evidence["overflow_p50_ms"] = (p50 * 1000).rounded() / 1000
                evidence["overflow_p99_ms"] = (p99 * 1000).rounded() / 1000
            }
            if above.result.succeeded == 0 {
                checks.append(.undecided(name, reason: "\(above.result.nothingSucceeded): no endpoint answered, so refusals are not overflow",
                                         evidence: evidence, requests: above.result.totalRequests))
            } else if above.overflow == 0, e.hold != nil, above.result.upstreamPeakInFlight == 0 {
                // No stamp: the target is not the echo and may not hold requests as asked, so they need not pile up
                // (`hold: 0s` declares a target that holds them on its own, and then no refusal is a failure).
                checks.append(.undecided(name, reason: "no request was refused at \(above.concurrency) concurrent requests, but no response carried the echo's in-flight stamp: the target may not hold requests, so none need have piled up (for a target that holds requests on its own, declare hold: 0s)",
                                         evidence: evidence, requests: above.result.totalRequests))
            } else if above.overflow == 0 {
                checks.append(ProcedureCheck(name: name, passed: false,
                                             reason: "no request was refused at \(above.concurrency) concurrent requests (declared: \(e.admitted) admitted, maxRequests + maxPending): the limit is looser, or not enforced",
                                             evidence: evidence, requests: above.result.totalRequests))
            } else if let hold = e.hold {
                // Slow when the typical refusal waited (its median past half the hold: queued, not refused), or when
                // the tail did while the generator kept time; a slow tail from a generator whose own timers ran late
                // (a starved machine) is not evidence either way.
                let half = hold * 1000 / 2
                if p50 > half {
                    checks.append(ProcedureCheck(name: name, passed: false,
                                                 reason: String(format: "overflow replies took %.1f ms at the median, not fast (the upstream holds requests %.0f ms)", p50, hold * 1000),
                                                 evidence: evidence, requests: above.result.totalRequests))
                } else if p99 > half, lag > half / 5 {
                    checks.append(.undecided(name, reason: String(format: "overflow replies took %.1f ms at p99 (%.1f ms at the median) while the generator's own timers ran up to %.1f ms late (p99): too busy a machine to tell a slow refusal from a late read", p99, p50, lag),
                                             evidence: evidence, requests: above.result.totalRequests))
                } else if p99 > half {
                    checks.append(ProcedureCheck(name: name, passed: false,
                                                 reason: String(format: "overflow replies took %.1f ms at p99, not fast (the upstream holds requests %.0f ms)", p99, hold * 1000),
                                                 evidence: evidence, requests: above.result.totalRequests))
                } else {
                    checks.append(ProcedureCheck(name: name, passed: true, reason: nil, evidence: evidence, requests: above.result.totalRequests))
                }
            } else {
                checks.append(ProcedureCheck(name: name, passed: true, reason: nil, evidence: evidence, requests: above.result.totalRequests))
            }
        }
        if e.hold != nil { checks.append(inFlightCheck(e, below: below, above: above)) }
        return checks
    }

    /// The upstream's requests in flight against the limit, at the limit's scope.
    static func inFlightCheck(_ e: CircuitBreakerExpectation, below: Phase, above: Phase) -> ProcedureCheck {
        let endpointPeak = max(below.result.upstreamPeakInFlight, above.result.upstreamPeakInFlight)
        let endpoints = Set([below, above].flatMap { phase in
            phase.result.identities.filter { $0.value.succeeded > 0 && (!$0.key.workload.isEmpty || !$0.key.version.isEmpty) }.keys
        }).count
        let requests = below.result.totalRequests + above.result.totalRequests
        var evidence: [String: Double] = ["peak_in_flight_per_endpoint": Double(endpointPeak), "limit": Double(e.maxRequests),
                                          "endpoints": Double(endpoints), "requests": Double(requests)]
        let name: String
        let peak: Int
        switch e.scope {
        case .service:
            name = "the service (all endpoints together) never had more than \(e.maxRequests) in flight"
            // One endpoint's own count (the echo's stamp) is exact for a service of one endpoint, and a floor for a
            // service of several, whose peak together is estimated from the answers' arrival times.
            peak = endpoints > 1 ? max(endpointPeak, below.servicePeak ?? 0, above.servicePeak ?? 0) : endpointPeak
            evidence["peak_in_flight_service"] = Double(peak)
        case .endpoint:
            name = "no endpoint ever had more than \(e.maxRequests) in flight"
            peak = endpointPeak
        }
        var check: ProcedureCheck
        if endpointPeak == 0 {
            let both = below.result.succeeded + above.result.succeeded
            check = .undecided(name, reason: both == 0 ? "\(below.result.nothingSucceeded): the upstream's view is unknown"
                                   : "no response carried the echo's in-flight stamp (x-meshprobe-inflight) in \(both) successful responses: the target is not the meshprobe echo (for such a target, declare hold: 0s; the in-flight check is then not run)",
                               evidence: evidence, requests: requests)
        } else if peak > e.maxRequests {
            let scope = e.scope == .service
                ? (endpoints > 1 ? "the service had \(peak) requests in flight at once over its \(endpoints) endpoints" : "the upstream had \(peak) requests in flight")
                : "an endpoint had \(peak) requests in flight"
            check = ProcedureCheck(name: name, passed: false, reason: "\(scope), more than the limit of \(e.maxRequests)", evidence: evidence, requests: requests)
        } else {
            check = ProcedureCheck(name: name, passed: true, reason: nil, evidence: evidence, requests: requests)
        }
        check.scope = e.scope == .service ? "service (all endpoints together)" : "endpoint (each on its own)"
        return check
    }
}
