import Foundation
import MeshprobeLab
import MeshprobePolicy
import Testing

extension EndToEnd {
    /// Split verdicts on every kind of routing: HAProxy in `mode tcp` (an L4 balancer: one workload per connection, TLS
    /// end to end between meshprobe and the echo) and in `mode http` (per request), in front of two mTLS echo workloads.
    @Suite(.timeLimit(.minutes(3))) struct RoutingUnitTests {
        /// Runs `verify` with `expect` against HAProxy (`layer4` or not) weighting two TLS echo workloads `weights`.
        func verify(weights: (Int, Int), layer4: Bool, expect: String, load: String = "{connections: 4, streams: 10}",
                    balance: String = "random(1)") async throws -> (ProcessOutput, [String: Any]) {
            let pki = try LabPKIFixture()
            let server = try pki.svid("reviews", uris: [pki.id("reviews")], dns: ["reviews.lab.svc.cluster.local"])
            let prober = try pki.svid("prober", uris: [pki.id("prober")])
            // L4: TLS end to end (meshprobe to the echo). L7: h2c to HAProxy, plaintext HTTP/1.1 to the echo.
            let v1 = try await startEcho(version: "v1", tls: layer4 ? try pki.serverTLS(server) : nil)
            let v2 = try await startEcho(version: "v2", tls: layer4 ? try pki.serverTLS(server) : nil)
            defer { Task { await v1.close(); await v2.close() } }
            let (proxy, port, dir) = try await startHAProxy([("v1", v1.port, weights.0), ("v2", v2.port, weights.1)]) {
                $0.layer4 = layer4
                $0.balance = balance
            }
            defer { proxy.stop(); try? FileManager.default.removeItem(at: dir) }
            let policy = dir.appendingPathComponent("policy.yaml")
            try """
                policy: meshprobe.policy/v1
                name: reviews canary
                target: \(layer4 ? "https" : "http")://127.0.0.1:\(port)/reviews
                \(layer4 ? "identity: {cert: \(prober.cert), key: \(prober.key), ca: \(pki.caFile), expectPeer: \"\(pki.id("reviews"))\"}" : "")
                load: \(load)
                expect:
                  recognise: version
                  falseFailRate: 0.0001   # a correct proxy fails this test once in 10000 runs: CI must not flake
                \(expect)
                """.write(to: policy, atomically: true, encoding: .utf8)
            let json = dir.appendingPathComponent("verdict.json")
            let junit = dir.appendingPathComponent("verdict.xml"), html = dir.appendingPathComponent("verdict.html")
            let out = try await run(meshprobeBinary, ["verify", policy.path, "--json", json.path, "--junit", junit.path, "--html", html.path,
                                                      "--quiet"], timeout: 150)
            // The JUnit and HTML reports carry the same sampling facts as the terminal.
            let xml = (try? String(contentsOf: junit, encoding: .utf8)) ?? ""
            let page = (try? String(contentsOf: html, encoding: .utf8)) ?? ""
            #expect(xml.contains("sampling: ") && page.contains("sampling: "), "the reports name the sampling unit")
            let object = try #require(FileManager.default.contents(atPath: json.path).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] },
                                      "\(out.stdout)\(out.stderr)")
            #expect(try await ResultSchema.verify.violation(in: json.path) == nil)
            return (out, object)
        }

        func split(_ object: [String: Any]) throws -> (verdict: [String: Any], sampling: [String: Any]) {
            let verdict = try #require((object["verdicts"] as? [[String: Any]])?.first { $0["kind"] as? String == "split" })
            let sampling = try #require((verdict["evidence"] as? [String: Any])?["sampling"] as? [String: Any])
            return (verdict, sampling)
        }

        /// The issue's case: an L4 balancer with a correct 90/10 split. The connection unit passes it, names the unit and
        /// shows that the connections stuck to one workload each.
        @Test func aCorrectSplitBehindAnL4BalancerPasses() async throws {
            let (out, object) = try await verify(weights: (90, 10), layer4: true, expect: "  split: {v1: 90, v2: 10}")
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            let (verdict, sampling) = try split(object)
            #expect(verdict["passed"] as? Bool == true)
            #expect(sampling["unit"] as? String == "connection" && sampling["routing"] as? String == "auto")
            #expect(sampling["mixed_connections"] as? Int == 0, "an L4 balancer keeps a connection on one workload: \(sampling)")
            #expect((sampling["connections"] as? Int ?? 0) >= 100, "\(sampling)")
            #expect(out.stdout.contains("sampling: unit: the connection"), "\(out.stdout)")
        }

        /// The same balancer, a declared split off by 20 points: FAIL, on connections.
        @Test func aWrongSplitBehindAnL4BalancerFails() async throws {
            let (out, object) = try await verify(weights: (90, 10), layer4: true, expect: "  split: {v1: 70, v2: 30}")
            #expect(out.status == 1, "\(out.stdout)\(out.stderr)")
            let (verdict, sampling) = try split(object)
            #expect(verdict["passed"] as? Bool == false && verdict["decided"] as? Bool == true)
            #expect(sampling["unit"] as? String == "connection")
            #expect((verdict["reason"] as? String)?.contains("connections") == true, "\(verdict)")
        }

        /// Declared per-request routing behind an L4 balancer: the run sees the clustering and withholds the verdict
        /// (undecided, exit 3) instead of failing a correct split.
        @Test func perRequestRoutingDeclaredBehindAnL4BalancerIsUndecided() async throws {
            let (out, object) = try await verify(weights: (50, 50), layer4: true,
                                                 expect: "  split: {v1: 50, v2: 50}\n  routing: per-request",
                                                 load: "{connections: 4, streams: 10, churn: 10}")
            let (verdict, _) = try split(object)
            #expect(out.status == 3, "\(out.stdout)\(out.stderr)")
            #expect(verdict["decided"] as? Bool == false, "never a FAIL: \(verdict)")
            #expect((verdict["reason"] as? String)?.contains("cluster by connection") == true, "\(verdict)")
        }

        /// A balancer keyed by the client (HAProxy `balance source`: one client address, one workload) in front of a
        /// correct 90/10 split: every connection of this one client reaches the same workload. That cannot be told from
        /// a split that is not in effect, so it is undecided, never a FAIL of a correct canary; declaring that each
        /// connection is routed on its own makes the same run a FAIL.
        @Test func aClientKeyedBalancerIsUndecidedUnlessRoutingIsDeclared() async throws {
            let (out, object) = try await verify(weights: (90, 10), layer4: true, expect: "  split: {v1: 90, v2: 10}", balance: "source")
            #expect(out.status == 3, "\(out.stdout)\(out.stderr)")
            let (verdict, _) = try split(object)
            #expect(verdict["decided"] as? Bool == false, "never a FAIL: \(verdict)")
            let reason = verdict["reason"] as? String ?? ""
            #expect(reason.contains("routing is keyed by the client") && reason.contains("expect.routing: per-connection"), "\(reason)")
            let (declared, declaredObject) = try await verify(weights: (90, 10), layer4: true,
                                                              expect: "  split: {v1: 90, v2: 10}\n  routing: per-connection", balance: "source")
            #expect(declared.status == 1, "\(declared.stdout)\(declared.stderr)")
            #expect(try split(declaredObject).verdict["decided"] as? Bool == true)
        }

        /// Per-request routing (`mode http`): the connection unit sees the requests mix on each connection and passes a
        /// correct split on about as many responses as the per-request test.
        @Test func aCorrectSplitBehindAnL7ProxyPasses() async throws {
            let (out, object) = try await verify(weights: (90, 10), layer4: false, expect: "  split: {v1: 90, v2: 10}")
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            let (verdict, sampling) = try split(object)
            #expect(verdict["passed"] as? Bool == true)
            #expect((sampling["mixed_connections"] as? Int ?? 0) > 0, "\(sampling)")
            #expect((sampling["correlation"] as? Double ?? 1) < 0.5, "\(sampling)")
        }
    }
}
