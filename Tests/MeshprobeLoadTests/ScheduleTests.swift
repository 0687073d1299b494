import MeshprobeSpec
import Testing
@testable import MeshprobeLoad

@Suite struct LoadProfileTests {
    @Test func constantProfileHoldsForEverOrForItsDuration() {
        let forever = LoadProfile.constant(100)
        #expect(forever.totalDuration == nil)
        #expect(forever.value(at: 1e6) == 100)
        #expect(forever.cumulative(at: 2.5) == 250)
        #expect(forever.time(forCumulative: 250) == 2.5)
        let tenSeconds = LoadProfile.constant(100, duration: 10)
        #expect(tenSeconds.totalDuration == 10)
        #expect(tenSeconds.cumulative(at: 20) == 1000)
        #expect(tenSeconds.time(forCumulative: 1000.5) == nil)
    }

    @Test func rampsAreLinearAndHoldsAreFlat() {
        // 0 -> 100 over 10 s, hold 100 for 10 s, down to 0 over 10 s.
        let profile = LoadProfile(start: 0, stages: [.init(duration: 10, target: 100), .init(duration: 10, target: 100),
                                                     .init(duration: 10, target: 0)])
        #expect(profile.totalDuration == 30)
        #expect(profile.value(at: 5) == 50)
        #expect(profile.value(at: 15) == 100)
        #expect(profile.value(at: 25) == 50)
        #expect(profile.value(at: 31) == 0)
        // Areas: 500 + 1000 + 500.
        #expect(abs(profile.cumulative(at: 10) - 500) < 1e-9)
        #expect(abs(profile.cumulative(at: 30) - 2000) < 1e-9)
        #expect(abs(profile.cumulative(at: 25) - (1500 + 375)) < 1e-9)
    }

    @Test func timeForCumulativeInvertsCumulativeOnRampsUpAndDown() throws {
        let profile = LoadProfile(start: 20, stages: [.init(duration: 4, target: 200), .init(duration: 3, target: 50),
                                                      .init(duration: 2, target: 50, ramp: false)])
        for t in stride(from: 0.0, through: 9.0, by: 0.137) {
            let x = profile.cumulative(at: t)
            let back = try #require(profile.time(forCumulative: x))
            #expect(abs(back - t) < 1e-6, "t=\(t)")
        }
    }

    @Test func stepStagesJumpAtTheirStart() {
        let profile = LoadProfile(start: 10, stages: [.init(duration: 5, target: 10, ramp: false), .init(duration: 5, target: 40, ramp: false)])
        #expect(profile.value(at: 4.99) == 10)
        #expect(profile.value(at: 5) == 40)
        #expect(profile.cumulative(at: 10) == 250)
    }

    @Test func invalidStagesNameTheStage() {
        let profile = LoadProfile(start: 0, stages: [.init(duration: 5, target: 10), .init(duration: 0, target: 5)])
        #expect(throws: LoadPlanError.self) { try profile.validate(what: "rate", largest: 1e6) }
        #expect(throws: LoadPlanError.self) { try LoadProfile.constant(-1).validate(what: "rate", largest: 1e6) }
    }
}

@Suite struct ArrivalScheduleTests {
    @Test func uniformArrivalsAreEvenlySpacedAndEndWithTheProfile() {
        var schedule = ArrivalSchedule(profile: .constant(1000, duration: 1), share: 1, process: .uniform)
        var times: [Double] = []
        while let t = schedule.next() { times.append(t) }
        #expect(times.count == 1000)
        #expect(times.first == 0)
        for (a, b) in zip(times, times.dropFirst()) { #expect(abs((b - a) - 0.001) < 1e-9) }
    }

    @Test func workersWithSharesAndPhasesInterleaveToTheTotalRate() {
        // Two workers, half the rate each, phases 0 and 0.5: together one arrival every 1 ms.
        var a = ArrivalSchedule(profile: .constant(1000, duration: 1), share: 0.5, process: .uniform, phase: 0)
        var b = ArrivalSchedule(profile: .constant(1000, duration: 1), share: 0.5, process: .uniform, phase: 0.5)
        var times: [Double] = []
        while let t = a.next() { times.append(t) }
        while let t = b.next() { times.append(t) }
        times.sort()
        #expect(times.count == 1000)
        for (x, y) in zip(times, times.dropFirst()) { #expect(abs((y - x) - 0.001) < 1e-9) }
    }

    @Test func rampedArrivalsFollowTheRate() {
        // 0 -> 2000/s over 2 s: 2000 arrivals, a quarter of them in the first second.
        var schedule = ArrivalSchedule(profile: LoadProfile(start: 0, stages: [.init(duration: 2, target: 2000)]), share: 1, process: .uniform)
        var times: [Double] = []
        while let t = schedule.next() { times.append(t) }
        #expect(abs(times.count - 2000) <= 1)
        #expect(abs(times.filter { $0 < 1 }.count - 500) <= 1)
    }

    @Test func poissonArrivalsHaveTheRightMeanAndExponentialGaps() {
        var schedule = ArrivalSchedule(profile: .constant(1000, duration: 20), share: 1, process: .poisson, seed: 42)
        var times: [Double] = []
        while let t = schedule.next() { times.append(t) }
        // 20000 expected; a Poisson count has sd ~141: 5 sd either way.
        #expect(abs(times.count - 20000) < 710)
        let gaps = zip(times, times.dropFirst()).map { $1 - $0 }
        let mean = gaps.reduce(0, +) / Double(gaps.count)
        #expect(abs(mean - 0.001) < 0.00005)
        // Exponential: about e^-1 of the gaps exceed the mean.
        let longer = Double(gaps.filter { $0 > 0.001 }.count) / Double(gaps.count)
        #expect(abs(longer - 0.3679) < 0.02)
        // Same seed, same schedule.
        var again = ArrivalSchedule(profile: .constant(1000, duration: 20), share: 1, process: .poisson, seed: 42)
        #expect(again.next() == times[0])
    }
}
