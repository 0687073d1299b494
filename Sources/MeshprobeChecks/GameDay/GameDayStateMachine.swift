/// A game day's decisions: which step runs next, what a finished step's outcome is once its faults are cleared and
/// an abort is taken into account, and when the game day aborts.
///
/// Events in (a step ended, the abort switch's reason), actions out (start a step, finish). The owner
/// (`GameDayRunner`) runs the steps, clears the faults and watches for aborts; every path ends in `.finish`, after
/// which the owner clears every fault with the run's label, whatever happened before.
public struct GameDayStateMachine: Sendable {
    public enum Action: Sendable, Equatable {
        /// Run the step at this index.
        case start(Int)
        /// Every step ran or was skipped: clear what is left with the run's label, and return the outcome.
        case finish
    }

    /// The steps' names, in the file's order.
    public let names: [String]
    /// The next step to consider.
    public private(set) var next = 0
    /// The step started and not yet ended.
    public private(set) var running: Int?
    public private(set) var outcomes: [GameDayRunner.StepOutcome] = []
    /// Steps never started because the game day aborted.
    public private(set) var skipped: [String] = []

    public init(steps names: [String]) {
        self.names = names
    }

    /// What to do next, given whether the game day has aborted: steps after an abort are skipped, in order.
    public mutating func nextAction(aborted: Bool) -> Action {
        precondition(running == nil, "a step is still running")
        while next < names.count {
            let index = next
            next += 1
            if aborted {
                skipped.append(names[index])
                continue
            }
            running = index
            return .start(index)
        }
        return .finish
    }

    /// The running step ended with `outcome`; `notCleared` are the faults it left that the owner could not clear,
    /// `seconds` how long it took, `abortReason` the game day's abort (if any) and `cancelled` whether the step's task
    /// was cancelled. Returns the reason to abort the game day with, when this step ends it.
    public mutating func stepEnded(_ outcome: GameDayRunner.StepOutcome, notCleared: [String], seconds: Double, abortReason: String?,
                                   cancelled: Bool) -> String? {
        guard let index = running else { preconditionFailure("no step is running") }
        running = nil
        var outcome = outcome
        for left in notCleared {
            outcome.problem = [outcome.problem, "could not clear \(left)"].compactMap { $0 }.joined(separator: "; ")
        }
        outcome.seconds = seconds
        // An aborted step has no verdict: what it measured was cut short.
        if let why = abortReason, outcome.verdicts == nil || cancelled {
            outcome.verdicts = nil
            outcome.problem = "aborted: \(why)"
        }
        outcomes.append(outcome)
        // A step that could not run (a refused control API, an unreachable target) ends the game day: the later steps
        // assume it happened.
        if outcome.verdicts == nil && abortReason == nil { return "step '\(names[index])' could not run" }
        // A fault it could not clear is still on the workload until it expires: a later step would measure it, not the
        // mesh as the file says. The game day stops (the faults are tried once more at the end).
        if !notCleared.isEmpty && abortReason == nil && index < names.count - 1 {
            return "step '\(names[index])' left \(notCleared.count == 1 ? "a fault" : "\(notCleared.count) faults") it could not clear, which the later steps would measure"
        }
        return abortReason == nil ? outcome.endsGameDay : nil
    }

    /// The game day's outcome once it has finished.
    public func outcome(abortReason: String?, faultsLeft: [String]) -> GameDayRunner.Outcome {
        GameDayRunner.Outcome(steps: outcomes, skipped: skipped, abortReason: abortReason, faultsLeft: faultsLeft)
    }

    /// Why the game day must abort while a step runs, checked in this order: the abort file appeared, or the run
    /// passed its time cap; nil when neither.
    public static func watch(abortFile: String?, abortFileExists: Bool, elapsed: Double, maxDuration: Double) -> String? {
        if let file = abortFile, abortFileExists { return "the abort file \(file) appeared" }
        if elapsed > maxDuration { return String(format: "the game day reached its time cap of %.0f s", maxDuration) }
        return nil
    }
}

/// A game day's verdicts from their parts: each step's, and the exit that the whole run ends with.
public enum GameDayVerdict {
    /// A step's verdict: `ran` (it finished with verdicts), whether they all passed and all were decided, and its
    /// problem (its load ended early, a fault not cleared). A step with a problem did not pass: undecided, unless a
    /// verdict failed anyway.
    public static func step(ran: Bool, passed: Bool, decided: Bool, problem: String?) -> (passed: Bool, decided: Bool) {
        (ran && passed && problem == nil, ran && decided && (problem == nil || !passed))
    }

    /// How the run ends once its result is written, from its steps' verdicts (`failed`: decided and failed;
    /// `undecided`; `skipped`: never run): nil for exit 0, else the message and the exit code. 1 a step failed (as in
    /// `verify`, a FAIL is not hidden by another step's undecided verdict, nor by an abort after it); 3 aborted, a step undecided or skipped,
    /// or a fault left. The message names every fault left: the mesh is not as it was, so never a pass (nor a plain
    /// FAIL) a pipeline may go on from.
    public static func exit(failed: Int, undecided: Int, skipped: Int, abortReason: String?,
                            faultsLeft: [String]) -> (message: String, code: Int32)? {
        let left = faultsLeft.isEmpty ? "" : "; NOT cleared (each expires on its own): " + faultsLeft.joined(separator: "; ")
        if failed > 0 {
            var also = undecided > 0 ? ["\(undecided) step\(undecided == 1 ? "" : "s") undecided"] : []
            if let why = abortReason { also.append("stopped early: \(why)") }
            let detail = also.isEmpty ? "" : " (and \(also.joined(separator: "; ")))"
            // A fault left makes the run incomplete (exit 3), as its result says, though a step failed.
            if !faultsLeft.isEmpty { return ("incomplete: a step failed (verdict FAIL)" + detail + left, 3) }
            return ("verdict: FAIL" + detail, 1)
        }
        if let why = abortReason { return ("incomplete: \(why)\(left)", 3) }
        if undecided > 0 || skipped > 0 {
            return ("no verdict: \(undecided + skipped) step\(undecided + skipped == 1 ? "" : "s") undecided or not run (each says why above)" + left, 3)
        }
        if !faultsLeft.isEmpty { return ("incomplete" + left, 3) }
        return nil
    }
}
