import Testing
@testable import MeshprobeChecks
@testable import MeshprobeLoad

@Suite struct GameDayStateMachineTests {
    typealias Machine = GameDayStateMachine

    /// A step that finished with a (load) verdict, or without one (`verdicts: false`) and `problem`.
    func ended(_ name: String, verdicts: Bool = true, problem: String? = nil) -> GameDayRunner.StepOutcome {
        GameDayRunner.StepOutcome(name: name, verdicts: verdicts ? .load(LoadResult(), slo: []) : nil, problem: problem, seconds: 0)
    }

    @Test func stepsRunInTheFilesOrderAndTheRunFinishes() {
        var machine = Machine(steps: ["baseline", "fault", "recovery"])
        var started: [Int] = []
        while case .start(let index) = machine.nextAction(aborted: false) {
            started.append(index)
            #expect(machine.running == index)
            #expect(machine.stepEnded(ended(machine.names[index]), notCleared: [], seconds: 1.5, abortReason: nil, cancelled: false) == nil)
        }
        #expect(started == [0, 1, 2])
        let r1 = machine.nextAction(aborted: false)
        #expect(r1 == .finish, "finished stays finished")
        let outcome = machine.outcome(abortReason: nil, faultsLeft: [])
        #expect(outcome.steps.map(\.name) == ["baseline", "fault", "recovery"])
        #expect(outcome.steps.allSatisfy { $0.seconds == 1.5 && $0.problem == nil && $0.verdicts != nil })
        #expect(outcome.skipped.isEmpty && outcome.abortReason == nil)
    }

    @Test func anAbortDuringAStepDropsItsVerdictsAndSkipsTheRest() {
        var machine = Machine(steps: ["baseline", "fault", "recovery"])
        let r2 = machine.nextAction(aborted: false)
        #expect(r2 == .start(0))
        // The step's task was cancelled while its load still returned a result: cut short, so no verdict.
        let why = machine.stepEnded(ended("baseline"), notCleared: [], seconds: 0.4, abortReason: "a signal (SIGINT or SIGTERM)", cancelled: true)
        #expect(why == nil, "already aborted")
        #expect(machine.outcomes[0].verdicts == nil && machine.outcomes[0].problem == "aborted: a signal (SIGINT or SIGTERM)")
        let r3 = machine.nextAction(aborted: true)
        #expect(r3 == .finish, "the faults are still cleared by label at the end")
        #expect(machine.skipped == ["fault", "recovery"])
        let outcome = machine.outcome(abortReason: "a signal (SIGINT or SIGTERM)", faultsLeft: [])
        #expect(outcome.steps.count == 1 && outcome.abortReason == "a signal (SIGINT or SIGTERM)")
    }

    @Test func aStepThatEndedBeforeTheAbortKeepsItsVerdicts() {
        var machine = Machine(steps: ["baseline", "fault"])
        _ = machine.nextAction(aborted: false)
        _ = machine.stepEnded(ended("baseline"), notCleared: [], seconds: 1, abortReason: "the abort file /tmp/stop appeared", cancelled: false)
        #expect(machine.outcomes[0].verdicts != nil && machine.outcomes[0].problem == nil)
        let r4 = machine.nextAction(aborted: true)
        #expect(r4 == .finish)
        #expect(machine.skipped == ["fault"])
    }

    @Test func anAbortBeforeTheFirstStepSkipsEveryStepAndFinishes() {
        var machine = Machine(steps: ["a", "b"])
        let r5 = machine.nextAction(aborted: true)
        #expect(r5 == .finish)
        #expect(machine.skipped == ["a", "b"] && machine.outcomes.isEmpty)
    }

    @Test func aStepThatCouldNotRunEndsTheGameDay() {
        var machine = Machine(steps: ["baseline", "fault", "recovery"])
        _ = machine.nextAction(aborted: false)
        _ = machine.stepEnded(ended("baseline"), notCleared: [], seconds: 1, abortReason: nil, cancelled: false)
        let r6 = machine.nextAction(aborted: false)
        #expect(r6 == .start(1))
        let refused = "the echo at https://127.0.0.1:1 answered 403: caller not allowed"
        let why = machine.stepEnded(ended("fault", verdicts: false, problem: refused), notCleared: [], seconds: 0.1, abortReason: nil,
                                    cancelled: false)
        #expect(why == "step 'fault' could not run")
        #expect(machine.outcomes[1].problem == refused, "its own problem, not an abort")
        let r7 = machine.nextAction(aborted: true)
        #expect(r7 == .finish)
        #expect(machine.skipped == ["recovery"])
    }

    @Test func faultsLeftAfterAStepAreItsProblem() {
        var machine = Machine(steps: ["fault"])
        _ = machine.nextAction(aborted: false)
        let why = machine.stepEnded(ended("fault", problem: "the load ended before its planned end: every connection failed"),
                                    notCleared: ["f1 on https://a: path /, expires in at most 60 s (refused)", "f2 on https://b: (timeout)"],
                                    seconds: 1, abortReason: nil, cancelled: false)
        #expect(why == nil, "the last step: nothing after it to spoil")
        #expect(machine.outcomes[0].problem == "the load ended before its planned end: every connection failed; "
            + "could not clear f1 on https://a: path /, expires in at most 60 s (refused); could not clear f2 on https://b: (timeout)")
        #expect(machine.outcomes[0].verdicts != nil)
    }

    /// A fault left on a workload would be measured by the next step (the second trial's finding): the game day stops
    /// there, the later steps skipped.
    @Test func aFaultLeftBeforeALaterStepEndsTheGameDay() {
        var machine = Machine(steps: ["fault", "after"])
        _ = machine.nextAction(aborted: false)
        let why = machine.stepEnded(ended("fault"), notCleared: ["f1 on https://a: (certificate expired)"], seconds: 1, abortReason: nil,
                                    cancelled: false)
        #expect(why == "step 'fault' left a fault it could not clear, which the later steps would measure")
        #expect(machine.outcomes[0].verdicts != nil, "its own verdicts stand, with the problem")
        let next = machine.nextAction(aborted: true)
        #expect(next == .finish && machine.skipped == ["after"])
    }

    @Test func theWatchNamesTheAbortFileFirstThenTheTimeCap() {
        #expect(Machine.watch(abortFile: "/tmp/stop", abortFileExists: true, elapsed: 100, maxDuration: 60) == "the abort file /tmp/stop appeared")
        #expect(Machine.watch(abortFile: "/tmp/stop", abortFileExists: false, elapsed: 60.5, maxDuration: 60)
            == "the game day reached its time cap of 60 s")
        #expect(Machine.watch(abortFile: nil, abortFileExists: true, elapsed: 10, maxDuration: 60) == nil)
        #expect(Machine.watch(abortFile: "/tmp/stop", abortFileExists: false, elapsed: 60, maxDuration: 60) == nil, "at the cap, not past it")
    }
}

@Suite struct GameDayVerdictTests {
    @Test func aStepPassesOnlyWhenItRanEveryVerdictPassedAndNothingWentWrong() {
        #expect(GameDayVerdict.step(ran: true, passed: true, decided: true, problem: nil) == (true, true))
        #expect(GameDayVerdict.step(ran: true, passed: false, decided: true, problem: nil) == (false, true), "FAIL")
        #expect(GameDayVerdict.step(ran: true, passed: false, decided: false, problem: nil) == (false, false), "UNDECIDED")
        #expect(GameDayVerdict.step(ran: false, passed: true, decided: true, problem: "aborted: a signal") == (false, false), "not run")
    }

    @Test func aStepWithAProblemIsNotAPass() {
        // Its verdicts passed, but a fault was not cleared: undecided.
        #expect(GameDayVerdict.step(ran: true, passed: true, decided: true, problem: "could not clear f1") == (false, false))
        // A verdict failed anyway: FAIL.
        #expect(GameDayVerdict.step(ran: true, passed: false, decided: true, problem: "could not clear f1") == (false, true))
    }

    @Test func theExitFollowsTheContract() {
        func exit(_ failed: Int, _ undecided: Int, skipped: Int = 0, abort: String? = nil, left: [String] = []) -> [String]? {
            GameDayVerdict.exit(failed: failed, undecided: undecided, skipped: skipped, abortReason: abort, faultsLeft: left)
                .map { [$0.message, "\($0.code)"] }
        }
        #expect(exit(0, 0) == nil, "exit 0")
        #expect(exit(1, 0) == ["verdict: FAIL", "1"])
        #expect(exit(1, 1) == ["verdict: FAIL (and 1 step undecided)", "1"], "a FAIL is not hidden by an undecided step")
        #expect(exit(0, 2) == ["no verdict: 2 steps undecided or not run (each says why above)", "3"])
        #expect(exit(0, 0, skipped: 1) == ["no verdict: 1 step undecided or not run (each says why above)", "3"])
        #expect(exit(0, 0, abort: "a signal (SIGINT or SIGTERM)") == ["incomplete: a signal (SIGINT or SIGTERM)", "3"])
        // A step that failed stays a FAIL when the game day is stopped after it (as verify's FAIL does).
        #expect(exit(1, 0, abort: "a signal (SIGINT or SIGTERM)") == ["verdict: FAIL (and stopped early: a signal (SIGINT or SIGTERM))", "1"])
    }

    @Test func aFaultLeftIsNeverAPassAndIsNamed() {
        let left = ["f1 on https://a: path /, expires in 60 s (still listed with label gameday-0)"]
        let named = "; NOT cleared (each expires on its own): " + left[0]
        #expect(GameDayVerdict.exit(failed: 0, undecided: 0, skipped: 0, abortReason: nil, faultsLeft: left).map { [$0.message, "\($0.code)"] }
            == ["incomplete" + named, "3"])
        #expect(GameDayVerdict.exit(failed: 1, undecided: 0, skipped: 0, abortReason: nil, faultsLeft: left).map { [$0.message, "\($0.code)"] }
            == ["incomplete: a step failed (verdict FAIL)" + named, "3"], "a failed verdict with a fault left is not a plain FAIL")
        #expect(GameDayVerdict.exit(failed: 0, undecided: 1, skipped: 0, abortReason: "the abort file /tmp/stop appeared", faultsLeft: left)
            .map { [$0.message, "\($0.code)"] } == ["incomplete: the abort file /tmp/stop appeared" + named, "3"])
    }
}
