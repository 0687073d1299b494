import MeshprobeSpec
import Testing
@testable import MeshprobeLoad

/// The load models' admission rules on a virtual clock: every time is a number handed in, so these tests depend on
/// no timer and no machine speed.
@Suite struct ClosedAdmissionTests {
    let second: UInt64 = 1_000_000_000

    @Test func aBudgetAdmitsExactlyItsCountAndTakesBackWhatCouldNotBeSent() {
        var admission = ClosedAdmission(budget: 3, deadline: nil, concurrency: nil, share: 1, start: 0)
        let admitted = (0..<5).compactMap { admission.admit(at: UInt64($0), busy: 0) }
        #expect(admitted.map(\.intended) == [0, 1, 2])
        #expect(admitted.allSatisfy { !$0.scheduled && $0.waited == nil })
        #expect(!admission.wantsMore(at: 10))
        admission.putBack(admitted[2])
        #expect(admission.wantsMore(at: 10))
        let afterPutBack = admission.admit(at: 11, busy: 0)
        #expect(afterPutBack?.intended == 11)
        let beyondBudget = admission.admit(at: 12, busy: 0)
        #expect(beyondBudget == nil)
    }

    /// `-n` counts measured requests: those started in the warm-up are sent but do not spend the budget.
    @Test func warmUpRequestsDoNotSpendTheBudget() {
        var admission = ClosedAdmission(budget: 2, deadline: nil, concurrency: nil, share: 1, start: 0, warmupEnd: 10)
        let admitted = [1, 5, 9, 10, 11, 12].compactMap { admission.admit(at: UInt64($0), busy: 0) }
        #expect(admitted.map(\.intended) == [1, 5, 9, 10, 11])
        admission.putBack(admitted[0])  // a warm-up request handed back gives nothing back to the budget
        #expect(admission.admit(at: 13, busy: 0) == nil)
        admission.putBack(admitted[4])
        #expect(admission.admit(at: 14, busy: 0)?.intended == 14)
    }

    @Test func aDeadlineEndsAdmissionAtItsInstant() {
        var admission = ClosedAdmission(budget: nil, deadline: 5 * second, concurrency: nil, share: 1, start: 0)
        let justBefore = admission.admit(at: 5 * second - 1, busy: 1000)
        #expect(justBefore != nil)
        #expect(admission.wantsMore(at: 5 * second - 1))
        let atDeadline = admission.admit(at: 5 * second, busy: 0)
        #expect(atDeadline == nil)
        #expect(!admission.wantsMore(at: 5 * second))
        // A run bounded by time owes nothing when its connections give up: its requests were never counted out.
        let owed = admission.giveUp(begun: true)
        #expect(owed == 0)
    }

    @Test func aConcurrencyRampAdmitsThisWorkersShareOfItsCurrentTarget() {
        // 0 -> 20 virtual users over 10 s, this worker holding half of them: 5 at 5 s.
        let ramp = LoadProfile(start: 0, stages: [.init(duration: 10, target: 20)])
        var admission = ClosedAdmission(budget: nil, deadline: nil, concurrency: ramp, share: 0.5, start: 100)
        #expect(admission.movesWithTime)
        let atStart = admission.admit(at: 100, busy: 0)
        #expect(atStart == nil)
        let underTarget = admission.admit(at: 100 + 5 * second, busy: 4)
        #expect(underTarget != nil)
        let atTarget = admission.admit(at: 100 + 5 * second, busy: 5)
        #expect(atTarget == nil)
        // Held at 5 s: the target stays 10 (5 for this worker) while the ramp would have gone on.
        let held = admission.hold(at: 100 + 5 * second)
        #expect(held)
        let atHeldTarget = admission.admit(at: 100 + 9 * second, busy: 5)
        #expect(atHeldTarget == nil)
        let underHeldTarget = admission.admit(at: 100 + 9 * second, busy: 4)
        #expect(underHeldTarget != nil)
    }

    @Test func givingUpOwesTheRestOfTheBudget() {
        var admission = ClosedAdmission(budget: 10, deadline: nil, concurrency: nil, share: 1, start: 0)
        for t in 0..<4 { _ = admission.admit(at: UInt64(t), busy: 0) }
        let owed = admission.giveUp(begun: true)
        #expect(owed == 6)
        let afterGivingUp = admission.admit(at: 5, busy: 0)
        #expect(afterGivingUp == nil)
    }
}

@Suite struct OpenAdmissionTests {
    let ms: UInt64 = 1_000_000
    let second: UInt64 = 1_000_000_000

    func uniform(_ rate: Double, for seconds: Double? = nil, budget: Int? = nil, tick: UInt64? = nil) -> OpenAdmission {
        OpenAdmission(rate: .constant(rate), process: .uniform, budget: budget, share: 1, phase: 0, seed: 1,
                      plannedDuration: seconds, fixedTick: tick)
    }

    /// A budget with a warm-up: the arrivals due in the warm-up come on schedule but do not spend it.
    @Test func warmUpArrivalsDoNotSpendTheBudget() {
        var admission = uniform(100, budget: 50, tick: 0)
        admission.begin(at: 0, deadline: nil, warmupEnd: second)
        var intended: [UInt64] = []
        var t: UInt64 = 0
        while let wake = admission.advance(to: t) {
            while let admitted = admission.admit(at: t, busy: 0) { intended.append(admitted.intended) }
            t = wake
        }
        while let admitted = admission.admit(at: t, busy: 0) { intended.append(admitted.intended) }
        #expect(intended.filter { $0 < second }.count == 100, "a second of warm-up at 100/s")
        #expect(intended.filter { $0 >= second }.count == 50, "the budget, all measured")
    }

    @Test func arrivalsComeOnTheirScheduleAndLeaveWithTheirIntendedTimes() {
        var admission = uniform(1000, tick: 0)
        admission.begin(at: 7 * second, deadline: 8 * second)
        var intended: [UInt64] = []
        var t = 7 * second
        while let wake = admission.advance(to: t) {
            while let admitted = admission.admit(at: t, busy: 0) { intended.append(admitted.intended) }
            t = wake
        }
        while let admitted = admission.admit(at: t, busy: 0) { intended.append(admitted.intended) }
        #expect(intended.count == 1000)
        #expect(intended.first == 7 * second)
        #expect(zip(intended, intended.dropFirst()).allSatisfy { $1 - $0 == ms })
        #expect(intended.last! < 8 * second)
        #expect(!admission.wantsMore(at: t))
    }

    @Test func theTimerNeverTicksFasterThanTheSendTick() {
        var admission = uniform(100_000, tick: 500_000)
        admission.begin(at: 0, deadline: nil)
        // Arrivals every 10 µs; the next look is half a millisecond on, and the 50 arrivals due by then leave together.
        let wake = admission.advance(to: 0)
        #expect(wake == 500_000)
        #expect(admission.waiting == 1)
        _ = admission.advance(to: wake!)
        #expect(admission.waiting == 51)
    }

    @Test func anArrivalThatWaitedNamesWhyNoConnectionThenBusyStreams() {
        var admission = uniform(1000, tick: 0)
        admission.begin(at: 0, deadline: nil)
        _ = admission.advance(to: 2 * ms)  // three due: 0, 1 and 2 ms
        admission.blocked(anyConnectionReady: false)
        #expect(admission.waitingForAConnection)
        let first = admission.admit(at: 3 * ms, busy: 0)
        #expect(first?.waited == .noConnection)
        // A connection came up, its streams busy: the arrivals that waited through the outage still say so, the
        // one that came after waited for a stream.
        _ = admission.advance(to: 3 * ms)
        admission.blocked(anyConnectionReady: true)
        let outage = admission.admit(at: 4 * ms, busy: 0)
        #expect(outage?.intended == 1 * ms)
        #expect(outage?.waited == .noConnection)
        // Not sent after all: it goes back to the front, and the backlog still owes two arrivals that waited through
        // the outage and one that waited for a stream.
        admission.putBack(outage!)
        let rest = (0..<3).compactMap { _ in admission.admit(at: 4 * ms, busy: 0) }
        #expect(rest.map(\.intended) == [1 * ms, 2 * ms, 3 * ms])
        #expect(rest.filter { $0.waited == .noConnection }.count == 2)
        #expect(rest.filter { $0.waited == .streamsBusy }.count == 1)
        // An arrival that never waited for a slot and left late was held by the generator's own timer.
        _ = admission.dropWaiting()
        _ = admission.advance(to: 10 * ms)
        let onTime = admission.admit(at: 12 * ms, busy: 0)
        #expect(onTime?.waited == .generatorLag)
    }

    @Test func arrivalsWaitingPastTheTimeoutExpireOldestFirst() {
        var admission = uniform(1000, tick: 0)
        admission.begin(at: 0, deadline: nil)
        _ = admission.advance(to: 9 * ms)  // 10 due
        let expired = admission.expire(olderThan: 4 * ms)
        #expect(expired == 4)
        #expect(admission.waiting == 6)
        let oldestLeft = admission.admit(at: 20 * ms, busy: 0)
        #expect(oldestLeft?.intended == 4 * ms)
    }

    @Test func aBudgetStopsTheScheduleAndIsOwedInFullWhenConnectionsGiveUp() {
        var admission = uniform(1000, budget: 25, tick: 0)
        admission.begin(at: 0, deadline: nil)
        _ = admission.advance(to: 9 * ms)
        #expect(admission.waiting == 10)
        let owed = admission.giveUp(begun: true)
        #expect(owed == 25)
        #expect(!admission.wantsMore(at: 10 * ms))
    }

    @Test func aScheduleBoundedByTimeOwesEveryArrivalLeftInIt() {
        // 100/s for 2 s, given up at 0.5 s with 3 arrivals waiting: 3 + the 150 not yet due.
        var admission = uniform(100, for: 2, tick: 0)
        admission.begin(at: 0, deadline: 2 * second)
        _ = admission.advance(to: 20 * ms)
        while admission.admit(at: 0, busy: 0) != nil {}
        _ = admission.advance(to: 499 * ms)
        _ = admission.expire(olderThan: 470 * ms)
        #expect(admission.waiting == 3)
        let owed = admission.giveUp(begun: true)
        #expect(owed == 153)
        // Before the clock started, the whole planned schedule is owed.
        var never = uniform(100, for: 2, tick: 0)
        let owedBeforeStart = never.giveUp(begun: false)
        #expect(owedBeforeStart == 200)
    }

    @Test func aHeldRampKeepsTheRateItHadWhenHeld() {
        // 0 -> 1000/s over 10 s; held at 5 s: 500/s from then on, to the deadline.
        var admission = OpenAdmission(rate: LoadProfile(start: 0, stages: [.init(duration: 10, target: 1000)]),
                                      process: .uniform, budget: nil, share: 1, phase: 0, seed: 1, plannedDuration: 10,
                                      fixedTick: 0)
        admission.begin(at: 0, deadline: 10 * second)
        _ = admission.advance(to: 5 * second)
        _ = admission.dropWaiting()
        let held = admission.hold(at: 5 * second)
        #expect(held)
        var t = 5 * second
        while t < 6 * second, let wake = admission.advance(to: t) { t = min(wake, 6 * second) }
        #expect(admission.waiting == 500)
        // Held at the deadline: nothing is left to arrive.
        let heldAtDeadline = admission.hold(at: 10 * second)
        #expect(!heldAtDeadline)
        #expect(admission.nextArrival == nil)
    }
}
