import Foundation
import MeshprobePolicy
import Testing

extension EndToEnd {
    /// Resilience verdicts against HAProxy in front of echo workloads (or a server that is not the echo), tried as a new
    /// user would: a verdict is PASS, FAIL or UNDECIDED, never confidently wrong, and it names its cause.
    @Suite(.timeLimit(.minutes(3))) struct ResilienceVerdictTests {
        func verdict(_ verdicts: [[String: Any]], named words: String) -> [String: Any]? {
            verdicts.first { ($0["name"] as? String)?.contains(words) == true }
        }

        func evidence(_ v: [String: Any]?) -> [String: Any] { v?["evidence"] as? [String: Any] ?? [:] }

        func observed(_ v: [String: Any]?) -> [String: Double] { evidence(v)["observed"] as? [String: Double] ?? [:] }

        func isUndecided(_ v: [String: Any]?) -> Bool { v?["decided"] as? Bool == false && v?["passed"] as? Bool == false }

        /// A port nothing listens on.
        func closedPort() throws -> Int { try freePort() }

        /// A plain HTTP/1.1 server that is not the echo (no stamps) and holds every request 100 ms on its own.
        func startSlowPlainServer() async throws -> (BackgroundProcess, Int) {
            let port = try freePort()
            let script = """
                import sys, time
                from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
                class H(BaseHTTPRequestHandler):
                    protocol_version = 'HTTP/1.1'
                    def do_GET(self):
                        time.sleep(0.1)
                        body = b'ok'
                        self.send_response(200)
                        self.send_header('content-length', str(len(body)))
                        self.end_headers()
                        self.wfile.write(body)
                    def log_message(self, *a): pass
                ThreadingHTTPServer.daemon_threads = True
                ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
                """
            let python = try #require(which("python3"))
            return (try await BackgroundProcess(python, ["-c", script, String(port)], waitForPort: port), port)
        }

        // MARK: 0 successes, the wrong cause, silent causes

        /// The only endpoint is down: HAProxy answers every request with its "No server is available" 503, which is
        /// also its overflow reply. No limit can be seen: every check is undecided and names the replies, none passes.
        @Test func theOnlyEndpointDownIsNoEndpointNotOverflow() async throws {
            let (out, verdicts) = try await verifyThroughHAProxy(
                servers: [("v1", try closedPort(), 100)],
                expect: "  circuitBreaker: {maxRequests: 6, maxPending: 1, hold: 100ms, requests: 30}") {
                $0.serverMaxConn = 6
                $0.queueTimeout = 0.02
            }
            #expect(out.status == 3, "\(out.stdout)\(out.stderr)")
            #expect(verdicts.count == 3 && verdicts.allSatisfy(isUndecided), "\(out.stdout)")
            #expect(!out.stdout.contains("PASS") && !out.stdout.contains("tighter than"), "\(out.stdout)")
            for v in verdicts {
                let reason = v["reason"] as? String ?? ""
                #expect(reason.contains("no_server_available (haproxy)") && reason.contains("no request succeeded"), "\(v)")
            }
            #expect(out.stdout.contains("no endpoint answered"), "\(out.stdout)")
        }

        /// Nothing listens at the target: each procedure check is undecided and says connect_refused with its count,
        /// on the terminal (not only in the JSON).
        @Test func aRefusedConnectionIsNamedInTheVerdict() async throws {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-refused-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            let policy = dir.appendingPathComponent("policy.yaml")
            try """
                policy: meshprobe.policy/v1
                target: http://127.0.0.1:\(try closedPort())/reviews
                expect:
                  circuitBreaker: {maxRequests: 2, maxPending: 1, requests: 20}
                  maxRequestsPerConnection: 5
                """.write(to: policy, atomically: true, encoding: .utf8)
            let out = try await run(meshprobeBinary, ["verify", policy.path, "--quiet"], timeout: 60)
            #expect(out.status == 3, "\(out.stdout)\(out.stderr)")
            #expect(!out.stdout.contains("FAIL"), "\(out.stdout)")
            let undecided = out.stdout.split(separator: "\n").filter { $0.hasPrefix("UNDECIDED  ") }
            #expect(undecided.count == 4, "\(out.stdout)")
            #expect(out.stdout.contains("connect_refused: 20 (127.0.0.1:"), "\(out.stdout)")
            #expect(out.stdout.components(separatedBy: "connect_refused: ").count - 1 >= 4, "every verdict names the cause: \(out.stdout)")
        }

        // MARK: service-wide limits

        /// Two endpoints, HAProxy admitting 2 to each (4 at once): a declared service-wide limit of 2 (Envoy's
        /// connection pool covers every endpoint) fails on the requests in flight over both; the same 2 declared per
        /// endpoint passes. The verdict says which scope it checked.
        @Test(arguments: ["service", "endpoint"])
        func aServiceWideLimitIsCheckedOverAllEndpoints(scope: String) async throws {
            let v1 = try await startEcho(version: "v1", tls: nil)
            let v2 = try await startEcho(version: "v2", tls: nil)
            defer { Task { await v1.close(); await v2.close() } }
            let (out, verdicts) = try await verifyThroughHAProxy(
                servers: [("v1", v1.port, 100), ("v2", v2.port, 100)],
                expect: "  circuitBreaker: {maxRequests: 2, maxPending: 1, hold: 100ms, requests: 120, scope: \(scope)}") {
                $0.serverMaxConn = 2
                $0.queueTimeout = 0.02
            }
            let inFlight = try #require(verdict(verdicts, named: "in flight"), "\(out.stdout)")
            let e = evidence(inFlight)
            #expect((e["requests"] as? Int ?? 0) >= 240, "the requests the verdict judged: \(e)")
            #expect(observed(inFlight)["endpoints"] == 2, "\(e)")
            if scope == "service" {
                #expect(out.status == 1, "\(out.stdout)\(out.stderr)")
                #expect(inFlight["passed"] as? Bool == false, "\(out.stdout)")
                #expect((observed(inFlight)["peak_in_flight_service"] ?? 0) >= 3, "\(e)")
                #expect((inFlight["reason"] as? String)?.contains("over its 2 endpoints, more than the limit of 2") == true, "\(inFlight)")
                #expect(e["scope"] as? String == "service (all endpoints together)")
                #expect(out.stdout.contains("checked at the scope of the service (all endpoints together)"), "\(out.stdout)")
            } else {
                #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
                #expect(inFlight["passed"] as? Bool == true && (observed(inFlight)["peak_in_flight_per_endpoint"] ?? 0) == 2, "\(e)")
                #expect(e["scope"] as? String == "endpoint (each on its own)")
            }
        }

        // MARK: manifest scope

        /// One file with the reviews and ratings VirtualServices and DestinationRules, a policy for reviews: only
        /// reviews' route is checked (ratings' 50/50 would fail against this proxy) and ratings' manifests are listed as
        /// not checked; with --routes-only the reviews DestinationRule's connection pool is listed as not checked either.
        @Test func onlyTheTargetServicesManifestsAreCheckedAndRoutesOnlySkipsProcedures() async throws {
            let v1 = try await startEcho(version: "v1", tls: nil)
            defer { Task { await v1.close() } }
            let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Fixtures/istio/reviews-and-ratings.yaml")
            let manifests = try String(contentsOf: fixture, encoding: .utf8)
            let (out, verdicts) = try await verifyThroughHAProxy(
                servers: [("v1", v1.port, 100)], policyLines: "service: reviews.bookinfo",
                expect: "  recognise: version\n  falseFailRate: 0.0001", manifests: ["mesh.yaml": manifests], arguments: ["--routes-only"]) { _ in }
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            #expect(verdicts.count == 1 && verdicts.first?["kind"] as? String == "split" && verdicts.first?["passed"] as? Bool == true,
                    "\(out.stdout)")
            #expect(out.stderr.contains("not checked: VirtualService ratings: host ratings.bookinfo.svc.cluster.local does not match the target reviews.bookinfo"), "\(out.stderr)")
            #expect(out.stderr.contains("not checked: DestinationRule ratings"), "\(out.stderr)")
            #expect(out.stderr.contains("not checked: DestinationRule reviews: trafficPolicy.loadBalancer"), "\(out.stderr)")
            #expect(out.stderr.contains("not checked (--routes-only):") && out.stderr.contains("maxRequestsPerConnection"), "\(out.stderr)")
        }

        // MARK: misconfiguration, evidence

        /// A server that is not the echo: requests per connection cannot be seen (no stamp), so the verdict is undecided
        /// with that reason, not FAIL; a circuit breaker declared with `hold: 0s` (the server holds requests on its
        /// own) runs without the in-flight check and passes when the proxy limits as declared.
        @Test func aServerThatIsNotTheEchoLeavesStampChecksUndecidedAndHold0sCanPass() async throws {
            let (server, serverPort) = try await startSlowPlainServer()
            defer { server.stop() }
            let (reuse, reuseVerdicts) = try await verifyThroughHAProxy(servers: [("plain", serverPort, 100)],
                                                                        expect: "  maxRequestsPerConnection: 5") { _ in }
            #expect(reuse.status == 3, "\(reuse.stdout)\(reuse.stderr)")
            let verdict = try #require(reuseVerdicts.first)
            #expect(isUndecided(verdict), "\(verdict)")
            #expect((verdict["reason"] as? String)?.contains("not the meshprobe echo") == true, "\(verdict)")

            let (breaker, breakerVerdicts) = try await verifyThroughHAProxy(
                servers: [("plain", serverPort, 100)], expect: "  circuitBreaker: {maxRequests: 4, maxPending: 1, hold: 0s, requests: 60}") {
                $0.serverMaxConn = 4
                $0.queueTimeout = 0.02
            }
            #expect(breaker.status == 0, "\(breaker.stdout)\(breaker.stderr)")
            #expect(breakerVerdicts.count == 2 && breakerVerdicts.allSatisfy { $0["passed"] as? Bool == true }, "\(breaker.stdout)")
            #expect(breaker.stderr.contains("the upstream's in-flight count is not checked"), "\(breaker.stderr)")
        }

        /// A resilience verdict's JSON carries no split-test fields filled with zeros, and its requests are the
        /// requests it judged.
        @Test func resilienceEvidenceHasNoSplitFields() async throws {
            let (out, verdicts) = try await verifyThroughHAProxy(expect: "  circuitBreaker: {maxRequests: 10, maxPending: 1, hold: 100ms, requests: 100}") {
                $0.serverMaxConn = 10
                $0.queueTimeout = 0.02
            }
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            #expect(verdicts.count == 3)
            for v in verdicts {
                let e = evidence(v)
                for key in ["tolerance", "false_fail_rate", "miss_rate", "truncated", "unsuccessful_responses", "match_headers", "counts"] {
                    #expect(e[key] == nil, "\(key) in \(v["name"] ?? ""): \(e)")
                }
                #expect((e["requests"] as? Int ?? 0) >= 100, "\(v)")
            }
        }
    }
}
