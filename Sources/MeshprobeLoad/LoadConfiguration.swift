import MeshprobeTLS

/// Which HTTP version a run speaks.
public enum HTTPVersionPreference: String, Sendable, CaseIterable {
    /// TLS: ALPN chooses (h2 preferred, then http/1.1). Plaintext: h2c with prior knowledge.
    case auto
    /// HTTP/2 only (ALPN h2 over TLS; prior-knowledge h2c in plaintext).
    case http2
    /// HTTP/1.1 with keep-alive.
    case http1
}

/// Everything a closed-model load run needs.
public struct LoadConfiguration: Sendable {
    /// Connections are spread round-robin over the targets.
    public var targets: [LoadTarget]
    public var connections: Int = 1
    /// Concurrent streams per connection (HTTP/2); HTTP/1.1 always uses one.
    public var streamsPerConnection: Int = 1
    /// Stop after this many requests (all connections together).
    public var requests: Int?
    /// Stop issuing requests after this many seconds.
    public var duration: Double?
    public var method: String = "GET"
    public var headers: [(name: String, value: String)] = []
    public var body: [UInt8]?
    public var httpVersion: HTTPVersionPreference = .auto
    /// Client TLS context for https targets.
    public var tls: TLSContext?
    /// A request without a response after this many seconds counts as `request_timeout`.
    public var requestTimeout: Double = 10
    public var connectTimeout: Double = 5
    /// A response header that names the workload that served it (for servers other than the echo).
    public var identityHeader: String?
    /// A connection that fails this many times in a row without carrying a request is given up.
    public var maxConsecutiveConnectFailures: Int = 3
    /// Number of event loops to spread connections over (default: one per core).
    public var eventLoops: Int?

    public init(targets: [LoadTarget]) {
        self.targets = targets
    }

    /// Checks values that cannot work; errors name the flag.
    public func validate() throws(LoadConfigurationError) {
        if targets.isEmpty { throw LoadConfigurationError(field: "URL", value: "", reason: "at least one target URL is needed") }
        if connections < 1 { throw LoadConfigurationError(field: "--connections", value: "\(connections)", reason: "must be at least 1") }
        if connections > 100_000 { throw LoadConfigurationError(field: "--connections", value: "\(connections)", reason: "must be at most 100000") }
        if streamsPerConnection < 1 || streamsPerConnection > 10_000 {
            throw LoadConfigurationError(field: "--streams", value: "\(streamsPerConnection)", reason: "must be 1-10000")
        }
        if let requests, requests < 1 { throw LoadConfigurationError(field: "--requests", value: "\(requests)", reason: "must be at least 1") }
        if let duration, !(duration > 0) || !duration.isFinite {
            throw LoadConfigurationError(field: "--duration", value: "\(duration)", reason: "must be a positive duration")
        }
        if requests == nil && duration == nil {
            throw LoadConfigurationError(field: "--requests/--duration", value: "", reason: "give -n, -d or both, so that the run ends on its own")
        }
        if !(requestTimeout > 0) { throw LoadConfigurationError(field: "--timeout", value: "\(requestTimeout)", reason: "must be positive") }
        if targets.contains(where: { $0.scheme == .https }) && tls == nil {
            throw LoadConfigurationError(field: "URL", value: targets.map(\.description).joined(separator: " "), reason: "https needs a TLS configuration")
        }
    }
}
