import Foundation
import MeshprobeIdentity
import MeshprobePolicy
import Testing
@testable import MeshprobeChecks
@testable import MeshprobeLoad
@Suite struct RetryEvaluationTests {
    /// A result of `n` responses with `status`, each stamped with `tries` (nil: no stamp), `latency` seconds.
    func result(_ n: Int, status: Int, tries: Int?, latency: Double, failure: FailureClass? = nil) -> LoadResult {
        var r = LoadResult()
        var slot: LoadResult.IdentitySlot?
        for _ in 0..<n {
            let micros = UInt64(latency * 1_000_000)
            r.recordResponse(status: status, latencyMicros: micros, serviceMicros: micros, identity: WorkloadIdentity(), second: 0, slot: &slot)
            if let failure { r.recordFailure(failure, latencyMicros: micros) }
            if let tries { r.attemptsSeen[tries, default: 0] += 1 }
        }
        return r
    }

    let app503 = FailureClass(origin: .application, reason: "503")
    let haproxyTimeout = FailureClass(origin: .proxy, reason: FailureClass.Reason.upstreamTimeout, proxy: "haproxy")

    @Test func theDeclaredNumberOfTriesPassesAndFewerOrMoreFailWithWhatWasSeen() {
        let ok = RetryCheck.evaluateTries(result(20, status: 503, tries: 3, latency: 0.01, failure: app503), status: 503, expected: 3, name: "t")
        #expect(ok.passed && ok.evidence["tries_3"] == 20)
        var mixed = result(15, status: 503, tries: 2, latency: 0.01, failure: app503)
        mixed.merge(result(5, status: 503, tries: 3, latency: 0.01, failure: app503))
        let fewer = RetryCheck.evaluateTries(mixed, status: 503, expected: 3, name: "t")
        #expect(!fewer.passed && fewer.reason?.contains("15 of 20 requests were tried fewer than 3 times") == true, "\(fewer.reason ?? "")")
        #expect(fewer.evidence["tries_2"] == 15 && fewer.evidence["tries_3"] == 5)
        let more = RetryCheck.evaluateTries(result(20, status: 404, tries: 2, latency: 0.01, failure: app503), status: 404, expected: 1, name: "t")
        #expect(!more.passed && more.reason?.contains("tried more than once") == true, "\(more.reason ?? "")")
        let unstamped = RetryCheck.evaluateTries(result(20, status: 503, tries: nil, latency: 0.01), status: 503, expected: 3, name: "t")
        #expect(!unstamped.passed && unstamped.reason?.contains("no final response carried the echo's attempt stamp") == true)
    }

    /// A gRPC call's injected status is its gRPC status: named so in the verdict, and in the evidence by its number.
    @Test func aGRPCStatusIsJudgedAndNamedAsOne() {
        let unavailable = ResponseCode.grpc(.unavailable)
        let app = FailureClass(origin: .application, reason: "UNAVAILABLE")
        let ok = RetryCheck.evaluateTries(result(10, status: unavailable, tries: 3, latency: 0.01, failure: app), status: unavailable, expected: 3, name: "t")
        #expect(ok.passed && ok.evidence["injected_grpc_status"] == 14 && ok.evidence["injected_status"] == nil)
        let once = RetryCheck.evaluateTries(result(10, status: unavailable, tries: 1, latency: 0.01, failure: app), status: unavailable, expected: 3, name: "t")
        #expect(!once.passed && once.reason?.contains("or not on UNAVAILABLE") == true, "\(once.reason ?? "")")
        // A proxy's own 503 page (no grpc-status) is not the injected UNAVAILABLE.
        let other = RetryCheck.evaluateTries(result(10, status: 503, tries: 3, latency: 0.01, failure: app503), status: unavailable, expected: 3, name: "t")
        #expect(!other.passed && other.reason?.contains("were not the injected UNAVAILABLE") == true, "\(other.reason ?? "")")
    }

    @Test func aSlowRequestMustEndAtTheDeclaredTimeWithAProxyReply() throws {
        var e = RetryExpectation(attempts: 2, perTryTimeout: 0.2, source: "test")
        e.retryOn = try RetryConditions.parse(["5xx"])
        let end = try #require(e.expectedEnd)
        let check = { (r: LoadResult) in RetryCheck.evaluateTiming(r, expectation: e, expected: end, delay: 0.4) }
        let asDeclared = check(result(20, status: 504, tries: nil, latency: 0.61, failure: haproxyTimeout))
        #expect(asDeclared.passed && asDeclared.kind == "retries" && asDeclared.evidence["proxy_timeouts"] == 20, "\(asDeclared.reason ?? "")")
        // Envoy's back-off may add up to 100 ms over two retries: 0.6 + 0.06 + 0.1.
        #expect(check(result(20, status: 504, tries: nil, latency: 0.75, failure: haproxyTimeout)).passed)
        let late = check(result(20, status: 504, tries: nil, latency: 0.8, failure: haproxyTimeout))
        #expect(!late.passed && late.reason?.contains("later than 3 tries of the per-try timeout (200 ms) allows") == true, "\(late.reason ?? "")")
        let early = check(result(20, status: 504, tries: nil, latency: 0.41, failure: haproxyTimeout))
        #expect(!early.passed && early.reason?.contains("earlier than") == true)
        let answered = check(result(20, status: 200, tries: 1, latency: 0.4))
        #expect(!answered.passed && answered.reason?.contains("answered by the application") == true)
        let refused = check(result(20, status: 400, tries: 1, latency: 0.001, failure: FailureClass(origin: .application, reason: "400")))
        #expect(!refused.passed && refused.reason?.contains("--max-delay") == true, "\(refused.reason ?? "")")
    }

    @Test func theRouteTimeoutHasNoBackOffAllowance() throws {
        var e = RetryExpectation(attempts: 3, perTryTimeout: 0.3, timeout: 0.5, source: "test")
        e.retryOn = try RetryConditions.parse(["5xx"])
        let end = try #require(e.expectedEnd)
        let late = RetryCheck.evaluateTiming(result(20, status: 504, tries: nil, latency: 0.6, failure: haproxyTimeout),
                                             expectation: e, expected: end, delay: 0.5)
        #expect(!late.passed && late.kind == "timeout" && late.evidence["backoff_allowance_ms"] == 0)
    }

    @Test func tolerancesAreAsStated() {
        #expect(RetryTolerance.timing(expected: 0.2) == 0.05)
        #expect(abs(RetryTolerance.timing(expected: 2) - 0.2) < 1e-12)
        #expect(abs(RetryTolerance.backoff(retries: 2) - 0.1) < 1e-12)   // 25 ms + 75 ms
        #expect(abs(RetryTolerance.backoff(retries: 5) - (0.025 + 0.075 + 0.175 + 0.25 + 0.25)) < 1e-12)
        #expect(RetryTolerance.backoff(retries: 0) == 0)
    }
}

/// The concurrent-retry verdict on made-up results: no lab proxy limits concurrent retries (HAProxy has no such
/// setting), so the passing direction is shown here; the failing one runs end to end in RetryTests.
@Suite struct RetryBudgetTests {
    func budget(_ limit: Int) -> RetryBudgetExpectation {
        var route = RetryExpectation(attempts: 1, source: "test")
        route.retryOn = RetryConditions(declared: ["503"], statuses: [503], retriesTimeouts: false)
        return RetryBudgetExpectation(maxRetries: limit, route: route, status: 503, source: "test")
    }

    @Test func aPeakWithinTheLimitPassesAndOneAboveFails() {
        var result = LoadResult()
        result.upstreamPeakRetriesInFlight = 3
        #expect(RetryBudgetCheck.evaluate(budget(3), result: result).passed)
        let over = RetryBudgetCheck.evaluate(budget(2), result: result)
        #expect(!over.passed && over.reason?.contains("3 retries in flight at once, more than the limit of 2") == true)
        #expect(budget(3).concurrency == 13 && budget(100).concurrency == 400 && budget(250).concurrency == 1000)
    }

    @Test func noRetrySeenIsAFailureThatSaysWhy() {
        var answered = LoadResult()
        answered.attemptsSeen = [1: 39]
        answered.failed = 39
        let none = RetryBudgetCheck.evaluate(budget(3), result: answered)
        #expect(none.decided && !none.passed && none.reason?.contains("does not retry 503") == true)
    }

    /// Nothing from the echo at all (no attempt stamp): the upstream was not seen, so no verdict on its retries.
    @Test func noAnswerFromTheEchoIsUndecided() {
        let none = RetryBudgetCheck.evaluate(budget(3), result: LoadResult())
        #expect(!none.decided && !none.passed && none.reason?.contains("the upstream's view is unknown") == true, "\(none)")
    }
}
