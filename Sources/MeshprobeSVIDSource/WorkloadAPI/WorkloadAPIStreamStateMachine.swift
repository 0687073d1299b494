/// The life of the `FetchX509SVID` stream: connect, stream, and after the stream ends or fails, wait and connect
/// again, for as long as the run lasts.
///
/// A value: events in, actions out; the client performs the action after the transition. The wait doubles from
/// `initialBackoff` to `maximumBackoff` with each failure in a row and starts again after an update arrives.
/// Only a final error (InvalidArgument) before the first update stops it: nothing a retry sends would differ.
public struct WorkloadAPIStreamStateMachine: Sendable, Hashable {
    public enum State: Sendable, Hashable {
        case idle
        case connecting
        case streaming
        case waiting
        case stopped
    }

    public enum Action: Sendable, Hashable {
        case none
        case connect
        /// Close what is open (if anything) and connect again after this many seconds.
        case reconnect(after: Double)
        /// Give up: the run cannot get an SVID.
        case fail(WorkloadAPIError)
        /// Close what is open; nothing more.
        case close
    }

    public private(set) var state: State = .idle
    /// Failures since the last update.
    public private(set) var failuresInARow = 0
    public private(set) var updates = 0
    public let initialBackoff: Double
    public let maximumBackoff: Double

    public init(initialBackoff: Double = 0.2, maximumBackoff: Double = 10) {
        self.initialBackoff = initialBackoff
        self.maximumBackoff = maximumBackoff
    }

    public mutating func start() -> Action {
        guard state == .idle else { return .none }
        state = .connecting
        return .connect
    }

    public mutating func connected() -> Action {
        guard state == .connecting else { return state == .stopped ? .close : .none }
        state = .streaming
        return .none
    }

    /// An X509SVIDResponse arrived and was used.
    public mutating func updated() {
        guard state == .streaming else { return }
        updates += 1
        failuresInARow = 0
    }

    /// The connection could not be made, or the stream ended or failed.
    public mutating func ended(_ error: WorkloadAPIError) -> Action {
        switch state {
        case .connecting, .streaming:
            if error.isFinal && updates == 0 {
                state = .stopped
                return .fail(error)
            }
            let delay = min(maximumBackoff, initialBackoff * Double(1 << min(failuresInARow, 20)))
            failuresInARow += 1
            state = .waiting
            return .reconnect(after: delay)
        case .idle, .waiting, .stopped:
            return .none
        }
    }

    public mutating func backoffElapsed() -> Action {
        guard state == .waiting else { return .none }
        state = .connecting
        return .connect
    }

    /// Someone needs a new SVID now (the one in use expired during an outage): a wait for the next attempt ends at once.
    public mutating func retryNow() -> Action {
        guard state == .waiting else { return .none }
        state = .connecting
        return .connect
    }

    public mutating func stop() -> Action {
        guard state != .stopped else { return .none }
        state = .stopped
        return .close
    }
}
