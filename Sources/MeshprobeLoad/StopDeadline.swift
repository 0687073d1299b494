import NIOConcurrencyHelpers

/// The moment by which a stopping command's last network steps (clearing faults, a Pushgateway push) must have ended,
/// whatever a peer does: unset while the command runs; a signal sets it, so that the process exits within the 2 s it
/// promises.
///
/// Rules: a step that starts after the deadline is set gets only the time left as its timeout, and a step still
/// running when it passes is abandoned (its task is cancelled and left to end by its own timeout, unawaited).
public final class StopDeadline: Sendable {
    private let instant = NIOLockedValueBox<ContinuousClock.Instant?>(nil)

    public init() {}

    /// Sets the deadline; the earliest one stays.
    public func set(_ deadline: ContinuousClock.Instant) {
        instant.withLockedValue { $0 = min($0 ?? deadline, deadline) }
    }

    public var deadline: ContinuousClock.Instant? { instant.withLockedValue { $0 } }

    /// Seconds a step starting now may take: `limit` while no deadline is set, else the time left up to `limit`; nil
    /// once the deadline has passed.
    public func secondsLeft(atMost limit: Double) -> Double? {
        guard let deadline else { return limit }
        let left = deadline - ContinuousClock.now
        guard left > .zero else { return nil }
        return min(limit, Double(left.components.seconds) + Double(left.components.attoseconds) / 1e18)
    }

    /// Runs `operation` in a task of its own (a cancelled caller does not cancel it) and returns its value; nil when
    /// the deadline, set before or during the call, passes first.
    public func bound<T: Sendable>(_ operation: @escaping @Sendable () async -> T) async -> T? {
        let race = Race<T>()
        return await withCheckedContinuation { continuation in
            race.start(continuation)
            let work = Task { race.finish(await operation()) }
            // Ends when the work does (bounded by the work's own timeouts) or at the deadline.
            Task {
                while !race.isFinished {
                    if let deadline, ContinuousClock.now >= deadline {
                        race.finish(nil)
                        work.cancel()
                        return
                    }
                    try? await Task.sleep(for: .milliseconds(20))
                }
            }
        }
    }
}

/// The first of two results, handed to a continuation exactly once.
private final class Race<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T?, Never>?
        var finished = false
    }

    private let state = NIOLockedValueBox(State())

    func start(_ continuation: CheckedContinuation<T?, Never>) {
        state.withLockedValue { $0.continuation = continuation }
    }

    var isFinished: Bool { state.withLockedValue { $0.finished } }

    func finish(_ value: T?) {
        let continuation = state.withLockedValue { state -> CheckedContinuation<T?, Never>? in
            guard !state.finished else { return nil }
            state.finished = true
            defer { state.continuation = nil }
            return state.continuation
        }
        continuation?.resume(returning: value)
    }
}
