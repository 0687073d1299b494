import MeshprobeIdentity
import MeshprobePolicy
import Testing
@testable import MeshprobeChecks
@testable import MeshprobeLoad

/// The in-flight verdict's arithmetic on synthetic phases: where the peak comes from and when it may FAIL.
@Suite struct CircuitBreakerInFlightTests {
    /// A phase whose upstream stamped `stamped` as its peak, answered by `endpoints` workloads, and whose answers'
    /// arrival times gave `estimated` held at once.
    func phase(stamped: Int, endpoints: Int, estimated: Int) -> CircuitBreakerCheck.Phase {
        var result = LoadResult()
        result.upstreamPeakInFlight = stamped
        for i in 0..<endpoints {
            var stats = IdentityStats()
            stats.requests = 100
            stats.succeeded = 100
            result.identities[WorkloadIdentity(workload: "ratings", version: "v\(i + 1)")] = stats
        }
        result.succeeded = 100 * endpoints
        return CircuitBreakerCheck.Phase(concurrency: 10, result: result, overflow: 0, overflowLatency: nil, servicePeak: estimated)
    }

    /// One endpoint: its stamp is the service's count, exactly; an arrival-time estimate one above it (an answer read
    /// late by a busy generator) must not fail a limit the upstream kept (the demo failed so on a loaded machine).
    @Test func oneEndpointIsJudgedByItsOwnStamp() {
        let e = CircuitBreakerExpectation(maxRequests: 10, maxPending: 5, source: "test")
        let check = CircuitBreakerCheck.inFlightCheck(e, below: phase(stamped: 10, endpoints: 1, estimated: 11),
                                                      above: phase(stamped: 10, endpoints: 1, estimated: 11))
        #expect(check.passed == true, "\(check)")
        let over = CircuitBreakerCheck.inFlightCheck(e, below: phase(stamped: 11, endpoints: 1, estimated: 11),
                                                     above: phase(stamped: 10, endpoints: 1, estimated: 10))
        #expect(over.passed == false, "\(over)")
        #expect(over.reason?.contains("the upstream had 11 requests in flight") == true, "\(over)")
    }

    /// Several endpoints: the estimate over all of them is what a service-wide limit is judged by.
    @Test func severalEndpointsAreJudgedTogether() {
        let e = CircuitBreakerExpectation(maxRequests: 2, maxPending: 1, source: "test")
        let check = CircuitBreakerCheck.inFlightCheck(e, below: phase(stamped: 2, endpoints: 2, estimated: 4),
                                                      above: phase(stamped: 2, endpoints: 2, estimated: 4))
        #expect(check.passed == false, "\(check)")
        #expect(check.reason?.contains("4 requests in flight at once over its 2 endpoints") == true, "\(check)")
    }

    /// Answers 100 ms apart, each held 100 ms (one at a time), one read 15 ms late: without the lag, two look
    /// held together; with the generator's lag as the margin, one at a time.
    @Test func theGeneratorsLagWidensTheMargin() {
        let arrivals = [0.100, 0.215, 0.300, 0.400]
        #expect(CircuitBreakerCheck.peakHeldAtOnce(arrivals: arrivals, hold: 0.1) == 2)
        #expect(CircuitBreakerCheck.peakHeldAtOnce(arrivals: arrivals, hold: 0.1, lag: 0.016) == 1)
    }

    /// A phase above the limit whose overflow replies took `overflow` (milliseconds, one reply each) while the
    /// generator's timers ran `lag` ms late.
    func above(overflow: [Double], lag: Double) -> CircuitBreakerCheck.Phase {
        var result = LoadResult()
        var ok = IdentityStats()
        ok.requests = 10
        ok.succeeded = 10
        result.identities[WorkloadIdentity(workload: "ratings", version: "v1")] = ok
        result.succeeded = 10
        for _ in 0..<200 { _ = result.loopLag.record(UInt64(max(1, lag * 1000))) }
        var stats = FailureStats()
        for ms in overflow {
            stats.count += 1
            _ = stats.latency.record(UInt64(ms * 1000))
        }
        return CircuitBreakerCheck.Phase(concurrency: 22, result: result, overflow: overflow.count, overflowLatency: stats, servicePeak: 10)
    }

    func fastCheck(overflow: [Double], lag: Double) -> ProcedureCheck? {
        let e = CircuitBreakerExpectation(maxRequests: 10, maxPending: 1, source: "test")
        let below = phase(stamped: 10, endpoints: 1, estimated: 10)
        return CircuitBreakerCheck.evaluate(e, below: below, above: above(overflow: overflow, lag: lag))
            .first { $0.name.contains("overflow replies, fast") }
    }

    /// Refusals that waited (their median past half the 100 ms hold) fail; a slow tail fails only while the
    /// generator kept time, and is undecided when its own timers ran late (a starved machine: the lab's circuit
    /// breaker failed so under three busy loops).
    @Test func overflowRepliesAreJudgedFastOnlyWhenTheGeneratorKeptTime() throws {
        let fast = Array(repeating: 2.0, count: 100)
        let slowTail = Array(repeating: 2.0, count: 90) + Array(repeating: 70.0, count: 10)
        let queued = Array(repeating: 80.0, count: 100)
        let ok = try #require(fastCheck(overflow: fast, lag: 1))
        #expect(ok.passed && ok.decided, "\(ok)")
        #expect(ok.evidence["overflow_p50_ms"] == 2 && ok.evidence["overflow_p99_ms"] == 2, "\(ok.evidence)")
        let tail = try #require(fastCheck(overflow: slowTail, lag: 1))
        #expect(!tail.passed && tail.decided, "\(tail)")
        let starved = try #require(fastCheck(overflow: slowTail, lag: 30))
        #expect(!starved.passed && !starved.decided, "\(starved)")
        #expect(starved.reason?.contains("the generator's own timers ran up to") == true, "\(starved)")
        let waited = try #require(fastCheck(overflow: queued, lag: 30))
        #expect(!waited.passed && waited.decided, "\(waited)")
        #expect(waited.reason?.contains("at the median") == true, "\(waited)")
    }

    /// Refusals at the limit that took longer than a held request are not a limit's (the trial's HAProxy retried
    /// connects to a dead endpoint for 600 ms, then sent its 503 page): undecided, not "tighter"; quick ones fail.
    @Test func slowRefusalsAtTheLimitAreUndecidedQuickOnesFail() throws {
        var e = CircuitBreakerExpectation(maxRequests: 10, maxPending: 1, source: "test")
        e.hold = 0.1
        for (ms, decided) in [(604.0, false), (2.0, true)] {
            var below = above(overflow: Array(repeating: ms, count: 20), lag: 1)
            below.concurrency = 10
            let check = try #require(CircuitBreakerCheck.evaluate(e, below: below, above: above(overflow: [2], lag: 1)).first)
            #expect(!check.passed && check.decided == decided, "\(check)")
            #expect(check.reason?.contains(decided ? "the limit is tighter than 10" : "not a limit's quick refusal") == true, "\(check)")
        }
    }

    /// No refusal above the limit fails against the echo (it held the requests, they piled up), and is undecided
    /// against a target without the echo's stamp (it may not have held them). Either way there is no overflow reply
    /// to time: its percentiles are left out, never written as a 0 ms that reads as a measurement.
    @Test func noRefusalFailsOnlyWhereRequestsWereHeld() throws {
        let e = CircuitBreakerExpectation(maxRequests: 10, maxPending: 1, source: "test")
        let below = phase(stamped: 10, endpoints: 1, estimated: 10)
        var stamped = above(overflow: [], lag: 1)
        stamped.result.upstreamPeakInFlight = 10
        let held = try #require(CircuitBreakerCheck.evaluate(e, below: below, above: stamped).first { $0.name.contains("overflow replies") })
        #expect(!held.passed && held.decided, "\(held)")
        #expect(held.evidence["overflow"] == 0 && held.evidence["generator_lag_p99_ms"] != nil, "\(held.evidence)")
        #expect(held.evidence["overflow_p50_ms"] == nil && held.evidence["overflow_p99_ms"] == nil, "\(held.evidence)")
        let unstamped = try #require(CircuitBreakerCheck.evaluate(e, below: below, above: above(overflow: [], lag: 1))
            .first { $0.name.contains("overflow replies") })
        #expect(!unstamped.passed && !unstamped.decided, "\(unstamped)")
        #expect(unstamped.reason?.contains("may not hold requests") == true, "\(unstamped)")
    }
}

/// The procedure over time: its phases, the most the upstream held in each interval (estimated as the in-flight
/// check estimates its peak), and the responses by kind.
@Suite struct CircuitBreakerOverTimeTests {
    typealias Response = CircuitBreakerCheck.Response

    /// Over the whole procedure, the intervals' most held at once is the in-flight check's peak, whatever the arrivals.
    @Test func theIntervalsPeaksAreTheChecksPeak() {
        var state: UInt64 = 7
        func random() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53)
        }
        for round in 0..<50 {
            let hold = 0.02 + random() * 0.2
            let arrivals = (0..<(20 + round * 5)).map { _ in random() * 3 }.sorted()
            let responses = arrivals.map { Response(phase: 0, at: $0, kind: .succeeded, stamped: true) }
            let phases = [CircuitBreakerCheck.OverTime.Phase(name: "p", concurrency: 10, start: 0, end: 3)]
            let series = CircuitBreakerCheck.overTime(responses, phases: phases, hold: hold)
            let peak = series.points.compactMap(\.held).max() ?? 0
            #expect(peak == CircuitBreakerCheck.peakHeldAtOnce(arrivals: arrivals, hold: hold), "round \(round), hold \(hold)")
        }
    }

    /// Answers held 100 ms, one every 20 ms from 0.105 s to 0.505 s: each was held before it arrived, so five are
    /// held at once from the first interval (before any answer) on, and one in the interval of the last answer.
    @Test func eachIntervalHoldsItsOwnMost() {
        let arrivals = (0...20).map { Response(phase: 0, at: 0.105 + Double($0) * 0.02, kind: .succeeded, stamped: true) }
        let phases = [CircuitBreakerCheck.OverTime.Phase(name: "at the limit", concurrency: 5, start: 0, end: 0.75)]
        let series = CircuitBreakerCheck.overTime(arrivals, phases: phases, hold: 0.1)
        #expect(series.interval == 0.1)
        #expect(series.points.map(\.at) == [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
        // The margin (a tenth of the hold) keeps back-to-back answers apart: 90 ms windows, answers 20 ms apart.
        #expect(series.points.map { $0.held ?? -1 } == [5, 5, 5, 5, 5, 1, 0, 0])
        #expect(series.points.map(\.succeeded) == [0, 5, 5, 5, 5, 1, 0, 0])
    }

    @Test func responsesAreCountedByKindAndPhasesKept() {
        let phases = [CircuitBreakerCheck.OverTime.Phase(name: "at the limit", concurrency: 10, start: 0, end: 1.02),
                      CircuitBreakerCheck.OverTime.Phase(name: "above it", concurrency: 22, start: 1.03, end: 1.61)]
        let responses = [Response(phase: 0, at: 0.55, kind: .succeeded, stamped: true), Response(phase: 1, at: 1.25, kind: .overflow, stamped: false),
                         Response(phase: 1, at: 1.27, kind: .overflow, stamped: false), Response(phase: 1, at: 1.28, kind: .failed, stamped: false),
                         Response(phase: 1, at: 1.60, kind: .succeeded, stamped: false)]
        let series = CircuitBreakerCheck.overTime(responses, phases: phases, hold: nil)
        #expect(series.phases == phases)
        #expect(series.points.count == 17)
        #expect(series.points.allSatisfy { $0.held == nil }, "no hold: the upstream's view is not estimated")
        #expect(series.points[5].succeeded == 1)
        #expect(series.points[12].overflow == 2 && series.points[12].failed == 1)
        #expect(series.points[16].succeeded == 1, "an unstamped success still counts as a reply")
    }

    /// A long procedure gets longer intervals, so the series stays small.
    @Test func aLongProcedureGetsLongerIntervals() {
        #expect(CircuitBreakerCheck.interval(for: 3) == 0.1)
        #expect(CircuitBreakerCheck.interval(for: 60) == 0.1)
        #expect(CircuitBreakerCheck.interval(for: 61) == 0.25)
        #expect(CircuitBreakerCheck.interval(for: 400) == 1)
        #expect(CircuitBreakerCheck.interval(for: 100_000) == 167)
        let long = CircuitBreakerCheck.overTime([], phases: [.init(name: "p", concurrency: 1, start: 0, end: 1000)], hold: 1)
        #expect(long.points.count <= CircuitBreakerCheck.mostPoints && long.interval == 2)
    }
}
