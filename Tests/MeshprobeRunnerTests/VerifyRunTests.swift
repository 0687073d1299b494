import Foundation
import MeshprobeEcho
import MeshprobeLoad
import MeshprobePolicy
import MeshprobeRunner
import NIOPosix
import Testing

/// A verification run in-process, against an echo in-process: the outcome, and what the JSON result says.
@Suite struct VerifyRunTests {
    func verify(expect split: String, echoVersion: String) async throws -> (VerifyRunOutcome, [String: Any]?) {
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
              recognise: version
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
    }

    @Test func anotherVersionServingFailsWithExitOne() async throws {
        let (outcome, object) = try await verify(expect: "{v2: 100}", echoVersion: "v1")
        #expect(outcome == .failed)
        #expect(outcome.exitCode == 1)
        let verdict = try #require((object?["verdicts"] as? [[String: Any]])?.first)
        #expect(verdict["passed"] as? Bool == false)
    }
}
