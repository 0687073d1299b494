import Foundation
import MeshprobeEcho
import MeshprobeChecks
import MeshprobeTestSupport
import NIOConcurrencyHelpers
import NIOPosix
import Testing

extension EndToEnd {
    /// SIGTERM and SIGINT at random moments of `load`, `run`, `verify` and `gameday`, from the first milliseconds to the
    /// end: every signalled process exits 3 within 2 s, a result it writes says it was aborted, and a game day leaves no
    /// fault behind.
    ///
    /// The earliest moments: a signal is handled from the executable's `.preinit_array` on; before that only the kernel
    /// (mapping the 110 MB release binary) and the dynamic loader run: a SIGTERM 2 ms after exec still met the default
    /// action, one 4 ms after did not (release binary, idle machine); the debug build loads 25 shared libraries, 5-20 ms
    /// on a busy 2-core machine. So the earliest signal is sent after 15 ms with the release binary, 40 ms with the debug.
    @Suite(.timeLimit(.minutes(4)), .tags(.timing)) struct SignalTimingTests {
        struct Outcome: CustomStringConvertible {
            var command: String
            var offset: Double
            var signal: Int32
            var status: Int32
            var secondsAfterSignal: Double
            var exitedBeforeSignal: Bool
            var resultAborted: Bool?
            /// What the run left behind (a game day's faults), as `after` found it.
            var leftBehind: [String] = []
            /// The end of what it wrote to stderr.
            var stderr = ""
            var description: String {
                String(format: "%@ %@ at %.3f s: exit %d %.2f s later, result aborted %@%@%@", command, signal == SIGTERM ? "SIGTERM" : "SIGINT",
                       offset, status, secondsAfterSignal, resultAborted.map { "\($0)" } ?? "(none)",
                       leftBehind.isEmpty ? "" : ", left behind: " + leftBehind.joined(separator: "; "),
                       stderr.isEmpty ? "" : ", stderr: " + stderr)
            }
        }

        /// The binary, and the earliest moment a signal may be sent to it (see the suite's comment).
        static var binary: (path: String, earliest: Double) {
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            let release = root.appendingPathComponent(".build/release/meshprobe").path
            let debug = meshprobeBinary
            // The release build (CI builds it first, in scripts/check-static-build) counts only when it is newer than every
            // source file: built from these sources.
            let fm = FileManager.default
            let modified = { (path: String) in (try? fm.attributesOfItem(atPath: path)[.modificationDate] as? Date) ?? .distantPast }
            var newestSource = Date.distantPast
            if let files = fm.enumerator(atPath: root.appendingPathComponent("Sources").path) {
                for case let file as String in files {
                    newestSource = max(newestSource, modified(root.appendingPathComponent("Sources/\(file)").path))
                }
            }
            if fm.isExecutableFile(atPath: release) && modified(release) > newestSource { return (release, 0.015) }
            return (debug, 0.04)
        }

        /// Runs `arguments` `tries` times, each signalled at a random moment: a third in the first 50 ms after the earliest,
        /// the rest up to `span` seconds; `aborted` reads the JSON result it wrote, if any; `after` (on this thread, after
        /// each run) says what the run left behind, and puts it right for the next one.
        static func trials(_ command: String, _ arguments: @escaping @Sendable (String) -> [String], tries: Int, span: Double, seed: UInt64,
                           aborted: @escaping @Sendable ([String: Any]) -> Bool,
                           after: @escaping @Sendable () -> [String] = { [] }) async -> [Outcome] {
            await withCheckedContinuation { continuation in
                DispatchQueue.global().async {
                    var random = SplitMixForTests(seed: seed)
                    let (binary, earliest) = Self.binary
                    var outcomes: [Outcome] = []
                    for i in 0..<tries {
                        let json = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-signal-\(UUID().uuidString).json").path
                        let offset = i % 3 == 0 ? earliest + random.unit() * 0.05 : earliest + random.unit() * span
                        let sig = random.unit() < 0.5 ? SIGTERM : SIGINT
                        guard let process = try? SignalledProcess(binary, arguments(json)) else { continue }
                        Thread.sleep(forTimeInterval: offset)
                        let before = !process.isRunning
                        let sent = Date()
                        if !before { process.send(sig) }
                        let output = process.finishBlocking(within: 5)
                        let elapsed = (process.exitedAt ?? Date()).timeIntervalSince(sent)
                        let object = FileManager.default.contents(atPath: json).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
                        try? FileManager.default.removeItem(atPath: json)
                        let status = output.uncaughtSignal ? -output.status : output.status
                        outcomes.append(Outcome(command: command, offset: offset, signal: sig, status: status, secondsAfterSignal: elapsed,
                                                exitedBeforeSignal: before, resultAborted: object.map(aborted), leftBehind: after(),
                                                stderr: String(output.stderr.suffix(300))))
                    }
                    continuation.resume(returning: outcomes)
                }
            }
        }

        @Test func everySignalEndsTheRunWithExit3WithinTwoSecondsAndAnAbortedResult() async throws {
            let v1 = try await startEcho(version: "v1", tls: nil)
            defer { Task { await v1.close() } }
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-signals-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            let target = "http://127.0.0.1:\(v1.port)/reviews?delay=2ms"
            let scenario = dir.appendingPathComponent("scenario.yaml").path
            try "target: \(target)\nload: {connections: 2, streams: 4, duration: 3s}\n".write(toFile: scenario, atomically: true, encoding: .utf8)
            // An objective that needs about 6500 requests: the verification runs for seconds.
            let policy = dir.appendingPathComponent("policy.yaml").path
            try """
                policy: meshprobe.policy/v1
                target: \(target)
                load: {connections: 2, streams: 4}
                expect:
                  split: {v1: 100}
                  slo: {successRate: 0.999}
                """.write(toFile: policy, atomically: true, encoding: .utf8)
            let loadAborted: @Sendable ([String: Any]) -> Bool = { ($0["summary"] as? [String: Any])?["aborted"] as? Bool == true }
            async let load = Self.trials("load", { ["load", target, "-c", "2", "-m", "4", "-d", "3s", "--quiet", "--json", $0] },
                                         tries: 50, span: 1.5, seed: 1, aborted: loadAborted)
            async let run = Self.trials("run", { ["run", scenario, "--quiet", "--json", $0] }, tries: 50, span: 1.5, seed: 2, aborted: loadAborted)
            async let verify = Self.trials("verify", { ["verify", policy, "--quiet", "--json", $0] }, tries: 50, span: 1.5, seed: 3,
                                           aborted: { $0["aborted"] as? Bool == true })
            let all = await load + run + verify
            let signalled = all.filter { !$0.exitedBeforeSignal }
            for outcome in signalled {
                #expect(outcome.status == 3 && outcome.secondsAfterSignal < 2, "\(outcome)")
                #expect(outcome.resultAborted != false, "a result written after a signal says aborted: \(outcome)")
            }
            #expect(signalled.count >= 140, "\(all.count - signalled.count) of \(all.count) runs ended before their signal")
            let early = signalled.filter { $0.offset < Self.binary.earliest + 0.05 }.count
            print("signals: \(signalled.count) runs signalled (\(early) in their first 50 ms), binary \(Self.binary.path)")
        }
    }
}

extension EndToEnd.SignalTimingTests {
    /// A game day against an mTLS echo, with a fault in each of its first two steps (about 1.9 s in all, the signals
    /// within its first 1.65 s, as for the other commands: a signal in the last milliseconds before the exit can
    /// only meet a process already on its way out), signalled at random moments: besides exit 3 within 2 s and an
    /// aborted result, the echo's control API lists no fault after any run.
    @Test func everySignalEndsAGameDayWithExit3WithinTwoSecondsAndNoFaultLeft() async throws {
        let lab = try ControlLab()
        let echo = try await lab.startEcho(version: "v1")
        defer { Task { await echo.close() } }
        let url = "https://127.0.0.1:\(echo.port)"
        let file = try lab.pki.write("gameday-signals.yaml", """
            name: signals
            target: \(url)/reviews
            identity: {cert: \(lab.proberSVID.cert), key: \(lab.proberSVID.key), ca: \(lab.pki.caFile)}
            load: {connections: 1, streams: 4}
            gameday:
              steps:
                - name: v1 fails a tenth
                  rate: 50
                  duration: 800ms
                  faults: [{target: \(url), status: 503, statusShare: 10}]
                - name: v1 slow
                  rate: 50
                  duration: 400ms
                  faults: [{target: \(url), delay: 2ms}]
                - name: after
                  rate: 50
                  duration: 400ms
            """)
        let client = try FaultClient(url: url, tls: try lab.controlTLS())
        let outcomes = await Self.trials("gameday", { ["gameday", file, "--quiet", "--json", $0] }, tries: 50, span: 1.6, seed: 4,
                                         aborted: { ($0["aborted"] as? String)?.isEmpty == false },
                                         after: { Self.faultsLeft(on: client) })
        let signalled = outcomes.filter { !$0.exitedBeforeSignal }
        for outcome in signalled {
            #expect(outcome.status == 3 && outcome.secondsAfterSignal < 2, "\(outcome)")
            #expect(outcome.resultAborted != false, "a result written after a signal says aborted: \(outcome)")
        }
        for outcome in outcomes { #expect(outcome.leftBehind.isEmpty, "\(outcome)") }
        #expect(signalled.count >= 45, "\(outcomes.count - signalled.count) of \(outcomes.count) game days ended before their signal")
        print("signals: \(signalled.count) game days signalled, binary \(Self.binary.path)")
    }

    /// The faults on the echo, listed through its control API (and then cleared, for the next run); from a Dispatch
    /// thread.
    static func faultsLeft(on client: FaultClient) -> [String] {
        let found = NIOLockedValueBox<[String]>(["(the echo's faults could not be listed)"])
        let done = DispatchSemaphore(value: 0)
        Task {
            let group = MultiThreadedEventLoopGroup.singleton
            if let faults = try? await client.list(group: group) {
                found.withLockedValue { $0 = faults.map { "\($0.id): \($0.summary), label \($0.label ?? "none")" } }
                if !faults.isEmpty { _ = try? await client.clear(group: group) }
            }
            done.signal()
        }
        _ = done.wait(timeout: .now() + 30)
        return found.withLockedValue { $0 }
    }

    /// SIGTERM while the end-of-run Pushgateway push waits on a server that accepted and never answers: exit 3 within
    /// 2 s of the signal (the push is cut at the signal's deadline), with the reason on stderr.
    @Test(arguments: ["load", "gameday", "verify"])
    func aSignalDuringAStalledPushgatewayPushEndsWithExit3WithinTwoSeconds(command: String) async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let gateway = try await SilentListener.start()
        defer { Task { await gateway.stop() } }
        let pki = try LabPKIFixture()
        let target = "http://127.0.0.1:\(echo.port)/reviews"
        let json = pki.directory.appendingPathComponent("push.json").path
        let arguments: [String]
        if command == "load" {
            arguments = ["load", target, "-n", "20", "--quiet", "--json", json]
        } else if command == "verify" {
            let file = try pki.write("policy-push.yaml", """
                policy: meshprobe.policy/v1
                target: \(target)
                expect:
                  split: {v1: 100}
                """)
            arguments = ["verify", file, "--quiet", "--json", json]
        } else {
            let file = try pki.write("gameday-push.yaml", """
                name: push
                target: \(target)
                gameday:
                  steps:
                    - {name: short, rate: 20, duration: 500ms}
                """)
            arguments = ["gameday", file, "--quiet", "--json", json]
        }
        let process = try SignalledProcess(Self.binary.path, arguments + ["--pushgateway", "http://127.0.0.1:\(gateway.port)"])
        // The push has begun once the gateway has a connection (nothing else connects to it).
        let started = try await process.wait { gateway.acceptedCount > 0 }
        try #require(started && gateway.acceptedCount == 1, "the push never started: \(process.stderr)")
        let (took, output) = try await process.signal(SIGTERM)
        let err = output.stderr
        #expect(output.status == 3, "\(err)")
        #expect(took < 2, "exited \(took) s after the signal")
        print(String(format: "push: %@ exited %.3f s after the signal", command, took))
        #expect(err.contains("not pushed: the Pushgateway at http://127.0.0.1:\(gateway.port) had not answered 1.5 s after the signal"), "\(err)")
        let object = FileManager.default.contents(atPath: json).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        // Whether written after the push (load) or written again after it (gameday), the result says aborted, as the
        // exit code does.
        if command == "load" {
            #expect((object?["summary"] as? [String: Any])?["aborted"] as? Bool == true, "\(String(describing: object))")
        } else if command == "verify" {
            // Every verdict was reached before the signal: they stand, and the result says it was aborted.
            #expect(object?["aborted"] as? Bool == true, "\(String(describing: object))")
            let verdicts = object?["verdicts"] as? [[String: Any]] ?? []
            #expect(!verdicts.isEmpty && verdicts.allSatisfy { $0["decided"] as? Bool == true && $0["passed"] as? Bool == true },
                    "\(verdicts)")
            #expect(err.contains("during the Pushgateway push; every verdict above was reached before it"), "\(err)")
        } else {
            #expect((object?["aborted"] as? String)?.contains("after the result was complete") == true, "\(String(describing: object))")
        }
    }
}

/// A seeded generator for the test's random moments.
struct SplitMixForTests {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
