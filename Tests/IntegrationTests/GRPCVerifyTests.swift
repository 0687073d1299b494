import Foundation
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
