import MeshprobeSpec
import Testing

/// A user's load, from flags or a file, becomes a load plan through one function, which judges the
/// combinations and names the fields each reader's way.
@Suite struct LoadSpecTests {
    func applied(_ change: (inout LoadSpec) -> Void) throws -> LoadPlan {
        var spec = LoadSpec()
        change(&spec)
        var plan = LoadPlan(targets: [try LoadTarget(parsing: "http://127.0.0.1:8080/")])
        try plan.apply(spec)
        return plan
    }

    func problem(_ change: (inout LoadSpec) -> Void) throws -> LoadSpec.Problem? {
        do { _ = try applied(change) } catch let problem as LoadSpec.Problem { return problem }
        return nil
    }

    @Test func aRateMakesTheOpenModelAndItsStagesMoveTheRate() throws {
        let c = try applied {
            $0.rate = 0
            $0.stages = [LoadStage(duration: 10, target: 100)]
            $0.arrivals = .poisson
            $0.sendTick = 0.0003
        }
        #expect(c.model == .open(rate: LoadProfile(start: 0, stages: [LoadStage(duration: 10, target: 100)]), arrivals: .poisson))
        #expect(c.sendTick == 0.0003)
        #expect(try applied { $0.rate = 50 }.model == .open(rate: LoadProfile(start: 50), arrivals: .uniform))
    }

    @Test func withoutARateStagesMoveTheConcurrency() throws {
        let c = try applied {
            $0.connections = 2
            $0.streams = 5
            $0.stages = [LoadStage(duration: 5, target: 10, ramp: false)]
            $0.think = 0.1
            $0.thinkJitter = 0.05
        }
        #expect(c.model == .closed(concurrency: LoadProfile(start: 0, stages: [LoadStage(duration: 5, target: 10, ramp: false)]), thinkTime: 0.1))
        #expect(c.connections == 2 && c.streamsPerConnection == 5 && c.thinkJitter == 0.05)
        #expect(try applied { _ in }.model == .closedAsFastAsPossible)
    }

    @Test func givenValuesAreSetAndTheRestKept() throws {
        let c = try applied {
            $0.requests = 7
            $0.churn = .every(3)
            $0.httpVersion = .http1
            $0.guards = [.p99(0.5)]
            $0.guardAction = .hold
            $0.coalesceWindow = 0
        }
        #expect(c.requests == 7 && c.churn == .every(3) && c.httpVersion == .http1 && c.guards == [.p99(0.5)] && c.guardAction == .hold)
        #expect(c.coalesceWindow == 0 && c.requestTimeout == 10 && c.connections == 1)
    }

    @Test func combinationsThatCannotWorkNameTheirFieldsTheReadersWay() throws {
        let flag: (LoadSpec.Field) -> String = { "--\($0)" }
        let cases: [((inout LoadSpec) -> Void, LoadSpec.Field, String)] = [
            ({ $0.rate = 0 }, .rate, "must be more than 0 requests per second (or 0 with --stages to ramp up from nothing)"),
            ({ $0.rate = 5; $0.think = 1 }, .think, "is for the closed model; with --rate, requests are sent on schedule"),
            ({ $0.rate = 5; $0.thinkJitter = 1 }, .thinkJitter, "is for the closed model; with --rate, requests are sent on schedule"),
            ({ $0.arrivals = .poisson }, .arrivals, "is for the open model (with --rate)"),
            ({ $0.sendTick = 0.001 }, .sendTick, "is for the open model (with --rate)"),
            ({ $0.think = 0.5; $0.thinkJitter = 1 }, .thinkJitter, "must not be more than --think (0.5s)"),
            ({ $0.connections = 2; $0.stages = [LoadStage(duration: 1, target: 3)] }, .stages,
             "a concurrency of 3 needs more than --connections x --streams = 2 streams"),
        ]
        for (change, field, message) in cases {
            let found = try #require(try problem(change), "\(field)")
            #expect(found.field == field)
            #expect(found.message(naming: flag) == message)
        }
    }
}
