import Testing
@testable import MeshprobeLoad

@Suite struct RunClockTests {
    let second: UInt64 = 1_000_000_000

    @Test func secondsWarmUpAndTheDeadlineCountFromTheStart() {
        let clock = RunClock(startingAt: 10 * second, plannedDuration: 5, warmup: 1.5)
        #expect(clock.second(of: 9 * second) == 0)
        #expect(clock.second(of: 10 * second + 999_999_999) == 0)
        #expect(clock.second(of: 11 * second) == 1)
        #expect(!clock.counts(intended: 11 * second))
        #expect(clock.counts(intended: 11 * second + second / 2))
        #expect(clock.measuredSeconds(at: 13 * second + second / 2) == 2)
        #expect(clock.isBeforeDeadline(15 * second - 1))
        #expect(!clock.isBeforeDeadline(15 * second))
    }

    @Test func aRestartMovesEverythingAndACountBoundedRunHasNoDeadline() {
        var clock = RunClock(startingAt: 0, plannedDuration: nil, warmup: 0)
        #expect(clock.deadline == nil && !clock.isBeforeDeadline(0))
        clock.restart(at: 3 * second)
        #expect(clock.start == 3 * second)
        #expect(clock.second(of: 4 * second) == 1)
        #expect(clock.counts(intended: 3 * second) && !clock.counts(intended: 3 * second - 1))
    }
}
