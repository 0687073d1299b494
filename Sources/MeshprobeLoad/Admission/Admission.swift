/// Which requests a worker may start, and when: the rule of its load model, kept apart from connections, timers and
/// results so that it runs under any clock (every method takes the time; nothing here reads one).
///
/// Two implementations: `ClosedAdmission` (a request starts when a slot is free, within a budget, a deadline and a
/// concurrency target) and `OpenAdmission` (requests arrive on a schedule, whether or not a slot is free, and wait
/// in a backlog until one is).
///
/// A contract only: nothing dispatches through it. `LoadWorker` holds the concrete type of its model (`open`,
/// `closed`), so that admitting a request, which it does per request, costs no existential dispatch.
protocol Admission {
    /// A request that may start now at `t` on a free slot, or nil. `busy`: the slots in use (requests in flight and
    /// virtual users thinking), which the closed model's concurrency target counts.
    mutating func admit(at t: UInt64, busy: Int) -> Admitted?
    /// A connection could not send an admitted request after all: it is owed again.
    mutating func putBack(_ admitted: Admitted)
    /// True while requests may still be admitted at `t` (now or later).
    func wantsMore(at t: UInt64) -> Bool
    /// Holds the load where it is at `t`: the rate or concurrency stays at its current value until the run ends.
    /// Returns false when nothing more will be admitted (a held rate of zero, or a deadline already passed).
    mutating func hold(at t: UInt64) -> Bool
    /// Every connection gave up: the requests still owed (each counted under the failure), after which nothing is.
    /// `begun`: the run's clock has started (the open model waits for its connections).
    mutating func giveUp(begun: Bool) -> Int
}

/// A request admitted: when it was meant to leave, and, in the open model, why it left late if it did.
struct Admitted {
    var intended: UInt64
    /// The open model's reason when the request waited in the backlog (nil: on time, or the closed model, whose
    /// requests are meant to leave when they do).
    var waited: LateReason?
    /// True in the open model: the send is recorded against the schedule (delay, lateness).
    var scheduled: Bool
}
