import ArgumentParser
import Foundation
import MeshprobeReport

struct MergeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Combine the JSON results of several runs or shards exactly (counts add, histograms merge).",
        discussion: """
            Reads meshprobe.load/v2 results (load, run and demo --json), checks that they come from the same scenario or \
            policy (by SHA-256), and writes one result whose percentiles come from the merged histograms. Bad input \
            (unreadable, truncated or corrupted files, other schema versions, different policies) exits 2 naming the \
            file, and nothing is written.
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
        let session = ReportSession(options: reports)
        session.export.update(merged.identityMetrics())
        try await session.finish(report: merged, json: json)
    }
}
