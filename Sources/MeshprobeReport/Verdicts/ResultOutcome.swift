import MeshprobeIdentity
import MeshprobeSpec

/// A result's last word as every view says it (the terminal's last line, the HTML badge, JUnit's `meshprobe.outcome`,
/// the JSON's `outcome`), with the exit code that goes with it: PASS 0, FAIL 1, UNDECIDED, ABORTED or INCOMPLETE 3.
public struct ResultOutcome: Codable, Sendable, Equatable {
    /// PASS, FAIL, UNDECIDED, ABORTED (a signal stopped a load) or INCOMPLETE (a game day that did not run its course).
    public var result: String
    public var exitCode: Int32
    /// Why it is not a PASS, in the words the terminal prints; nil for a PASS.
    public var reason: String?

    enum CodingKeys: String, CodingKey {
        case result, reason
        case exitCode = "exit_code"
    }

    public init(_ result: String, reason: String? = nil) {
        self.result = result
        self.exitCode = Self.exitCode(of: result)
        self.reason = reason
    }

    /// The exit code of a last word (docs/conventions.md).
    public static func exitCode(of word: String) -> Int32 {
        switch word {
        case "PASS": 0
        case "FAIL": 1
        default: 3
        }
    }
}

extension LoadReport {
    /// How the load ended, by the same rules for one run, a sharded run's merge and `merge`: a guard that fired fails
    /// it (the target crossed a declared limit, whether the load was then stopped or held), a signal aborts it, an
    /// early end or no success fails it, then its thresholds judge it. `part` names it in the reason (`a shard`).
    public func outcome(part: String = "the run") -> ResultOutcome {
        let s = summary
        if let fired = s.guardFired {
            let done = fired.action == GuardAction.hold.rawValue ? "held there" : "stopped"
            return ResultOutcome("FAIL", reason: "the guard '\(fired.guardDescription)' fired in second \(fired.second) of \(part) (\(fired.observed)); the load was \(done)")
        }
        if s.aborted { return ResultOutcome("ABORTED", reason: "\(part) was aborted (a signal) before it completed") }
        if let why = s.endedEarly { return ResultOutcome("FAIL", reason: "\(part) ended before its planned end: \(why)") }
        if s.succeeded == 0 { return ResultOutcome("FAIL", reason: RunReport.Check.noSuccessReason(self)) }
        let verdicts = thresholds ?? []
        let failed = verdicts.filter { $0.decided && !$0.passed }
        let undecided = verdicts.filter { !$0.decided }
        if !failed.isEmpty {
            let more = undecided.isEmpty ? "" : " (and \(counted(undecided.count, "threshold")) undecided)"
            return ResultOutcome("FAIL", reason: "threshold\(failed.count == 1 ? "" : "s") not met: "
                + failed.map { "\($0.threshold): \($0.reason ?? "failed")" }.joined(separator: "; ") + more)
        }
        if !undecided.isEmpty {
            return ResultOutcome("UNDECIDED", reason: "no verdict: " + undecided.map { "\($0.threshold): \($0.reason ?? "undecided")" }.joined(separator: "; "))
        }
        return ResultOutcome("PASS")
    }
}

extension VerifyReport {
    /// FAIL when a verdict failed (whatever else happened), ABORTED when a signal stopped the run, UNDECIDED when a
    /// verdict could not decide, else PASS.
    public var outcome: ResultOutcome {
        let failed = verdicts.filter { $0.decided && !$0.passed }.count
        let undecided = verdicts.filter { !$0.decided }.count
        if failed > 0 {
            return ResultOutcome("FAIL", reason: "verdict: FAIL (\(failed) of \(verdicts.count) checks failed" + (undecided > 0 ? ", \(undecided) undecided)" : ")"))
        }
        if aborted == true { return ResultOutcome("ABORTED", reason: "aborted: \(undecided) of \(verdicts.count) checks undecided (each says why above)") }
        if undecided > 0 { return ResultOutcome("UNDECIDED", reason: "no verdict: \(undecided) of \(verdicts.count) checks undecided (each says why above)") }
        return ResultOutcome("PASS")
    }
}

extension GameDayResult {
    /// The game day's word (`outcomeWord`) and the message of its exit (`GameDayVerdict.exit`'s rules).
    public var outcome: ResultOutcome {
        let word = outcomeWord
        guard word != "PASS" else { return ResultOutcome(word) }
        var why: [String] = []
        if let aborted { why.append("aborted: \(aborted)") }
        if failedSteps > 0 { why.append("\(counted(failedSteps, "step")) failed") }
        if undecidedSteps > 0 { why.append("\(counted(undecidedSteps, "step")) undecided") }
        if !skipped.isEmpty { why.append("\(counted(skipped.count, "step")) not run") }
        if !faultsLeft.isEmpty { why.append("NOT cleared (each expires on its own): " + faultsLeft.joined(separator: "; ")) }
        return ResultOutcome(word, reason: why.joined(separator: "; "))
    }
}
