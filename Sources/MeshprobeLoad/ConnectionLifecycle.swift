import MeshprobeIdentity
import MeshprobeSpec

/// The life of one connection slot as a value: the attempt's stage, what a close means (a planned retirement, a
/// failure counted toward giving up, or neither), and what to do next. Events in, decisions out; the connection
/// performs them (connects, schedules, records) after the state has changed, so nothing here calls back.
struct ConnectionLifecycle {
    enum State { case idle, connecting, handshaking, ready, dead }

    /// What the slot does after an attempt ended.
    enum Next: Equatable {
        /// Connect again at once (the last attempt carried requests, or churn replaced it).
        case connectNow
        /// Connect again after a backoff: 100 ms after one failure, doubling to 1 s.
        case connect(afterMilliseconds: Int64)
        /// Stay idle: the run wants no more requests.
        case stayIdle
        /// Give the slot up for good (`state` is `.dead`).
        case giveUp
    }

    private(set) var state: State = .idle
    /// Failed attempts in a row; any response resets it.
    private(set) var consecutiveFailures = 0
    /// What the last of those failures was (decides whether a run bounded by time keeps trying).
    private(set) var lastFailureKind: ErrorKind?
    /// Closing on purpose after its churn allowance: the close is not a failure.
    private(set) var isRetiring = false
    /// Closed by meshprobe after a request timed out: the close is not a failure (the timeout was counted).
    private(set) var closedForTimeout = false
    /// Responses on the current attempt.
    private(set) var responses = 0
    /// Failed attempts in a row after which a slot is given up (unless a run bounded by time is retrying a failure
    /// that can pass).
    let maximumConsecutiveFailures: Int

    init(maximumConsecutiveFailures: Int) {
        self.maximumConsecutiveFailures = maximumConsecutiveFailures
    }

    /// The last attempt failed (the slot is retrying or given up): nothing to wait for before the open model's clock.
    var isFailing: Bool { state == .dead || (state != .ready && consecutiveFailures > 0) }

    /// A new attempt starts; returns false when the slot is not idle (already connecting, ready or given up).
    mutating func startAttempt() -> Bool {
        guard state == .idle else { return false }
        state = .connecting
        isRetiring = false
        closedForTimeout = false
        responses = 0
        return true
    }

    mutating func handshaking() { state = .handshaking }
    mutating func ready() { state = .ready }
    mutating func retire() { isRetiring = true }
    mutating func closingForTimeout() { closedForTimeout = true }

    /// The current attempt is ready and has answered nothing yet: a close now is a candidate drop or refusal.
    var isReadyWithoutAnswers: Bool { state == .ready && responses == 0 && !isRetiring && !closedForTimeout }

    /// A response on the current attempt; true for its first.
    @discardableResult
    mutating func responded() -> Bool {
        responses += 1
        consecutiveFailures = 0
        return responses == 1
    }

    /// The attempt failed before it had a channel (refused, timed out, unreachable).
    mutating func connectFailed(_ kind: ErrorKind) {
        state = .idle
        countFailure(kind)
    }

    /// The channel closed before the run ended. Returns the failure to record when the close is one: a connection
    /// that never became ready, or one that became ready and closed before answering anything (else a server that
    /// accepts and closes would be reconnected to for ever). `reason`: the error seen before the close, if any.
    /// `droppedRequests`: the connection carried requests and the target's evidence makes the close a dropped request,
    /// not the target refusing (`TargetEvidence`): those requests fail, and are counted, not the attempt; the slot
    /// reconnects at once instead of backing off and giving up.
    mutating func closed(reason: (kind: ErrorKind, message: String)?, authority: String,
                         droppedRequests: Bool = false) -> (kind: ErrorKind, message: String)? {
        let wasReady = state == .ready
        state = .idle
        guard !isRetiring, !closedForTimeout else { return nil }
        let failure: (kind: ErrorKind, message: String)
        if wasReady {
            guard responses == 0, !droppedRequests else { return nil }
            failure = reason ?? (.connectionLost, "\(authority) closed the connection before answering any request")
        } else {
            failure = reason ?? (.tlsHandshakeFailed, "the connection to \(authority) closed before it could carry requests")
        }
        countFailure(failure.kind)
        return failure
    }

    private mutating func countFailure(_ kind: ErrorKind) {
        consecutiveFailures += 1
        lastFailureKind = kind
    }

    /// After an attempt ended: a run bounded by time keeps its slot through an outage (a restarting server comes
    /// back within the backoff's second); one bounded only by a count, or refused for a reason retrying cannot
    /// change (the peer's certificate or identity), gives it up after `maximumConsecutiveFailures` in a row.
    mutating func next(boundedByTime: Bool, wantsMoreRequests: Bool) -> Next {
        if consecutiveFailures >= maximumConsecutiveFailures,
           !(boundedByTime && (lastFailureKind?.isTransientConnectionFailure ?? true)) {
            state = .dead
            return .giveUp
        }
        guard wantsMoreRequests else { return .stayIdle }
        guard consecutiveFailures > 0 else { return .connectNow }
        return .connect(afterMilliseconds: min(1000, 50 << min(Int64(consecutiveFailures), 5)))
    }

    /// The run is over for this slot.
    mutating func shutDown() { state = .dead }

    /// Why a handshake's protocol cannot be used.
    struct ProtocolRefusal: Error, Equatable {
        var kind: ErrorKind
        var message: String
    }

    /// The protocol to speak after a TLS handshake: HTTP/2 (true) or HTTP/1.1 (false), from the server's ALPN answer
    /// and the protocol asked for; a required protocol the server did not choose is a refusal, not a fallback.
    static func protocolAfterHandshake(alpn: String?, preference: HTTPVersionPreference) -> Result<Bool, ProtocolRefusal> {
        switch preference {
        case .http2:
            guard alpn == "h2" else {
                return .failure(ProtocolRefusal(kind: .tlsALPNMismatch,
                                                message: "HTTP/2 was required but the server's ALPN answer was \(alpn.map { "'\($0)'" } ?? "none")"))
            }
            return .success(true)
        case .http1:
            guard alpn == nil || alpn == "http/1.1" else {
                return .failure(ProtocolRefusal(kind: .tlsALPNMismatch, message: "HTTP/1.1 was required but the server chose '\(alpn ?? "")' by ALPN"))
            }
            return .success(false)
        case .auto:
            return .success(alpn == "h2")
        }
    }
}
