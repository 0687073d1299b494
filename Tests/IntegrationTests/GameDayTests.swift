import Foundation
import MeshprobeEcho
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeLab
import MeshprobePolicy
import MeshprobeTLS
import NIOConcurrencyHelpers
import NIOPosix
import Testing

/// `meshprobe gameday` end to end: HAProxy in front of two mTLS echo workloads, faults set through their control
/// API for a step and cleared after it, caps the file cannot raise, and aborts (signal, abort file) that stop at once
/// and leave no fault behind.
@Suite(.timeLimit(.minutes(3))) struct GameDayTests {
    let control: ControlLab
    var pki: LabPKIFixture { control.pki }
    var proberSVID: (cert: String, key: String) { control.proberSVID }

    init() throws { control = try ControlLab() }

    struct Lab {
        var v1: EchoServer
        var v2: EchoServer
        var proxy: BackgroundProcess
        var port: Int
        var dir: URL

        func close() async {
            proxy.stop()
            try? FileManager.default.removeItem(at: dir)
            await v1.close()
            await v2.close()
        }
    }

    func startLab() async throws -> Lab {
        let v1 = try await control.startEcho(version: "v1"), v2 = try await control.startEcho(version: "v2")
        let (proxy, port, dir) = try startHAProxy([("v1", v1.port, 100), ("v2", v2.port, 100)]) {
            $0.serverClientCertificate = control.haproxyPEM
            $0.retries = 0
        }
        return Lab(v1: v1, v2: v2, proxy: proxy, port: port, dir: dir)
    }

    func gameday(_ lab: Lab, steps: String, extra: String = "") throws -> String {
        let path = lab.dir.appendingPathComponent("gameday-\(UUID().uuidString).yaml").path
        try """
            name: reviews game day
            target: http://127.0.0.1:\(lab.port)/reviews
            identity: {cert: \(proberSVID.cert), key: \(proberSVID.key), ca: \(pki.caFile)}
            load: {connections: 2, streams: 10}
            gameday:
            \(extra)  steps:
            \(steps)
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func faultsLeft(_ lab: Lab) async throws -> [FaultControlJSON.Fault] { try await control.faults(on: [lab.v1, lab.v2]) }

    func json(_ path: String) -> [String: Any] {
        FileManager.default.contents(atPath: path).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] } ?? [:]
    }

    @Test func stepsRunInOrderWithTheirFaultsClearedAndOneVerdictEach() async throws {
        let lab = try await startLab()
        defer { Task { await lab.close() } }
        let file = try gameday(lab, steps: """
                - name: baseline
                  rate: 100
                  duration: 1s
                  expect: {successRate: 0.9}   # decidable on 100 requests (0.999 would need about 6500)
                - name: v1 fails half its requests
                  rate: 100
                  duration: 1s
                  faults: [{target: https://127.0.0.1:\(lab.v1.port), status: 503, statusShare: 50}]
                  expect: {successRate: 0.99}
                - name: after
                  rate: 100
                  duration: 1s
                  expect: {successRate: 0.9}
            """)
        let out = lab.dir.appendingPathComponent("result.json").path
        let junit = lab.dir.appendingPathComponent("result.xml").path
        let html = lab.dir.appendingPathComponent("result.html").path
        let run = try await run(meshprobeBinary, ["gameday", file, "--quiet", "--json", out, "--junit", junit, "--html", html], timeout: 60)
        // The fault makes about a quarter of the requests fail (half of v1's): the second step fails, the others pass.
        #expect(run.status == 1, "\(run.stdout)\(run.stderr)")
        let steps = json(out)["steps"] as? [[String: Any]] ?? []
        #expect(steps.map { $0["passed"] as? Bool } == [true, false, true], "\(run.stdout)")
        #expect(try await ResultSchema.gameday.violation(in: out) == nil)
        let failures = steps.count == 3 ? steps[1]["failures"] as? [String: Int] ?? [:] : [:]
        #expect(failures.keys.contains { $0.contains("application") && $0.contains("503") }, "\(failures)")
        #expect(run.stdout.contains("(cleared)"), "\(run.stdout)")
        #expect(try await faultsLeft(lab).isEmpty)
        // JUnit: a suite per step, the failed SLO a failure in the second; the HTML report has the game day's timeline.
        let xml = try String(contentsOfFile: junit, encoding: .utf8)
        #expect(xml.components(separatedBy: "<testsuite ").count - 1 == 3, "\(xml)")
        #expect(xml.contains("<testsuite name=\"v1 fails half its requests\" tests=\"1\" failures=\"1\" errors=\"0\""), "\(xml)")
        #expect(xml.contains("<testsuites name=\"meshprobe gameday: "), "\(xml)")
        let page = try String(contentsOfFile: html, encoding: .utf8)
        #expect(page.contains("id=\"gameday-timeline\""))
        #expect(page.components(separatedBy: "class=\"verdict failed\"").count - 1 == 1)
    }

    @Test(arguments: ["signal", "file"])
    func anAbortStopsAtOnceAndClearsEveryFault(how: String) async throws {
        let lab = try await startLab()
        defer { Task { await lab.close() } }
        let abortFile = lab.dir.appendingPathComponent("stop").path
        let file = try gameday(lab, steps: """
                - name: long
                  rate: 50
                  duration: 60s
                  faults: [{target: https://127.0.0.1:\(lab.v1.port), delay: 10ms}, {target: https://127.0.0.1:\(lab.v2.port), status: 500, statusShare: 1}]
                - name: never
                  rate: 50
                  duration: 5s
            """, extra: "  abortFile: \(abortFile)\n")
        let out = lab.dir.appendingPathComponent("result.json").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: meshprobeBinary)
        process.arguments = ["gameday", file, "--quiet", "--json", out]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        let exitedAt = NIOLockedValueBox<Date?>(nil)
        process.terminationHandler = { _ in exitedAt.withLockedValue { $0 = Date() } }
        try process.run()
        // Wait until the faults are in place, then abort.
        let deadline = Date() + 10
        while try await faultsLeft(lab).count < 2 && Date() < deadline { try await Task.sleep(for: .milliseconds(100)) }
        #expect(try await faultsLeft(lab).count == 2)
        let aborted = Date()
        if how == "signal" {
            kill(process.processIdentifier, SIGTERM)
        } else {
            _ = FileManager.default.createFile(atPath: abortFile, contents: nil)
        }
        while process.isRunning && Date().timeIntervalSince(aborted) < 15 { try await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        let took = (exitedAt.withLockedValue { $0 } ?? Date()).timeIntervalSince(aborted)
        #expect(took < 5, "exited \(took)s after the abort")
        #expect(process.terminationStatus == 3)
        #expect(try await faultsLeft(lab).isEmpty, "every fault is cleared on the way out")
        let result = json(out)
        #expect((result["aborted"] as? String)?.contains(how == "signal" ? "signal" : "abort file") == true, "\(result)")
        #expect(result["skipped"] as? [String] == ["never"])
        #expect(result["passed"] as? Bool == false)
        #expect(try await ResultSchema.gameday.violation(in: out) == nil, "an aborted game day's result too")
    }

    @Test func theCapsAreTheOperatorsAndTheFileCannotRaiseThem() async throws {
        let lab = try await startLab()
        defer { Task { await lab.close() } }
        let file = try gameday(lab, steps: """
                - name: too fast
                  rate: 5000
                  duration: 1s
            """)
        let refused = try await run(meshprobeBinary, ["gameday", file, "--check"], timeout: 30)
        #expect(refused.status == 2)
        #expect(refused.stderr.contains(":8:") && refused.stderr.contains("gameday.steps[0].rate") && refused.stderr.contains("--max-rate"), "\(refused.stderr)")
        let allowed = try await run(meshprobeBinary, ["gameday", file, "--check", "--max-rate", "6000"], timeout: 30)
        #expect(allowed.status == 0, "\(allowed.stderr)")
        let long = try await run(meshprobeBinary, ["gameday", file, "--check", "--max-rate", "6000", "--max-duration", "500ms"], timeout: 30)
        #expect(long.status == 2 && long.stderr.contains("--max-duration"), "\(long.stderr)")
    }

    /// A fault for a workload that is not there: the step cannot run, the game day stops (exit 3) and the fault set
    /// on the other workload before it is cleared. A game day with faults but no client certificate is bad input.
    @Test func anUnknownWorkloadStopsTheGameDayAndNoFaultStays() async throws {
        let lab = try await startLab()
        defer { Task { await lab.close() } }
        let nobody = try freePort()
        let file = try gameday(lab, steps: """
                - name: two faults
                  rate: 20
                  duration: 2s
                  faults: [{target: https://127.0.0.1:\(lab.v1.port), status: 503}, {target: https://127.0.0.1:\(nobody), status: 503}]
                - name: never
                  rate: 20
                  duration: 1s
            """)
        let out = lab.dir.appendingPathComponent("result.json").path
        let result = try await run(meshprobeBinary, ["gameday", file, "--quiet", "--json", out], timeout: 60)
        #expect(result.status == 3, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("cannot reach the echo at https://127.0.0.1:\(nobody)"), "\(result.stdout)")
        #expect(json(out)["skipped"] as? [String] == ["never"])
        #expect(try await ResultSchema.gameday.violation(in: out) == nil, "a step that could not run, with its problem")
        #expect(try await faultsLeft(lab).isEmpty, "the fault set on v1 before the failure was cleared")

        let anonymous = try String(contentsOfFile: file, encoding: .utf8)
            .replacingOccurrences(of: "identity: {cert: \(proberSVID.cert), key: \(proberSVID.key), ca: \(pki.caFile)}", with: "identity: {ca: \(pki.caFile)}")
        try anonymous.write(toFile: file, atomically: true, encoding: .utf8)
        let noCert = try await run(meshprobeBinary, ["gameday", file, "--quiet"], timeout: 30)
        #expect(noCert.status == 2 && noCert.stderr.contains("client SVID"), "\(noCert.stderr)")
    }
}
