import ArgumentParser
import Foundation
import MeshprobeReport

struct MergeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Combine the JSON results of several runs or shards exactly (counts add, histograms merge).",
        discussion: """
            Reads meshprobe.load/v2 results (load, run and demo --json), checks that they come from the same scenario or \
            policy (by SHA-256), and writes one result whose percentiles come from the merged histograms. Or reads \
            meshprobe.verify/v2 results (verify --json) of one policy and decides the verdicts again on the merged \
            samples (splits, mTLS, clusters, SLOs; the procedures' verdicts are kept per file): exit 0 pass, 1 fail, \
            3 undecided. Bad input (unreadable, truncated or corrupted files, other schema versions, different \
            policies, load and verify results mixed) exits 2 naming the file, and nothing is written.
            Example: meshprobe merge shard-0.json shard-1.json shard-2.json --json all.json --prometheus all.prom
            """
    )

    @Argument(help: "Result files (meshprobe.load/v2).")
    var results: [String]

    @Option(help: "Write the merged result here (atomically); without it, print it on stdout.")
    var json: String?

    @OptionGroup(title: "Reports")
    var reports: ReportOptions

    func validate() throws {
        if results.isEmpty { throw ValidationError("give at least one result file") }
        if reports.metricsListen != nil { throw ValidationError("--metrics-listen is for runs; merge writes --prometheus or pushes") }
    }

    func run() async throws {
        let verifyResults = results.filter(VerifyMerge.isVerifyResult)
        if !verifyResults.isEmpty {
            guard verifyResults.count == results.count else {
                let other = results.first { !verifyResults.contains($0) } ?? ""
                throw CLIError.badInput("\(other): not a verify result, while \(verifyResults[0]) is: merge one kind at a time")
            }
            try mergeVerifyResults()
            return
        }
        // An https Pushgateway whose certificate does not verify is bad input: nothing is written.
        let session = try await ReportSession(checking: reports)
        let merged: LoadReport
        do {
            var read: [(file: String, report: LoadReport)] = []
            for file in results { read.append((file, try ResultMerger.read(file))) }
            merged = try ResultMerger.merge(read, commandLine: CommandLine.arguments)
        } catch {
            throw CLIError.badInput(error.description)
        }
        let data = try merged.jsonData()
        if let json {
            do { try data.write(to: URL(fileURLWithPath: json), options: .atomic) } catch {
                throw CLIError(message: "cannot write --json '\(json)': \(error.localizedDescription)", exitCode: 2)
            }
        } else {
            printLine(String(decoding: data, as: UTF8.self))
        }
        session.export.update(merged.identityMetrics())
        try await session.finish(report: merged, json: json)
    }

    /// Merges verify results and decides again; prints the verdicts, writes the JSON, exits as `verify` does.
    func mergeVerifyResults() throws {
        if reports.prometheus != nil || reports.pushgateway != nil || reports.smp != nil || reports.hgrm != nil {
            throw CLIError.badInput("merging verify results writes --json, --junit and --html only")
        }
        let merged: VerifyReport
        do {
            var read: [(file: String, report: VerifyReport)] = []
            for file in results { read.append((file, try VerifyMerge.read(file))) }
            merged = try VerifyMerge.merge(read, commandLine: CommandLine.arguments)
        } catch {
            throw CLIError.badInput(error.description)
        }
        try reports.check(singleLoad: false)
        try VerifyMerge.finish(merged, json: json, reports: reports, title: "merged verify of \(merged.policy)", startedAt: Date())
    }
}
