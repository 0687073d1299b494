import Foundation
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeSpec

/// What one update of the live view says, worked out from progress snapshots alone (no clock read, no I/O).
public struct LiveStatus: Sendable {
    /// Nothing can be sent yet: the open model's clock starts once its connections are up.
    public var connecting: Bool
    /// Seconds on the run's clock (while connecting: since the view started).
    public var elapsed: Double
    /// The run is still in its warm-up: what ends is not counted yet.
    public var warmingUp: Bool
    /// Requests that ended a second (answered, warm-up included) since the previous update; for the first update,
    /// since the run's clock started. It never repeats an earlier second's rate.
    public var rate: Double
    public var targetRate: Double?
    /// The last finished second, nil while the first one is still running (the counts so far are partial).
    public var lastSecond: TimelinePoint?
    /// The last finished second was warm-up: its requests are not counted, so it has no percentiles to show.
    public var lastSecondWasWarmup = false
    /// No request ended since the previous update (an outage, or a stalled server).
    public var silent: Bool
    /// While silent: seconds since the update that last saw a request end (at least that long without one); nil
    /// when none ever ended.
    public var silentFor: Double?
    /// The counts so far.
    public var progress: LoadGenerator.Progress

    /// The last finished second had responses and this update saw requests end: its percentiles are current.
    public var percentiles: (p50: UInt64, p99: UInt64)? {
        guard !silent, let lastSecond, lastSecond.responses > 0 else { return nil }
        return (lastSecond.p50, lastSecond.p99)
    }
}

/// The live view's memory between updates (a value: `update` is the only transition): the previous snapshot's
/// time and count, and when a request last ended.
public struct LiveViewState: Sendable {
    private var previous: (elapsed: Double, ended: Int)?
    private var lastEnded: Double?
    private let warmup: Double

    public init(warmup: Double = 0) {
        self.warmup = warmup
    }

    /// The status for `progress`, taken `wallElapsed` seconds after the view started (used only while connecting).
    public mutating func update(_ progress: LoadGenerator.Progress, wallElapsed: Double) -> LiveStatus {
        guard let clock = progress.clock else {
            return LiveStatus(connecting: true, elapsed: wallElapsed, warmingUp: false, rate: 0,
                              targetRate: progress.targetRate, lastSecond: nil, silent: false, silentFor: nil,
                              progress: progress)
        }
        // Warm-up requests end too: counting them keeps the rate true from the first second of a warm-up.
        let ended = progress.responses + progress.warmupRequests
        let since = previous ?? (elapsed: 0, ended: 0)
        let interval = clock - since.elapsed
        let fresh = ended - since.ended
        let rate = interval > 0 ? Double(fresh) / interval : 0
        if fresh > 0 { lastEnded = clock }
        previous = (clock, ended)
        var status = LiveStatus(connecting: false, elapsed: clock, warmingUp: clock < warmup, rate: rate,
                                targetRate: progress.targetRate, lastSecond: progress.window, silent: fresh == 0,
                                silentFor: fresh == 0 ? lastEnded.map { clock - $0 } : nil, progress: progress)
        if let second = progress.window?.second { status.lastSecondWasWarmup = Double(second + 1) <= warmup }
        return status
    }
}

/// What a running load shows every second: elapsed/remaining, achieved vs target rate, in flight, the last
/// second's p50/p99, errors by kind, and the split by workload identity.
public struct LiveView: Sendable {
    public var plan: LoadPlan

    public init(plan: LoadPlan) {
        self.plan = plan
    }

    /// The status block (several lines) for a terminal.
    public func block(_ status: LiveStatus) -> [String] {
        let p = status.progress
        var lines: [String] = []
        var first = String(format: "%7.1fs", status.elapsed)
        if let planned = plan.plannedDuration { first += String(format: " / %.1fs", planned) }
        if status.connecting {
            first += "   connecting (the clock starts once the connections are up)"
        } else {
            first += String(format: "   rate %.0f/s", status.rate)
        }
        if let target = status.targetRate { first += String(format: " (target %.0f/s)", target) }
        if status.warmingUp { first += "   warm-up" }
        first += "   in flight \(p.inFlight)   sent \(p.sent)"
        if plan.model.isOpen { first += "   late \(p.late)" }
        lines.append(first)
        if !status.connecting {
            lines.append("  last second: " + lastSecondText(status))
        }
        lines.append("  totals: \(p.responses) responses, \(p.succeeded) ok, \(p.failed) failed")
        if !p.errors.isEmpty {
            lines.append("  errors: " + p.errors.sorted { $0.value > $1.value }.map { "\($0.key.rawValue) \($0.value)" }.joined(separator: ", "))
        }
        if let split = split(p) { lines.append("  split: " + split) }
        return lines
    }

    private func lastSecondText(_ status: LiveStatus) -> String {
        if status.silent {
            guard let quiet = status.silentFor else { return "no responses (none yet)" }
            return String(format: "no responses (none for %.0fs)", quiet)
        }
        guard let window = status.lastSecond else {
            return String(format: "the first is not over (%.1fs so far: %d ok, %d failed)", status.elapsed,
                          status.progress.succeeded, status.progress.failed)
        }
        if status.lastSecondWasWarmup { return "warm-up (not counted)" }
        guard let percentiles = status.percentiles else { return "no responses" }
        return String(format: "p50 %.3f ms  p99 %.3f ms   ok %d  failed %d", Double(percentiles.p50) / 1000,
                      Double(percentiles.p99) / 1000, window.succeeded, window.failed)
    }

    /// One line for logs (not a TTY): `key=value` fields separated by single spaces, values without spaces, the
    /// keys always in this order; the UTC time first (RFC 3339, whole seconds).
    public func line(_ status: LiveStatus, at now: Date) -> String {
        let p = status.progress
        var fields = [UTCTimestamp.iso8601(now)]
        var elapsed = String(format: "elapsed=%.1fs", status.elapsed)
        if let planned = plan.plannedDuration { elapsed += String(format: "/%.1fs", planned) }
        fields.append(elapsed)
        if status.connecting { fields.append("state=connecting") }
        if status.warmingUp { fields.append("state=warmup") }
        fields.append(String(format: "rate=%.0f/s", status.rate))
        if let target = status.targetRate { fields.append(String(format: "target=%.0f/s", target)) }
        fields.append("inflight=\(p.inFlight) sent=\(p.sent) ok=\(p.succeeded) failed=\(p.failed)")
        if plan.model.isOpen { fields.append("late=\(p.late)") }
        if let percentiles = status.percentiles {
            fields.append(String(format: "p50=%.3fms p99=%.3fms", Double(percentiles.p50) / 1000, Double(percentiles.p99) / 1000))
        } else if !status.connecting {
            fields.append("p50=- p99=-")
            if status.silent {
                fields.append("last_second=no_responses")
                fields.append(status.silentFor.map { String(format: "no_response_for=%.0fs", $0) } ?? "no_response_yet")
            } else {
                fields.append(status.lastSecond == nil ? "last_second=partial"
                              : status.lastSecondWasWarmup ? "last_second=warmup" : "last_second=no_responses")
            }
        }
        if !p.errors.isEmpty {
            fields.append("errors=" + p.errors.sorted { $0.key < $1.key }.map { "\($0.key.rawValue):\($0.value)" }.joined(separator: ","))
        }
        if let split = split(p, separator: ",", format: "%@:%.1f%%") { fields.append("split=" + split) }
        return fields.joined(separator: " ")
    }

    func split(_ p: LoadGenerator.Progress, separator: String = "  ", format: String = "%@ %.1f%%") -> String? {
        let total = p.identities.values.reduce(0, +)
        guard total > 0, p.identities.count > 0 else { return nil }
        return p.identities.sorted { $0.key.label < $1.key.label }
            .map { String(format: format, TerminalStyle.sanitize($0.key.label), Double($0.value) / Double(total) * 100) }
            .joined(separator: separator)
    }
}
