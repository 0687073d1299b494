import Atomics
import NIOConcurrencyHelpers
import NIOCore

/// What one game-day fault does, where, and for how long: a checked `POST /.meshprobe/faults` body.
public struct FaultSettings: Sendable, Equatable {
    /// The status to answer instead, for `statusShare` percent of the matching requests.
    public var status: Int?
    public var statusShare: Double = 0
    public var delayNanoseconds: UInt64 = 0
    public var delayShare: Double = 0
    /// Percent of the matching requests whose stream is reset (HTTP/1.1: whose connection is closed).
    public var resetShare: Double = 0
    /// Applies to request paths (without the query) that start with this; "/" is every path.
    public var pathPrefix: String = "/"
    public var durationSeconds: Double
    /// The setter's label (a run's id), for listing and clearing together every fault one run set.
    public var label: String?

    /// The longest a fault may last: a forgotten game-day fault must not outlive the game day by much.
    public static let maxDurationSeconds = 3600.0
    public static let maxPathLength = 1024
    public static let maxLabelLength = 64
    static let labelRule = "must be 1 to \(maxLabelLength) characters: letters, digits, '.', '_' and '-'"

    /// A label is 1 to 64 ASCII letters, digits, '.', '_' and '-': safe in a query string as it is.
    public static func isValidLabel(_ label: String) -> Bool {
        !label.isEmpty && label.utf8.count <= maxLabelLength
            && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
    }

    /// Checks a request's values; errors name the JSON field.
    public init(_ request: FaultControlJSON.NewFault, limits: FaultSpec.Limits) throws(FaultControlError) {
        typealias Field = FaultControlJSON.NewFault.CodingKeys
        func percent(_ value: Double, _ field: Field) throws(FaultControlError) -> Double {
            guard value > 0, value <= 100 else { throw FaultControlError(field, "must be a percentage more than 0 and at most 100, got \(numberText(value))") }
            return value
        }
        func share(_ value: Double?, _ field: Field, of owner: Field, present: Bool) throws(FaultControlError) -> Double {
            guard let value else { return present ? 100 : 0 }
            guard present else { throw FaultControlError(field, "needs \(owner.rawValue): a share of what") }
            return try percent(value, field)
        }
        if let status = request.status {
            guard (200...599).contains(status) else { throw FaultControlError(.status, "must be an HTTP status code 200-599, got \(status)") }
        }
        self.status = request.status
        if let delay = request.delayMs {
            let maxMs = Double(limits.maxDelayNanoseconds) / 1e6
            guard delay > 0, delay <= maxMs else {
                throw FaultControlError(.delayMs, "must be more than 0 and at most the echo's maximum delay of \(Int(maxMs)) ms, got \(numberText(delay))")
            }
            delayNanoseconds = UInt64(delay * 1e6)
        }
        statusShare = try share(request.statusShare, .statusShare, of: .status, present: request.status != nil)
        delayShare = try share(request.delayShare, .delayShare, of: .delayMs, present: request.delayMs != nil)
        if let reset = request.resetShare { resetShare = try percent(reset, .resetShare) }
        if let path = request.path {
            guard path.hasPrefix("/"), path.utf8.count <= Self.maxPathLength,
                  !path.unicodeScalars.contains(where: { $0.value <= 0x20 || $0 == "?" || $0 == "#" }) else {
                throw FaultControlError(.path, "must be a path prefix starting with '/', without spaces, '?' or '#', at most \(Self.maxPathLength) bytes")
            }
            pathPrefix = path
        }
        guard let duration = request.durationSeconds else {
            throw FaultControlError(.durationSeconds, "is required: how many seconds the fault lasts (at most \(Int(Self.maxDurationSeconds)))")
        }
        guard duration > 0, duration <= Self.maxDurationSeconds else {
            throw FaultControlError(.durationSeconds, "must be more than 0 and at most \(Int(Self.maxDurationSeconds)) seconds, got \(numberText(duration))")
        }
        durationSeconds = duration
        if let label = request.label {
            guard Self.isValidLabel(label) else { throw FaultControlError(.label, Self.labelRule) }
            self.label = label
        }
        if status == nil && delayNanoseconds == 0 && resetShare == 0 {
            throw FaultControlError(field: "body", reason: "the fault does nothing: give status, delayMs or resetShare")
        }
    }
}

/// A number as a user wrote it: `50`, not `50.0`; `12.5` stays.
func numberText(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
}

/// A bad control request: names the JSON field (or `body`) and what was expected.
public struct FaultControlError: Error, Sendable, Equatable, CustomStringConvertible {
    public var field: String
    public var reason: String

    public init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }

    init(_ field: FaultControlJSON.NewFault.CodingKeys, _ reason: String) {
        self.init(field: field.rawValue, reason: reason)
    }

    public var description: String { "\(field): \(reason)" }
}

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
            id: id, status: settings.status, statusShare: settings.statusShare,
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
    /// nil when none applies.
    func spec(forPath path: String, now: NIODeadline = .now()) -> FaultSpec? {
        guard activeCount.load(ordering: .relaxed) > 0 else { return nil }
        let bare = path.firstIndex(of: "?").map { path[..<$0] } ?? path[...]
        let matching = state.withLockedValue { state in
            prune(&state, now: now)
            return state.faults.filter { $0.applies(to: bare) }
        }
        if matching.isEmpty { return nil }
        var spec = FaultSpec()
        for fault in matching {
            let s = fault.settings
            if let status = s.status { spec.statuses.append(.init(value: status, percent: s.statusShare, source: fault.id)) }
            if s.delayNanoseconds > 0 { spec.delays.append(.init(value: s.delayNanoseconds, percent: s.delayShare, source: fault.id)) }
            spec.resetPercent = min(100, spec.resetPercent + s.resetShare)
        }
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
