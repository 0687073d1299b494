import Atomics
import MeshprobeIdentity
import MeshprobeEchoAPI
import NIOConcurrencyHelpers
import NIOCore

/// A fault set through the control API.
public struct ControlFault: Sendable, Equatable {
    public var id: String
    public var settings: FaultSettings
    public var expires: NIODeadline
    /// The SPIFFE ID of the caller that set it.
    public var setBy: String

    func applies(to path: Substring) -> Bool { path.hasPrefix(settings.pathPrefix) }

    /// Whole seconds left, rounded up (a fault that still applies never shows 0).
    func expiresInSeconds(now: NIODeadline) -> Int {
        let left = (expires - now).nanoseconds
        return left <= 0 ? 0 : Int((left + 999_999_999) / 1_000_000_000)
    }

    func json(now: NIODeadline) -> FaultControlJSON.Fault {
        FaultControlJSON.Fault(
            id: id, status: settings.status, grpcStatus: settings.grpcStatus?.name, statusShare: settings.statusShare,
            delayMs: Double(settings.delayNanoseconds) / 1e6, delayShare: settings.delayShare,
            resetShare: settings.resetShare, path: settings.pathPrefix,
            expiresInSeconds: expiresInSeconds(now: now), setBy: setBy, label: settings.label)
    }
}

/// The faults set through the control API, shared by every connection (and event loop) of one echo.
///
/// A lock guards the list. An atomic count of active faults lets ordinary requests skip the lock when there are
/// none, the usual case under load. Expired faults stop applying at once and are dropped whenever the list is read.
final class FaultControl: Sendable {
    /// At most this many faults are active at once.
    static let maxActive = 100

    private struct State {
        var faults: [ControlFault] = []
        var nextID = 1
    }

    private let state = NIOLockedValueBox(State())
    private let activeCount = ManagedAtomic<Int>(0)

    /// Adds a fault; nil when `maxActive` faults are active already.
    func add(_ settings: FaultSettings, setBy: String, now: NIODeadline = .now()) -> ControlFault? {
        state.withLockedValue { state in
            prune(&state, now: now)
            guard state.faults.count < Self.maxActive else { return nil }
            let fault = ControlFault(id: "f\(state.nextID)", settings: settings,
                                     expires: now + .nanoseconds(Int64(settings.durationSeconds * 1e9)), setBy: setBy)
            state.nextID += 1
            state.faults.append(fault)
            activeCount.store(state.faults.count, ordering: .relaxed)
            return fault
        }
    }

    /// The active faults, oldest first; with `label`, only those set with it.
    func list(label: String? = nil, now: NIODeadline = .now()) -> [ControlFault] {
        state.withLockedValue { state in
            prune(&state, now: now)
            return state.faults.filter { label == nil || $0.settings.label == label }
        }
    }

    /// Removes every fault, the one with `id`, or every one set with `label`; returns how many were active and removed.
    func clear(id: String? = nil, label: String? = nil, now: NIODeadline = .now()) -> Int {
        state.withLockedValue { state in
            prune(&state, now: now)
            let before = state.faults.count
            state.faults.removeAll { (id == nil || $0.id == id) && (label == nil || $0.settings.label == label) }
            activeCount.store(state.faults.count, ordering: .relaxed)
            return before - state.faults.count
        }
    }

    /// The active faults that apply to `path` (the query is ignored) as one spec, in the order they were set;
    /// nil when none applies. For a gRPC call (`grpc`), a fault's `grpcStatus` is its status (a `ResponseCode`), else
    /// its HTTP `status`; an HTTP request gets the HTTP `status` only.
    func spec(forPath path: String, grpc: Bool = false, now: NIODeadline = .now()) -> FaultSpec? {
        guard activeCount.load(ordering: .relaxed) > 0 else { return nil }
        let bare = path.firstIndex(of: "?").map { path[..<$0] } ?? path[...]
        let matching = state.withLockedValue { state in
            prune(&state, now: now)
            return state.faults.filter { $0.applies(to: bare) }
        }
        if matching.isEmpty { return nil }
        // Each fault applies on its own (as separate fault filters would): two 50% aborts fail 75% of requests, not
        // 100%. In the spec's cumulative choices, a fault's share is what is left after the earlier ones (which keep
        // precedence): p_i x (1 - p_1) x ... x (1 - p_i-1).
        var spec = FaultSpec()
        var statusLeft = 1.0, delayLeft = 1.0, resetLeft = 1.0
        for fault in matching {
            let s = fault.settings
            let grpcStatus = grpc ? s.grpcStatus.map(ResponseCode.grpc) : nil
            if let status = grpcStatus ?? s.status {
                spec.statuses.append(.init(value: status, percent: s.statusShare * statusLeft, source: fault.id))
                statusLeft *= 1 - s.statusShare / 100
            }
            if s.delayNanoseconds > 0 {
                spec.delays.append(.init(value: s.delayNanoseconds, percent: s.delayShare * delayLeft, source: fault.id))
                delayLeft *= 1 - s.delayShare / 100
            }
            resetLeft *= 1 - s.resetShare / 100
        }
        spec.resetPercent = min(100, (1 - resetLeft) * 100)
        return spec
    }

    /// Drops expired faults; called with the lock held.
    private func prune(_ state: inout State, now: NIODeadline) {
        guard state.faults.contains(where: { $0.expires <= now }) else { return }
        state.faults.removeAll { $0.expires <= now }
        activeCount.store(state.faults.count, ordering: .relaxed)
    }
}

/// Counts the requests this echo has seen per `x-request-id`, so a retry check can tell the first attempt from
/// the retries. Memory is bounded: beyond `capacity` ids the oldest (first seen) are forgotten.
final class AttemptCounter: Sendable {
    private struct State {
        var counts: [String: Int] = [:]
        var order = CircularBuffer<String>()
    }

    let capacity: Int
    private let state = NIOLockedValueBox(State())

    init(capacity: Int = 100_000) {
        self.capacity = max(1, capacity)
    }

    /// Ids longer than this are counted by their first bytes plus a hash, so a hostile header cannot pin much memory.
    static let maxKeyBytes = 128

    /// Counts one more request with `requestID`; returns how many this echo has seen, this one included.
    func count(_ requestID: String) -> Int {
        let key = Self.key(requestID)
        return state.withLockedValue { state in
            if let seen = state.counts[key] {
                state.counts[key] = seen + 1
                return seen + 1
            }
            if state.order.count >= capacity, let oldest = state.order.popFirst() {
                state.counts[oldest] = nil
            }
            state.counts[key] = 1
            state.order.append(key)
            return 1
        }
    }

    static func key(_ requestID: String) -> String {
        guard requestID.utf8.count > maxKeyBytes else { return requestID }
        var hasher = Hasher()
        hasher.combine(requestID)
        return String(decoding: requestID.utf8.prefix(maxKeyBytes - 17), as: UTF8.self) + "#" + String(UInt64(bitPattern: Int64(hasher.finalize())), radix: 16)
    }
}
