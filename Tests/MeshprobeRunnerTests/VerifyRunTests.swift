import Foundation
import MeshprobeEcho
import MeshprobeLoad
import MeshprobePolicy
import MeshprobeReport
@testable import MeshprobeRunner
import NIOPosix
import Testing

/// A verification run in-process, against an echo in-process: the outcome, and what the JSON result says.
@Suite struct VerifyRunTests {
    func verify(expect split: String, echoVersion: String, recognise: String = "version") async throws -> (VerifyRunOutcome, [String: Any]?) {
        var configuration = EchoConfiguration(identity: EchoIdentity(workload: "reviews", version: echoVersion, cluster: "test",
                                                                     namespace: "lab", pod: "reviews-\(echoVersion)-0"))
        configuration.port = 0
        let echo = try await EchoServer.start(configuration, group: MultiThreadedEventLoopGroup.singleton)
        defer { Task { await echo.close() } }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-verify-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("policy.yaml").path
        try """
            policy: meshprobe.policy/v1
            target: http://127.0.0.1:\(echo.localAddress.port ?? 0)/reviews
            load: {connections: 2, streams: 4}
            expect:
              recognise: \(recognise)
              split: \(split)
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let policy = try Policy.load(path: file, environment: [:])
        let json = dir.appendingPathComponent("verdict.json").path
        let outcome = try await executeVerify(policy, configuration: LoadConfiguration(plan: policy.scenario.plan),
                                              options: VerifyRunOptions(file: file, json: json, quiet: true, reports: ReportOutputs()))
        let object = FileManager.default.contents(atPath: json).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        return (outcome, object)
    }

    @Test func theDeclaredSplitPassesAndTheResultSaysSo() async throws {
        let (outcome, object) = try await verify(expect: "{v1: 100}", echoVersion: "v1")
        #expect(outcome == .passed)
        let verdict = try #require((object?["verdicts"] as? [[String: Any]])?.first)
        #expect(verdict["passed"] as? Bool == true)
        #expect(verdict["decided"] as? Bool == true)
        // How the test converged: the counts as they grew, ending at the verdict's.
        let evidence = try #require(verdict["evidence"] as? [String: Any])
        let trajectory = try #require(evidence["trajectory"] as? [[String: Any]], "\(evidence)")
        let samples = trajectory.compactMap { $0["samples"] as? Int }
        #expect(samples.count == trajectory.count && samples.count >= 2 && samples.count <= 200)
        #expect(samples == samples.sorted() && Set(samples).count == samples.count)
        #expect(samples.last == evidence["requests"] as? Int)
        #expect((trajectory.last?["counts"] as? [String: Int]) == (evidence["counts"] as? [String: Int]))
    }

    /// One client, one destination: a split not in effect and a client-keyed balancer look alike from here, so the
    /// verdict is withheld under `routing: auto`; declared per-connection routing makes it a FAIL.
    @Test func oneDeclaredDestinationOnlyIsUndecidedUnlessRoutingIsDeclared() async throws {
        let (outcome, object) = try await verify(expect: "{v1: 90, v2: 10}", echoVersion: "v1")
        guard case .undecided = outcome else {
            Issue.record("expected undecided, got \(outcome)")
            return
        }
        let verdict = try #require((object?["verdicts"] as? [[String: Any]])?.first)
        #expect(verdict["decided"] as? Bool == false)
        #expect((verdict["reason"] as? String)?.contains("routing is keyed by the client") == true, "\(verdict)")
        let (declared, _) = try await verify(expect: "{v1: 90, v2: 10}\n  routing: per-connection", echoVersion: "v1")
        #expect(declared == .failed)
    }

    @Test func anotherVersionServingFailsWithExitOne() async throws {
        let (outcome, object) = try await verify(expect: "{v2: 100}", echoVersion: "v1")
        #expect(outcome == .failed)
        #expect(outcome.exitCode == 1)
        let verdict = try #require((object?["verdicts"] as? [[String: Any]])?.first)
        #expect(verdict["passed"] as? Bool == false)
    }

    /// A policy mistake is not a mesh failure: a destination spelt with other capitals, or the wrong `recognise`
    /// (the workload read where versions are declared), makes the split undecided, naming the fix.
    @Test(arguments: [("{V1: 100}", "version", "compared exactly"), ("{v1: 100}", "workload", "check expect.recognise")])
    func aPolicyMistakeIsUndecidedNamingTheFix(split: String, recognise: String, fix: String) async throws {
        let (outcome, object) = try await verify(expect: split, echoVersion: "v1", recognise: recognise)
        guard case .undecided = outcome else {
            Issue.record("expected UNDECIDED, got \(outcome)")
            return
        }
        let verdict = try #require((object?["verdicts"] as? [[String: Any]])?.first)
        #expect(verdict["decided"] as? Bool == false)
        #expect((verdict["reason"] as? String ?? "").contains(fix), "\(verdict["reason"] ?? "")")
    }
}
