import NIOConcurrencyHelpers

/// The client TLS context a run's new connections take, swapped when the SVID rotates (Workload API updates,
/// rewritten SVID files).
///
/// One owner writes (the rotation source); every new connection reads `current` once, and a connection keeps the
/// context it was made with for its life, so in-flight requests never see a swap.
public final class TLSContextSource: Sendable {
    /// What a run reports of its identity's rotations.
    public struct Rotations: Sendable, Hashable {
        /// `workload-api` or `files`.
        public var source: String
        /// Contexts installed after the first.
        public var count = 0
        /// Updates that could not be made into a context (a half-written file, a bad SVID): the old one was kept.
        public var rejected = 0
        /// The last rejected update's reason.
        public var lastRejection: String?
        /// Seconds since the source was made, of each rotation.
        public var times: [Double] = []
        /// Times the source lost its feed during the run (the Workload API's stream broke and was reconnected); the
        /// identity in use stayed meanwhile.
        public var interruptions = 0
        /// The last interruption's reason.
        public var lastInterruption: String?

        public init(source: String) { self.source = source }

        /// Two shares of one source added (runs one after another): counts summed, the later one's last reasons.
        public func adding(_ later: Rotations) -> Rotations {
            var out = self
            out.count += later.count
            out.rejected += later.rejected
            out.times += later.times
            out.interruptions += later.interruptions
            out.lastInterruption = later.lastInterruption ?? lastInterruption
            out.lastRejection = later.lastRejection ?? lastRejection
            return out
        }

        /// What happened after `before` (the same source's counts earlier): one run's share of a source that several
        /// runs share (a verification's routes, a game day's steps).
        public func since(_ before: Rotations) -> Rotations {
            var out = self
            out.count -= before.count
            out.rejected -= before.rejected
            out.times = Array(times.dropFirst(before.times.count))
            out.interruptions -= before.interruptions
            if out.interruptions == 0 { out.lastInterruption = nil }
            if out.rejected == 0 { out.lastRejection = nil }
            return out
        }
    }

    private struct State {
        var context: TLSContext
        var rotations: Rotations
        /// Sources made from this one's contexts (`derived`), rotated with it.
        var children: [Child] = []
        /// Asks the feed for a new identity now (`setRefresh`).
        var refresh: (@Sendable () -> Void)?
    }

    private struct Child {
        var source: TLSContextSource
        var transform: @Sendable (TLSContext) throws -> TLSContext
    }

    private let state: NIOLockedValueBox<State>
    private let start = ContinuousClock.now

    public init(initial: TLSContext, source: String) {
        state = NIOLockedValueBox(State(context: initial, rotations: Rotations(source: source)))
    }

    /// The context for a new connection.
    public var current: TLSContext { state.withLockedValue { $0.context } }

    public var rotations: Rotations { state.withLockedValue { $0.rotations } }

    /// Installs a new context for the connections made from now on, and the derived sources' from it.
    public func rotate(to context: TLSContext) {
        let seconds = (ContinuousClock.now - start).seconds
        let children = state.withLockedValue {
            $0.context = context
            $0.rotations.count += 1
            $0.rotations.times.append(seconds)
            return $0.children
        }
        for child in children {
            do { child.source.rotate(to: try child.transform(context)) } catch { child.source.rejected("\(error)") }
        }
    }

    /// A source of contexts made from this one's by `transform` (the same SVID and bundles with other peer checks,
    /// another role): made now from the current context, and again on every rotation; a rotation `transform` refuses
    /// keeps the derived context in use.
    public func derived(source name: String, _ transform: @escaping @Sendable (TLSContext) throws -> TLSContext) throws -> TLSContextSource {
        while true {
            let base = current
            let child = TLSContextSource(initial: try transform(base), source: name)
            child.setRefresh { [weak self] in self?.requestRefresh() }
            // Registered only if no rotation came in between (it would have missed the child).
            let registered = state.withLockedValue {
                guard $0.context === base else { return false }
                $0.children.append(Child(source: child, transform: transform))
                return true
            }
            if registered { return child }
        }
    }

    /// What `requestRefresh` does: set by the feed of new identities (a Workload API stream reconnects at once instead
    /// of waiting out its backoff).
    public func setRefresh(_ refresh: @escaping @Sendable () -> Void) {
        state.withLockedValue { $0.refresh = refresh }
    }

    /// Asks the feed for a new identity now (a derived source asks its parent's); nothing for a source without one
    /// (files are re-read when they change).
    public func requestRefresh() {
        state.withLockedValue { $0.refresh }?()
    }

    /// Waits until a rotation after the `rotations.count` read before as `count`, at most `timeout`: true when one came.
    public func waitForRotation(after count: Int, timeout: Duration) async -> Bool {
        let end = ContinuousClock.now + timeout
        while rotations.count <= count {
            guard ContinuousClock.now < end, !Task.isCancelled else { return false }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return true
    }

    /// Notes that the feed of new identities broke (it is being reconnected); the current context stays.
    public func interrupted(_ reason: String) {
        state.withLockedValue {
            $0.rotations.interruptions += 1
            $0.rotations.lastInterruption = reason
        }
    }

    /// Notes an update that was refused; the current context stays.
    public func rejected(_ reason: String) {
        state.withLockedValue {
            $0.rotations.rejected += 1
            $0.rotations.lastRejection = reason
        }
    }
}

fileprivate extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
