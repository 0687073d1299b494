import Testing
@testable import MeshprobeChecks

/// The split's trajectory for the convergence chart: bounded whatever the run's length, evenly spread, and ending
/// where the test decided.
@Suite struct SplitTrajectoryTests {
    @Test func aLongRunKeepsAtMostTheLimitEvenlySpread() {
        var trajectory = SplitTrajectory()
        for i in 0..<100_000 { trajectory.add([i % 10 == 0 ? "v2" : "v1": 1]) }
        let points = trajectory.points
        #expect(points.count <= SplitTrajectory.limit && points.count >= SplitTrajectory.limit / 2, "\(points.count)")
        let steps = Set(zip(points, points.dropFirst()).map { $1.samples - $0.samples })
        #expect(steps.count == 1, "evenly spread: \(steps.sorted())")
        #expect(points.allSatisfy { $0.counts.values.reduce(0, +) == $0.samples })
        #expect(points.last!.samples > 100_000 - 100_000 / SplitTrajectory.limit * 2)
    }

    @Test func aShortRunKeepsEverySample() {
        var trajectory = SplitTrajectory()
        for _ in 0..<50 { trajectory.add(["v1": 1]) }
        #expect(trajectory.points.map(\.samples) == Array(1...50))
    }

    @Test func connectionsAddSeveralSamplesAtOnce() {
        var trajectory = SplitTrajectory()
        trajectory.add(["v1": 3, "v2": 1])
        trajectory.add(["v1": 2])
        #expect(trajectory.points == [.init(samples: 4, counts: ["v1": 3, "v2": 1]), .init(samples: 6, counts: ["v1": 5, "v2": 1])])
    }

    /// The test stops counting once it decides; the trajectory ends at the verdict's counts.
    @Test func itEndsWhereTheTestDecided() {
        var trajectory = SplitTrajectory()
        for _ in 0..<30 { trajectory.add(["v1": 1]) }
        let points = trajectory.upTo(samples: 20, counts: ["v1": 20])
        #expect(points.count == 20)
        #expect(points.last == .init(samples: 20, counts: ["v1": 20]))
        #expect(trajectory.upTo(samples: 0, counts: [:]).isEmpty)
    }
}
