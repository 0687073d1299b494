import MeshprobeIdentity

/// Declared outlier detection (Istio DestinationRule `outlierDetection`, Linkerd's consecutive failure accrual, or
/// a policy's `outlierDetection`), and the workloads to make fail.
public struct OutlierExpectation: Sendable, Equatable {
    /// Which replies count toward ejection.
    public enum Counted: String, Sendable {
        /// Every 5xx (Istio `consecutive5xxErrors`, Envoy `consecutive_5xx`, Linkerd: every 5xx is a failure).
        case serverErrors = "5xx"
        /// 502, 503 and 504 only (Istio `consecutiveGatewayErrors`).
        case gatewayErrors = "gateway"
    }

    /// Consecutive errors that eject an endpoint.
    public var consecutiveErrors: Int
    public var counted: Counted = .serverErrors
    /// Envoy's sweep interval: an ejected endpoint returns at the first sweep after its ejection time, so up to this
    /// much later.
    public var interval: Double = 10
    /// How long the first ejection lasts (Envoy multiplies it by the number of ejections; Linkerd's first penalty).
    public var baseEjectionTime: Double = 30
    /// At most this percent of the endpoints ejected at once; Envoy ejects one even when the percent allows none.
    public var maxEjectionPercent: Double = 10
    /// Linkerd jitters its penalty: the ejection may end this fraction earlier or later.
    public var jitter: Double = 0
    /// The workloads' own control-API addresses (not through the proxy): the first is made to fail; with two or
    /// more, all of them fail at once for the maximum-percent check.
    public var faultTargets: [String] = []
    /// Requests per second during the check (one at a time, so errors are counted exactly).
    public var rate: Double = 200
    /// Where the expectation came from (file and line, the DestinationRule or the Service), for the verdict.
    public var source: String

    public init(consecutiveErrors: Int, source: String) {
        self.consecutiveErrors = consecutiveErrors
        self.source = source
    }

    /// The status the injected fault answers: a gateway error, so that it counts whichever errors are counted.
    public var injectedStatus: Int { 503 }

    /// The status the injected fault answers gRPC calls with (trailers-only): UNAVAILABLE, which Envoy's outlier
    /// detection counts as the 503 it maps it to (`Grpc::Utility::grpcToHttpStatus`), for both kinds of errors.
    public var injectedGRPCStatus: GRPCStatusCode { .unavailable }

    /// Whether a response with this `ResponseCode` counts toward ejection: a gRPC status by its HTTP equivalent, as
    /// Envoy counts a `grpc-status` in the response headers.
    package func counts(_ status: Int) -> Bool {
        let http = ResponseCode.httpEquivalent(status)
        switch counted {
        case .serverErrors: return (500..<600).contains(http)
        case .gatewayErrors: return (502...504).contains(http)
        }
    }

    /// Endpoints that may be ejected at once out of `endpoints`.
    public func maxEjected(of endpoints: Int) -> Int { max(1, Int((maxEjectionPercent * Double(endpoints) / 100).rounded(.down))) }

    /// The longest the whole check may run: what the load's duration caps are built from.
    public var ejectionWindow: (earliest: Double, latest: Double) {
        (baseEjectionTime * (1 - jitter), baseEjectionTime * (1 + jitter) + interval)
    }
}
