import Foundation
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeReport
import MeshprobeSpec
import MeshprobeTestSupport
import Testing

@Suite struct GameDayMergeTests {
    let identity = mergeIdentity
    let labels = mergeLabels
    let sha = String(repeating: "c", count: 64)

    func load(_ values: [UInt64]) throws -> LoadReport {
        let r = result(values, identity: identity, status: 200, labels: labels)
        let configuration = LoadConfiguration(targets: [try LoadTarget(parsing: "https://127.0.0.1:8443/")])
        return LoadReport(result: r, configuration: configuration, commandLine: [], startedAt: Date(timeIntervalSince1970: 0), version: "test",
                          inputs: [LoadReport.Input(role: "gameday", path: "g.yaml", sha256: sha)])
    }

    func slo(p99 limit: Double) -> VerifyReport.Verdict {
        VerifyReport.Verdict(kind: "slo", name: "SLO: p99 latency <= \(limit * 1000) ms", passed: true, decided: true, reason: nil,
                             evidence: .facts(requests: 0, declared: ["limit": limit, "percentile": 99], observed: [:], test: "point estimate"))
    }

    func procedure(passed: Bool) -> VerifyReport.Verdict {
        VerifyReport.Verdict(kind: "circuit_breaker", name: "circuit breaker: overflow", passed: passed, decided: true, reason: passed ? nil : "no overflow",
                             evidence: .facts(requests: 40, declared: ["max_requests": 5], observed: ["overflow": passed ? 10 : 0], test: "t"))
    }

    func gameday(load values: [UInt64]?, breakerPassed: Bool) throws -> GameDayResult {
        let loadStep = GameDayResult.Step(name: "steady", kind: "load", passed: values != nil, decided: values != nil, seconds: 2,
                                          problem: values == nil ? "aborted" : nil, faults: [], requests: values?.count, failures: [:],
                                          verdicts: values == nil ? [] : [slo(p99: 0.1)], result: try values.map(load))
        let breaker = GameDayResult.Step(name: "breaker", kind: "circuit_breaker", passed: breakerPassed, decided: true, seconds: 3,
                                         problem: nil, faults: [], requests: 40, failures: nil, verdicts: [procedure(passed: breakerPassed)],
                                         result: nil)
        return GameDayResult(file: "g.yaml", sha256: sha, name: "g", aborted: nil, steps: [loadStep, breaker], skipped: [], faultsLeft: [])
    }

    /// A fault the game day could not clear is not shown as cleared (it was, whatever happened).
    @Test func aFaultLeftSetIsMarkedNotCleared() throws {
        let step = GameDayResult.Step(name: "v1 fails", kind: "load", passed: true, decided: true, seconds: 2, problem: nil,
                                      faults: ["f1 on https://a:8443: status 503 for 50% on /, expires in 60s",
                                               "f2 on https://b:8443: delay 200ms for 100% on /, expires in 60s"],
                                      requests: 10, failures: [:], verdicts: [slo(p99: 0.1)], result: try load([1000, 2000]))
        let result = GameDayResult(file: "g.yaml", sha256: sha, name: "g", aborted: nil, steps: [step], skipped: [],
                                   faultsLeft: ["f2 on https://b:8443"])
        #expect(result.clearedNote(step.faults[0]) == "(cleared)")
        #expect(result.clearedNote(step.faults[1]).hasPrefix("(NOT cleared"))
        #expect(result.stepsText.contains("f2 on https://b:8443: delay 200ms for 100% on /, expires in 60s (NOT cleared"), "\(result.stepsText)")
        // As the game day names a fault left: ID on URL, then its path and expiry.
        var named = result
        named.faultsLeft = ["f1 on https://a:8443: path /, expires in 58 s (still listed with label gameday-0123456789ab)"]
        #expect(named.clearedNote(step.faults[0]).hasPrefix("(NOT cleared"))
        #expect(named.clearedNote(step.faults[1]) == "(cleared)")
    }

    @Test func theLoadStepsP99IsDecidedOnTheMergedHistogramAndProceduresStayPerFile() throws {
        // File a's p99 is fast (5 slow requests in 1000); file b's is 500 ms (15 in 1010). Merged, 20 slow requests in
        // 2010 are under 1%: the merged p99 is fast and the objective holds, where averaging the p99s would not.
        let fast = Array(repeating: UInt64(2_000), count: 995)
        let a = fast + Array(repeating: UInt64(500_000), count: 5)
        let b = fast + Array(repeating: UInt64(500_000), count: 15)
        let ga = try gameday(load: a, breakerPassed: true), gb = try gameday(load: b, breakerPassed: false)
        // Through JSON, as files are read.
        let read = try [("a.json", ga), ("b.json", gb)].map { name, g in
            (name, try GameDayMerge.read(data: try g.jsonData(), name: name))
        }
        let alone = try read.map { try GameDayMerge.merge([$0], commandLine: []).steps[0] }
        #expect(alone.map(\.passed) == [true, false])
        let merged = try GameDayMerge.merge(read, commandLine: [])
        let steady = merged.steps[0]
        #expect(steady.requests == 2010)
        #expect(steady.result?.summary.requests == 2010)
        let p99 = try #require(steady.verdicts.first?.evidence.observed["observed"])
        #expect(p99 < 0.01, "\(p99)")
        let averaged = alone.compactMap { $0.verdicts.first?.evidence.observed["observed"] }.reduce(0, +) / 2
        #expect(averaged > 0.1)
        #expect(steady.passed && steady.decided)
        // The breaker's verdicts: one per file, named with it; one failed, so the step fails.
        #expect(merged.steps[1].verdicts.map(\.name) == ["circuit breaker: overflow [a.json]", "circuit breaker: overflow [b.json]"])
        #expect(merged.steps[1].passed == false)
        #expect(merged.passed == false && merged.decided)
    }

    @Test func aLoadStepOneFileDidNotFinishIsUndecidedAndOtherStepsOrFilesAreRefused() throws {
        let merged = try GameDayMerge.merge([("a.json", try gameday(load: [1000, 2000], breakerPassed: true)),
                                             ("b.json", try gameday(load: nil, breakerPassed: true))], commandLine: [])
        #expect(merged.steps[0].decided == false)
        #expect(merged.steps[0].problem?.contains("b.json") == true, "\(merged.steps[0].problem ?? "")")
        #expect(merged.decided == false && merged.passed == false)

        var renamed = try gameday(load: [1000], breakerPassed: true)
        renamed.steps[1].name = "other breaker"
        #expect(throws: GameDayMerge.MergeError.self) {
            try GameDayMerge.merge([("a.json", try gameday(load: [1000], breakerPassed: true)), ("c.json", renamed)], commandLine: [])
        }
        var otherFile = try gameday(load: [1000], breakerPassed: true)
        otherFile.sha256 = String(repeating: "d", count: 64)
        let files = [("a.json", try gameday(load: [1000], breakerPassed: true)), ("d.json", otherFile)]
        do {
            _ = try GameDayMerge.merge(files, commandLine: [])
            Issue.record("another game day file was merged")
        } catch {
            #expect(error.description.hasPrefix("d.json: a run of another game day file"), "\(error)")
        }
    }
}
