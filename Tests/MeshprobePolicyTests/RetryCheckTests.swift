import Foundation
import MeshprobeIdentity
import MeshprobeYAML
import Testing
@testable import MeshprobeLoad
@testable import MeshprobePolicy

@Suite struct RetryPolicyTests {
    @Test func readsRetriesWithTheirConditionsAndTimeouts() throws {
        let path = try writeTemporaryYAML("""
            policy: meshprobe.policy/v1
            target: http://127.0.0.1:8080/reviews
            expect:
              retries: {attempts: 2, perTryTimeout: 200ms, retryOn: "5xx,reset", timeout: 1s, requests: 30}
            """)
        defer { removeTemporary(path) }
        let policy = try Policy.load(path: path, environment: [:])
        let e = try #require(policy.retries.first)
        #expect(e.attempts == 2 && e.perTryTimeout == 0.2 && e.timeout == 1 && e.requests == 30)
        #expect(e.retryOn.declared == ["5xx", "reset"] && e.retryOn.retriesTimeouts && e.retryOn.statuses.contains(503))
        #expect(e.source.hasSuffix(":4"))
        #expect(policy.routes.isEmpty)
    }

    @Test func retryOnMayBeAListAndDefaultsToIstiosConditions() throws {
        let path = try writeTemporaryYAML("""
            target: http://127.0.0.1:8080/
            expect:
              retries:
                attempts: 1
                retryOn: [gateway-error, "409"]
              split: {v1: 100}
            """)
        defer { removeTemporary(path) }
        let e = try #require(try Policy.load(path: path, environment: [:]).retries.first)
        #expect(e.retryOn.statuses == [409, 502, 503, 504])
        let plain = try writeTemporaryYAML("target: http://127.0.0.1:8080/\nexpect:\n  retries: {attempts: 3}\n")
        defer { removeTemporary(plain) }
        #expect(try Policy.load(path: plain, environment: [:]).retries.first?.retryOn == .istioDefault)
    }

    @Test(arguments: [
        ("expect:\n  retries: {attempts: 11}\n", 3, "expect.retries.attempts", "at most 10"),
        ("expect:\n  retries: {attempts: -1}\n", 3, "expect.retries.attempts", "at least 0"),
        ("expect:\n  retries: {attempts: 2, perTryTimeout: 0s}\n", 3, "expect.retries.perTryTimeout", "positive duration"),
        ("expect:\n  retries: {timeout: 61s}\n", 3, "expect.retries.timeout", "at most 60s"),
        ("expect:\n  retries: {attempts: 2, retryOn: \"5xx,sometimes\"}\n", 3, "expect.retries.retryOn", "unknown retry condition 'sometimes'"),
        ("expect:\n  retries: {attempts: 2, retryOn: \"600\"}\n", 3, "expect.retries.retryOn", "unknown retry condition '600'"),
        ("expect:\n  retries: {attempts: 2, retryOn: \"\"}\n", 3, "expect.retries.retryOn", "names no condition"),
        ("expect:\n  retries: {perTryTimeout: 1s}\n", 3, "expect.retries", "needs attempts"),
        ("expect:\n  retries: {requests: 10}\n", 3, "expect.retries", "give attempts"),
        ("expect:\n  retries: {attempts: 1, requests: 1001}\n", 3, "expect.retries.requests", "at most 1000"),
        ("expect:\n  retries: {attempts: 1, tries: 2}\n", 3, "expect.retries.tries", "unknown field"),
    ])
    func badRetriesNameTheLineAndField(_ body: String, _ line: Int, _ field: String, _ words: String) throws {
        let e = try inputError(policy: "target: http://127.0.0.1:1/\n" + body)
        #expect(e?.line == line && e?.field == field && e?.message.contains(words) == true, "\(String(describing: e))")
    }
}

@Suite struct RetryConditionTests {
    @Test func envoyConditionsSayWhichStatusesAndWhetherTimeoutsAreRetried() throws {
        let fiveXX = try RetryConditions.parse(["5xx"])
        #expect(fiveXX.retryableStatus == 503 && fiveXX.nonRetryableStatus == 404 && fiveXX.retriesTimeouts)
        let gateway = try RetryConditions.parse(["gateway-error"])
        #expect(gateway.statuses == [502, 503, 504] && gateway.retriesTimeouts)
        let conflict = try RetryConditions.parse(["retriable-4xx"])
        #expect(conflict.retryableStatus == 409 && !conflict.retriesTimeouts)
        let connectOnly = try RetryConditions.parse(["connect-failure", "refused-stream"])
        #expect(connectOnly.retryableStatus == nil && !connectOnly.retriesTimeouts)
        let range = try RetryConditions.parse(["500-502", "404"])
        #expect(range.statuses == [404, 500, 501, 502] && range.retryableStatus == 500 && range.nonRetryableStatus == 400)
        #expect(try RetryConditions.parse(["404"]).retryableStatus == 404)
        #expect(RetryConditions.istioDefault.retryableStatus == 503 && !RetryConditions.istioDefault.retriesTimeouts)
        #expect(throws: RetryConditionError.self) { try RetryConditions.parse(["504-500"]) }
    }

    @Test func theExpectedEndIsThePerTryTimeoutsAddedUpUnlessTheRouteTimeoutComesFirst() throws {
        var e = RetryExpectation(attempts: 2, perTryTimeout: 0.2, source: "test")
        e.retryOn = try RetryConditions.parse(["5xx"])
        #expect(e.expectedEnd?.seconds == 0.2 * 3 && e.expectedEnd?.by == .perTry)
        #expect(e.injectedDelay == 0.4)
        e.timeout = 0.5
        #expect(e.expectedEnd?.seconds == 0.5 && e.expectedEnd?.by == .route)
        // Istio's default conditions do not retry a try that timed out: one try, then the proxy's timeout reply.
        e.retryOn = .istioDefault
        #expect(e.triesOnTimeout == 1 && e.expectedEnd?.seconds == 0.2)
        let routeOnly = RetryExpectation(attempts: nil, timeout: 3, source: "test")
        #expect(routeOnly.expectedEnd?.seconds == 3 && routeOnly.expectedEnd?.by == .route && routeOnly.injectedDelay == 4)
    }

    @Test func tolerancesAreAsStated() {
        #expect(RetryTolerance.timing(expected: 0.2) == 0.05)
        #expect(abs(RetryTolerance.timing(expected: 2) - 0.2) < 1e-12)
        #expect(abs(RetryTolerance.backoff(retries: 2) - 0.1) < 1e-12)   // 25 ms + 75 ms
        #expect(abs(RetryTolerance.backoff(retries: 5) - (0.025 + 0.075 + 0.175 + 0.25 + 0.25)) < 1e-12)
        #expect(RetryTolerance.backoff(retries: 0) == 0)
    }
}

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
}

@Suite struct RetryImportTests {
    @Test func virtualServiceRetriesAndTimeoutsBecomeExpectationsForTheirRoute() throws {
        let imported = try importManifests("""
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: ratings}
            spec:
              hosts: [ratings]
              http:
              - name: beta
                match:
                - headers: {x-group: {exact: beta}}
                route:
                - destination: {host: ratings}
                timeout: 1s
                retries:
                  attempts: 2
                  perTryTimeout: 200ms
                  retryOn: gateway-error,connect-failure
                  retryRemoteLocalities: true
              - name: timeout only
                route:
                - destination: {host: ratings}
                timeout: 3s
                fault: {abort: {httpStatus: 500, percentage: {value: 1}}}
            """)
        #expect(imported.retries.count == 2)
        let beta = imported.retries[0]
        #expect(beta.attempts == 2 && beta.perTryTimeout == 0.2 && beta.timeout == 1)
        #expect(beta.retryOn.statuses == [502, 503, 504] && beta.retryOn.retriesTimeouts)
        #expect(beta.conditions.map(\.description) == imported.routes[0].conditions.map(\.description) && !beta.conditions.isEmpty)
        #expect(beta.source.contains("VirtualService ratings beta"))
        let timeoutOnly = imported.retries[1]
        #expect(timeoutOnly.attempts == nil && timeoutOnly.timeout == 3 && timeoutOnly.conditions.isEmpty)
        // What is not checked is still said; retries and timeouts are no longer in the notes.
        #expect(imported.notes.contains { $0.contains("beta: retries.retryRemoteLocalities is not checked") }, "\(imported.notes)")
        #expect(imported.notes.contains { $0.contains("timeout only: fault is not checked") })
        #expect(!imported.notes.contains { $0.contains("retries is not checked") || $0.contains("timeout is not checked") })
    }

    @Test func istioRetriesOutOfRangeAreRefusedWithTheirLine() throws {
        let e = try inputError(manifests: """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: ratings}
            spec:
              http:
              - route: [{destination: {host: ratings}}]
                retries: {attempts: 25}
            """)
        #expect(e?.line == 7 && e?.field.hasSuffix("attempts") == true && e?.message.contains("at most 10") == true, "\(String(describing: e))")
    }

    @Test func linkerdServiceAnnotationsMapToRetriesAndTimeouts() throws {
        let imported = try importManifests("""
            kind: Service
            apiVersion: v1
            metadata:
              annotations: {retry.linkerd.io/http: "500-504,gateway-error", retry.linkerd.io/limit: "2", retry.linkerd.io/timeout: 300ms,
                            timeout.linkerd.io/request: 2s, timeout.linkerd.io/response: 1s}
              name: reviews
            ---
            {kind: Service, apiVersion: v1, metadata: {name: ratings, annotations: {retry.linkerd.io/limit: "3"}}}
            """)
        #expect(imported.retries.count == 1)
        let e = try #require(imported.retries.first)
        #expect(e.attempts == 2 && e.perTryTimeout == 0.3 && e.timeout == 2)
        // Linkerd's retry timeout cancels a try and retries it: timeouts are retried.
        #expect(e.retryOn.statuses == [500, 501, 502, 503, 504] && e.retryOn.retriesTimeouts)
        #expect(abs((e.expectedEnd?.seconds ?? 0) - 0.9) < 1e-9 && e.expectedEnd?.by == .perTry)
        #expect(imported.notes.contains { $0.contains("timeout.linkerd.io/response is not checked") }, "\(imported.notes)")
        #expect(imported.notes.contains { $0.contains("Service ratings: retry.linkerd.io/limit and retry.linkerd.io/timeout without retry.linkerd.io/http") })
    }

    @Test func linkerdLimitDefaultsToOneRetry() throws {
        let imported = try importManifests("{kind: Service, apiVersion: v1, metadata: {name: reviews, annotations: {retry.linkerd.io/http: 5xx}}}")
        let e = try #require(imported.retries.first)
        #expect(e.attempts == 1 && e.timeout == nil && e.perTryTimeout == nil)
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

    @Test func maxRetriesNeedsARouteThatRetries() throws {
        let path = try writeTemporaryYAML("policy: meshprobe.policy/v1\ntarget: http://127.0.0.1:1/\nexpect:\n  split: {v1: 100}\n  maxRetries: 3\n")
        defer { removeTemporary(path) }
        #expect {
            try Policy.load(path: path, environment: [:])
        } throws: { error in
            guard let e = error as? YAMLInputError else { return false }
            return e.line == 5 && e.field == "expect.maxRetries" && e.message.contains("needs retries")
        }
    }
}
