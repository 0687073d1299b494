import Foundation
import MeshprobeIdentity

extension CircuitBreakerCheck {
    /// What a response was, for the procedure's time series.
    enum ResponseKind: Sendable {
        case succeeded
        /// A proxy refusing for a limit (a 503 with an overflow signature).
        case overflow
        case failed
    }

    /// A response as the procedure saw it: when it arrived (seconds from the procedure's start), in which phase,
    /// what it was, and whether a workload stamped it.
    struct Response: Sendable, Equatable {
        var phase: Int
        var at: Double
        var kind: ResponseKind
        var stamped: Bool
    }

    /// The procedure's responses and phases on one clock, from its start; fed by the workers' event loops.
    // @unchecked: every access to the mutable state holds `lock`.
    final class Recorder: @unchecked Sendable {
        private let lock = NSLock()
        private let start = ContinuousClock.now
        private var responses: [Response] = []
        private var phases: [OverTime.Phase] = []

        /// Seconds since the procedure started.
        var now: Double {
            let d = ContinuousClock.now - start
            return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        }

        func beginPhase(_ name: String, concurrency: Int) {
            let t = now
            lock.withLock { phases.append(OverTime.Phase(name: name, concurrency: concurrency, start: t, end: t)) }
        }

        func endPhase() {
            let t = now
            lock.withLock { if !phases.isEmpty { phases[phases.count - 1].end = t } }
        }

        func observe(_ identity: WorkloadIdentity, status: Int, failure: FailureClass?) -> Bool {
            let t = now
            let ok = ResponseCode.succeeded(status)
            let kind: ResponseKind = ok ? .succeeded : failure?.isOverflow == true ? .overflow : .failed
            let stamped = !identity.workload.isEmpty || !identity.version.isEmpty
            lock.withLock {
                responses.append(Response(phase: phases.count - 1, at: t, kind: kind, stamped: stamped))
            }
            return false
        }

        var all: (responses: [Response], phases: [OverTime.Phase]) { lock.withLock { (responses, phases) } }

        /// Arrival times of a phase's stamped successful responses (what the service's peak is estimated from).
        func arrivals(phase: Int) -> [Double] {
            lock.withLock { responses.filter { $0.phase == phase && $0.kind == .succeeded && $0.stamped }.map(\.at) }
        }
    }

    /// The procedure over time, in intervals of a tenth of a second (longer when the procedure is long): its phases
    /// (what the client sent at once), the most the upstream held, and the responses that arrived, by kind.
    public struct OverTime: Sendable, Equatable {
        /// A phase of the procedure: its requests sent at once, from `start` to `end` (seconds from the start).
        public struct Phase: Sendable, Equatable {
            public var name: String
            public var concurrency: Int
            public var start: Double
            public var end: Double
        }

        /// One interval from `at` (seconds from the start) to `at` + `interval`.
        public struct Point: Sendable, Equatable {
            public var at: Double
            /// The most successful requests the upstream held at once in the interval, estimated from the answers'
            /// arrival times as the in-flight check does (each held for the hold, less the margin); nil without a hold.
            public var held: Int?
            public var succeeded: Int
            public var overflow: Int
            /// Failed responses that are not overflow replies.
            public var failed: Int
        }

        public var interval: Double
        public var phases: [Phase]
        public var points: [Point]
    }

    /// The longest series kept: a longer procedure gets longer intervals.
    static let mostPoints = 600

    /// The interval for a procedure of `seconds`: 0.1 s, or the first of 0.25, 0.5, 1, 2, 5, 10, 30, 60 s that keeps the
    /// series to `mostPoints` (beyond, whole seconds that do).
    static func interval(for seconds: Double) -> Double {
        let steps = [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60]
        return steps.first { seconds / $0 <= Double(mostPoints) } ?? (seconds / Double(mostPoints)).rounded(.up)
    }

    /// The procedure's series from its responses. `hold`: how long the upstream held each request (nil: the upstream's
    /// view is not estimated); `lag`: each phase's worst timer lag, which widens the margin as `peakHeldAtOnce`'s.
    static func overTime(_ responses: [Response], phases: [OverTime.Phase], hold: Double?, lag: [Double] = []) -> OverTime {
        let end = max(phases.map(\.end).max() ?? 0, responses.map(\.at).max() ?? 0)
        let interval = interval(for: end)
        let count = max(1, Int((end / interval).rounded(.up)))
        let held = hold.map { hold in
            peaks(responses.filter { $0.kind == .succeeded && $0.stamped }.map { r in
                let window = hold - max(0.002, hold / 10, r.phase >= 0 && r.phase < lag.count ? lag[r.phase] : 0)
                return (r.at - max(0, window), r.at)
            }, count: count, interval: interval)
        }
        var points = (0..<count).map { i in
            OverTime.Point(at: (Double(i) * interval * 1000).rounded() / 1000, held: held?[i], succeeded: 0, overflow: 0, failed: 0)
        }
        for r in responses {
            let i = min(count - 1, max(0, Int(r.at / interval)))
            switch r.kind {
            case .succeeded: points[i].succeeded += 1
            case .overflow: points[i].overflow += 1
            case .failed: points[i].failed += 1
            }
        }
        return OverTime(interval: interval, phases: phases, points: points)
    }

    /// The most intervals `[start, end)` covering one instant, in each of `count` intervals of `interval` seconds from
    /// 0 (a time before 0 counts in the first, after the last in the last). Over all of them, it is the most at once
    /// (what `peakHeldAtOnce` finds for intervals ending at the arrivals).
    static func peaks(_ spans: [(start: Double, end: Double)], count: Int, interval: Double) -> [Int] {
        var events: [(t: Double, delta: Int)] = []
        for span in spans where span.end > span.start {
            events.append((span.start, 1))
            events.append((span.end, -1))
        }
        // An end before a start at the same instant: back-to-back requests were never in flight together.
        events.sort { $0.t != $1.t ? $0.t < $1.t : $0.delta < $1.delta }
        var peaks = [Int](repeating: 0, count: count)
        var level = 0
        var next = 0
        for event in events {
            let i = min(count - 1, max(0, Int(event.t / interval)))
            // The intervals up to this one hold the level they started with (this one before its first event).
            while next <= i {
                peaks[next] = max(peaks[next], level)
                next += 1
            }
            level += event.delta
            peaks[i] = max(peaks[i], level)
        }
        while next < count {
            peaks[next] = max(peaks[next], level)
            next += 1
        }
        return peaks
    }
}
