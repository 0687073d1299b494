import Foundation
import MeshprobeLab
import MeshprobePolicy
import Testing

extension EndToEnd {
    /// The retry and timeout procedure against HAProxy with L7 retries (`retries N`, `retry-on 503 response-timeout`,
    /// `timeout server` as the per-try or route timeout) in front of one echo workload, which counts tries per
    /// `x-request-id` and holds or fails requests as their query strings ask. Both directions: a proxy as declared
    /// passes; one that retries less or more, or times out later, fails with the evidence.
    @Suite(.timeLimit(.minutes(3)), .tags(.timing)) struct RetryTests {
        /// Runs `meshprobe verify` with `expect.retries: {retries}` through HAProxy configured by `proxy`.
        func verifyRetries(_ retries: String, proxy: (inout HAProxyConfig) -> Void) async throws -> (ProcessOutput, [[String: Any]]) {
            try await verifyThroughHAProxy(expect: "  retries: \(retries)", proxy: proxy)
        }

        func verdict(_ verdicts: [[String: Any]], _ words: String) throws -> (passed: Bool, reason: String, observed: [String: Double]) {
            let v = try #require(verdicts.first { ($0["name"] as? String)?.contains(words) == true }, "no verdict with '\(words)' in \(verdicts)")
            let observed = (v["evidence"] as? [String: Any])?["observed"] as? [String: Double] ?? [:]
            return (v["passed"] as? Bool == true, v["reason"] as? String ?? "", observed)
        }

        static let declared = RetryExpectation.lab(attempts: 2, perTryTimeout: 0.2)

        @Test func aProxyThatRetriesAsDeclaredPasses() async throws {
            let (out, verdicts) = try await verifyRetries("{attempts: 2, perTryTimeout: 200ms, retryOn: 5xx, requests: 20}") {
                $0.standIn(for: Self.declared)
            }
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            #expect(verdicts.count == 3 && verdicts.allSatisfy { $0["kind"] as? String == "retries" })
            let tries = try verdict(verdicts, "(503) is tried 3 times")
            #expect(tries.passed && tries.observed["tries_3"] == 20, "\(tries)")
            let notRetried = try verdict(verdicts, "(404) is tried once")
            #expect(notRetried.passed && notRetried.observed["tries_1"] == 20)
            // Three tries of 200 ms each, every one cut by HAProxy's `timeout server`: its 504 page, at about 600 ms.
            let timing = try verdict(verdicts, "a slow request ends after 3 tries")
            #expect(timing.passed && timing.observed["proxy_timeouts"] == 20, "\(timing)")
            // A timer ends no earlier than it is set for; how much later depends on the machine, so only the floor is checked.
            #expect((timing.observed["p50_ms"] ?? 0) >= 580, "\(timing)")
            // One status stands for the 5xx: the run says which it injected and which it did not.
            #expect(out.stderr.contains("of the retried statuses, 503 is injected: 500-502, 504-599 are not exercised"), "\(out.stderr)")
        }

        @Test func aProxyThatRetriesOnceWhereTwoAreDeclaredFailsWithTheTriesSeen() async throws {
            let (out, verdicts) = try await verifyRetries("{attempts: 2, perTryTimeout: 200ms, retryOn: 5xx, requests: 20}") {
                $0.standIn(for: Self.declared)
                $0.retries = 1
            }
            #expect(out.status == 1, "\(out.stdout)\(out.stderr)")
            let tries = try verdict(verdicts, "(503) is tried 3 times")
            #expect(!tries.passed && tries.observed["tries_2"] == 20, "\(tries)")
            #expect(tries.reason.contains("20 of 20 requests were tried fewer than 3 times"), "\(tries.reason)")
            let timing = try verdict(verdicts, "a slow request ends after 3 tries")
            #expect(!timing.passed && timing.reason.contains("earlier than"), "\(timing)")
            #expect(out.stdout.contains("FAIL  retries"), "\(out.stdout)")
        }

        /// Retries sent to other endpoints (HAProxy's redispatch, as Envoy's previous_hosts predicate): each echo counts
        /// the tries it received, fewer than were made, so a proxy that retries as declared is not failed for it.
        @Test func retriesSpreadOverEndpointsAreUndecidedNotFailed() async throws {
            let echoes = [try await startEcho(version: "v1", tls: nil), try await startEcho(version: "v2", tls: nil),
                          try await startEcho(version: "v3", tls: nil)]
            defer { for echo in echoes { Task { await echo.close() } } }
            let (out, verdicts) = try await verifyThroughHAProxy(servers: echoes.enumerated().map { ("s\($0.offset)", $0.element.port, 100) },
                                                                 expect: "  retries: {attempts: 2, retryOn: \"503\", requests: 20}") {
                $0.standIn(for: .lab(attempts: 2, perTryTimeout: nil))
                $0.retryOn = ["503"]
                $0.balance = "roundrobin"
                $0.redispatchEveryRetry = true
            }
            #expect(out.status == 3, "\(out.stdout)\(out.stderr)")
            let tries = try verdict(verdicts, "(503) is tried 3 times")
            #expect(!tries.passed && tries.observed["endpoints"] == 3, "\(tries)")
            #expect(tries.reason.contains("they came from 3 endpoints") && tries.reason.contains("each echo counts only the tries it received"), "\(tries.reason)")
            // Two endpoints, two retries alternating: the last echo saw 2 of the 3 tries, what a declared single retry
            // would show. Not a PASS (the second trial's finding): UNDECIDED.
            let (more, moreVerdicts) = try await verifyThroughHAProxy(servers: [("s0", echoes[0].port, 100), ("s1", echoes[1].port, 100)],
                                                                      expect: "  retries: {attempts: 1, retryOn: \"503\", requests: 20}") {
                $0.standIn(for: .lab(attempts: 2, perTryTimeout: nil))
                $0.retryOn = ["503"]
                $0.balance = "roundrobin"
                $0.redispatchEveryRetry = true
            }
            #expect(more.status == 3, "\(more.stdout)\(more.stderr)")
            let twice = try verdict(moreVerdicts, "(503) is tried twice")
            #expect(!twice.passed && twice.reason.contains("each count is a lower bound"), "\(twice)")
        }

        /// A Gateway API HTTPRoute rule's `retry` and `timeouts.request`, imported from the manifest and checked on the
        /// rule's requests through HAProxy standing in for the implementation.
        @Test func anHTTPRouteRulesRetryAndRequestTimeoutAreChecked() async throws {
            let route = """
                apiVersion: gateway.networking.k8s.io/v1
                kind: HTTPRoute
                metadata: {name: reviews}
                spec:
                  rules:
                  - matches: [{path: {type: PathPrefix, value: /reviews}}]
                    backendRefs: [{name: v1}]
                    retry: {attempts: 2, codes: [503]}
                    timeouts: {request: 300ms}
                """
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            let (out, verdicts) = try await verifyThroughHAProxy(servers: [("v1", echo.port, 100)], expect: "  recognise: version",
                                                                 manifests: ["route.yaml": route]) {
                $0.standIn(for: .lab(attempts: 2, perTryTimeout: nil))
                $0.retryOn = ["503"]
                $0.serverTimeout = 0.3
            }
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            let tries = try verdict(verdicts, "(503) is tried 3 times")
            #expect(tries.passed && tries.observed["tries_3"] == 20, "\(tries)")
            #expect(verdicts.contains { ($0["name"] as? String)?.hasPrefix("retries (HTTPRoute reviews rules[0])") == true }, "\(verdicts)")
            #expect(verdicts.contains { $0["kind"] as? String == "timeout" && $0["passed"] as? Bool == true }, "\(out.stdout)")
        }

        /// `retry` with `timeouts.backendRequest`: whether a cut try is retried is the implementation's choice, so a
        /// slow request must end between one try and `timeouts.request`. HAProxy cutting each try at 300 ms passes;
        /// one with no timeout at all lets the echo answer after holding it, and fails.
        @Test func anHTTPRouteRulesBackendRequestWithRetryIsCheckedAsARange() async throws {
            let route = """
                apiVersion: gateway.networking.k8s.io/v1
                kind: HTTPRoute
                metadata: {name: reviews}
                spec:
                  rules:
                  - matches: [{path: {type: PathPrefix, value: /reviews}}]
                    backendRefs: [{name: v1}]
                    retry: {attempts: 1, codes: [503]}
                    timeouts: {request: 1s, backendRequest: 300ms}
                """
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            for (serverTimeout, passes) in [(0.3, true), (10.0, false)] {
                let (out, verdicts) = try await verifyThroughHAProxy(servers: [("v1", echo.port, 100)], expect: "  recognise: version",
                                                                     manifests: ["route.yaml": route]) {
                    $0.retries = 1
                    $0.retryOn = ["503"]
                    $0.serverTimeout = serverTimeout
                }
                let timing = try verdict(verdicts, "a slow request ends between one try (300 ms) and the route timeout (1000 ms)")
                #expect(timing.passed == passes, "timeout server \(serverTimeout): \(timing)\n\(out.stdout)")
                if !passes { #expect(timing.reason.contains("answered by the application"), "\(timing)") }
            }
        }

        @Test func aProxyThatRetriesMoreThanDeclaredFails() async throws {
            let (out, verdicts) = try await verifyRetries("{attempts: 1, retryOn: \"503\", requests: 10}") {
                $0.standIn(for: .lab(attempts: 1, perTryTimeout: nil))
                $0.retries = 3
            }
            #expect(out.status == 1, "\(out.stdout)\(out.stderr)")
            let tries = try verdict(verdicts, "(503) is tried twice")
            #expect(!tries.passed && tries.observed["tries_4"] == 10 && tries.reason.contains("more than declared"), "\(tries)")
            // It retries every 5xx where 503 alone is declared: a 500 is tried 4 times, not once.
            let serverError = try verdict(verdicts, "a server error not retried (500) is tried once")
            #expect(!serverError.passed && serverError.observed["tries_4"] == 10, "\(serverError)")
        }

        @Test func aRouteTimeoutAsDeclaredPasses() async throws {
            let (out, verdicts) = try await verifyRetries("{timeout: 300ms, requests: 10}") { $0.serverTimeout = 0.3 }
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            #expect(verdicts.count == 1 && verdicts[0]["kind"] as? String == "timeout")
            let timing = try verdict(verdicts, "the route timeout ends a slow request at 300 ms")
            #expect(timing.passed && timing.observed["proxy_timeouts"] == 10 && timing.observed["application_replies"] == 0, "\(timing)")
        }

        @Test func aLooserProxyTimeoutFails() async throws {
            // The echo holds every request 450 ms: HAProxy cuts it at 400 ms (later than 300 + 50) ...
            let (late, lateVerdicts) = try await verifyRetries("{timeout: 300ms, requests: 10}") { $0.serverTimeout = 0.4 }
            #expect(late.status == 1, "\(late.stdout)\(late.stderr)")
            let cut = try verdict(lateVerdicts, "the route timeout")
            #expect(!cut.passed && cut.reason.contains("later than the route timeout (300 ms) allows"), "\(cut)")
            #expect((cut.observed["p50_ms"] ?? 0) >= 380 && cut.observed["application_replies"] == 0, "\(cut)")
            // ... or not at all: the application answers.
            let (never, neverVerdicts) = try await verifyRetries("{timeout: 300ms, requests: 10}") { $0.serverTimeout = 2 }
            #expect(never.status == 1, "\(never.stdout)\(never.stderr)")
            let answered = try verdict(neverVerdicts, "the route timeout")
            #expect(!answered.passed && answered.observed["application_replies"] == 10 && answered.reason.contains("answered by the application"), "\(answered)")
        }

        /// maxRetries (concurrent retries): HAProxy has no such limit, so a declared 2 fails with the retries the echo saw
        /// in flight at once. (No lab proxy limits concurrent retries: the passing direction is a unit test on results.)
        @Test func aProxyWithoutAConcurrentRetryLimitFailsMaxRetries() async throws {
            let (out, verdicts) = try await verifyThroughHAProxy(expect: "  retries: {attempts: 1, retryOn: \"503\", requests: 20}\n  maxRetries: 2") {
                $0.standIn(for: RetryExpectation.lab(attempts: 1, perTryTimeout: nil))
            }
            #expect(out.status == 1, "\(out.stdout)\(out.stderr)")
            let budget = try verdict(verdicts, "retries in flight")
            #expect(!budget.passed && (budget.observed["peak_retries_in_flight"] ?? 0) > 2, "\(budget)")
            #expect(budget.reason.contains("more than the limit of 2"), "\(budget)")
            let tries = try verdict(verdicts, "(503) is tried twice")
            #expect(tries.passed, "the route's own retries are as declared: \(tries)")
        }
    }
}


extension RetryExpectation {
    /// A declared policy for the lab: `attempts` retries on 5xx, with a per-try timeout.
    static func lab(attempts: Int, perTryTimeout: Double?) -> RetryExpectation {
        var e = RetryExpectation(attempts: attempts, perTryTimeout: perTryTimeout, source: "test")
        e.retryOn = RetryConditions(declared: ["5xx"], statuses: Set(500...599), retriesTimeouts: true)
        return e
    }
}
