/// A worker's life as a value: events in, what the worker must do out. Nothing here reads a clock or touches a
/// connection; the worker performs what a transition asks for after the transition, so nothing re-enters.
///
/// starting → running (closed model), or → connecting → running (open model: the run's clock and its arrivals wait
/// until every connection is up or has failed, or the connect timeout has passed) → stopping (a stop: nothing new
/// starts, in-flight requests have until the drain deadline) → finished, once. A run that ends by itself goes from
/// running (or connecting, when every connection failed) to finished.
struct WorkerLifecycle {
    enum Stage: Equatable {
        case starting, connecting, running, stopping, finished
    }

    private(set) var stage: Stage = .starting
    /// While stopping: in-flight requests still open at this instant count as aborted.
    private(set) var drainDeadline: UInt64?
    /// The run's clock has started (at once in the closed model, once the connections settled in the open model).
    private(set) var begun = false

    var isFinished: Bool { stage == .finished }
    /// No new request may start.
    var isStopping: Bool { stage == .stopping || stage == .finished }
    /// The open model's arrivals wait for the connections.
    var isConnecting: Bool { stage == .connecting }

    enum StartAction: Equatable {
        /// Nothing to do (no connection, or no share of the request budget): hand over an empty result.
        case finish
        /// Open the connections; with `awaitingThem`, begin the clock once they settle (`connectionsSettled`).
        case connect(awaitingThem: Bool)
    }

    /// A stop that came before the start (a signal while the workers were being set up) leaves nothing to do.
    mutating func start(hasWork: Bool, waitsForConnections: Bool) -> StartAction {
        guard stage == .starting, hasWork else { return .finish }
        stage = waitsForConnections ? .connecting : .running
        begun = !waitsForConnections
        return .connect(awaitingThem: waitsForConnections)
    }

    /// Every connection is up or failing, or the connect timeout passed: true when the clock and the arrivals begin
    /// now (once; never after a stop).
    mutating func connectionsSettled() -> Bool {
        guard stage == .connecting else { return false }
        stage = .running
        begun = true
        return true
    }

    /// A stop at `t` with `grace` nanoseconds for what is in flight: true when stopping begins now (the worker then
    /// cancels its arrivals and counts the due requests that never left).
    mutating func stop(at t: UInt64, grace: UInt64) -> Bool {
        guard stage != .stopping, stage != .finished else { return false }
        stage = .stopping
        drainDeadline = t &+ grace
        return true
    }

    /// While stopping, the grace is over at `t`: what is still in flight is aborted and the worker finishes.
    func drainIsOver(at t: UInt64) -> Bool {
        guard stage == .stopping, let drainDeadline else { return false }
        return t >= drainDeadline
    }

    /// True the first time: the worker hands its result over then, and never again.
    mutating func finish() -> Bool {
        guard stage != .finished else { return false }
        stage = .finished
        return true
    }
}
