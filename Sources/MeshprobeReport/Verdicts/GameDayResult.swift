import Foundation
import MeshprobeIdentity

/// A game day's verdicts, per step, for the terminal and as JSON (`meshprobe.gameday.result/v2`).
///
/// v2 added what `merge` needs to combine game days run at once from several places (one Job per cluster): the game
/// day file's SHA-256, each step's kind, and each load step's lossless result (`meshprobe.load/v2`: counts and
/// histograms), from which its objectives are decided again.
public struct GameDayResult: Codable, Sendable {
    public static let schemaVersion = "meshprobe.gameday.result/v2"

    public struct Step: Codable, Sendable {
        public var name: String
        /// load, circuit_breaker, outlier_detection or retries.
        public var kind: String
        public var passed: Bool
        public var decided: Bool
        public var seconds: Double
        public var problem: String?
        public var faults: [String]
        public var requests: Int?
        public var failures: [String: Int]?
        public var verdicts: [VerifyReport.Verdict]
        /// A load step that ran to its end: its lossless result (what `merge` adds up).
        public var result: LoadReport?

        public init(name: String, kind: String, passed: Bool, decided: Bool, seconds: Double, problem: String?, faults: [String],
                    requests: Int?, failures: [String: Int]?, verdicts: [VerifyReport.Verdict], result: LoadReport?) {
            self.name = name
            self.kind = kind
            self.passed = passed
            self.decided = decided
            self.seconds = seconds
            self.problem = problem
            self.faults = faults
            self.requests = requests
            self.failures = failures
            self.verdicts = verdicts
            self.result = result
        }
    }

    public var schema = Self.schemaVersion
    public var file: String
    /// SHA-256 of the game day file: `merge` combines only runs of the same file.
    public var sha256: String
    public var name: String
    public var passed: Bool
    public var decided: Bool
    public var aborted: String?
    public var steps: [Step]
    public var skipped: [String]
    public var faultsLeft: [String]

    /// "(cleared)", or "(NOT cleared)" for a fault (`ID on URL: summary`) that `faultsLeft` lists (`ID on URL`, then
    /// `: ...`, ` (...)` or ` [file]`).
    public func clearedNote(_ fault: String) -> String {
        // A URL holds no ": ", so the first one ends `ID on URL`.
        let key = fault.range(of: ": ").map { String(fault[..<$0.lowerBound]) } ?? fault
        let left = faultsLeft.contains { $0 == key || $0.hasPrefix(key + ":") || $0.hasPrefix(key + " ") }
        return left ? "(NOT cleared: it expires on its own)" : "(cleared)"
    }
    /// The files merged into this one, when it is a merge.
    public var mergedFrom: [String]?

    /// The last word (`outcome`), written with the result; recomputed, never read back.
    var writtenOutcome: ResultOutcome?

    enum CodingKeys: String, CodingKey {
        case schema, file, sha256, name, passed, decided, aborted, steps, skipped, faultsLeft
        case writtenOutcome = "outcome"
        case mergedFrom = "merged_from"
    }

    /// A result whose outcome follows from its steps: passed when every step passed and none was skipped or aborted.
    public init(file: String, sha256: String, name: String, aborted: String?, steps: [Step], skipped: [String], faultsLeft: [String],
                mergedFrom: [String]? = nil) {
        self.file = file
        self.sha256 = sha256
        self.name = name
        self.aborted = aborted
        self.steps = steps
        self.skipped = skipped
        self.faultsLeft = faultsLeft
        self.mergedFrom = mergedFrom
        passed = aborted == nil && steps.allSatisfy(\.passed) && skipped.isEmpty
        decided = steps.allSatisfy(\.decided) && skipped.isEmpty
    }

    /// Steps decided and failed, and steps without a verdict (their reasons are theirs).
    public var failedSteps: Int { steps.filter { $0.decided && !$0.passed }.count }
    public var undecidedSteps: Int { steps.filter { !$0.decided }.count }

    /// INCOMPLETE (a fault left set), FAIL (a step failed, whatever the others and an abort), INCOMPLETE (aborted,
    /// steps not run), UNDECIDED, or PASS: the word that matches the exit code (`GameDayVerdict.exit`: 3, 1, 3, 3, 0).
    public var outcomeWord: String {
        if !faultsLeft.isEmpty { return "INCOMPLETE" }
        if failedSteps > 0 { return "FAIL" }
        if aborted != nil || !skipped.isEmpty { return "INCOMPLETE" }
        return passed ? "PASS" : "UNDECIDED"
    }

    /// Every step with its verdicts and evidence, then the skipped steps and why the game day aborted.
    public var stepsText: String {
        var out = ""
        for step in steps {
            // The words of the verdict table and the last line: a step that could not run is undecided.
            let status = step.passed ? "PASS" : step.decided ? "FAIL" : "UNDECIDED"
            out += String(format: "%@  %@ (%.1f s)", status, step.name, step.seconds)
            if let requests = step.requests {
                out += ": \(counted(requests, "request"))"
                if let failures = step.failures, !failures.isEmpty {
                    out += "; failed: " + failures.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                }
            }
            out += "\n"
            for fault in step.faults { out += "      fault \(fault) \(clearedNote(fault))\n" }
            if let problem = step.problem { out += "      \(problem)\n" }
            var report = VerifyReport(file: file)
            report.verdicts = step.verdicts
            out += report.verdictText.split(separator: "\n", omittingEmptySubsequences: false).map { $0.isEmpty ? "" : "    \($0)" }
                .joined(separator: "\n")
        }
        for name in skipped { out += "SKIPPED  \(name)\n" }
        if let aborted { out += "INCOMPLETE: \(aborted)\n" }
        return out
    }

    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var written = self
        written.writtenOutcome = outcome
        return try encoder.encode(written)
    }
}
