import Foundation
import MeshprobeIdentity
import MeshprobeYAML
import Testing
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
        #expect(e.source.hasSuffix(":4 expect.retries"))
        #expect(policy.routes.isEmpty)
    }

    /// Envoy's gRPC conditions are kept as the statuses they retry: a gRPC run injects UNAVAILABLE when it is retried
    /// (Istio's default retries it), else the lowest retried code, and NOT_FOUND as the status nothing retries. HTTP
    /// conditions give a gRPC run nothing to inject (a gRPC answer's :status is 200).
    @Test func gRPCConditionsAreTheStatusesAGRPCRunInjects() throws {
        let both = try RetryConditions.parse(["5xx", "resource-exhausted", "internal", "unavailable"])
        #expect(both.grpcStatuses == [.resourceExhausted, .internal, .unavailable] && both.statuses.contains(503))
        #expect(both.injected(retried: true, grpc: true) == ResponseCode.grpc(.unavailable))
        #expect(both.injected(retried: true, grpc: false) == 503)
        #expect(both.injected(retried: false, grpc: true) == ResponseCode.grpc(.notFound))
        #expect(both.injected(retried: false, grpc: false) == 404)
        #expect(try RetryConditions.parse(["internal", "deadline-exceeded"]).injected(retried: true, grpc: true) == ResponseCode.grpc(.deadlineExceeded))
        #expect(try RetryConditions.parse(["5xx", "reset"]).injected(retried: true, grpc: true) == nil)
        #expect(RetryConditions.istioDefault.injected(retried: true, grpc: true) == ResponseCode.grpc(.unavailable))
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

    /// A route that retries only gRPC conditions shows the limit with gRPC calls: accepted (the trial's policy was refused).
    @Test func maxRetriesBesideRetriesOfAGRPCConditionIsAccepted() throws {
        let path = try writeTemporaryYAML("""
            policy: meshprobe.policy/v1
            target: grpc://127.0.0.1:1/meshprobe.echo.v1.Echo/Call
            expect:
              retries: {attempts: 2, retryOn: unavailable}
              maxRetries: 2
            """)
        defer { removeTemporary(path) }
        let policy = try Policy.load(path: path, environment: [:])
        #expect(policy.maxRetries.first?.limit == 2)
        #expect(policy.retries.first?.retryOn.injected(retried: true, grpc: true) == ResponseCode.grpc(.unavailable))
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

    /// What one injected status leaves unexercised of a declared list: the other statuses, as ranges, and the
    /// conditions nothing the echo injects can trigger.
    @Test func aListNamesWhatTheInjectedStatusLeavesOut() throws {
        let list = try RetryConditions.parse(["5xx", "retriable-4xx", "connect-failure", "refused-stream"])
        #expect(list.retryableStatus == 503)
        #expect(list.otherStatuses(than: 503) == "409, 500-502, 504-599")
        #expect(list.unexercisedConditions == ["connect-failure", "refused-stream"])
        let one = try RetryConditions.parse(["503"])
        #expect(one.otherStatuses(than: 503).isEmpty && one.unexercisedConditions.isEmpty)
        #expect(try RetryConditions.parse(["gateway-error"]).otherStatuses(than: 503) == "502, 504")
        #expect(one.nonRetriedServerErrors == [500, 502, 504] && list.nonRetriedServerErrors.isEmpty)
        #expect(try RetryConditions.parse(["gateway-error"]).nonRetriedServerErrors == [500])
    }

    /// `retry.linkerd.io/grpc` (Linkerd 2.16's retries reference): the gRPC statuses a Service's calls are retried on,
    /// beside or without HTTP statuses; a status Linkerd does not retry on is refused, naming the line.
    @Test func linkerdGRPCRetriesAreCheckedToo() throws {
        let imported = try importManifests("""
            kind: Service
            apiVersion: v1
            metadata:
              annotations: {retry.linkerd.io/grpc: "unavailable, resource-exhausted", retry.linkerd.io/limit: "3"}
              name: reviews
            """)
        let e = try #require(imported.retries.first)
        #expect(e.attempts == 3 && e.retryOn.statuses.isEmpty && e.retryOn.grpcStatuses == [.unavailable, .resourceExhausted], "\(e)")
        #expect(e.retryOn.injected(retried: true, grpc: true) == ResponseCode.grpc(.unavailable))
        #expect(e.summary == "3 retries on unavailable,resource-exhausted", "\(e.summary)")
        // An HTTP run has no status to inject: not exercised, as the check says.
        #expect(e.retryOn.injected(retried: true, grpc: false) == nil)
        #expect(!imported.notes.contains { $0.contains("retry.linkerd.io/grpc is not checked") }, "\(imported.notes)")
        let both = try importManifests("""
            {kind: Service, apiVersion: v1, metadata: {name: reviews, annotations: {retry.linkerd.io/http: "503", retry.linkerd.io/grpc: cancelled}}}
            """)
        #expect(both.retries.first?.retryOn.statuses == [503] && both.retries.first?.retryOn.grpcStatuses == [.cancelled])
        do {
            _ = try importManifests("""
                kind: Service
                apiVersion: v1
                metadata: {name: reviews, annotations: {retry.linkerd.io/grpc: "unavailable,not-found"}}
                """)
            Issue.record("an unknown gRPC status was accepted")
        } catch {
            #expect("\(error)".contains(":3:") && "\(error)".contains("unknown gRPC status 'not-found'"), "\(error)")
        }
    }

    @Test func linkerdLimitDefaultsToOneRetry() throws {
        let imported = try importManifests("{kind: Service, apiVersion: v1, metadata: {name: reviews, annotations: {retry.linkerd.io/http: 5xx}}}")
        let e = try #require(imported.retries.first)
        #expect(e.attempts == 1 && e.timeout == nil && e.perTryTimeout == nil)
    }
}
