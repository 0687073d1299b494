import Foundation
import MeshprobeIdentity
import MeshprobeLoad

/// The JSON result of `meshprobe load` (schema: `docs/schema/load-result.schema.json`).
public struct LoadReport: Codable, Sendable {
    public static let schemaVersion = "meshprobe.load/v1"

    public struct Meta: Codable, Sendable {
        public var schema: String
        public var meshprobeVersion: String
        public var commandLine: [String]
        public var startedAt: String
        public var targets: [String]
        public var connections: Int
        public var streamsPerConnection: Int
        enum CodingKeys: String, CodingKey {
            case schema, targets, connections
            case meshprobeVersion = "meshprobe_version"
            case commandLine = "command_line"
            case startedAt = "started_at"
            case streamsPerConnection = "streams_per_connection"
        }
    }

    public struct Summary: Codable, Sendable {
        public var requests: Int
        public var succeeded: Int
        public var failed: Int
        public var responses: Int
        public var rps: Double
        public var elapsedSeconds: Double
        public var latencyMs: LatencySummary
        public var statuses: [String: Int]
        public var errors: [String: Int]
        public var errorExplanations: [String: String]
        public var aborted: Bool
        enum CodingKeys: String, CodingKey {
            case requests, succeeded, failed, responses, rps, statuses, errors, aborted
            case elapsedSeconds = "elapsed_seconds"
            case latencyMs = "latency_ms"
            case errorExplanations = "error_explanations"
        }
    }

    public struct Workload: Codable, Sendable {
        public var identity: String
        public var workload: String
        public var version: String
        public var cluster: String
        public var requests: Int
        public var share: Double
        public var succeeded: Int
        public var errors: Int
        public var statuses: [String: Int]
        public var errorKinds: [String: Int]
        public var latencyMs: LatencySummary
        enum CodingKeys: String, CodingKey {
            case identity, workload, version, cluster, requests, share, succeeded, errors, statuses
            case errorKinds = "error_kinds"
            case latencyMs = "latency_ms"
        }
    }

    public struct Connections: Codable, Sendable {
        public var attempts: Int
        public var established: Int
        public var failures: [String: Int]
        public var tlsHandshakes: Int
        public var tlsResumed: Int
        public var handshakeMs: LatencySummary
        public var protocols: [String: Int]
        public var tlsVersions: [String: Int]
        public var peerIdentities: [String: Int]
        /// The caller identity the echo workload saw (`x-meshprobe-caller`): proof that mTLS is in effect.
        public var callersSeenByServer: [String: Int]
        enum CodingKeys: String, CodingKey {
            case attempts, established, failures, protocols
            case callersSeenByServer = "callers_seen_by_server"
            case tlsHandshakes = "tls_handshakes"
            case tlsResumed = "tls_resumed"
            case handshakeMs = "handshake_ms"
            case tlsVersions = "tls_versions"
            case peerIdentities = "peer_identities"
        }
    }

    public var meta: Meta
    public var summary: Summary
    public var workloads: [Workload]
    public var connections: Connections

    public init(result: LoadResult, configuration: LoadConfiguration, commandLine: [String], startedAt: Date, version: String) {
        let iso = ISO8601DateFormatter()
        meta = Meta(schema: Self.schemaVersion, meshprobeVersion: version, commandLine: commandLine,
                    startedAt: iso.string(from: startedAt), targets: configuration.targets.map(\.description),
                    connections: configuration.connections, streamsPerConnection: configuration.streamsPerConnection)
        summary = Summary(
            requests: result.totalRequests, succeeded: result.succeeded, failed: result.failed, responses: result.responses,
            rps: (result.requestsPerSecond * 10).rounded() / 10, elapsedSeconds: (result.elapsedSeconds * 1000).rounded() / 1000,
            latencyMs: LatencySummary(result.latency),
            statuses: Dictionary(uniqueKeysWithValues: result.statuses.map { (String($0.key), $0.value) }),
            errors: Dictionary(uniqueKeysWithValues: result.errors.map { ($0.key.rawValue, $0.value) }),
            errorExplanations: Dictionary(uniqueKeysWithValues: result.errorExplanations.map { ($0.key.rawValue, $0.value) }),
            aborted: result.aborted)
        let total = max(1, result.identities.values.reduce(0) { $0 + $1.requests })
        workloads = Self.sortedIdentities(result).map { identity, stats in
            Workload(identity: identity.identity, workload: identity.workload, version: identity.version, cluster: identity.cluster,
                     requests: stats.requests, share: (Double(stats.requests) / Double(total) * 10000).rounded() / 10000,
                     succeeded: stats.succeeded, errors: stats.failed,
                     statuses: Dictionary(uniqueKeysWithValues: stats.statuses.map { (String($0.key), $0.value) }),
                     errorKinds: Dictionary(uniqueKeysWithValues: stats.errors.map { ($0.key.rawValue, $0.value) }),
                     latencyMs: LatencySummary(stats.latency))
        }
        connections = Connections(
            attempts: result.connectAttempts, established: result.connectionsEstablished,
            failures: Dictionary(uniqueKeysWithValues: result.connectionFailures.map { ($0.key.rawValue, $0.value) }),
            tlsHandshakes: result.tlsHandshakes, tlsResumed: result.tlsResumed,
            handshakeMs: LatencySummary(result.handshakeLatency), protocols: result.negotiatedProtocols,
            tlsVersions: result.tlsVersions, peerIdentities: result.peerIdentities,
            callersSeenByServer: result.callersSeen)
    }

    /// Identities by request count, largest first, then by label.
    static func sortedIdentities(_ result: LoadResult) -> [(WorkloadIdentity, IdentityStats)] {
        result.identities.sorted { a, b in
            a.value.requests != b.value.requests ? a.value.requests > b.value.requests : a.key.label < b.key.label
        }.map { ($0.key, $0.value) }
    }

    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
}
