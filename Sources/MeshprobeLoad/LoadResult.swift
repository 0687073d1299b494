import Histogram
import MeshprobeIdentity

/// Latency histograms record microseconds, 1 us to 1 hour, 3 significant digits.
public typealias LatencyHistogram = Histogram<UInt64>

extension Histogram where Count == UInt64 {
    public static func latency() -> Histogram<UInt64> {
        Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
    }
}

/// Counts and latency for everything one workload identity answered.
public struct IdentityStats: Sendable {
    /// Requests attributed to this identity: responses plus errors on its connections.
    public var requests = 0
    /// Responses with a 2xx or 3xx status.
    public var succeeded = 0
    /// Non-2xx/3xx responses plus errors.
    public var failed = 0
    public var statuses: [Int: Int] = [:]
    public var errors: [ErrorKind: Int] = [:]
    /// Latency of responses (any status), microseconds.
    public var latency = LatencyHistogram.latency()

    public init() {}

    public mutating func merge(_ other: IdentityStats) {
        requests += other.requests
        succeeded += other.succeeded
        failed += other.failed
        statuses.merge(other.statuses, uniquingKeysWith: +)
        errors.merge(other.errors, uniquingKeysWith: +)
        latency.add(other.latency)
    }
}

/// The merged outcome of a load run.
public struct LoadResult: Sendable {
    /// Requests handed to a connection.
    public var requestsSent = 0
    /// Requests that got a response (any status).
    public var responses = 0
    /// Responses with a 2xx or 3xx status.
    public var succeeded = 0
    /// Everything else: non-2xx/3xx responses and errors (including requests never sent).
    public var failed = 0
    public var statuses: [Int: Int] = [:]
    public var errors: [ErrorKind: Int] = [:]
    /// The first plain-words explanation seen for each error kind (TLS and SPIFFE failures especially).
    public var errorExplanations: [ErrorKind: String] = [:]
    /// Latency of responses, microseconds, measured from handing the request to the connection.
    public var latency = LatencyHistogram.latency()
    public var identities: [WorkloadIdentity: IdentityStats] = [:]

    /// Connection attempts, successful connections, and TLS handshakes.
    public var connectAttempts = 0
    public var connectionsEstablished = 0
    public var connectionFailures: [ErrorKind: Int] = [:]
    public var tlsHandshakes = 0
    public var tlsResumed = 0
    /// Handshake time (TCP connect to TLS finished), microseconds.
    public var handshakeLatency = LatencyHistogram.latency()
    public var negotiatedProtocols: [String: Int] = [:]
    public var tlsVersions: [String: Int] = [:]
    /// The server identities seen in TLS handshakes.
    public var peerIdentities: [String: Int] = [:]
    /// The caller identity the echo workload reported seeing (`x-meshprobe-caller`), by value.
    public var callersSeen: [String: Int] = [:]

    /// Wall time from the first connection attempt to the last response, seconds.
    public var elapsedSeconds = 0.0
    /// True when the run was stopped early (signal or abort).
    public var aborted = false

    public init() {}

    public var requestsPerSecond: Double { elapsedSeconds > 0 ? Double(responses) / elapsedSeconds : 0 }
    public var totalRequests: Int { succeeded + failed }

    public mutating func merge(_ other: LoadResult) {
        requestsSent += other.requestsSent
        responses += other.responses
        succeeded += other.succeeded
        failed += other.failed
        statuses.merge(other.statuses, uniquingKeysWith: +)
        errors.merge(other.errors, uniquingKeysWith: +)
        errorExplanations.merge(other.errorExplanations, uniquingKeysWith: { a, _ in a })
        latency.add(other.latency)
        for (identity, stats) in other.identities {
            identities[identity, default: IdentityStats()].merge(stats)
        }
        connectAttempts += other.connectAttempts
        connectionsEstablished += other.connectionsEstablished
        connectionFailures.merge(other.connectionFailures, uniquingKeysWith: +)
        tlsHandshakes += other.tlsHandshakes
        tlsResumed += other.tlsResumed
        handshakeLatency.add(other.handshakeLatency)
        negotiatedProtocols.merge(other.negotiatedProtocols, uniquingKeysWith: +)
        tlsVersions.merge(other.tlsVersions, uniquingKeysWith: +)
        peerIdentities.merge(other.peerIdentities, uniquingKeysWith: +)
        callersSeen.merge(other.callersSeen, uniquingKeysWith: +)
        elapsedSeconds = max(elapsedSeconds, other.elapsedSeconds)
        aborted = aborted || other.aborted
    }

    // MARK: recording (one worker, on its event loop)

    mutating func recordResponse(status: Int, latencyMicros: UInt64, identity: WorkloadIdentity) {
        responses += 1
        statuses[status, default: 0] += 1
        let ok = (200..<400).contains(status)
        if ok { succeeded += 1 } else { failed += 1 }
        _ = latency.record(max(1, latencyMicros))
        Self.update(&identities[identity, default: IdentityStats()], ok: ok, status: status, latencyMicros: latencyMicros)
    }

    private static func update(_ stats: inout IdentityStats, ok: Bool, status: Int, latencyMicros: UInt64) {
        stats.requests += 1
        if ok { stats.succeeded += 1 } else { stats.failed += 1 }
        stats.statuses[status, default: 0] += 1
        _ = stats.latency.record(max(1, latencyMicros))
    }

    mutating func recordError(_ kind: ErrorKind, identity: WorkloadIdentity?, count: Int = 1, explanation: String? = nil) {
        guard count > 0 else { return }
        failed += count
        errors[kind, default: 0] += count
        if let explanation, errorExplanations[kind] == nil { errorExplanations[kind] = explanation }
        if let identity {
            identities[identity, default: IdentityStats()].requests += count
            identities[identity, default: IdentityStats()].failed += count
            identities[identity, default: IdentityStats()].errors[kind, default: 0] += count
        }
    }

    mutating func recordConnectionFailure(_ kind: ErrorKind, explanation: String) {
        connectionFailures[kind, default: 0] += 1
        if errorExplanations[kind] == nil { errorExplanations[kind] = explanation }
    }
}
