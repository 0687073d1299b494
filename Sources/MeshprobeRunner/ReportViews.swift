import Foundation
import MeshprobeLoad
import MeshprobeChecks
import MeshprobeReport

/// How long each verdict's procedure took: the time since the last lap, given to the verdicts added since.
package struct VerdictLaps {
    package private(set) var seconds: [Double] = []
    private var last = ContinuousClock.now

    package init() {}

    /// Gives the verdicts from `seconds.count` up to `count` the time since the previous lap.
    package mutating func lap(_ count: Int) {
        let now = ContinuousClock.now
        let lap = now - last
        let elapsed = Double(lap.components.seconds) + Double(lap.components.attoseconds) / 1e18
        while seconds.count < count { seconds.append(elapsed) }
        last = now
    }

    /// Sets the verdicts up to `count` (decided by earlier runs, such as the splits') from `values` and restarts the clock.
    package mutating func set(_ values: [Double]) {
        seconds = values
        last = ContinuousClock.now
    }
}

extension VerifyReport {
    /// The report views' checks for these verdicts; `seconds[i]` is how long verdict i's run took.
    package func checks(seconds: [Double]) -> [RunReport.Check] {
        verdicts.enumerated().map { i, v in
            let (headline, details) = Self.describe(v, reason: false, timeline: false)
            // The name is shown beside the summary: keep only what was observed.
            let summary = headline.hasPrefix(v.name + ": ") ? String(headline.dropFirst(v.name.count + 2)) : headline
            var shares: [RunReport.Share] = []
            if v.kind == "split" {
                let names = Set(v.evidence.declared.keys).union(v.evidence.counts.keys)
                shares = names.sorted().map { name in
                    RunReport.Share(name: name, declared: v.evidence.declared[name], observed: v.evidence.observed[name] ?? 0,
                                    count: v.evidence.counts[name] ?? 0)
                }
            }
            return RunReport.Check(
                kind: v.kind, name: v.name, status: !v.decided ? .undecided : v.passed ? .passed : .failed, reason: v.reason,
                summary: summary, evidence: details, seconds: i < seconds.count ? seconds[i] : 0, shares: shares,
                timeline: (v.evidence.timeline ?? []).map { RunReport.Event(at: $0.at, text: $0.event) },
                tolerance: v.kind == "split" ? v.evidence.tolerance : nil, trajectory: v.evidence.trajectory ?? [],
                connections: v.kind == "split" ? v.evidence.sampling?.connections ?? v.evidence.connections : nil,
                observed: v.kind == "split" ? [:] : v.evidence.observed, declared: v.kind == "split" ? [:] : v.evidence.declared,
                overTime: v.evidence.overTime, access: v.evidence.access)
        }
    }

    /// The verify run for the report views: one section with every verdict and the splits' loads.
    package func runReport(outcomes: [PolicyVerification.Outcome], configuration: LoadConfiguration, inputs: [String], title: String,
                   seconds: [Double], startedAt: Date) -> RunReport {
        let loads = outcomes.map { outcome in
            RunReport.Load(name: outcome.route.name, result: outcome.result, configuration: configuration, startedAt: startedAt,
                           version: meshprobeVersion)
        }
        let elapsed = Date().timeIntervalSince(startedAt)
        let section = RunReport.Section(name: title, seconds: elapsed, checks: checks(seconds: seconds), loads: loads)
        var view = RunReport(command: "verify", title: title, inputs: inputs, version: meshprobeVersion, commandLine: CommandLine.arguments,
                             startedAt: startedAt, seconds: elapsed, sections: [section])
        view.outcomeWord = outcome.result
        return view
    }
}

extension VerifyReport {
    /// A merged verify result (shards, or `meshprobe merge`) for the report views: its verdicts, and each route's
    /// merged load from the lossless results it carries.
    package func mergedRunReport(title: String, inputs: [String], startedAt: Date) -> RunReport {
        let splits = verdicts.filter { $0.kind == "split" }.map(\.name)
        let loads = (results ?? []).enumerated().map { i, report in
            RunReport.Load(name: i < splits.count ? splits[i] : "route \(i + 1)", report: report)
        }
        let elapsed = Date().timeIntervalSince(startedAt)
        let section = RunReport.Section(name: title, seconds: elapsed, checks: checks(seconds: []), loads: loads)
        var view = RunReport(command: "verify", title: title, inputs: inputs, version: meshprobeVersion, commandLine: CommandLine.arguments,
                             startedAt: startedAt, seconds: elapsed, sections: [section])
        view.outcomeWord = outcome.result
        return view
    }
}

extension GameDayResult {
    /// The game day (a run, or a merge of runs) for the report views: a section per step (offset by the steps before
    /// it) with its load's lossless result, skipped steps last.
    package func runReport(title: String, inputs: [String], startedAt: Date) -> RunReport {
        var sections: [RunReport.Section] = []
        var offset = 0.0
        for step in steps {
            var report = VerifyReport(file: file)
            report.verdicts = step.verdicts
            let loads = step.result.map { [RunReport.Load(name: step.name, report: $0)] } ?? []
            let checks = report.checks(seconds: Array(repeating: step.seconds, count: step.verdicts.count))
            sections.append(RunReport.Section(name: step.name, offset: offset, seconds: step.seconds,
                                              problem: step.problem ?? (step.decided || !step.verdicts.isEmpty ? nil : "did not run to the end"),
                                              notes: step.faults.map { "\($0) \(clearedNote($0))" }, checks: checks, loads: loads))
            offset += step.seconds
        }
        for name in skipped {
            sections.append(RunReport.Section(name: name, offset: offset, seconds: 0, problem: aborted.map { "not run: the game day stopped early: \($0)" },
                                              skipped: true))
        }
        var view = RunReport(command: "gameday", title: title, inputs: inputs, version: meshprobeVersion, commandLine: CommandLine.arguments,
                             startedAt: startedAt, seconds: Date().timeIntervalSince(startedAt), sections: sections, abortReason: aborted)
        view.outcomeWord = outcomeWord
        return view
    }
}
