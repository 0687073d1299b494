/// A worker's run in time: when it started, when it ends, when its warm-up ends, and the second an instant falls in.
/// Instants are monotonic nanoseconds handed in; nothing here reads a clock.
struct RunClock {
    /// The run's zero: the worker's start in the closed model; in the open model the moment its connections were up.
    private(set) var start: UInt64
    /// The planned end; nil when a request count bounds the run.
    private(set) var deadline: UInt64?
    /// Requests meant to leave before this instant are warm-up: sent, but left out of the results.
    private(set) var warmupEnd: UInt64
    private let plannedDuration: Double?
    private let warmup: Double

    init(startingAt t: UInt64, plannedDuration: Double?, warmup: Double) {
        self.plannedDuration = plannedDuration
        self.warmup = warmup
        start = t
        deadline = plannedDuration.map { t + UInt64($0 * 1e9) }
        warmupEnd = t + UInt64(warmup * 1e9)
    }

    /// Starts the run again at `t` (the open model's clock waits for its connections).
    mutating func restart(at t: UInt64) {
        self = RunClock(startingAt: t, plannedDuration: plannedDuration, warmup: warmup)
    }

    /// The timeline second of an instant (0 for an instant before the start).
    @inline(__always) func second(of t: UInt64) -> Int { t > start ? Int((t - start) / 1_000_000_000) : 0 }

    /// A request meant to leave at `intended` counts in the results (it is not warm-up).
    @inline(__always) func counts(intended: UInt64) -> Bool { intended >= warmupEnd }

    /// Seconds counted in the results by `t`: from the end of the warm-up.
    func measuredSeconds(at t: UInt64) -> Double { t > warmupEnd ? Double(t - warmupEnd) / 1e9 : 0 }

    /// The planned end is still ahead at `t`.
    func isBeforeDeadline(_ t: UInt64) -> Bool { deadline.map { t < $0 } ?? false }
}
