import Foundation

/// Merges the results of one game day file run at once from several places (one Job per cluster, several pods):
///
/// - the files must be runs of the same game day file (SHA-256) with the same steps, in order;
/// - a load step's results merge exactly (`ResultMerger`: counts add, histograms merge) and its objectives are
///   decided again on the merged samples (success rate from the merged counts, latency percentiles from the merged
///   histogram), never averaged or voted; a load step one file did not finish makes the merged step undecided;
/// - a procedure step (circuit breaker, outlier detection, retries) is not samples that add up: each file's
///   verdicts are kept, named with their file, and must all pass.
public enum GameDayMerge {
    public typealias MergeError = ResultMerger.MergeError

    public static func read(_ path: String) throws(MergeError) -> GameDayResult {
        try read(data: try ResultMerger.contents(path), name: path)
    }

    /// Reads one game day result from `data`; errors name it `path` and the field.
    public static func read(data: Data, name path: String) throws(MergeError) -> GameDayResult {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw MergeError("\(path): not a JSON object (truncated or corrupted?)")
        }
        guard let schema = root["schema"] as? String, schema == GameDayResult.schemaVersion else {
            throw MergeError("\(path): schema is '\(root["schema"] as? String ?? "missing")'; merge reads \(GameDayResult.schemaVersion) game day results (v1 has no histograms to merge: run the game day again with this build)")
        }
        let result = try ResultMerger.decoding(path) { try JSONDecoder().decode(GameDayResult.self, from: data) }
        for (i, step) in result.steps.enumerated() {
            if let load = step.result {
                try ResultMerger.checkCounts(load, name: path, field: "steps[\(i)].result.")
                try ResultMerger.checkHistograms(load, name: path, field: "steps[\(i)].result.")
            }
        }
        return result
    }

    public static func merge(_ files: [(file: String, result: GameDayResult)], commandLine: [String]) throws(MergeError) -> GameDayResult {
        guard let first = files.first else { throw MergeError("nothing to merge: give at least one result file") }
        for (file, result) in files.dropFirst() {
            if result.sha256 != first.result.sha256 {
                throw MergeError("\(file): a run of another game day file than \(first.file) (sha256 \(result.sha256), not \(first.result.sha256)): only runs of one file merge")
            }
            // Steps that ran, then steps skipped: together the file's steps, which must be the same.
            let these = result.steps.map { "\($0.name) (\($0.kind))" } + result.skipped
            let reference = first.result.steps.map { "\($0.name) (\($0.kind))" } + first.result.skipped
            if result.steps.map(\.name) + result.skipped != first.result.steps.map(\.name) + first.result.skipped {
                throw MergeError("\(file): its steps [\(these.joined(separator: ", "))] differ from \(first.file)'s [\(reference.joined(separator: ", "))]")
            }
        }
        // Step i of every file that ran it; a step is merged only up to where every file got.
        let ranEverywhere = files.map(\.result.steps.count).min() ?? 0
        var steps: [GameDayResult.Step] = []
        for i in 0..<ranEverywhere {
            let same = files.map { ($0.file, $0.result.steps[i]) }
            for (file, step) in same where step.kind != same[0].1.kind {
                throw MergeError("\(file): step '\(step.name)' is a \(step.kind) step, in \(same[0].0) a \(same[0].1.kind) step")
            }
            steps.append(same[0].1.kind == "load" ? try mergeLoad(same, commandLine: commandLine) : keepPerFile(same))
        }
        // Steps some file did not get to (it aborted first): skipped in the merge, with who got how far.
        let names = (first.result.steps.map(\.name) + first.result.skipped)
        let skipped = Array(names.dropFirst(ranEverywhere))
        let aborted = files.compactMap { file in file.result.aborted.map { "\(file.file): \($0)" } }
        return GameDayResult(file: first.result.file, sha256: first.result.sha256, name: first.result.name,
                             aborted: aborted.isEmpty ? nil : aborted.joined(separator: "; "), steps: steps, skipped: skipped,
                             faultsLeft: files.flatMap { file in file.result.faultsLeft.map { "\($0) [\(file.file)]" } },
                             mergedFrom: files.flatMap { $0.result.mergedFrom ?? [$0.file] })
    }

    /// A load step: the files' results merged exactly, the objectives decided again on the merged samples.
    static func mergeLoad(_ same: [(file: String, step: GameDayResult.Step)], commandLine: [String]) throws(MergeError) -> GameDayResult.Step {
        var step = same[0].step
        step.seconds = same.map(\.step.seconds).max() ?? 0
        step.faults = same.flatMap { file, step in step.faults.map { "\($0) [\(file)]" } }
        step.problem = joined(same.compactMap { file, step in step.problem.map { "\(file): \($0)" } })
        step.failures = same.reduce(into: [String: Int]()) { $0.merge($1.step.failures ?? [:], uniquingKeysWith: +) }
        let ran = same.compactMap { file, step in step.result.map { (file, $0) } }
        let notRun = same.filter { $0.step.result == nil }.map(\.file)
        if !ran.isEmpty {
            let merged = try ResultMerger.merge(ran, commandLine: commandLine)
            step.result = merged
            step.requests = merged.summary.requests
            // The failures by class as the merged result counts them (the same keys as a run's `failures`).
            step.failures = Dictionary(merged.failures.map { (failureKey($0), $0.count) }, uniquingKeysWith: +)
            step.verdicts = same[0].step.verdicts.map { verdict in
                guard verdict.kind == "slo" else { return verdict }
                let all = same.compactMap { $0.step.verdicts.first { $0.kind == "slo" && $0.name == verdict.name } }
                return VerifyMerge.slo(all, results: [merged])
            }
        } else {
            step.result = nil
        }
        if !notRun.isEmpty {
            step.problem = joined([step.problem, "did not run to its end in \(notRun.joined(separator: ", ")): the merged samples are incomplete"].compactMap { $0 })
        }
        step.decided = notRun.isEmpty && step.verdicts.allSatisfy(\.decided)
        step.passed = step.decided && step.verdicts.allSatisfy(\.passed)
        return step
    }

    /// A procedure step: every file's verdicts, each named with its file; it passes when all of them pass.
    static func keepPerFile(_ same: [(file: String, step: GameDayResult.Step)]) -> GameDayResult.Step {
        var step = same[0].step
        step.seconds = same.map(\.step.seconds).max() ?? 0
        step.faults = same.flatMap { file, step in step.faults.map { "\($0) [\(file)]" } }
        step.problem = joined(same.compactMap { file, step in step.problem.map { "\(file): \($0)" } })
        step.verdicts = same.flatMap { file, step in
            step.verdicts.map { verdict in
                var kept = verdict
                kept.name += " [\(file)]"
                return kept
            }
        }
        let requests = same.compactMap(\.step.requests)
        step.requests = requests.isEmpty ? nil : requests.reduce(0, +)
        step.failures = nil
        step.decided = same.allSatisfy(\.step.decided)
        step.passed = same.allSatisfy(\.step.passed)
        return step
    }

    /// How a run names a failure class (`FailureClass.description`): `origin: reason (proxy flag)`.
    static func failureKey(_ f: LoadReport.Failure) -> String {
        let detail = [f.proxy, f.flag].compactMap { $0 }
        return "\(f.origin): \(f.reason)" + (detail.isEmpty ? "" : " (\(detail.joined(separator: " ")))")
    }

    static func joined(_ parts: [String]) -> String? { parts.isEmpty ? nil : parts.joined(separator: "; ") }
}
