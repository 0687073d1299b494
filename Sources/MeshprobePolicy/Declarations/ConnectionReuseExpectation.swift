/// A declared limit on requests per upstream connection (Istio `connectionPool.http.maxRequestsPerConnection`, or a
/// policy's `maxRequestsPerConnection`): the proxy must open a new connection to the workload after that many.
public struct ConnectionReuseExpectation: Sendable, Equatable {
    public var maxRequestsPerConnection: Int
    /// Requests the check sends (enough for several connections' worth).
    public var requests: Int
    public var source: String

    public init(maxRequestsPerConnection: Int, source: String) {
        self.maxRequestsPerConnection = maxRequestsPerConnection
        requests = max(200, 10 * maxRequestsPerConnection)
        self.source = source
    }
}
