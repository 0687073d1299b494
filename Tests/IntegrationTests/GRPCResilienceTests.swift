import Foundation
import MeshprobeEcho
import MeshprobeEchoAPI
import MeshprobeLab
import MeshprobePolicy
import MeshprobeTestSupport
import Testing

extension EndToEnd {
    /// The resilience procedures with gRPC calls of the echo (`meshprobe.echo.v1.Echo/Call`), whose per-call faults are
    /// its CallRequest knobs (`grpc_status`, `delay`) and whose control-API faults carry `grpcStatus`. The proxies:
    /// HAProxy (`mode http`, h2 on both sides), which retries and ejects on HTTP statuses only, so a gRPC status (HTTP
    /// 200) never triggers it; and a grpcio proxy whose channel retries as gRPC's own retry policy says (gRFC A6), the
    /// lab's stand-in for a proxy that retries gRPC statuses (Envoy does not run here).
    @Suite(.timeLimit(.minutes(3)), .tags(.timing)) struct GRPCResilienceTests {
        static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures")
        static let method = "meshprobe.echo.v1.Echo/Call"

        /// grpcio's retrying proxy in front of `upstream` (h2c): `retries` retries on the `retryOn` statuses.
        func startRetryingProxy(upstream: Int, retries: Int, retryOn: String) async throws -> (BackgroundProcess, Int) {
            let python = try #require(which("python3"))
            return try await BackgroundProcess.onFreePort { port in
                try await BackgroundProcess(python, [Self.fixtures.appendingPathComponent("grpc/retrying_proxy.py").path, "--port", "\(port)",
                                                     "--upstream", "127.0.0.1:\(upstream)", "--retries", "\(retries)", "--retry-on", retryOn,
                                                     "--max-seconds", "150"],
                                            waitForPort: port, timeout: 20)
            }
        }

        /// `meshprobe verify` of a policy calling the echo's method at `target` (`grpc://HOST:PORT`), with `expect`
        /// lines and extra policy lines; the output and the JSON verdicts, checked against the schema.
        func verify(_ target: String, method: String = Self.method, policyLines: String = "", expect: String) async throws -> (ProcessOutput, [[String: Any]]) {
            let dir = try haproxyDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let policy = dir.appendingPathComponent("policy.yaml"), json = dir.appendingPathComponent("verdict.json")
            try """
                policy: meshprobe.policy/v1
                target: \(target)/\(method)
                \(policyLines)
                expect:
                \(expect)
                """.write(to: policy, atomically: true, encoding: .utf8)
            let out = try await run(meshprobeBinary, ["verify", policy.path, "--json", json.path, "--quiet"], timeout: 150)
            let object = FileManager.default.contents(atPath: json.path).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
            if object != nil { #expect(try await ResultSchema.verify.violation(in: json.path) == nil) }
            return (out, object?["verdicts"] as? [[String: Any]] ?? [])
        }

        func verdict(_ verdicts: [[String: Any]], _ words: String) throws -> (passed: Bool, decided: Bool, reason: String, observed: [String: Double]) {
            let v = try #require(verdicts.first { ($0["name"] as? String)?.contains(words) == true }, "no verdict with '\(words)' in \(verdicts)")
            let observed = (v["evidence"] as? [String: Any])?["observed"] as? [String: Double] ?? [:]
            return (v["passed"] as? Bool == true, v["decided"] as? Bool != false, v["reason"] as? String ?? "", observed)
        }

        /// The attempts check with gRPC calls through a proxy whose retries are gRPC's own: retrying UNAVAILABLE twice
        /// as declared passes (every final answer is the echo's third try); retrying once fails with the tries seen; a
        /// declared `internal` that the proxy does not retry fails on the INTERNAL the check injects.
        @Test func gRPCRetriesAreCheckedThroughAProxyThatRetriesGRPCStatuses() async throws {
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            let (twice, twicePort) = try await startRetryingProxy(upstream: echo.port, retries: 2, retryOn: "UNAVAILABLE")
            let (once, oncePort) = try await startRetryingProxy(upstream: echo.port, retries: 1, retryOn: "UNAVAILABLE")
            defer { twice.stop(); once.stop() }

            let (pass, passVerdicts) = try await verify("grpc://127.0.0.1:\(twicePort)", expect: "  retries: {attempts: 2, retryOn: unavailable, requests: 10}")
            #expect(pass.status == 0, "\(pass.stdout)\(pass.stderr)")
            let tries = try verdict(passVerdicts, "(UNAVAILABLE) is tried 3 times")
            #expect(tries.passed && tries.observed["tries_3"] == 10 && tries.observed["injected_grpc_status"] == 14, "\(tries)")
            let notRetried = try verdict(passVerdicts, "(NOT_FOUND) is tried once")
            #expect(notRetried.passed && notRetried.observed["tries_1"] == 10, "\(notRetried)")

            let (fewer, fewerVerdicts) = try await verify("grpc://127.0.0.1:\(oncePort)", expect: "  retries: {attempts: 2, retryOn: unavailable, requests: 10}")
            #expect(fewer.status == 1, "\(fewer.stdout)\(fewer.stderr)")
            let short = try verdict(fewerVerdicts, "(UNAVAILABLE) is tried 3 times")
            #expect(!short.passed && short.decided && short.observed["tries_2"] == 10, "\(short)")
            #expect(short.reason.contains("retries less than declared, or not on UNAVAILABLE"), "\(short.reason)")

            let (other, otherVerdicts) = try await verify("grpc://127.0.0.1:\(twicePort)", expect: "  retries: {attempts: 2, retryOn: internal, requests: 10}")
            #expect(other.status == 1, "\(other.stdout)\(other.stderr)")
            let internalTries = try verdict(otherVerdicts, "(INTERNAL) is tried 3 times")
            #expect(!internalTries.passed && internalTries.observed["tries_1"] == 10, "\(internalTries)")

            // Of several retried statuses one is injected (UNAVAILABLE): the pass says which others were not tried (the
            // proxy here does not retry CANCELLED, which this check cannot see).
            let (both, _) = try await verify("grpc://127.0.0.1:\(twicePort)", expect: "  retries: {attempts: 2, retryOn: \"unavailable,cancelled\", requests: 10}")
            #expect(both.status == 0, "\(both.stdout)\(both.stderr)")
            #expect(both.stderr.contains("of the retried gRPC statuses, UNAVAILABLE is injected: CANCELLED is not exercised"), "\(both.stderr)")
        }

        /// HAProxy retries on HTTP statuses and on timeouts, not on a gRPC status (its answer is HTTP 200): with its
        /// stand-in for `attempts: 2, perTryTimeout: 200ms, retryOn: unavailable,reset`, the attempts check fails (one
        /// try each) while the timing check passes (three tries of 200 ms, each cut by `timeout server`, its 504 page a
        /// proxy's timeout). With no proxy at all nothing is retried or cut: both fail.
        @Test func aProxyThatRetriesOnlyHTTPStatusesFailsTheGRPCAttemptsCheck() async throws {
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            var declared = RetryExpectation(attempts: 2, perTryTimeout: 0.2, source: "test")
            declared.retryOn = try RetryConditions.parse(["unavailable", "reset"])
            let (proxy, port, dir) = try await startHAProxy([("v1", echo.port, 100)]) {
                $0.serverHTTP2 = true
                $0.standIn(for: declared)
            }
            defer { proxy.stop(); try? FileManager.default.removeItem(at: dir) }
            let expect = "  retries: {attempts: 2, perTryTimeout: 200ms, retryOn: \"unavailable,reset\", requests: 10}"
            let (out, verdicts) = try await verify("grpc://127.0.0.1:\(port)", expect: expect)
            #expect(out.status == 1, "\(out.stdout)\(out.stderr)")
            let tries = try verdict(verdicts, "(UNAVAILABLE) is tried 3 times")
            #expect(!tries.passed && tries.decided && tries.observed["tries_1"] == 10, "\(tries)")
            let timing = try verdict(verdicts, "a slow request ends after 3 tries")
            #expect(timing.passed && timing.observed["proxy_timeouts"] == 10, "\(timing)")
            #expect((timing.observed["p50_ms"] ?? 0) >= 580, "\(timing)")

            let (direct, directVerdicts) = try await verify("grpc://127.0.0.1:\(echo.port)", expect: expect)
            #expect(direct.status == 1, "\(direct.stdout)\(direct.stderr)")
            #expect(try verdict(directVerdicts, "(UNAVAILABLE) is tried 3 times").observed["tries_1"] == 10)
            let answered = try verdict(directVerdicts, "a slow request ends after 3 tries")
            #expect(!answered.passed && answered.observed["application_replies"] == 10, "\(answered)")
        }

        /// Requests per connection with gRPC calls, read from the echo's connection-request stamp in the response
        /// metadata: HAProxy's `max-reuse 4` on h2 server connections (5 streams each) passes a declared 5; HAProxy
        /// reusing its connections fails it.
        @Test func requestsPerConnectionAreCheckedWithGRPCCalls() async throws {
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            for reuse in [4, nil] as [Int?] {
                let (proxy, port, dir) = try await startHAProxy([("v1", echo.port, 100)]) {
                    $0.serverHTTP2 = true
                    $0.serverMaxReuse = reuse
                }
                defer { proxy.stop(); try? FileManager.default.removeItem(at: dir) }
                let (out, verdicts) = try await verify("grpc://127.0.0.1:\(port)", expect: "  maxRequestsPerConnection: 5")
                let check = try verdict(verdicts, "carried at most 5 requests each")
                if reuse != nil {
                    #expect(out.status == 0 && check.passed && check.observed["peak_requests_per_connection"] == 5, "\(out.stdout)\(out.stderr)")
                } else {
                    #expect(out.status == 1 && !check.passed && (check.observed["peak_requests_per_connection"] ?? 0) > 5, "\(out.stdout)\(out.stderr)")
                }
            }
        }

        /// What cannot run with the run's method is refused before anything is sent (exit 2), naming where it is
        /// declared: retries with a method other than the echo's (its knobs are read by Echo/Call alone), outlier
        /// detection with a method the echo does not serve.
        @Test func proceduresThatCannotReachTheEchosKnobsAreRefused() async throws {
            let (retries, _) = try await verify("grpc://127.0.0.1:9", method: "grpc.health.v1.Health/Check",
                                                expect: "  retries: {attempts: 2, retryOn: unavailable}")
            #expect(retries.status == 2, "\(retries.stdout)\(retries.stderr)")
            #expect(retries.stderr.contains("expect.retries: retries and timeouts fail and hold each call with the echo's CallRequest knobs"), "\(retries.stderr)")
            let (outlier, _) = try await verify("grpc://127.0.0.1:9", method: "shop.v1.Shop/Buy",
                                                expect: "  outlierDetection: {consecutive5xxErrors: 5, faultTargets: [\"https://127.0.0.1:9\"]}")
            #expect(outlier.status == 2, "\(outlier.stdout)\(outlier.stderr)")
            #expect(outlier.stderr.contains("the echo answers shop.v1.Shop/Buy UNIMPLEMENTED"), "\(outlier.stderr)")
        }
    }
}

extension EndToEnd {
    /// Outlier detection and game days with gRPC calls, against mTLS echo workloads whose control API allows the prober
    /// (faults with `grpcStatus`), behind HAProxy talking h2 over mTLS to them as a sidecar would.
    @Suite(.timeLimit(.minutes(3)), .tags(.timing)) struct GRPCControlTests {
        let lab: ControlLab
        var pki: LabPKIFixture { lab.pki }

        init() throws { lab = try ControlLab() }

        func write(_ text: String, in dir: URL, _ name: String) throws -> String {
            let path = dir.appendingPathComponent(name).path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        var identity: String { "identity: {cert: \(lab.proberSVID.cert), key: \(lab.proberSVID.key), ca: \(pki.caFile)}" }

        /// HAProxy as the lab's ejecting proxy (`observe layer7 error-limit 5`, back after 11 checks 100 ms apart) in
        /// front of `echoes` over h2 and mTLS. With `mapGRPCStatus`, each server is reached through a `listen` section of
        /// the same HAProxy that turns a response whose headers carry `grpc-status: 14` into HTTP 503 (its grpc-status
        /// kept), standing in for what Envoy's router feeds its outlier detector for a gRPC answer
        /// (`grpcToHttpStatus` of a grpc-status in the response headers: UNAVAILABLE is 503); HAProxy itself counts HTTP
        /// statuses only, and a gRPC answer's is 200.
        func startEjectingProxy(_ echoes: [EchoServer], mapGRPCStatus: Bool) async throws -> (BackgroundProcess, Int, URL) {
            let dir = try haproxyDirectory()
            let ejection = "check inter 60s fastinter 100ms downinter 100ms rise 11 fall 1 observe layer7 error-limit 5 on-error mark-down"
            let tls = "proto h2 ssl verify none crt \(lab.haproxyPEM) alpn h2"
            let (process, port) = try await BackgroundProcess.onFreePort { port in
                var lines = ["global", "    maxconn 1000", "defaults", "    mode http", "    timeout connect 2s", "    timeout client 10s",
                             "    timeout server 10s", "frontend fe", "    bind 127.0.0.1:\(port) proto h2", "    default_backend weighted",
                             "backend weighted", "    balance random(1)"]
                for (i, echo) in echoes.enumerated() {
                    let socket = dir.appendingPathComponent("v\(i + 1).sock").path
                    lines.append(mapGRPCStatus
                        ? "    server v\(i + 1) unix@\(socket) weight 100 proto h2 \(ejection)"
                        : "    server v\(i + 1) 127.0.0.1:\(echo.port) weight 100 \(tls) \(ejection)")
                }
                if mapGRPCStatus {
                    for (i, echo) in echoes.enumerated() {
                        lines += ["listen grpc-status-v\(i + 1)", "    bind unix@\(dir.appendingPathComponent("v\(i + 1).sock").path) proto h2",
                                  "    http-response set-status 503 if { res.hdr(grpc-status) -m str 14 }",
                                  "    server e 127.0.0.1:\(echo.port) \(tls)"]
                    }
                }
                return try await startHAProxy(config: lines.joined(separator: "\n") + "\n", in: dir, waitForPort: port)
            }
            return (process, port, dir)
        }

        /// The echo's fault answers a gRPC call UNAVAILABLE, trailers-only. Through a proxy that counts it as Envoy does
        /// (a 503), the check passes; HAProxy on its own never sees an error (HTTP 200) and keeps sending to the
        /// failing workload, so the ejection check fails. Both leave no fault behind.
        @Test func outlierDetectionIsCheckedWithGRPCCalls() async throws {
            let v1 = try await lab.startEcho(version: "v1"), v2 = try await lab.startEcho(version: "v2")
            defer { Task { await v1.close(); await v2.close() } }
            for mapped in [true, false] {
                let (proxy, port, dir) = try await startEjectingProxy([v1, v2], mapGRPCStatus: mapped)
                defer { proxy.stop(); try? FileManager.default.removeItem(at: dir) }
                let policy = try write("""
                    policy: meshprobe.policy/v1
                    target: grpc://127.0.0.1:\(port)/meshprobe.echo.v1.Echo/Call
                    \(identity)
                    expect:
                      outlierDetection: {consecutive5xxErrors: 5, interval: 500ms, baseEjectionTime: 1s, maxEjectionPercent: 100, faultTargets: ["https://127.0.0.1:\(v1.port)"], rate: 100}
                    """, in: dir, "policy.yaml")
                let json = dir.appendingPathComponent("verdict.json").path
                let out = try await run(meshprobeBinary, ["verify", policy, "--json", json, "--quiet"], timeout: 120)
                #expect(try await ResultSchema.verify.violation(in: json) == nil)
                let object = try #require(FileManager.default.contents(atPath: json).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] })
                let verdicts = try #require(object["verdicts"] as? [[String: Any]])
                let count = try #require(verdicts.first { ($0["name"] as? String)?.contains("ejected after 5 consecutive 5xx") == true }, "\(out.stdout)")
                // The victim's errors were the gRPC status the fault set.
                #expect(out.stdout.contains("v1 answers UNAVAILABLE: its first error"), "\(out.stdout)")
                if mapped {
                    #expect(count["passed"] as? Bool == true, "\(out.stdout)\(out.stderr)")
                    // The quiet time and the return are times: passed, or undecided on a starved machine, never failed.
                    #expect(verdicts.allSatisfy { OutlierDetectionTests.passedOrTooBusy($0) }, "\(out.stdout)")
                } else {
                    #expect(out.status == 1, "\(out.stdout)\(out.stderr)")
                    #expect(count["passed"] as? Bool == false && (count["reason"] as? String)?.contains("kept receiving requests") == true, "\(out.stdout)")
                }
                #expect(try await lab.faults(on: [v1, v2]).isEmpty)
            }
        }

        /// A game day over gRPC straight at an echo: a baseline passes, a step whose control-API fault answers half the
        /// calls UNAVAILABLE fails its objective with the application's UNAVAILABLE, and a circuit-breaker step (the
        /// echo holding each call by its delay knob) fails with no proxy to refuse the overflow. Its fault is cleared.
        /// A step that cannot run with the run's method is refused before anything is sent, by --check too (exit 2).
        @Test func aGameDayRunsItsStepsWithGRPCCalls() async throws {
            let echo = try await lab.startEcho(version: "v1")
            defer { Task { await echo.close() } }
            let dir = try haproxyDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            func gameday(method: String) throws -> String {
                try write("""
                    name: gRPC game day
                    target: grpcs://127.0.0.1:\(echo.port)/\(method)
                    \(identity)
                    load: {connections: 2, streams: 10, churn: request}
                    gameday:
                      steps:
                        - name: baseline
                          rate: 100
                          duration: 1s
                          expect: {successRate: 0.9}
                        - name: half the calls unavailable
                          rate: 100
                          duration: 1s
                          faults:
                            - {target: "https://127.0.0.1:\(echo.port)", grpcStatus: UNAVAILABLE, statusShare: 50}
                          expect: {successRate: 0.99}
                        - name: connection pool
                          circuitBreaker: {maxRequests: 5, maxPending: 1, hold: 50ms, requests: 60}
                    """, in: dir, "gameday-\(UUID().uuidString).yaml")
            }
            let json = dir.appendingPathComponent("gameday.json").path
            let out = try await run(meshprobeBinary, ["gameday", try gameday(method: "meshprobe.echo.v1.Echo/Call"), "--json", json, "--quiet"], timeout: 120)
            #expect(out.status == 1, "\(out.stdout)\(out.stderr)")
            let object = try #require(FileManager.default.contents(atPath: json).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] })
            let steps = try #require(object["steps"] as? [[String: Any]])
            #expect(steps.map { $0["passed"] as? Bool } == [true, false, false], "\(out.stdout)")
            #expect((steps[1]["failures"] as? [String: Int])?["application: UNAVAILABLE"] ?? 0 > 20, "\(steps[1])")
            let breaker = try #require(steps[2]["verdicts"] as? [[String: Any]])
            #expect(breaker.contains { $0["passed"] as? Bool == false && $0["decided"] as? Bool != false }, "\(out.stdout)")
            #expect(try await lab.faults(on: [echo]).isEmpty)

            let refused = try gameday(method: "grpc.health.v1.Health/Check")
            for arguments in [["gameday", refused, "--check"], ["gameday", refused, "--quiet"]] {
                let out = try await run(meshprobeBinary, arguments, timeout: 30)
                #expect(out.status == 2, "\(arguments): \(out.stdout)\(out.stderr)")
                #expect(out.stderr.contains(":17:7: gameday.steps[2]: step 'connection pool': the circuit breaker holds each call with the echo's delay knob"),
                        "\(out.stderr)")
            }
        }
    }
}
