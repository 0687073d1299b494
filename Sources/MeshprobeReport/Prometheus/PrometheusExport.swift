import Histogram
import MeshprobeLoad
import NIOConcurrencyHelpers
import Prometheus

/// The per-identity metrics as Prometheus metrics, through swift-prometheus's registry (its exposition writer,
/// not a hand-written one).
///
/// `meshprobe_requests_total` counts requests per series and `meshprobe_request_duration_seconds` is their latency
/// histogram, both with Istio's label names (see `SeriesLabels`). Feed it snapshots of a run's metrics as they grow
/// (`update`): each series gets only what is new since the last snapshot, so counters only go up. Latencies come from
/// the HdrHistogram (each observation at its bucket's lowest equivalent value: within 0.1%).
public final class PrometheusExport: Sendable {
    /// Histogram bucket bounds, seconds: 0.5 ms to 60 s, roughly 1-2.5-5 per decade.
    public static let bucketSeconds: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

    static var requests: MetricNameDescriptor { MetricNameDescriptor(
        namespace: "meshprobe", metricName: "requests", unitName: "total",
        helpText: "Requests by source, destination identity, route, response code and failure class (Istio label names).") }
    static var duration: MetricNameDescriptor { MetricNameDescriptor(
        namespace: "meshprobe", metricName: "request_duration", unitName: "seconds",
        helpText: "Request latency from the intended send time (open model) or the hand-over to the connection (closed model).") }

    public let registry = PrometheusCollectorRegistry()
    private struct Fed: Hashable {
        var run: Int
        var labels: SeriesLabels
    }

    private let fed = NIOLockedValueBox<[Fed: SeriesStats]>([:])

    public init() {}

    /// Adds what `metrics` has beyond the last snapshot fed for the same run (a run's snapshots never shrink;
    /// several runs, such as a verification's loads, add up).
    public func update(_ metrics: IdentityMetrics, run: Int = 0) {
        let buckets = Self.bucketSeconds.map { Duration.nanoseconds(Int64(($0 * 1e9).rounded())) }
        fed.withLockedValue { fed in
            for (labels, stats) in metrics.series {
                let before = fed[Fed(run: run, labels: labels)] ?? SeriesStats()
                let pairs = labels.pairs
                let counter = registry.makeCounter(descriptor: Self.requests, labels: pairs)
                if stats.requests > before.requests { counter.increment(by: Int64(stats.requests - before.requests)) }
                if stats.latency.totalCount > before.latency.totalCount {
                    let histogram = registry.makeDurationHistogram(descriptor: Self.duration, labels: pairs, buckets: buckets)
                    for value in stats.latency.recordedValues() {
                        let old = before.latency.totalCount > 0 ? before.latency.countForValue(value.value) : 0
                        guard value.count > old else { continue }
                        let observed = Duration.microseconds(Int64(stats.latency.lowestEquivalentForValue(value.value)))
                        for _ in 0..<(value.count - old) { histogram.record(observed) }
                    }
                }
                fed[Fed(run: run, labels: labels)] = stats
            }
        }
    }

    static var accessDecision: MetricNameDescriptor { MetricNameDescriptor(
        namespace: "meshprobe", metricName: "access_decision",
        helpText: "One series per access cell (caller, request): the decision its tries showed (allow, deny, inconclusive), the declared one, and who decided (1: the cell was tried).") }

    /// One series per access cell of a verify result, its principals as `meshprobe_requests_total` writes them (SPIFFE
    /// IDs; `anonymous`, `plaintext` for the callers without one): `decision` the observed decision,
    /// `expected` the declared one, `origin` who decided (`envoy denial (RBAC)`, `TLS alert 'unknown CA'`, ...),
    /// `request` the method and path (two cells of one caller differ by it), `verdict` pass, fail or undecided (what an
    /// alert selects: PromQL cannot compare two labels).
    public func record(access verdicts: [VerifyReport.Verdict]) {
        for v in verdicts {
            guard let a = v.evidence.access else { continue }
            let labels = [("source_principal", a.callerID ?? a.caller), ("destination_principal", a.servers.first ?? "unknown"),
                          ("request", a.requestText), ("decision", a.observed), ("expected", a.expected), ("origin", a.origin),
                          ("verdict", v.decided ? (v.passed ? "pass" : "fail") : "undecided")]
            registry.makeGauge(descriptor: Self.accessDecision, labels: labels).set(Int64(1))
        }
    }

    /// The text exposition format (version 0.0.4).
    public func text() -> String { registry.emitToString() }
}
