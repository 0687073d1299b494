import Foundation
import MeshprobeLoad
import MeshprobePolicy
import MeshprobeReport

extension ShardPlan {
    /// Splits a verification: its load as `split(_:requestsFlag:)` does, and the sample caps (the policy's and each
    /// route's) exactly; a route whose cap is less than the shards is bad input naming it.
    package func split(_ policy: inout Policy, configuration: inout LoadConfiguration, requestsFlag: String = "--requests") throws {
        try split(&configuration, requestsFlag: requestsFlag)
        policy.statistics.maxSamples = share(of: policy.statistics.maxSamples)
        for i in policy.routes.indices {
            let part = share(of: policy.routes[i].statistics.maxSamples)
            guard part >= 1 else {
                throw ExitError.badInput("\(policy.routes[i].name): maxSamples \(policy.routes[i].statistics.maxSamples) is less than --shards \(count)")
            }
            policy.routes[i].statistics.maxSamples = part
        }
    }
}

/// Shard 0 of a sharded verify: listens for the other shards' results before its own part runs. A result that is not
/// a verify result, or of another policy (its SHA-256, `policySHA256`), is refused.
package func startVerifyAggregator(_ plan: ShardPlan, policySHA256 sha: String?) async throws -> ShardAggregator {
    try await ShardAggregator.listen(plan, command: "verify") { index, body in
        let theirs: VerifyReport
        do { theirs = try VerifyMerge.read(data: body, name: "shard \(index)") } catch { return String(describing: error) }
        if theirs.policySHA256 != sha {
            return "shard \(index): its policy (sha256 \(theirs.policySHA256 ?? "none")) differs from shard 0's (sha256 \(sha ?? "none"))"
        }
        return nil
    }
}

/// Waits for shards 1..N-1 (up to --shard-timeout) and merges their verdicts with shard 0's own (`VerifyMerge`: the
/// statistical verdicts decided again on the merged samples). Missing, refused or unmergeable shards: exit 3 naming
/// them, nothing merged.
package func mergeVerifyShards(own: VerifyReport, aggregator: ShardAggregator) async throws -> VerifyReport {
    let plan = aggregator.plan
    let received = try await aggregator.collectAll(command: "verify")
    let merged: VerifyReport
    do {
        var read: [(file: String, report: VerifyReport)] = [("shard 0", own)]
        for i in 1..<plan.count { read.append(("shard \(i)", try VerifyMerge.read(data: received[i]!, name: "shard \(i)"))) }
        merged = try VerifyMerge.merge(read, commandLine: CommandLine.arguments)
    } catch {
        throw ExitError(message: "incomplete: the shards' results cannot be merged: \(String(describing: error))", exitCode: 3)
    }
    printError("meshprobe verify: shard 0/\(plan.count): merged \(plan.count) shards")
    return merged
}
