import MeshprobeSpec

/// The closed model: a request starts when a slot is free, until the budget is spent or the deadline passes; with
/// a concurrency profile, only while fewer slots than its current target (this worker's share) are busy. Requests
/// started in the warm-up are not measured, so they do not spend the budget (`-n` counts measured requests).
struct ClosedAdmission: Admission {
    /// Requests still to start; `Int.max` when the run is bounded by time only.
    private(set) var remaining: Int
    private(set) var deadline: UInt64?
    /// The concurrency target over time, from `start`; nil: every slot, all the time.
    private(set) var concurrency: LoadProfile?
    private let share: Double
    private let start: UInt64
    private let warmupEnd: UInt64

    init(budget: Int?, deadline: UInt64?, concurrency: LoadProfile?, share: Double, start: UInt64, warmupEnd: UInt64 = 0) {
        remaining = budget ?? Int.max
        self.deadline = deadline
        self.concurrency = concurrency
        self.share = share
        self.start = start
        self.warmupEnd = warmupEnd
    }

    /// The concurrency target moves with time: idle slots may start later without any response arriving.
    var movesWithTime: Bool { concurrency != nil }

    @inline(__always) mutating func admit(at t: UInt64, busy: Int) -> Admitted? {
        guard remaining > 0 else { return nil }
        if let deadline, t >= deadline { return nil }
        if let concurrency {
            let target = Int((concurrency.value(at: Double(t &- start) / 1e9) * share).rounded())
            guard busy < target else { return nil }
        }
        if remaining != Int.max && t >= warmupEnd { remaining -= 1 }
        return Admitted(intended: t, waited: nil, scheduled: false)
    }

    mutating func putBack(_ admitted: Admitted) {
        if remaining != Int.max && admitted.intended >= warmupEnd { remaining += 1 }
    }

    func wantsMore(at t: UInt64) -> Bool {
        guard remaining > 0 else { return false }
        if let deadline, t >= deadline { return false }
        return true
    }

    mutating func hold(at t: UInt64) -> Bool {
        if let profile = concurrency { concurrency = .constant(profile.value(at: Double(t &- start) / 1e9)) }
        return true
    }

    mutating func giveUp(begun: Bool) -> Int {
        defer { remaining = 0 }
        return remaining == Int.max ? 0 : remaining
    }
}
