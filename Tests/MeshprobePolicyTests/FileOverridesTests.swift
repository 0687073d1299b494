import Foundation
import MeshprobeIdentity
import MeshprobePolicy
import MeshprobeScenario
import MeshprobeYAML
import Testing

/// A policy's and a game day's own sections take `--set` too, and their errors and the caps' say where a value came
/// from.
@Suite struct PolicyFileOverridesTests {
    let policy = """
        policy: meshprobe.policy/v1
        target: https://reviews.bookinfo:8443/
        identity: {svidDir: /var/run/secrets/workload-spiffe-credentials, expectPeer: cluster.local}
        expect:
          split: {v1: 90, v2: 10}
          tolerance: 0.05
        """

    func assignments(_ texts: String...) throws -> FileOverrides {
        FileOverrides(assignments: try texts.map { text throws(InputValueError) in try YAMLOverride(assignment: text) })
    }

    @Test func setChangesAPolicysExpectAndTargetReplacesItsTarget() throws {
        let path = try writeTemporaryYAML(policy)
        defer { removeTemporary(path) }
        var overrides = try assignments("expect.tolerance=0.03", "load.connections=2")
        overrides.targets = ["https://127.0.0.1:8443/"]
        let p = try Policy.load(path: path, environment: [:], overrides: overrides)
        #expect(p.statistics.tolerance == 0.03 && p.routes[0].statistics.tolerance == 0.03)
        #expect(p.scenario.plan.connections == 2 && p.scenario.plan.targets.map(\.host) == ["127.0.0.1"])
        let wide = try assignments("expect.tolerance=0.7")
        do {
            _ = try Policy.load(path: path, environment: [:], overrides: wide)
            Issue.record("a tolerance of 0.7 is refused")
        } catch {
            #expect(error.line == 6 && error.field == "expect.tolerance", "\(error)")
            #expect(error.message.contains("below 0.5") && error.message.contains("(the value comes from --set expect.tolerance=0.7)"), "\(error)")
        }
    }

    /// A check of a whole mapping (the split's weights together) names each change made inside it; an error about
    /// another field names none.
    @Test func aWholeSplitsErrorNamesTheSetsInsideIt() throws {
        let path = try writeTemporaryYAML(policy)
        defer { removeTemporary(path) }
        let overrides = try assignments("expect.split.v1=40", "expect.tolerance=0.04")
        do {
            _ = try Policy.load(path: path, environment: [:], overrides: overrides)
            Issue.record("weights summing to 50 are refused")
        } catch {
            #expect(error.field == "expect.split" && error.message.contains("the weights sum to 50"), "\(error)")
            #expect(error.message.hasSuffix("(with --set expect.split.v1=40)"), "\(error)")
            #expect(!error.message.contains("the value comes from") && !error.message.contains("tolerance"), "\(error)")
        }
    }

    @Test func aGameDayStepsRateFromSetIsCappedNamingTheSet() throws {
        let path = try writeTemporaryYAML("""
            target: https://127.0.0.1:8443/
            identity: {svidDir: /nonexistent}
            gameday:
              steps:
                - {name: base, rate: 10, duration: 1s}
            """)
        defer { removeTemporary(path) }
        let gameday = try GameDay.load(path: path, environment: [:], overrides: try assignments("gameday.steps[0].rate=5000"))
        guard case .load(let rate, _) = gameday.steps[0].kind else { Issue.record("a load step"); return }
        #expect(rate == 5000)
        do {
            try gameday.check(maxRate: 1000, maxDuration: 900)
            Issue.record("over the cap")
        } catch {
            #expect(error.line == 5 && error.field == "gameday.steps[0].rate" && error.message.contains("--max-rate")
                    && error.message.contains("(the value comes from --set gameday.steps[0].rate=5000)"), "\(error)")
        }
    }
}
