import Histogram
import MeshprobeHistogram
import MeshprobeIdentity
import MeshprobeSpec

/// The labels of one per-identity series: Istio's standard metric labels (so existing dashboards read them), plus
/// the route and meshprobe's failure class.
///
/// `response_code` is 0 for a request without a response (Istio's convention), 200 for a gRPC call answered with a
/// `grpc-status`, whose code is `grpc_response_status` (empty for HTTP, as Istio writes it); `response_flags` is the proxy's
/// short code when its signature has one (Envoy's `UO`, `UH`, ...), else `-`; `failure_class` says who produced a
/// failure and why (`proxy:circuit_breaker_overflow`, `application:503`, `client:stream_reset`), empty on success.
public struct SeriesLabels: Hashable, Sendable, Codable, Comparable {
    public var sourceWorkload: String
    public var sourcePrincipal: String
    public var destinationService: String
    public var destinationPrincipal: String
    public var destinationWorkload: String
    public var destinationVersion: String
    public var destinationCluster: String
    public var route: String
    public var responseCode: Int
    /// A gRPC call's `grpc-status` as a number (`"14"`); nil for HTTP (and for a gRPC call answered without one).
    public var grpcResponseStatus: String?
    public var responseFlags: String
    public var failureClass: String
    /// `mutual_tls` (the prober presented its SVID), `tls` (server-authenticated only), `none` (plaintext) or
    /// `unknown` (a request that never had a connection).
    public var connectionSecurityPolicy: String

    public init(sourceWorkload: String = "", sourcePrincipal: String = "", destinationService: String = "",
                destinationPrincipal: String = "", destinationWorkload: String = "", destinationVersion: String = "",
                destinationCluster: String = "", route: String = "", responseCode: Int = 0, grpcResponseStatus: String? = nil,
                responseFlags: String = "-", failureClass: String = "", connectionSecurityPolicy: String = "unknown") {
        self.sourceWorkload = sourceWorkload
        self.sourcePrincipal = sourcePrincipal
        self.destinationService = destinationService
        self.destinationPrincipal = destinationPrincipal
        self.destinationWorkload = destinationWorkload
        self.destinationVersion = destinationVersion
        self.destinationCluster = destinationCluster
        self.route = route
        self.responseCode = responseCode
        self.grpcResponseStatus = grpcResponseStatus
        self.responseFlags = responseFlags
        self.failureClass = failureClass
        self.connectionSecurityPolicy = connectionSecurityPolicy
    }

    enum CodingKeys: String, CodingKey {
        case route
        case sourceWorkload = "source_workload"
        case sourcePrincipal = "source_principal"
        case destinationService = "destination_service"
        case destinationPrincipal = "destination_principal"
        case destinationWorkload = "destination_workload"
        case destinationVersion = "destination_version"
        case destinationCluster = "destination_cluster"
        case responseCode = "response_code"
        case grpcResponseStatus = "grpc_response_status"
        case responseFlags = "response_flags"
        case failureClass = "failure_class"
        case connectionSecurityPolicy = "connection_security_policy"
    }

    /// The labels as Prometheus label pairs, Istio's names first.
    public var pairs: [(String, String)] {
        [("source_workload", sourceWorkload), ("source_principal", sourcePrincipal),
         ("destination_service", destinationService), ("destination_principal", destinationPrincipal),
         ("destination_workload", destinationWorkload), ("destination_version", destinationVersion),
         ("destination_cluster", destinationCluster), ("route", route), ("response_code", String(responseCode)),
         ("grpc_response_status", grpcResponseStatus ?? ""), ("response_flags", responseFlags), ("failure_class", failureClass),
         ("connection_security_policy", connectionSecurityPolicy)]
    }

    /// The series' `ResponseCode` (its gRPC status when it has one; a health check's failing answer, whose gRPC status
    /// is OK, by its failure class `application:health NOT_SERVING`).
    public var code: Int {
        if let text = grpcResponseStatus, let status = Int(text).flatMap(GRPCStatusCode.init(rawValue:)) {
            if status == .ok, failureClass.hasPrefix("application:health "),
               let health = ResponseCode.parse(String(failureClass.dropFirst("application:".count))) {
                return health
            }
            return ResponseCode.grpc(status)
        }
        return responseCode
    }

    /// The labels of a response with `code` (a `ResponseCode`): a gRPC status is HTTP 200 with its number.
    public static func codes(_ code: Int) -> (responseCode: Int, grpcResponseStatus: String?) {
        if let status = ResponseCode.grpcStatus(code) { return (200, String(status.rawValue)) }
        return (code, nil)
    }

    private var sortKey: [String] { pairs.map(\.1) }

    public static func < (lhs: SeriesLabels, rhs: SeriesLabels) -> Bool {
        lhs.sortKey.lexicographicallyPrecedes(rhs.sortKey)
    }

    /// The `response_flags` and `failure_class` of a failure class (nil: a success).
    public static func flags(of failure: FailureClass?) -> (flags: String, failureClass: String) {
        guard let failure else { return ("-", "") }
        return (failure.flag ?? "-", "\(failure.origin.rawValue):\(failure.reason)")
    }
}

/// Requests and latency of one series.
public struct SeriesStats: Sendable, Equatable {
    /// Requests in this series: responses, or (with `response_code` 0) requests without one.
    public var requests = 0
    /// Latency of the series' responses, microseconds; empty for requests without a response.
    public var latency = LatencyHistogram.latency()

    public init() {}

    public init(requests: Int, latency: LatencyHistogram) {
        self.requests = requests
        self.latency = latency
    }

    public mutating func merge(_ other: SeriesStats) {
        requests += other.requests
        latency.merge(other.latency)
    }
}

/// The per-identity metrics model: every series of a run, by its labels.
public struct IdentityMetrics: Sendable, Equatable {
    public var series: [SeriesLabels: SeriesStats] = [:]

    public init(series: [SeriesLabels: SeriesStats] = [:]) {
        self.series = series
    }

    public mutating func merge(_ other: IdentityMetrics) {
        for (labels, stats) in other.series { series[labels, default: SeriesStats()].merge(stats) }
    }

    public func merging(_ other: IdentityMetrics) -> IdentityMetrics {
        var out = self
        out.merge(other)
        return out
    }

    /// Series in a stable order (by label values).
    public var sorted: [(labels: SeriesLabels, stats: SeriesStats)] {
        series.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    public var totalRequests: Int { series.values.reduce(0) { $0 + $1.requests } }
}

/// What is constant over a run's series: the source and the connection context each key points at.
public struct SeriesContext: Sendable, Equatable {
    public var sourceWorkload: String
    public var sourcePrincipal: String
    /// The target authorities, by target index.
    public var destinationServices: [String]
    /// Per target index: `mutual_tls`, `tls` or `none`.
    public var securityPolicies: [String]
    /// Route names: index 0 is the run's route (a verify route's name, else ""); index i > 0 is flow step i - 1.
    public var routes: [String]

    public init(configuration: LoadConfiguration) {
        sourceWorkload = configuration.sourceWorkload
        sourcePrincipal = configuration.tls?.localIdentity?.description ?? ""
        destinationServices = configuration.plan.targets.map(\.authority)
        securityPolicies = configuration.plan.targets.map { target in
            guard target.scheme == .https, let tls = configuration.tls else { return "none" }
            return tls.localIdentity != nil ? "mutual_tls" : "tls"
        }
        let base = configuration.route
        routes = [base] + configuration.plan.flow.map { base.isEmpty ? $0.name : "\(base)/\($0.name)" }
    }
}

/// A worker's series while it counts: keyed by a packed 64-bit key (identity, target, route, status and failure class
/// as small indices), so recording a response costs one integer hash (none when the connection's last key repeats).
struct SeriesTable: Sendable {
    private(set) var identities: [WorkloadIdentity] = []
    private var identityIndex: [WorkloadIdentity: Int] = [:]
    /// Failure classes by index; 0 is success.
    private(set) var classes: [FailureClass?] = [nil]
    private var classIndex: [FailureClass: Int] = [:]
    private var index: [UInt64: Int] = [:]
    private(set) var keys: [UInt64] = []
    private(set) var stats: [SeriesStats] = []

    /// Bit layout of a key, low to high: class 12, status 10, route 10, target 12 (index + 1; 0 unknown), identity 20.
    @inline(__always) static func key(identity: Int, target: Int, route: Int, status: Int, failureClass: Int) -> UInt64 {
        let s = UInt64(status >= 0 && status <= ResponseCode.maximum ? status : 999)
        return UInt64(truncatingIfNeeded: identity) << 44 | UInt64(truncatingIfNeeded: target & 0xFFF) << 32
            | UInt64(truncatingIfNeeded: route & 0x3FF) << 22 | s << 12 | UInt64(truncatingIfNeeded: failureClass & 0xFFF)
    }

    mutating func intern(_ identity: WorkloadIdentity) -> Int {
        if let i = identityIndex[identity] { return i }
        identities.append(identity)
        identityIndex[identity] = identities.count - 1
        return identities.count - 1
    }

    mutating func intern(_ failure: FailureClass?) -> Int {
        guard let failure else { return 0 }
        if let i = classIndex[failure] { return i }
        classes.append(failure)
        classIndex[failure] = classes.count - 1
        return classes.count - 1
    }

    /// The slot of `key`, created when new (indices stay valid: slots are only appended).
    @inline(__always) mutating func slot(_ key: UInt64) -> Int {
        if let i = index[key] { return i }
        keys.append(key)
        stats.append(SeriesStats())
        index[key] = stats.count - 1
        return stats.count - 1
    }

    @inline(__always) mutating func record(slot: Int, latencyMicros: UInt64?) {
        stats[slot].requests += 1
        if let latencyMicros { _ = stats[slot].latency.record(max(1, latencyMicros)) }
    }

    mutating func add(_ key: UInt64, count: Int) {
        stats[slot(key)].requests += count
    }

    private static func labelCodes(_ code: Int) -> (responseCode: Int, grpcResponseStatus: String?) { SeriesLabels.codes(code) }

    /// The series with their labels.
    func metrics(_ context: SeriesContext) -> IdentityMetrics {
        var out = IdentityMetrics()
        for (key, stats) in zip(keys, stats) {
            let failure = classes[Int(key & 0xFFF)]
            let status = Int((key >> 12) & 0x3FF)
            let route = Int((key >> 22) & 0x3FF)
            let target = Int((key >> 32) & 0xFFF) - 1
            let identity = identities[Int(key >> 44)]
            let (flags, failureClass) = SeriesLabels.flags(of: failure)
            let labels = SeriesLabels(
                sourceWorkload: context.sourceWorkload, sourcePrincipal: context.sourcePrincipal,
                destinationService: context.destinationServices.indices.contains(target) ? context.destinationServices[target] : "",
                destinationPrincipal: identity.identity, destinationWorkload: identity.workload,
                destinationVersion: identity.version, destinationCluster: identity.cluster,
                route: context.routes.indices.contains(route) ? context.routes[route] : "",
                responseCode: Self.labelCodes(status).responseCode, grpcResponseStatus: Self.labelCodes(status).grpcResponseStatus,
                responseFlags: flags, failureClass: failureClass,
                connectionSecurityPolicy: context.securityPolicies.indices.contains(target) ? context.securityPolicies[target] : "unknown")
            out.series[labels, default: SeriesStats()].merge(stats)
        }
        return out
    }
}
