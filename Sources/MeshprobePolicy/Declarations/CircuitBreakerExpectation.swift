/// A declared connection-pool limit (Istio DestinationRule `connectionPool`, or a policy's `circuitBreaker`).
public struct CircuitBreakerExpectation: Sendable, Equatable {
    /// Requests the upstream may have in flight from this client's proxy (`http2MaxRequests`, or
    /// `tcp.maxConnections` for HTTP/1.1 upstreams: one request per connection).
    public var maxRequests: Int
    /// Requests the proxy queues beyond that before it refuses (`http1MaxPendingRequests`); nil: unbounded, so
    /// nothing is expected to overflow and only the in-flight limit is checked.
    public var maxPending: Int?
    /// How long the upstream holds each request during the check (sent as the echo's `delay` parameter), so that
    /// requests pile up; nil when the upstream is slow on its own.
    public var hold: Double? = 0.1
    /// Requests in each phase (below and above the limit).
    public var requestsPerPhase: Int = 400
    /// Where the limit came from (file and line, or the DestinationRule), for the verdict.
    public var source: String
    /// Where the proxy applies the limit: Envoy's connection-pool limits (Istio DestinationRule `connectionPool`)
    /// cover the whole upstream cluster, every endpoint together (istio#42490); some proxies (HAProxy's per-server
    /// `maxconn`) limit each endpoint on its own.
    public var scope: LimitScope = .service

    public init(maxRequests: Int, maxPending: Int?, source: String) {
        self.maxRequests = maxRequests
        self.maxPending = maxPending
        self.source = source
    }

    /// The concurrency the proxy admits without refusing: in flight plus queued.
    public var admitted: Int { maxRequests + (maxPending ?? 0) }
}

/// Where a proxy applies a concurrency limit.
public enum LimitScope: String, Sendable, Equatable {
    /// All endpoints of the service together: the requests in flight to every endpoint at the same instant.
    case service
    /// Each endpoint on its own.
    case endpoint
}
