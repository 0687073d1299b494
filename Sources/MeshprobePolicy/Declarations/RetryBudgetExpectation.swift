/// A declared limit on concurrent retries to a service (Istio `connectionPool.http.maxRetries`, Envoy's `max_retries`
/// circuit breaker, or a policy's `maxRetries`), checked on a route that retries.
public struct RetryBudgetExpectation: Sendable {
    public var maxRetries: Int
    /// The route that retries (its match conditions, attempts and a retried status).
    public var route: RetryExpectation
    /// The status to inject: one the route retries (a `ResponseCode`: a gRPC status for gRPC calls).
    public var status: Int
    public var source: String

    public init(maxRetries: Int, route: RetryExpectation, status: Int, source: String) {
        self.maxRetries = maxRetries
        self.route = route
        self.status = status
        self.source = source
    }

    /// Requests in flight at once: well above the limit, so that retries would pile up past it.
    public var concurrency: Int { min(1000, max(4 * maxRetries, maxRetries + 10)) }
}
