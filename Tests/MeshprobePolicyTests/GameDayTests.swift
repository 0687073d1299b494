import Foundation
import MeshprobePolicy
import MeshprobeYAML
import Testing

@Suite struct GameDayFileTests {
    @Test func theExampleGameDayParsesWithItsStepsAndPlan() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("gamedays/reviews.yaml").path
        let gameday = try GameDay.load(path: path, environment: [:])
        #expect(gameday.steps.count == 5 && gameday.abortFile == "/tmp/meshprobe-abort")
        guard case .load(let rate, let duration) = gameday.steps[1].kind else { Issue.record("step 2 is a load"); return }
        #expect(rate == 200 && duration == 60 && gameday.steps[1].minimumSuccessRate == 0.99)
        let fault = try #require(gameday.steps[1].faults.first)
        #expect(fault.fault.status == 503 && fault.fault.statusShare == 50 && fault.fault.durationSeconds == 120)
        #expect(gameday.steps[2].faults.first?.fault.delayMs == 300)
        guard case .outlierDetection(let e) = gameday.steps[4].kind else { Issue.record("step 5 is outlier detection"); return }
        #expect(e.consecutiveErrors == 5 && e.faultTargets.count == 2)
        try gameday.check(maxRate: 1000, maxDuration: 900)
        #expect(throws: YAMLInputError.self) { try gameday.check(maxRate: 100, maxDuration: 900) }
        #expect(throws: YAMLInputError.self) { try gameday.check(maxRate: 1000, maxDuration: 60) }
    }

    @Test func aStepFaultTakesAGRPCStatusByNameOrNumber() throws {
        for (text, expected) in [("UNAVAILABLE", "UNAVAILABLE"), ("14", "14")] {
            let path = try writeTemporaryYAML("target: http://127.0.0.1:1/\ngameday:\n  steps:\n    - {rate: 10, duration: 1s, faults: [{target: https://10.0.0.1:8443, grpcStatus: \(text)}]}\n")
            defer { removeTemporary(path) }
            let gameday = try GameDay.load(path: path, environment: [:])
            #expect(gameday.steps[0].faults.first?.fault.grpcStatus == expected)
        }
    }

    @Test(arguments: [
        ("  steps:\n    - {rate: 10}\n", 4, "gameday.steps[0]", "duration"),
        ("  steps:\n    - {rate: 10, duration: 1s, circuitBreaker: {maxRequests: 2}}\n", 4, "gameday.steps[0]", "not rate and circuitBreaker"),
        ("  steps:\n    - {name: a}\n", 4, "gameday.steps[0]", "a step needs"),
        ("  steps:\n    - {rate: 10, duration: 1s, faults: [{target: http://10.0.0.1:8443, status: 503}]}\n", 4,
         "gameday.steps[0].faults[0].target", "mTLS"),
        ("  steps:\n    - {rate: 10, duration: 1s, faults: [{target: https://10.0.0.1:8443, statusShare: 50}]}\n", 4,
         "gameday.steps[0].faults[0].statusShare", "needs status"),
        ("  steps:\n    - {rate: 10, duration: 1s, faults: [{target: https://10.0.0.1:8443}]}\n", 4,
         "gameday.steps[0].faults[0]", "does nothing"),
        ("  steps:\n    - {rate: 10, duration: 1s, faults: [{target: https://10.0.0.1:8443, grpcStatus: OK}]}\n", 4,
         "gameday.steps[0].faults[0].grpcStatus", "gRPC error status"),
        ("  steps:\n    - {circuitBreaker: {maxRequests: 2}, expect: {p99: 1s}}\n", 4, "gameday.steps[0].expect", "load step"),
        ("  steps:\n    - {name: a, rate: 1, duration: 1s}\n    - {name: a, rate: 1, duration: 1s}\n", 5, "gameday.steps[1]", "another step"),
        ("  stepz: []\n", 3, "gameday.stepz", "unknown field"),
        // Values that passed --check and then crashed or aborted the run at once.
        ("  steps:\n    - {name: a, rate: 1e-300, duration: 1s}\n", 4, "gameday.steps[0].rate", "at least 0.001"),
        ("  abortFile: ''\n  steps:\n    - {name: a, rate: 1, duration: 1s}\n", 3, "gameday.abortFile", "path of a file"),
        ("  abortFile: /tmp\n  steps:\n    - {name: a, rate: 1, duration: 1s}\n", 3, "gameday.abortFile", "is a directory"),
    ])
    func badGameDaysNameTheLineAndField(_ body: String, _ line: Int, _ field: String, _ words: String) throws {
        let path = try writeTemporaryYAML("target: http://127.0.0.1:1/\ngameday:\n" + body)
        defer { removeTemporary(path) }
        #expect {
            try GameDay.load(path: path, environment: [:])
        } throws: { error in
            guard let e = error as? YAMLInputError else { return false }
            return e.line == line && e.field == field && e.message.contains(words)
        }
    }

    /// Each error of the game-day file `text` as `LINE field`, in the order they are reported.
    func places(_ text: String) throws -> [String] {
        let path = try writeTemporaryYAML(text)
        defer { removeTemporary(path) }
        do { _ = try GameDay.load(path: path, environment: [:]) } catch { return error.all.map { "\($0.line) \($0.field)" } }
        return []
    }

    @Test func threeMistakesInThreeStepsAndSectionsAreReportedTogether() throws {
        #expect(try places("""
            target: http://127.0.0.1:1/
            load: {connections: many}
            gameday:
              steps:
                - {name: warm, rate: 10}
                - {name: fine, rate: 10, duration: 1s}
                - {name: broken, rate: 10, duration: 1s, faults: [{target: http://10.0.0.1:8443, status: 503}]}
            """) == ["2 load.connections", "5 gameday.steps[0]", "7 gameday.steps[2].faults[0].target"])
    }

    @Test func aMisspeltKeyIsReportedWithoutTheStepsMissing() throws {
        #expect(try places("target: http://127.0.0.1:1/\ngameday:\n  stepz: []\n") == ["3 gameday.stepz"])
        #expect(try places("target: http://127.0.0.1:1/\ngamedy:\n  steps: []\n") == ["2 gamedy"])
    }

    @Test func everyStepOverTheRateCapIsNamed() throws {
        let path = try writeTemporaryYAML("""
            target: http://127.0.0.1:1/
            gameday:
              steps:
                - {name: a, rate: 500, duration: 1s}
                - {name: b, rate: 10, duration: 1s}
                - {name: c, rate: 800, duration: 1s}
            """)
        defer { removeTemporary(path) }
        let gameday = try GameDay.load(path: path, environment: [:])
        #expect {
            try gameday.check(maxRate: 100, maxDuration: 900)
        } throws: { error in
            guard let e = error as? YAMLInputError else { return false }
            return e.all.map { "\($0.line) \($0.field)" } == ["4 gameday.steps[0].rate", "6 gameday.steps[2].rate"]
                && e.all.allSatisfy { $0.message.contains("--max-rate") }
        }
    }
}
