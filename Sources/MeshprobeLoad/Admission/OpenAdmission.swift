import MeshprobeSpec
import NIOCore

/// The open model: requests arrive on a schedule (this worker's share of the rate, uniform or Poisson), whether or
/// not a slot is free. An arrival no connection can take yet waits in a backlog, oldest first, and leaves late with
/// the reason it waited; every arrival is sent or counted, never dropped.
struct OpenAdmission: Admission {
    private(set) var schedule: ArrivalSchedule
    /// Arrivals left in the budget; `Int.max` when the schedule's end in time bounds the run.
    private(set) var remaining: Int
    /// The time the schedule counts from: the run's start, or the moment the load was held.
    private(set) var base: UInt64 = 0
    private(set) var deadline: UInt64?
    /// The next arrival not yet due; nil when none is left before the deadline or in the budget.
    private(set) var nextArrival: UInt64?
    /// Intended send times of due arrivals no connection could take yet, oldest first.
    private var backlog = CircularBuffer<UInt64>(initialCapacity: 64)
    /// Why the arrivals at the front of the backlog waited, when they did.
    private var reason: LateReason = .streamsBusy
    /// How many arrivals at the front of the backlog waited because no stream was free (as opposed to a late timer).
    private var blocked = 0
    /// How many of those (the oldest) waited because no connection was up: an outage, not a rate beyond capacity.
    private var noConnection = 0
    private let phase: Double
    private let seed: UInt64
    /// The run's planned length in seconds (nil: a budget bounds it).
    private let plannedDuration: Double?
    /// `--send-tick`; nil: adapted to the current rate, recomputed every `tickRefresh`.
    private let fixedTick: UInt64?
    private var tick = UInt64(AdaptiveSendTick.minimum * 1e9)
    private var warmupEnd: UInt64 = 0
    private var tickRefreshDue: UInt64 = 0
    private static let tickRefresh: UInt64 = 10_000_000

    init(rate: LoadProfile, process: ArrivalSchedule.Process, budget: Int?, share: Double, phase: Double, seed: UInt64,
         plannedDuration: Double?, fixedTick: UInt64?) {
        self.plannedDuration = plannedDuration
        schedule = ArrivalSchedule(profile: rate, share: share, process: process, phase: phase, seed: seed &+ UInt64(phase * 1_000_003))
        remaining = budget ?? Int.max
        self.phase = phase
        self.seed = seed
        self.fixedTick = fixedTick
    }

    /// Starts the schedule's clock at `t`; arrivals due before `warmupEnd` are not measured and do not spend the
    /// budget (`-n` counts measured requests).
    mutating func begin(at t: UInt64, deadline: UInt64?, warmupEnd: UInt64 = 0) {
        base = t
        self.deadline = deadline
        self.warmupEnd = warmupEnd
    }

    /// This worker's share of the target rate at `t`: the schedule's start before its clock began; past the end of
    /// the schedule (the run draining, or the profile's last stage over), the rate it ended at, not the 0 after it.
    func targetRate(at t: UInt64, begun: Bool) -> Double {
        var seconds = begun ? Double(t &- min(t, base)) / 1e9 : 0
        // The profile is 0 from its end on: the value just before the end is the last target.
        if begun, let deadline, t >= deadline { seconds = Double(deadline &- min(deadline, base)) / 1e9 - 1e-6 }
        if let end = schedule.profile.totalDuration { seconds = min(seconds, end - 1e-6) }
        return schedule.profile.value(at: max(0, seconds)) * schedule.share
    }

    /// Due arrivals waiting for a slot.
    var waiting: Int { backlog.count }
    /// The backlog's front waited because no connection was up.
    var waitingForAConnection: Bool { noConnection > 0 }
    /// Why the backlog waited the last time it was offered to every connection.
    var waitingReason: LateReason { reason }

    /// Moves the arrivals due by `t` into the backlog (within the budget and before the deadline), and returns when
    /// to look again: the next arrival, but no sooner than one send tick after `t` (arrivals due before the tick
    /// wait for it and leave together; their latency still counts from their intended time); nil when none is left.
    mutating func advance(to t: UInt64) -> UInt64? {
        if nextArrival == nil, remaining > 0, let first = schedule.next() {
            nextArrival = base + UInt64(first * 1e9)
        }
        while let due = nextArrival, due <= t {
            if let deadline, due >= deadline {
                nextArrival = nil
                break
            }
            backlog.append(due)
            if remaining != Int.max && due >= warmupEnd { remaining -= 1 }
            if remaining > 0, let following = schedule.next() {
                nextArrival = base + UInt64(following * 1e9)
            } else {
                nextArrival = nil
            }
        }
        // The next arrival falls after the end of the run (a low rate): nothing more to wait for.
        if let next = nextArrival, let deadline, next >= deadline { nextArrival = nil }
        guard let next = nextArrival else { return nil }
        return max(next, t + sendTick(at: t))
    }

    /// The send tick: `--send-tick`, or adapted to this worker's current rate (refreshed every 10 ms, so a ramp moves
    /// it along).
    private mutating func sendTick(at t: UInt64) -> UInt64 {
        if let fixedTick { return fixedTick }
        if t >= tickRefreshDue {
            let rate = schedule.profile.value(at: Double(t &- base) / 1e9) * schedule.share
            tick = UInt64(AdaptiveSendTick.tick(forRate: rate) * 1e9)
            tickRefreshDue = t + Self.tickRefresh
        }
        return tick
    }

    @inline(__always) mutating func admit(at t: UInt64, busy: Int) -> Admitted? {
        guard let intended = backlog.popFirst() else { return nil }
        let waited: LateReason
        if blocked > 0 {
            blocked -= 1
            if noConnection > 0 {
                noConnection -= 1
                waited = .noConnection
            } else {
                waited = reason
            }
        } else {
            waited = .generatorLag
        }
        return Admitted(intended: intended, waited: waited, scheduled: true)
    }

    mutating func putBack(_ admitted: Admitted) {
        backlog.prepend(admitted.intended)
        blocked += 1
        if admitted.waited == .noConnection { noConnection += 1 }
    }

    /// The backlog was offered to every connection and some is left: it waits for a stream (some connection was
    /// ready) or for a connection (none was).
    mutating func blocked(anyConnectionReady: Bool) {
        reason = anyConnectionReady ? .streamsBusy : .noConnection
        noConnection = anyConnectionReady ? min(noConnection, backlog.count) : backlog.count
        blocked = backlog.count
    }

    func wantsMore(at t: UInt64) -> Bool { nextArrival != nil || !backlog.isEmpty }

    /// Removes the arrivals that have waited since before `cutoff` and returns how many.
    mutating func expire(olderThan cutoff: UInt64) -> Int {
        var expired = 0
        while let first = backlog.first, first < cutoff {
            _ = backlog.popFirst()
            blocked = max(0, blocked - 1)
            noConnection = max(0, noConnection - 1)
            expired += 1
        }
        return expired
    }

    /// Empties the backlog and returns how many arrivals it held.
    mutating func dropWaiting() -> Int {
        let count = backlog.count
        backlog.removeAll()
        blocked = 0
        noConnection = 0
        return count
    }

    /// A held load's arrivals follow a constant rate, this one's at `t`, from `t` to the deadline; the next call to
    /// `advance(to:)` starts them.
    mutating func hold(at t: UInt64) -> Bool {
        let current = schedule.profile.value(at: Double(t &- base) / 1e9)
        let left = deadline.map { $0 > t ? Double($0 - t) / 1e9 : 0 }
        guard current > 0, left.map({ $0 > 0 }) ?? true else {
            nextArrival = nil
            return false
        }
        schedule = ArrivalSchedule(profile: .constant(current, duration: left), share: schedule.share,
                                   process: schedule.process, phase: phase, seed: seed &+ 0x401D)
        base = t
        nextArrival = nil
        tickRefreshDue = 0
        return true
    }

    /// The schedule's arrivals still owed: the backlog, the next arrival, and the rest of the schedule (exact for
    /// uniform arrivals, expected for Poisson), or the rest of the budget. `begun`: false when the clock never
    /// started (then the whole planned schedule is owed).
    mutating func giveUp(begun: Bool) -> Int {
        var owed = dropWaiting()
        if remaining != Int.max {
            owed += remaining
        } else {
            let end = begun ? deadline.map { Double($0 &- base) / 1e9 } : plannedDuration
            owed += (nextArrival.map { $0 < (deadline ?? .max) } == true ? 1 : 0) + schedule.count(before: end)
        }
        remaining = 0
        nextArrival = nil
        return owed
    }
}
