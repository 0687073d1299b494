import Foundation
import MeshprobeLoad
import MeshprobeSpec
@testable import MeshprobeReport
import Testing

/// Every result's last word and exit code, as the JSON's `outcome` writes them and the views show them.
@Suite struct ResultOutcomeTests {
    let configuration = LoadConfiguration(targets: [try! LoadTarget(parsing: "https://127.0.0.1:8443/")])

    func load(status: Int = 200, thresholds: [String] = []) throws -> LoadReport {
        var c = configuration
        c.plan.thresholds = try thresholds.map { try LoadThreshold(parsing: $0) }
        let r = result((1...1000).map { UInt64($0) * 1000 }, identity: mergeIdentity, status: status, labels: mergeLabels)
        return LoadReport(result: r, configuration: c, commandLine: ["meshprobe"], startedAt: Date(timeIntervalSince1970: 0), version: "test")
    }

    @Test func aLoadEndsByItsRunThenItsThresholds() throws {
        #expect(try load().outcome() == ResultOutcome("PASS"))
        var guarded = try load()
        guarded.summary.guardFired = .init(action: "stop", guardDescription: "error rate above 20.0%", second: 3, observed: "50.0% of 200 requests failed")
        guarded.summary.aborted = true
        let fired = guarded.outcome()
        // A guard that fired is a declared limit crossed: FAIL (exit 1), whether the load was then stopped or held.
        #expect(fired.result == "FAIL" && fired.exitCode == 1)
        #expect(fired.reason == "the guard 'error rate above 20.0%' fired in second 3 of the run (50.0% of 200 requests failed); the load was stopped")
        var signalled = try load(status: 503)
        signalled.summary.aborted = true
        #expect(signalled.outcome().result == "ABORTED" && signalled.outcome().exitCode == 3)
        #expect(try load(status: 503).outcome().result == "FAIL")
        #expect(try load(thresholds: ["p99.9<1s"]).outcome().result == "UNDECIDED")
        #expect(try load(thresholds: ["p95<1ms"]).outcome().exitCode == 1)
    }

    /// The most common failure is named with its proxy and flag; nginx refusing plaintext on its TLS port says what
    /// to do (a trial's finding: the summary dropped the flag and gave no hint).
    @Test func noSuccessNamesTheFailuresDetailAndNginxsPlaintextHint() throws {
        var r = try load(status: 400)
        r.failures = [LoadReport.Failure(origin: "proxy", reason: "access_denied", proxy: "nginx", flag: "plaintext refused", count: 2000)]
        #expect(RunReport.Check.noSuccessReason(r)
                == "no request succeeded: most common failure proxy: access_denied (nginx plaintext refused) (2000): the port serves TLS, use https://")
        r.failures = [LoadReport.Failure(origin: "proxy", reason: "upstream_timeout", proxy: "haproxy", count: 2000)]
        #expect(RunReport.Check.noSuccessReason(r) == "no request succeeded: most common failure proxy: upstream_timeout (haproxy) (2000)")
    }

    @Test func aSignalBeforeAnySuccessLeavesTheSuccessCheckUndecided() throws {
        var r = try load(status: 503)
        r.summary.aborted = true
        let check = try #require(RunReport.Check.loadChecks(r, guards: []).first { $0.name == "requests succeeded" })
        #expect(check.status == .undecided)
    }

    @Test func theJSONWritesTheOutcomeOfEachKindOfResult() throws {
        let json = try JSONSerialization.jsonObject(with: try load(thresholds: ["p95<1ms"]).jsonData()) as? [String: Any]
        let outcome = try #require(json?["outcome"] as? [String: Any])
        #expect(outcome["result"] as? String == "FAIL" && outcome["exit_code"] as? Int == 1)
        #expect((outcome["reason"] as? String)?.hasPrefix("threshold not met: p95<1ms") == true)

        var verify = VerifyReport(file: "p.yaml")
        verify.append(kind: "split", name: "split", passed: true, reason: nil, evidence: .facts(requests: 10, declared: [:], observed: [:], test: "t"))
        verify.addUndecided(kind: "slo", name: "slo", reason: "too few")
        #expect(verify.outcome == ResultOutcome("UNDECIDED", reason: "no verdict: 1 of 2 checks undecided (each says why above)"))
        verify.markAborted("a signal")
        #expect(verify.outcome.result == "ABORTED")
        verify.append(kind: "mtls", name: "mtls", passed: false, reason: "x", evidence: .facts(requests: 1, declared: [:], observed: [:], test: "t"))
        #expect(verify.outcome.result == "FAIL", "a failed check is a FAIL whatever else happened")
        let written = try JSONSerialization.jsonObject(with: try verify.jsonData()) as? [String: Any]
        #expect((written?["outcome"] as? [String: Any])?["result"] as? String == "FAIL")
    }

    @Test func aGameDaysWordMatchesItsExitCode() throws {
        func step(_ passed: Bool, decided: Bool = true) -> GameDayResult.Step {
            .init(name: "s", kind: "load", passed: passed, decided: decided, seconds: 1, problem: nil, faults: [], requests: nil,
                  failures: nil, verdicts: [], result: nil)
        }
        func gameday(_ steps: [GameDayResult.Step], skipped: [String] = [], faultsLeft: [String] = [], aborted: String? = nil) -> ResultOutcome {
            GameDayResult(file: "g.yaml", sha256: "", name: "g", aborted: aborted, steps: steps, skipped: skipped, faultsLeft: faultsLeft).outcome
        }
        #expect(gameday([step(true)]) == ResultOutcome("PASS"))
        // A fault left set: the mesh is not as it was, never a pass (exit 3, as GameDayVerdict.exit says).
        #expect(gameday([step(true)], faultsLeft: ["f1 on https://a"]).result == "INCOMPLETE")
        #expect(gameday([step(false)], skipped: ["later"]).result == "FAIL")
        #expect(gameday([step(true)], skipped: ["later"]).result == "INCOMPLETE")
        #expect(gameday([step(false, decided: false)]).result == "UNDECIDED")
        #expect(gameday([step(true)], aborted: "a signal").exitCode == 3)
        // A step that failed stays a FAIL when the game day stops after it.
        #expect(gameday([step(false)], aborted: "a signal") == ResultOutcome("FAIL", reason: "aborted: a signal; 1 step failed"))
    }
}
