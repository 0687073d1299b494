/// The lifecycle of one HTTP/2 connection, client or server, as a value: events in, actions out.
///
/// It performs no I/O. `NGHTTP2Connection` feeds it channel events and what nghttp2 reports, and performs the
/// action each event returns. The first error that ends the connection is kept and handed out with
/// `.reportClosed`, which is returned exactly once.
struct HTTP2ConnectionStateMachine {
    /// What the peer told us with GOAWAY (the latest one: a second GOAWAY may lower last-stream-id).
    struct GoAway: Equatable {
        var lastStreamID: Int32
        var errorCode: UInt32
    }

    /// What is known about a connection whose session has started.
    struct Open: Equatable {
        /// The peer's SETTINGS_MAX_CONCURRENT_STREAMS; nil until its first SETTINGS frame.
        var peerMaxConcurrentStreams: UInt32?
        var goAwayReceived: GoAway?
        /// We submitted GOAWAY(NO_ERROR) for a graceful close.
        var goAwaySent = false
    }

    enum State {
        /// The handler is in a pipeline whose channel is not active yet: no session.
        case idle
        /// The session runs: our SETTINGS are queued, bytes are read and written.
        case open(Open)
        /// The connection is ending: the channel close is issued, at the latest once our last bytes are written.
        /// No new streams or frames are submitted; what the peer still sends is read.
        case closing(Open)
        /// The channel is inactive or the handler was removed; the outcome has been reported.
        case closed
    }

    enum Action {
        case none
        /// Create the nghttp2 session and queue our SETTINGS.
        case startSession
        /// Submit GOAWAY(NO_ERROR) and flush.
        case sendGoAway
        /// Tell the user the connection is ready (first peer SETTINGS, or a new max-concurrent-streams).
        case notifyReady
        /// Tell the user about the first GOAWAY from the peer.
        case notifyGoAway(errorCode: UInt32)
        /// Close the channel.
        case closeChannel
        /// Terminate the session with GOAWAY(PROTOCOL_ERROR), fail what is in flight, close the channel.
        case failConnection(HTTP2ConnectionError)
        /// Report the end of the connection; `error` is nil for a clean close.
        case reportClosed(error: (any Error)?)
    }

    private(set) var state: State = .idle
    /// The first error that ended (or will end) the connection.
    private(set) var error: (any Error)?

    init() {}

    // MARK: Queries

    /// New frames may be submitted: the session runs and no close has been decided.
    var isOpen: Bool {
        if case .open = state { return true }
        return false
    }

    /// The session still takes the peer's bytes and drains its output: open, or closing until the channel is
    /// gone (responses already on the wire still complete their streams).
    var isRunning: Bool {
        switch state {
        case .open, .closing: return true
        case .idle, .closed: return false
        }
    }

    /// Open, with no GOAWAY sent or received: new streams are welcome.
    var isUsable: Bool {
        guard case .open(let open) = state else { return false }
        return open.goAwayReceived == nil && !open.goAwaySent
    }

    /// The peer's SETTINGS_MAX_CONCURRENT_STREAMS if new streams may be opened now, else nil.
    var peerStreamLimit: UInt32? {
        guard case .open(let open) = state, open.goAwayReceived == nil, !open.goAwaySent else { return nil }
        return open.peerMaxConcurrentStreams
    }

    /// The peer's latest GOAWAY while the connection is open or closing.
    var goAwayReceived: GoAway? {
        switch state {
        case .open(let open), .closing(let open): return open.goAwayReceived
        case .idle, .closed: return nil
        }
    }

    // MARK: Events

    /// The channel is active (or the handler was added to an active channel).
    mutating func channelActive() -> Action {
        guard case .idle = state else { return .none }
        state = .open(Open())
        return .startSession
    }

    /// The peer's SETTINGS frame (not an ACK) arrived.
    mutating func peerSettingsReceived(maxConcurrentStreams: UInt32) -> Action {
        guard case .open(var open) = state else { return .none }
        let changed = open.peerMaxConcurrentStreams != maxConcurrentStreams
        open.peerMaxConcurrentStreams = maxConcurrentStreams
        state = .open(open)
        return changed ? .notifyReady : .none
    }

    /// The peer sent GOAWAY. A non-zero error code becomes the connection's error.
    mutating func goAwayReceived(lastStreamID: Int32, errorCode: UInt32) -> Action {
        let open: Open
        switch state {
        case .open(let current), .closing(let current): open = current
        case .idle, .closed: return .none
        }
        var updated = open
        updated.goAwayReceived = GoAway(lastStreamID: lastStreamID, errorCode: errorCode)
        if case .open = state { state = .open(updated) } else { state = .closing(updated) }
        if errorCode != 0 {
            record(HTTP2ConnectionError.protocolError("peer sent GOAWAY with error code \(errorCode)"))
        }
        return open.goAwayReceived == nil ? .notifyGoAway(errorCode: errorCode) : .none
    }

    /// nghttp2 sent a GOAWAY frame; one with an error code answers a peer's protocol violation.
    mutating func goAwaySent(errorCode: UInt32) {
        guard errorCode != 0 else { return }
        record(
            HTTP2ConnectionError.protocolError(
                "sent GOAWAY with error code \(errorCode) after a peer protocol violation"))
    }

    /// The user asked to close: gracefully (GOAWAY, then close once the streams are done) or at once.
    mutating func closeRequested(graceful: Bool) -> Action {
        // Before the session starts there is nobody to say GOAWAY to: close at once.
        guard graceful, case .open(var open) = state else { return startClosing() ? .closeChannel : .none }
        guard !open.goAwaySent else { return .none }
        open.goAwaySent = true
        state = .open(open)
        return .sendGoAway
    }

    /// nghttp2 wants neither to read nor to write: GOAWAY was exchanged and no stream is left, or it terminated.
    mutating func sessionFinished() -> Action {
        guard case .open = state else { return .none }
        return startClosing() ? .closeChannel : .none
    }

    /// nghttp2 failed fatally (bad peer bytes, no memory) or could not be started.
    mutating func sessionFailed(_ failure: HTTP2ConnectionError) -> Action {
        record(failure)
        return startClosing() ? .failConnection(failure) : .none
    }

    /// An error came up the pipeline (TLS, socket): close.
    mutating func errorCaught(_ error: any Error) -> Action {
        record(error)
        return startClosing() ? .closeChannel : .none
    }

    /// The channel went inactive or the handler was removed.
    mutating func channelClosed() -> Action {
        if case .closed = state { return .none }
        state = .closed
        return .reportClosed(error: error)
    }

    /// Moves an idle or open connection to closing; false if it is already closing or closed.
    private mutating func startClosing() -> Bool {
        switch state {
        case .idle:
            state = .closing(Open())
        case .open(let open):
            state = .closing(open)
        case .closing, .closed:
            return false
        }
        return true
    }

    private mutating func record(_ error: any Error) {
        if self.error == nil { self.error = error }
    }
}
