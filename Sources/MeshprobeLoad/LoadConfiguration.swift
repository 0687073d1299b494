import MeshprobeHTTP2
import MeshprobeIdentity
import MeshprobeSpec
import MeshprobeTLS

/// A guard that fired: which, when, and what it saw.
public struct GuardEvent: Sendable, Equatable {
    public var action: GuardAction
    public var guardDescription: String
    /// The second of the run it saw the breach in.
    public var second: Int
    public var observed: String
}

/// A load run: the user's plan and what only a run has (the TLS context, the sinks and observers, the knobs the
/// engine's callers set). The engine copies what it reads per request into its workers and connections at setup.
public struct LoadConfiguration: Sendable {
    /// What the user asked for.
    public var plan: LoadPlan
    /// Client TLS context for https targets.
    public var tls: TLSContext?
    /// When the identity rotates during the run (Workload API updates, rewritten SVID files): each new connection
    /// takes this source's current context instead of `tls`, and keeps it for its life. Nil: `tls` for every one.
    public var tlsSource: TLSContextSource?
    /// What the TLS context accepts beyond the defaults, one phrase each, for the reports.
    public var tlsLoosened: [String] { tls?.configuration.loosening.loosened ?? [] }
    /// The `source_workload` label of the per-identity metrics (Istio's name for the caller's workload).
    public var sourceWorkload = "meshprobe"
    /// The `route` label of the per-identity metrics: a verify route's name (flow steps add their own).
    public var route = ""
    /// Receives the run's per-identity metrics once a second and at the end (a live `/metrics` endpoint), with an id
    /// that is unique per run; nil (the default) costs nothing.
    public var metricsSink: (@Sendable (_ run: Int, _ metrics: IdentityMetrics) -> Void)?
    /// A connection that fails this many times in a row without carrying a request is given up.
    public var maxConsecutiveConnectFailures: Int = 3
    /// A request is late when it is sent more than this many seconds after its intended time (open model).
    public var lateThreshold: Double = 0.001
    /// When a connection may hold (with coalescing on, `LoadPlan.coalesceWindow`): by default only while the event
    /// loop is busy, shared by two or more connections, and the connection has four other requests in flight.
    public var coalescePolicy: HTTP2WriteCoalescer.Policy = .default
    /// Keep the last flow step's response (status and body, any status) in `LoadResult.lastStepResponse`; for
    /// one-shot requests, whose body is the point.
    public var keepLastStepResponse = false
    /// Count responses by the echo's pod stamp (`LoadResult.podsSeen`).
    public var countsPods = false
    /// Sees every recorded response (after the warm-up): who answered, the status and the failure's class (nil: a
    /// success), on the event loop of the worker that got it, so from several threads at once. Returning true ends
    /// the run early, as decided rather than aborted: a sequential test has its verdict.
    public var responseObserver: (@Sendable (_ identity: WorkloadIdentity, _ status: Int, _ failure: FailureClass?) -> Bool)?
    /// Sees the run connection by connection (a split test whose sample is a connection); nil (the default) costs
    /// nothing.
    public var connectionObserver: (any ConnectionObserver)?

    public init(plan: LoadPlan, tls: TLSContext? = nil) {
        self.plan = plan
        self.tls = tls
    }

    /// A run of a plan to `targets`, with the plan's defaults otherwise.
    public init(targets: [LoadTarget]) {
        self.init(plan: LoadPlan(targets: targets))
    }

    /// Checks the plan (errors name the flags) and that an https target has a TLS context.
    public func validate() throws(LoadPlanError) {
        try plan.validate()
        if plan.targets.contains(where: { $0.scheme == .https }) && tls == nil {
            throw LoadPlanError(field: "URL", value: plan.targets.map(\.description).joined(separator: " "), reason: "https needs a TLS configuration",
                                setting: .targets)
        }
    }
}

/// The open model's default send tick: long enough that a tick carries about `arrivalsPerTick` arrivals of one
/// event loop, within `minimum...maximum`.
///
/// At 30000 requests/s a fixed 200 us tick sends batches of 6, and each batch costs a timer wake-up, a TLS record,
/// a write and the reads of its responses; a 500 us tick sends 15 for the same costs. The maximum keeps every
/// arrival's wait for its tick (counted in the latency from the intended time) at half the 1 ms late threshold.
public enum AdaptiveSendTick {
    public static let minimum = 0.0002
    public static let maximum = 0.0005
    public static let arrivalsPerTick = 16.0

    /// The tick, in seconds, for an event loop whose arrivals come at `rate` per second.
    public static func tick(forRate rate: Double) -> Double {
        guard rate > 0 else { return maximum }
        return min(maximum, max(minimum, arrivalsPerTick / rate))
    }
}

/// Sees a run connection by connection: each connection attempt as it starts, each recorded response (after the
/// warm-up) with its latency and the connection that carried it, each request that failed without a response, and
/// each connection's end (closed, failed to connect, or stopped with the run), exactly once per attempt and after all
/// of its responses and failures. Called on the workers' event loops, so from several threads at once. Returning true
/// ends the run early, as decided.
public protocol ConnectionObserver: AnyObject, Sendable {
    /// A connection attempt starts; returns the number the other calls name it by.
    func opened() -> Int
    func response(_ identity: WorkloadIdentity, status: Int, latencyMicros: UInt64, connection: Int) -> Bool
    func failed(connection: Int)
    func ended(connection: Int) -> Bool
}
