import ArgumentParser
import Foundation
import MeshprobeChecks
import MeshprobeLoad
import MeshprobeReport
import MeshprobeRunner

struct MergeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Combine the JSON results of several runs or shards exactly (counts add, histograms merge).",
        discussion: """
            Reads meshprobe.load/v2 results (load, run and demo --json), checks that they come from the same scenario or \
            policy (by SHA-256), and writes one result whose percentiles come from the merged histograms; it exits as one \
            run would (1 no request succeeded or one ended early, 3 one was aborted or stopped by a guard). Or reads \
            meshprobe.verify/v2 results (verify --json) of one policy and decides the verdicts again on the merged \
            samples (splits, mTLS, clusters, SLOs; the procedures' verdicts are kept per file): exit 0 pass, 1 fail, \
            3 undecided. Or reads meshprobe.gameday.result/v2 results (gameday --json) of one game day file: load steps \
            merge exactly and their objectives are decided again, procedure verdicts are kept per file: exit 0 pass, \
            1 fail, 3 incomplete. Bad input (unreadable, truncated or corrupted files, other schema versions, different \
            policies or game day files, kinds mixed, load results that did not start together) exits 2 naming the file, \
            and nothing is written.
            Example: meshprobe merge shard-0.json shard-1.json shard-2.json --json all.json --prometheus all.prom
            """
    )

    @Argument(help: "Result files (meshprobe.load/v2, meshprobe.verify/v2 or meshprobe.gameday.result/v2; one kind).",
              completion: .file(extensions: ["json"]))
    var results: [String]

    @Option(name: .customLong("json"), help: "Write the merged result here (atomically; - for standard output).")
    var jsonFile: String?

    /// Where the JSON result goes: `--json`, or standard output with `-o json`.
    var json: String? { reports.json(jsonFile) }

    @Flag(name: .customLong("allow-different-times"), help: ArgumentHelp(
        "Merge load results whose start times are further apart than shards of one run start (2 s and a tenth of the shortest run): their timelines are overlaid from each one's start and the throughput is over the longest run, as if they had run together."))
    var allowDifferentTimes = false

    @OptionGroup var logs: ResultLogOptions

    @OptionGroup(title: "Reports")
    var reports: ReportOptions

    @OptionGroup(title: "Exports of the result")
    var exports: ExportOptions

    func validate() throws {
        if results.isEmpty { throw ValidationError("give at least one result file") }
        try reports.validate(json: jsonFile)
        if reports.metricsListen != nil { throw ValidationError("--metrics-listen is for runs; merge writes --prometheus or pushes") }
    }

    func run() async throws {
        // Each file read once, bounded (a regular file of at most 256 MiB), before anything else.
        var files: [(file: String, data: Data)] = []
        var seen: [Data: String] = [:]
        for file in results {
            let data: Data
            do { data = try ResultMerger.contents(file) } catch { throw CLIError.badInput(error.description) }
            // The same result twice would count its requests twice.
            if let first = seen[data] {
                throw CLIError.badInput("\(file): the same result as \(first) (identical bytes): each run may be merged once")
            }
            seen[data] = file
            files.append((file, data))
        }
        // One kind at a time: load results (meta.schema), verify results or game day results (schema).
        // nil: not a result of any kind (not JSON, no schema); the reader of the others' kind says what is wrong.
        let known = files.compactMap { file in ResultMerger.kind(of: file.data).map { (file.file, $0) } }
        let first = known.first ?? (results[0], "load")
        if let other = known.first(where: { $0.1 != first.1 }) {
            throw CLIError.badInput("\(other.0): a \(other.1) result, while \(first.0) is a \(first.1) result: merge one kind at a time")
        }
        switch first.1 {
        case "verify": return try mergeVerifyResults(files)
        case "game day": return try mergeGameDayResults(files)
        default: break
        }
        try reports.check(json: json, logs: logs, exports: exports)
        // An https Pushgateway whose certificate does not verify is bad input: nothing is written.
        let session = try await ReportSession(checking: reports.outputs(exports, logs: logs))
        let merged: LoadReport
        do {
            var read: [(file: String, report: LoadReport)] = []
            for file in files { read.append((file.file, try ResultMerger.read(data: file.data, name: file.file))) }
            if !allowDifferentTimes { try ResultMerger.checkStartedTogether(read) }
            merged = try ResultMerger.merge(read, commandLine: CommandLine.arguments)
        } catch {
            throw CLIError.badInput(error.description)
        }
        // The merged load's checks (a guard's verdict is in the results; thresholds are judged again on the merge), as
        // `load` prints them and as --junit and --html write them.
        let view = loadRunReport(merged, distribution: ResultMerger.histogram(merged.histograms.latency),
                                 configuration: LoadConfiguration(targets: []), command: "merge",
                                 title: "merge of \(results.count) results", inputs: results, startedAt: Date())
        printLine(TerminalSummary(style: stdoutStyle()).render(merged))
        printVerdicts(view)
        try reports.writeJSON(merged.jsonData(), json: json, logs: logs)
        session.export.update(merged.identityMetrics())
        try await session.finish(report: merged, json: json)
        try reports.write(view, logs: logs)
        // The merged run ends as one run would: the same rules on the merged summary (exit 1 or 3).
        if let exit = LoadRunOutcome(merged, part: "the merged result").exit {
            throw CLIError(message: exit.message, exitCode: exit.code)
        }
    }

    /// Merges game day results of one file and decides again; prints the steps and verdicts, writes the JSON and the
    /// reports, exits as `gameday` does: 0 pass, 1 fail, 3 incomplete.
    func mergeGameDayResults(_ files: [(file: String, data: Data)]) throws {
        let merged = try mergeVerdicts(files, kind: "game day", read: GameDayMerge.read(data:name:)) { files, commandLine throws(ResultMerger.MergeError) in
            try GameDayMerge.merge(files, commandLine: commandLine)
        }
        let view = merged.runReport(title: "merged game day \(merged.name)", inputs: merged.mergedFrom ?? results, startedAt: Date())
        printLine(merged.stepsText + VerdictTable(view, style: stdoutStyle(), reasonsAbove: true).render() + stdoutStyle().status(view.status, label: merged.outcomeWord))
        try reports.writeJSON(merged.jsonData(), json: json, logs: logs)
        try reports.write(view, logs: logs)
        if let exit = GameDayVerdict.exit(failed: merged.failedSteps, undecided: merged.undecidedSteps, skipped: merged.skipped.count,
                                          abortReason: merged.aborted.map { "in a merged file: \($0)" }, faultsLeft: merged.faultsLeft) {
            throw CLIError(message: exit.message, exitCode: exit.code)
        }
    }

    /// Merges verify results and decides again; prints the verdicts, writes the JSON, exits as `verify` does.
    func mergeVerifyResults(_ files: [(file: String, data: Data)]) throws {
        let merged = try mergeVerdicts(files, kind: "verify", read: VerifyMerge.read(data:name:)) { files, commandLine throws(ResultMerger.MergeError) in
            try VerifyMerge.merge(files.map { (file: $0.file, report: $0.result) }, commandLine: commandLine)
        }
        let outcome = try finishMergedVerify(merged, json: json, reports: try reports.outputs(exports, logs: logs),
                                             title: "merged verify of \(merged.policy)", startedAt: Date())
        if outcome != .passed { throw CLIError(message: outcome.message, exitCode: outcome.exitCode) }
    }

    /// Reads and merges results that carry verdicts (verify, game day): bad input, of the files or the report paths, is
    /// exit 2 before anything is written.
    func mergeVerdicts<R>(_ files: [(file: String, data: Data)], kind: String,
                          read: (_ data: Data, _ name: String) throws(ResultMerger.MergeError) -> R,
                          merge: ([(file: String, result: R)], [String]) throws(ResultMerger.MergeError) -> R) throws -> R {
        if reports.prometheus != nil || reports.pushgateway != nil || exports.any {
            throw CLIError.badInput("merging \(kind) results writes --json, --json-log, --junit and --html only")
        }
        let merged: R
        do {
            var all: [(file: String, result: R)] = []
            for file in files { all.append((file.file, try read(file.data, file.file))) }
            merged = try merge(all, CommandLine.arguments)
        } catch {
            throw CLIError.badInput(error.description)
        }
        try reports.check(singleLoad: false, json: json, logs: logs, exports: exports)
        return merged
    }
}
