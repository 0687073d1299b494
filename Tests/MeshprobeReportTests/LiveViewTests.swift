import Foundation
import MeshprobeLoad
import MeshprobeSpec
import Testing

@testable import MeshprobeReport

/// The live view's lines from synthetic progress snapshots: right from the first update, the stage's own target,
/// and an outage never shown with the last good second's numbers.
@Suite struct LiveViewTests {
    static let planned = 5.0
    /// 2026-12-07T07:20:01Z
    static let now = Date(timeIntervalSince1970: 1_796_628_001)

    func plan(rate: LoadProfile = .constant(300)) throws -> LoadPlan {
        var plan = LoadPlan(targets: [try LoadTarget(parsing: "http://127.0.0.1:8080/")])
        plan.model = .open(rate: rate, arrivals: .uniform)
        plan.duration = Self.planned
        return plan
    }

    /// A finished second with `responses` answers of `micros` each.
    func second(_ s: Int, responses: Int, micros: UInt64 = 500) -> TimelinePoint {
        var bucket = TimelineBucket(second: s)
        bucket.sent = responses
        bucket.responses = responses
        bucket.succeeded = responses
        for _ in 0..<responses { _ = bucket.latency.record(micros) }
        return TimelinePoint(bucket)
    }

    func progress(clock: Double?, sent: Int, ok: Int, window: TimelinePoint? = nil, target: Double? = 300) -> LoadGenerator.Progress {
        LoadGenerator.Progress(responses: ok, succeeded: ok, sent: sent, window: window, clock: clock, targetRate: target)
    }

    @Test func theFirstUpdateShowsThePartialSecondsCountsAndRate() throws {
        var state = LiveViewState()
        let status = state.update(progress(clock: 0.99, sent: 297, ok: 297), wallElapsed: 1.0)
        #expect(status.rate.rounded() == 300)
        #expect(status.lastSecond == nil)
        let line = try LiveView(plan: plan()).line(status, at: Self.now)
        #expect(line == "2026-12-07T07:20:01Z elapsed=1.0s/5.0s rate=300/s target=300/s inflight=0 sent=297 ok=297 failed=0 late=0 p50=- p99=- last_second=partial")
        let block = try LiveView(plan: plan()).block(status)
        #expect(block[0].contains("rate 300/s (target 300/s)"))
        #expect(block[1] == "  last second: the first is not over (1.0s so far: 297 ok, 0 failed)")
    }

    @Test func laterUpdatesTakeTheRateSinceThePreviousOneAndTheLastSecondsPercentiles() throws {
        var state = LiveViewState()
        _ = state.update(progress(clock: 0.99, sent: 297, ok: 297), wallElapsed: 1.0)
        let status = state.update(progress(clock: 1.99, sent: 597, ok: 597, window: second(0, responses: 297, micros: 500)),
                                  wallElapsed: 2.0)
        #expect(status.rate.rounded() == 300)
        let line = try LiveView(plan: plan()).line(status, at: Self.now)
        #expect(line.contains(" rate=300/s target=300/s inflight=0 sent=597 ok=597 failed=0 late=0 p50=0.50"))
        #expect(line.contains("p99=0.50"))
        #expect(!line.contains("last_second="))
    }

    @Test func aStagedRunShowsTheTargetTheEngineReportsNotOneComputedFromTheViewsOwnClock() throws {
        let staged = try plan(rate: LoadProfile(start: 100, stages: [LoadStage(duration: 2, target: 1500, ramp: true),
                                                                     LoadStage(duration: 2, target: 0, ramp: true)]))
        var state = LiveViewState()
        let status = state.update(progress(clock: 3.9, sent: 3000, ok: 3000, target: 75), wallElapsed: 4.2)
        #expect(LiveView(plan: staged).line(status, at: Self.now).contains(" target=75/s "))
        #expect(LiveView(plan: staged).block(status)[0].contains("(target 75/s)"))
    }

    @Test func theEndOfARunKeepsTheLastTargetAndTheRateOfItsLastInterval() throws {
        var state = LiveViewState()
        _ = state.update(progress(clock: 4.0, sent: 1200, ok: 1200, window: second(2, responses: 300)), wallElapsed: 4.0)
        // Draining past the planned end: the engine reports the rate the schedule ended at.
        let status = state.update(progress(clock: 5.0, sent: 1500, ok: 1500, window: second(3, responses: 300)), wallElapsed: 5.0)
        let line = try LiveView(plan: plan()).line(status, at: Self.now)
        #expect(line.contains("elapsed=5.0s/5.0s rate=300/s target=300/s"))
    }

    @Test func anOutageShowsNoResponsesAndHowLongNotTheLastGoodSecond() throws {
        var state = LiveViewState()
        _ = state.update(progress(clock: 1.0, sent: 300, ok: 300), wallElapsed: 1.0)
        _ = state.update(progress(clock: 2.0, sent: 600, ok: 600, window: second(0, responses: 300)), wallElapsed: 2.0)
        // The server went away: nothing ends any more, while the last finished second still had answers.
        var status = state.update(progress(clock: 3.0, sent: 900, ok: 600, window: second(1, responses: 300)), wallElapsed: 3.0)
        status = state.update(progress(clock: 5.0, sent: 1500, ok: 600, window: second(3, responses: 0)), wallElapsed: 5.0)
        #expect(status.rate == 0)
        #expect(status.percentiles == nil)
        let view = try LiveView(plan: plan())
        let line = view.line(status, at: Self.now)
        #expect(line.contains(" rate=0/s "))
        #expect(line.hasSuffix("p50=- p99=- last_second=no_responses no_response_for=3s"))
        #expect(view.block(status)[1] == "  last second: no responses (none for 3s)")
    }

    @Test func aServerThatNeverAnsweredSaysNoneYet() throws {
        var state = LiveViewState()
        let status = state.update(progress(clock: 1.0, sent: 300, ok: 0), wallElapsed: 1.0)
        let view = try LiveView(plan: plan())
        #expect(view.line(status, at: Self.now).hasSuffix("p50=- p99=- last_second=no_responses no_response_yet"))
        #expect(view.block(status)[1] == "  last second: no responses (none yet)")
    }

    @Test func beforeTheClockStartsTheViewSaysItIsConnecting() throws {
        var state = LiveViewState()
        let status = state.update(progress(clock: nil, sent: 0, ok: 0), wallElapsed: 1.0)
        let line = try LiveView(plan: plan()).line(status, at: Self.now)
        #expect(line == "2026-12-07T07:20:01Z elapsed=1.0s/5.0s state=connecting rate=0/s target=300/s inflight=0 sent=0 ok=0 failed=0 late=0")
    }

    @Test func warmUpRequestsCountInTheRateAndTheLineSaysWarmUp() throws {
        var state = LiveViewState(warmup: 2)
        var p = progress(clock: 1.0, sent: 300, ok: 0)
        p.warmupRequests = 300
        let status = state.update(p, wallElapsed: 1.0)
        let line = try LiveView(plan: plan()).line(status, at: Self.now)
        #expect(line.contains(" state=warmup rate=300/s "))
        #expect(!status.silent)
        // A finished warm-up second has no counted responses: it is named as warm-up, not as an outage.
        p.warmupRequests = 600
        p.window = second(0, responses: 0)
        p.clock = 1.9
        let next = state.update(p, wallElapsed: 2.0)
        let view = try LiveView(plan: plan())
        #expect(view.line(next, at: Self.now).hasSuffix("p50=- p99=- last_second=warmup"))
        #expect(view.block(next)[1] == "  last second: warm-up (not counted)")
    }
}
