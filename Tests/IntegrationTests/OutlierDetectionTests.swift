import Foundation
import MeshprobeChecks
import MeshprobeEcho
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeLab
import MeshprobePolicy
import MeshprobeSpec
import MeshprobeTLS
import NIOConcurrencyHelpers
import NIOPosix
import Testing

extension EndToEnd {
    /// The outlier-detection procedure against HAProxy as the sidecar: it talks mTLS to two echo workloads with its own
    /// SVID, ejects a server after `error-limit` consecutive 5xx (`observe layer7 ... on-error mark-down`) and brings it
    /// back after `rise` successful handshake checks. The prober makes one echo fail through its control API over mTLS.
    @Suite(.timeLimit(.minutes(3)), .tags(.timing)) struct OutlierDetectionTests {
    let lab: ControlLab
    var pki: LabPKIFixture { lab.pki }
    var proberSVID: (cert: String, key: String) { lab.proberSVID }
    var haproxyPEM: String { lab.haproxyPEM }

    init() throws { lab = try ControlLab() }

    func startEcho(version: String) async throws -> EchoServer { try await lab.startEcho(version: version) }

    /// HAProxy over mTLS in front of `echoes`, with lab ejection when given.
    func startProxy(_ echoes: [EchoServer], ejection: HAProxyConfig.Ejection? = nil) async throws -> (BackgroundProcess, Int, URL) {
        try await startHAProxy(echoes.enumerated().map { ("v\($0.offset + 1)", $0.element.port, 100) }) {
            $0.serverClientCertificate = haproxyPEM
            $0.ejection = ejection
        }
    }

    /// A policy through the proxy on `port` as the prober, with `expect` (indented under `expect:`).
    func writePolicy(in dir: URL, port: Int, identity: (cert: String, key: String)? = nil, expect: String) throws -> URL {
        let svid = identity ?? proberSVID
        let policy = dir.appendingPathComponent("policy.yaml")
        try """
            policy: meshprobe.policy/v1
            target: http://127.0.0.1:\(port)/reviews
            identity: {cert: \(svid.cert), key: \(svid.key), ca: \(pki.caFile)}
            expect:
            \(expect)
            """.write(to: policy, atomically: true, encoding: .utf8)
        return policy
    }

    /// Runs the check against a lab proxy with `errorLimit` and `rise` x 100 ms checks.
    func check(errorLimit: Int, rise: Int, declared: OutlierExpectation) async throws -> OutlierDetectionCheck.Outcome {
        let v1 = try await startEcho(version: "v1")
        let v2 = try await startEcho(version: "v2")
        defer { Task { await v1.close(); await v2.close() } }
        let (proxy, port, dir) = try await startProxy([v1, v2], ejection: .init(errorLimit: errorLimit, checkInterval: 0.1, rise: rise))
        defer { proxy.stop(); try? FileManager.default.removeItem(at: dir) }
        var e = declared
        e.faultTargets = ["https://127.0.0.1:\(v1.port)", "https://127.0.0.1:\(v2.port)"]
        var configuration = LoadConfiguration(targets: [try LoadTarget(parsing: "http://127.0.0.1:\(port)/reviews")])
        configuration.plan.requestTimeout = 5
        let outcome = try await OutlierDetectionCheck.run(e, configuration: configuration, recognizer: .version,
                                                          controlTLS: TLSContextSource(initial: try lab.controlTLS(), source: "files"),
                                                          group: MultiThreadedEventLoopGroup.singleton)
        // Nothing left behind on either echo.
        let left = try await lab.faults(on: [v1, v2])
        #expect(left.isEmpty, "faults left: \(left)")
        return outcome
    }

    func declared(errors: Int, base: Double, interval: Double = 0.5, maxPercent: Double = 100) -> OutlierExpectation {
        var e = OutlierExpectation(consecutiveErrors: errors, source: "test")
        e.baseEjectionTime = base
        e.interval = interval
        e.maxEjectionPercent = maxPercent
        return e
    }

    func describe(_ o: OutlierDetectionCheck.Outcome) -> String {
            (o.checks.map { "\($0.passed ? "PASS" : $0.decided ? "FAIL" : "UNDECIDED") \($0.name): \($0.reason ?? "") \($0.evidence)" }
            + o.timeline.map { String(format: "%.3f %@", $0.at, $0.what) }).joined(separator: "\n")
    }

        /// A check of an ejection's length that passed, or was undecided because this machine ran late (the one
        /// verdict a starved machine may give instead of a PASS; a FAIL is never accepted).
        static func passedOrTooBusy(passed: Bool, decided: Bool, reason: String?) -> Bool {
            passed || (!decided && reason?.contains("too busy a machine to tell") == true)
        }

        /// `passedOrTooBusy` for a verdict of `verify`'s JSON result.
        static func passedOrTooBusy(_ verdict: [String: Any]) -> Bool {
            passedOrTooBusy(passed: verdict["passed"] as? Bool == true, decided: verdict["decided"] as? Bool != false,
                            reason: verdict["reason"] as? String)
        }

    @Test func aProxyThatEjectsAsDeclaredPasses() async throws {
        let o = try await check(errorLimit: 5, rise: 11, declared: declared(errors: 5, base: 1))
        #expect(o.checks.count == 4, "\(describe(o))")
            // The error count and the maximum percent are counts, the quiet time and the return are times.
            #expect(o.checks.enumerated().allSatisfy { i, c in
                [1, 2].contains(i) ? Self.passedOrTooBusy(passed: c.passed, decided: c.decided, reason: c.reason) : c.passed
            }, "\(describe(o))")
        #expect(o.faultsLeft.isEmpty)
        let ejectedAfterFive = o.timeline.contains { $0.what.contains("ejected after 5 consecutive errors") }
        #expect(ejectedAfterFive, "\(describe(o))")
        // The timeline says when errors started, when traffic stopped and when it came back, in that order.
        let order = ["set on", "its first error", "ejected after", "back after", "endpoints back"].map { words in
            o.timeline.firstIndex { $0.what.contains(words) } ?? -1
        }
        #expect(order.allSatisfy { $0 >= 0 } && order == order.sorted(), "\(describe(o))")
    }

    @Test func aLooserProxyFailsOnCountReturnAndMaximumPercent() async throws {
        // HAProxy: 10 errors, back after 25 x 100 ms, and no maximum percent; declared: 5 errors, 1 s (+0.5 s), 50%.
        let o = try await check(errorLimit: 10, rise: 25, declared: declared(errors: 5, base: 1, maxPercent: 50))
        #expect(o.checks.count == 4, "\(describe(o))")
        guard o.checks.count == 4 else { return }
        #expect(!o.checks[0].passed && o.checks[0].evidence["consecutive_errors"] == 10, "\(describe(o))")
        #expect(o.checks[0].reason?.contains("looser") == true)
        #expect(o.checks[1].passed, "nothing reached it while ejected: \(describe(o))")
        #expect(!o.checks[2].passed && (o.checks[2].evidence["ejected_for_s"] ?? 0) > 2, "\(describe(o))")
        #expect(!o.checks[3].passed && o.checks[3].evidence["ejected_at_once"] == 2 && o.checks[3].evidence["allowed"] == 1, "\(describe(o))")
    }

    @Test func aTighterProxyFailsOnTheErrorCount() async throws {
        let two = try await check(errorLimit: 3, rise: 11, declared: declared(errors: 5, base: 1))
        #expect(!two.checks[0].passed && two.checks[0].evidence["consecutive_errors"] == 3, "\(describe(two))")
        #expect(two.checks[0].reason?.contains("tighter") == true, "\(describe(two))")
    }

    /// `meshprobe verify` with a DestinationRule's outlierDetection and the policy's fault targets, end to end.
    @Test func verifyChecksADestinationRulesOutlierDetection() async throws {
        let v1 = try await startEcho(version: "v1")
        let v2 = try await startEcho(version: "v2")
        defer { Task { await v1.close(); await v2.close() } }
        let (proxy, port, dir) = try await startProxy([v1, v2], ejection: .init(errorLimit: 5, checkInterval: 0.1, rise: 11))
        defer { proxy.stop(); try? FileManager.default.removeItem(at: dir) }
        let policy = try writePolicy(in: dir, port: port, expect: """
              outlierDetection:
                faultTargets: [https://127.0.0.1:\(v1.port), https://127.0.0.1:\(v2.port)]
                rate: 200
            """)
        let rule = dir.appendingPathComponent("dr.yaml")
        try """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: reviews}
            spec:
              host: reviews
              trafficPolicy:
                outlierDetection:
                  consecutive5xxErrors: 5
                  interval: 500ms
                  baseEjectionTime: 1s
                  maxEjectionPercent: 100
            """.write(to: rule, atomically: true, encoding: .utf8)
        let json = dir.appendingPathComponent("verdict.json")
        let out = try await run(meshprobeBinary, ["verify", policy.path, rule.path, "--json", json.path, "--quiet"], timeout: 120)
        #expect(try await ResultSchema.verify.violation(in: json.path) == nil, "the timeline's evidence too")
        let object = FileManager.default.contents(atPath: json.path).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        let verdicts = object?["verdicts"] as? [[String: Any]] ?? []
            #expect(verdicts.count == 4 && verdicts.allSatisfy { $0["kind"] as? String == "outlier_detection" && Self.passedOrTooBusy($0) },
                "\(out.stdout)")
            // Exit 0 when every verdict passed; 3 (undecided) when this machine ran too late to time one.
            let allPassed = verdicts.allSatisfy { $0["passed"] as? Bool == true }
            #expect(out.status == (allPassed ? 0 : 3), "\(out.stdout)\(out.stderr)")
        let timeline = (verdicts.last?["evidence"] as? [String: Any])?["timeline"] as? [[String: Any]] ?? []
        #expect(timeline.contains { ($0["event"] as? String)?.contains("ejected after 5 consecutive errors") == true }, "\(out.stdout)")
        #expect(out.stdout.contains("DestinationRule reviews"), "\(out.stdout)")
    }

    /// Outlier detection and requests per connection from one DestinationRule: outlier detection's last phase makes
    /// every workload fail, so a proxy as declared ejects them all. It runs after the other procedures and waits for
    /// every endpoint to come back, so the requests-per-connection check meets a healthy service and passes.
    @Test func outlierDetectionRunsLastAndLeavesEveryEndpointBack() async throws {
        let v1 = try await startEcho(version: "v1")
        let v2 = try await startEcho(version: "v2")
        defer { Task { await v1.close(); await v2.close() } }
        let (proxy, port, dir) = try await startHAProxy([("v1", v1.port, 100), ("v2", v2.port, 100)]) {
            $0.serverClientCertificate = haproxyPEM
            $0.ejection = .init(errorLimit: 5, checkInterval: 0.1, rise: 11)
            $0.serverCloseAfterEachRequest = true
        }
        defer { proxy.stop(); try? FileManager.default.removeItem(at: dir) }
        let policy = try writePolicy(in: dir, port: port, expect: """
              outlierDetection: {faultTargets: [https://127.0.0.1:\(v1.port), https://127.0.0.1:\(v2.port)], rate: 200}
            """)
        let rule = dir.appendingPathComponent("dr.yaml")
        try """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: reviews}
            spec:
              host: reviews
              trafficPolicy:
                connectionPool: {http: {maxRequestsPerConnection: 1}}
                outlierDetection: {consecutive5xxErrors: 5, interval: 500ms, baseEjectionTime: 1s, maxEjectionPercent: 100}
            """.write(to: rule, atomically: true, encoding: .utf8)
        let json = dir.appendingPathComponent("verdict.json")
        let out = try await run(meshprobeBinary, ["verify", policy.path, rule.path, "--json", json.path, "--quiet"], timeout: 150)
        let object = FileManager.default.contents(atPath: json.path).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        let verdicts = object?["verdicts"] as? [[String: Any]] ?? []
            #expect(verdicts.allSatisfy(Self.passedOrTooBusy), "\(out.stdout)")
            #expect(out.status == (verdicts.allSatisfy { $0["passed"] as? Bool == true } ? 0 : 3), "\(out.stdout)\(out.stderr)")
        let kinds = verdicts.map { $0["kind"] as? String ?? "" }
        #expect(kinds == ["circuit_breaker"] + Array(repeating: "outlier_detection", count: 4), "\(out.stdout)")
        let timeline = ((verdicts.last?["evidence"] as? [String: Any])?["timeline"] as? [[String: Any]] ?? []).compactMap { $0["event"] as? String }
        #expect(timeline.last == "all 2 endpoints back", "\(timeline)")
        let times = ((verdicts.last?["evidence"] as? [String: Any])?["timeline"] as? [[String: Any]] ?? []).compactMap { $0["at"] as? Double }
        #expect(times == times.sorted(), "timeline in time order: \(timeline)")
    }

    /// A caller the echoes do not allow: the check cannot make anything fail, so the verdict is undecided (exit 3).
    @Test func aCallerTheWorkloadsRefuseLeavesTheVerdictUndecided() async throws {
        let v1 = try await startEcho(version: "v1")
        defer { Task { await v1.close() } }
        let (proxy, port, dir) = try await startProxy([v1])
        defer { proxy.stop(); try? FileManager.default.removeItem(at: dir) }
        let stranger = try pki.svid("stranger", uris: [pki.id("stranger")])
        let policy = try writePolicy(in: dir, port: port, identity: stranger, expect: """
              outlierDetection: {consecutive5xxErrors: 5, baseEjectionTime: 1s, faultTargets: [https://127.0.0.1:\(v1.port)]}
            """)
        let out = try await run(meshprobeBinary, ["verify", policy.path, "--quiet"], timeout: 60)
        #expect(out.status == 3, "\(out.stdout)\(out.stderr)")
        #expect(out.stdout.contains("UNDECIDED") && out.stdout.contains("403"), "\(out.stdout)")
    }

    /// SIGTERM in the middle of the check, while the workload fails and the proxy (which never ejects) keeps sending
    /// to it: verify stops at once, clears the fault it set, sets no other, and exits 3; the check's verdicts, cut
    /// short, are undecided (its partial evidence showed a proxy that never ejects: never a FAIL after the signal).
    @Test func aSignalDuringTheCheckClearsTheFaultAndExits3() async throws {
        let v1 = try await startEcho(version: "v1")
        let v2 = try await startEcho(version: "v2")
        defer { Task { await v1.close(); await v2.close() } }
        let (proxy, port, dir) = try await startProxy([v1, v2])
        defer { proxy.stop(); try? FileManager.default.removeItem(at: dir) }
        let policy = try writePolicy(in: dir, port: port, expect: """
              outlierDetection: {consecutive5xxErrors: 5, baseEjectionTime: 30s, interval: 1s, rate: 20,
                                 faultTargets: [https://127.0.0.1:\(v1.port), https://127.0.0.1:\(v2.port)]}
            """)
        let json = dir.appendingPathComponent("verify.json").path
        let process = try SignalledProcess(meshprobeBinary, ["verify", policy.path, "--quiet", "--json", json])
        _ = try await waitUntil(seconds: 15, every: .milliseconds(50)) { try await !lab.faults(on: [v1]).isEmpty }
        // 25 consecutive errors before the check gives up, at 20 requests/s over two workloads: about 2.5 s.
        #expect(try await lab.faults(on: [v1]).count == 1, "the check set its fault")
        // Past the declared 5 errors (about 10 a second reach v1): the partial evidence shows a proxy that does not eject.
        try await Task.sleep(for: .milliseconds(1500))
        let (took, output) = try await process.signal(SIGTERM, timeout: 15)
        #expect(took < 5, "exited \(took)s after the signal")
        #expect(output.status == 3, "\(output.stdout)\(output.stderr)")
        #expect(try await lab.faults(on: [v1, v2]).isEmpty, "the fault was cleared on the way out")
        #expect(!output.stdout.contains("FAIL  ") && output.stdout.contains("UNDECIDED"), "\(output.stdout)")
        let result = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any]
        let verdicts = result?["verdicts"] as? [[String: Any]] ?? []
        #expect(!verdicts.isEmpty && verdicts.allSatisfy { $0["decided"] as? Bool == false }, "\(verdicts)")
        #expect(!output.stderr.contains("faults set on all"), "no fault is set after the signal: \(output.stderr)")
    }
    }
}
