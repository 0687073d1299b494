import ArgumentParser
import Foundation
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeSpec
import MeshprobeTLS
import MeshprobeRunner

/// Sharded runs on an Indexed Job (`--shards N`, each pod's index from `JOB_COMPLETION_INDEX`): shard I takes its
/// share of the rate and of the request budget; shards 1..N-1 send their lossless result to the aggregator (shard 0),
/// which merges exactly and decides.
struct ShardOptions: ParsableArguments {
    static let environmentIndex = "JOB_COMPLETION_INDEX"

    @Option(help: "Split the run over N processes or pods (an Indexed Job's completions); 1: not sharded.")
    var shards: Int = 1

    @Option(name: .customLong("shard-index"), help: "This shard's index, 0..N-1 (default: $JOB_COMPLETION_INDEX). Shard 0 aggregates.")
    var shardIndex: Int?

    @Option(help: "HOST:PORT where shard 0 listens for the others' results and where they send them (in Kubernetes the headless Service name of pod 0, e.g. meshprobe-0.meshprobe-shards:9443).")
    var aggregator: String?

    @Option(name: .customLong("shard-timeout"), help: .defaulted("How long shard 0 waits for the others after its own part, and how long the others retry sending.", Self.defaultTimeout),
            transform: InputArgument.duration)
    var shardTimeout: TimeSpan = Self.defaultTimeout
    static let defaultTimeout = TimeSpan("120s")

    /// The plan, or nil when not sharded. Bad values are bad input (exit 2) with a message for the Job's log.
    func plan(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ShardPlan? {
        guard shards >= 1 else { throw CLIError.badInput("--shards \(shards): must be at least 1") }
        if shards == 1 {
            if let shardIndex, shardIndex != 0 {
                throw CLIError.badInput("--shard-index \(shardIndex) is out of range: --shards 1 has only index 0")
            }
            return nil
        }
        let index: Int
        if let shardIndex {
            index = shardIndex
        } else if let text = environment[Self.environmentIndex] {
            guard let parsed = Int(text.trimmingCharacters(in: .whitespaces)) else {
                throw CLIError.badInput("$\(Self.environmentIndex) '\(text)': not an integer")
            }
            index = parsed
        } else {
            throw CLIError.badInput("--shards \(shards) needs this shard's index: --shard-index or $\(Self.environmentIndex) (set by an Indexed Job)")
        }
        guard (0..<shards).contains(index) else {
            throw CLIError.badInput("shard index \(index) is out of range: --shards \(shards) takes 0...\(shards - 1) (check completions = parallelism = --shards)")
        }
        guard let aggregator else {
            throw CLIError.badInput("--shards \(shards) needs --aggregator HOST:PORT (where shard 0 listens)")
        }
        // Where the others send: a named host and a port, not every interface or any port.
        guard let address = try? HostPort(parsing: aggregator), address.port >= 1, !aggregator.hasPrefix(":") else {
            throw CLIError.badInput("--aggregator '\(aggregator)': expected HOST:PORT, e.g. meshprobe-0.meshprobe-shards:9443")
        }
        return ShardPlan(count: shards, index: index, host: address.host, port: address.port,
                         timeout: shardTimeout.seconds)
    }
}

extension ShardTLS {
    /// From the run's identity: its rotating `source` when it has one (the Workload API's, watched SVID files), else
    /// its files; nil when it has no client certificate (the channel is then plain HTTP).
    static func make(identity: TLSIdentitySpec, source: TLSContextSource?) throws -> ShardTLS? {
        let base: TLSContextSource
        if let source {
            base = source
        } else {
            guard identity.files().cert != nil else { return nil }
            base = TLSContextSource(initial: try identity.makeContext(role: .client, alpn: ["http/1.1"], expectedPeer: nil, verifyPeer: true,
                                                                      serverName: nil), source: "files")
        }
        guard let own = base.current.localIdentity else {
            throw CLIError.badInput("--shards: the certificate has no SPIFFE ID; the shards' result channel needs one (an SVID)")
        }
        let expected = PeerExpectation.trustDomain(own.trustDomain)
        return ShardTLS(
            client: try base.derived(source: "shards") {
                try $0.reshaped(role: .client, alpn: ["http/1.1"], expectedPeer: expected, verifyPeer: true)
            },
            server: try base.derived(source: "shards") {
                try $0.reshaped(role: .server, alpn: ["http/1.1"], expectedPeer: expected, verifyPeer: true, requireClientCertificate: true)
            })
    }
}
