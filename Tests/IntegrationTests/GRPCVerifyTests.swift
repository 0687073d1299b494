import Foundation
import MeshprobeLab
import MeshprobeTestSupport
import Testing

extension EndToEnd {
    /// `meshprobe verify` on gRPC: a GRPCRoute's rules (a method and metadata match, a weighted split) checked through
    /// HAProxy proxying gRPC with h2 on both sides, in front of two grpcio servers stamping v1 and v2.
    @Suite(.timeLimit(.minutes(3))) struct GRPCVerifyTests {
        static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures")

        func startServer(version: String) async throws -> (BackgroundProcess, Int) {
            let python = try #require(which("python3"))
            return try await BackgroundProcess.onFreePort { port in
                try await BackgroundProcess(python, [Self.fixtures.appendingPathComponent("grpc/stamp_server.py").path, "--port", "\(port)",
                                                     "--workload", "ratings", "--version", version, "--max-seconds", "150"],
                                            waitForPort: port, timeout: 20)
            }
        }

        /// HAProxy in `mode http` with h2 to the client and to the servers (what gRPC needs), 80/20 by weight, and
        /// (when `canaryRoute`) the x-canary metadata to v2 alone.
        func haproxy(v1: Int, v2: Int, canaryRoute: Bool) async throws -> (BackgroundProcess, Int, URL) {
            let dir = try haproxyDirectory()
            let (process, port) = try await BackgroundProcess.onFreePort { port in
                try await startHAProxy(config: """
                    defaults
                      mode http
                      timeout connect 2s
                      timeout client 30s
                      timeout server 30s
                    frontend grpc
                      bind 127.0.0.1:\(port) proto h2
                      \(canaryRoute ? "use_backend canary if { req.hdr(x-canary) -m str yes }" : "")
                      default_backend weighted
                    backend weighted
                      balance roundrobin
                      server v1 127.0.0.1:\(v1) proto h2 weight 80
                      server v2 127.0.0.1:\(v2) proto h2 weight 20
                    backend canary
                      server v2 127.0.0.1:\(v2) proto h2

                    """, in: dir, waitForPort: port)
            }
            return (process, port, dir)
        }

        /// A circuit breaker checked with gRPC calls of the echo (held by its delay knob in the CallRequest), through
        /// HAProxy's per-server maxconn: its overflow reply (an HTTP 503 page, no grpc-status) is a proxy's
        /// no_server_available, as for HTTP. Another method cannot be held: refused before anything is sent.
        @Test func aCircuitBreakerIsCheckedWithGRPCCalls() async throws {
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            var config = HAProxyConfig(frontendPort: 0, servers: [.init("v1", port: echo.port, weight: 100)])
            config.serverHTTP2 = true
            config.serverMaxConn = 10
            config.queueTimeout = 0.02
            let dir = try haproxyDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let (proxy, port) = try await BackgroundProcess.onFreePort { port in
                config.frontendPort = port
                return try await startHAProxy(config: config.text, in: dir, waitForPort: port)
            }
            defer { proxy.stop() }
            for (method, status) in [("meshprobe.echo.v1.Echo/Call", Int32(0)), ("grpc.health.v1.Health/Check", Int32(2))] {
                let policy = dir.appendingPathComponent("policy.yaml")
                try """
                    policy: meshprobe.policy/v1
                    target: grpc://127.0.0.1:\(port)/\(method)
                    expect:
                      circuitBreaker: {maxRequests: 10, maxPending: 1, hold: 100ms, requests: 100}
                    """.write(to: policy, atomically: true, encoding: .utf8)
                let out = try await run(meshprobeBinary, ["verify", policy.path], timeout: 120)
                #expect(out.status == status, "\(method): \(out.stdout)\(out.stderr)")
                if status == 0 {
                    // Above the limit HAProxy's overflow replies came back (its 503 page, which a gRPC call keeps as 503).
                    #expect(out.stdout.contains("above the limit (22 concurrent): overflow replies, fast"), "\(out.stdout)")
                } else {
                    #expect(out.stderr.contains("the circuit breaker holds each call with the echo's delay knob, which only meshprobe.echo.v1.Echo/Call reads"),
                            "\(out.stdout)\(out.stderr)")
                    #expect(!out.stdout.contains("PASS"), "\(out.stdout)")
                }
            }
        }

        /// A route whose method nobody serves: every call is UNIMPLEMENTED. The split stops after the first few hundred
        /// answers, none successful (not the whole request cap), UNDECIDED, naming the failures.
        @Test func aSplitOfCallsNobodyServesStopsEarlyUndecided() async throws {
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            let dir = try haproxyDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let policy = dir.appendingPathComponent("policy.yaml")
            try """
                policy: meshprobe.policy/v1
                target: grpc://127.0.0.1:\(echo.port)/meshprobe.echo.v1.Echo/Missing
                load: {connections: 2, streams: 10}
                expect:
                  recognise: version
                  split: {v1: 100}
                  maxRequests: 5000
                """.write(to: policy, atomically: true, encoding: .utf8)
            let json = dir.appendingPathComponent("verdict.json")
            let out = try await run(meshprobeBinary, ["verify", policy.path, "--json", json.path], timeout: 120)
            #expect(out.status == 3, "\(out.stdout)\(out.stderr)")
            #expect(out.stdout.contains("none of the first 200 answers succeeded, so the split was not measured; failures: "), "\(out.stdout)")
            #expect(out.stdout.contains("UNIMPLEMENTED"), "\(out.stdout)")
            let object = try #require(FileManager.default.contents(atPath: json.path).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] })
            let load = try #require((object["verdicts"] as? [[String: Any]])?.first?["evidence"] as? [String: Any])
            #expect((load["unsuccessful_responses"] as? Int ?? 0) < 1000, "\(load)")
        }

        /// A GRPCRoute rule whose method is not the run's is called with the run's message: the note (and a refusal,
        /// when a descriptor set says the message does not fit) names the manifest's line, not only the policy file.
        @Test func aRouteCallingAnotherMethodIsNamedAtItsManifestLine() async throws {
            let dir = try makeTemporaryDirectory("grpc-route-line")
            defer { removeTemporaryDirectory(dir) }
            let policy = "\(dir)/policy.yaml"
            try """
                policy: meshprobe.policy/v1
                target: grpc://127.0.0.1:1/meshprobe.test.Stamp/Other
                expect: {recognise: version, map: {v1: ratings-v1, v2: ratings-v2}}
                """.write(toFile: policy, atomically: true, encoding: .utf8)
            let manifest = Self.fixtures.appendingPathComponent("gateway-api/ratings-grpcroute.yaml").path
            let out = try await run(meshprobeBinary, ["verify", policy, manifest, "--check"], timeout: 60)
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            #expect(out.stderr.contains("route 'canary' (\(manifest):19 GRPCRoute ratings) calls meshprobe.test.Stamp/Call with the run's message"),
                    "\(out.stderr)")
        }

        @Test func aGRPCRoutesRulesAreVerifiedAndABrokenOneFails() async throws {
            let (v1, v1Port) = try await startServer(version: "v1")
            let (v2, v2Port) = try await startServer(version: "v2")
            defer { v1.stop(); v2.stop() }
            for canaryRoute in [true, false] {
                let (proxy, port, dir) = try await haproxy(v1: v1Port, v2: v2Port, canaryRoute: canaryRoute)
                defer { proxy.stop(); try? FileManager.default.removeItem(at: dir) }
                let policy = dir.appendingPathComponent("policy.yaml")
                try """
                    policy: meshprobe.policy/v1
                    target: grpc://127.0.0.1:\(port)/meshprobe.test.Stamp/Call
                    load: {connections: 4, streams: 10}
                    expect:
                      falseFailRate: 0.0001
                      recognise: version
                      map: {v1: ratings-v1, v2: ratings-v2}
                    """.write(to: policy, atomically: true, encoding: .utf8)
                let json = dir.appendingPathComponent("verdict.json")
                let manifest = Self.fixtures.appendingPathComponent("gateway-api/ratings-grpcroute.yaml").path
                let out = try await run(meshprobeBinary, ["verify", policy.path, manifest, "--json", json.path], timeout: 120)
                #expect(try await ResultSchema.verify.violation(in: json.path) == nil)
                let object = try #require(FileManager.default.contents(atPath: json.path).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] })
                let verdicts = try #require(object["verdicts"] as? [[String: Any]])
                #expect(verdicts.map { $0["name"] as? String } == ["canary", "weighted"], "\(out.stdout)")
                // The calls carried the method's path and the metadata the rule matches.
                #expect(out.stdout.contains("[requests with path = /meshprobe.test.Stamp/Call, header x-canary = yes]")
                        || out.stdout.contains("x-canary = yes"), "\(out.stdout)")
                #expect(verdicts.last?["passed"] as? Bool == true, "\(out.stdout)")
                if canaryRoute {
                    #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
                    #expect(verdicts.first?["passed"] as? Bool == true, "\(out.stdout)")
                } else {
                    // Without the metadata route, the canary's calls follow the 80/20 split: v1 answered them.
                    #expect(out.status == 1, "\(out.stdout)\(out.stderr)")
                    #expect(verdicts.first?["passed"] as? Bool == false)
                    #expect((verdicts.first?["reason"] as? String)?.contains("ratings-v1 answered") == true, "\(verdicts.first?["reason"] ?? "")")
                }
            }
        }
    }
}
