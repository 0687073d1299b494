import Foundation
import MeshprobeHistogram
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeReport
import MeshprobeSpec
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// What a load run (`load`, `run`) is asked for besides its configuration.
package struct LoadRunOptions: Sendable {
    /// The JSON result's path.
    package var json: String?
    /// No live view, and no line announcing the run.
    package var quiet: Bool
    package var reports: ReportOutputs
    /// The command (`load`, `run`), and the reports' title and the inputs they name.
    package var command: String
    package var title: String
    package var viewInputs: [String]
    /// The files the run read, with their SHA-256 (the result's `meta.inputs`; shards must agree on them).
    package var inputs: [LoadReport.Input]
    /// This process's part of a sharded run; nil when not sharded.
    package var shard: ShardPlan?

    package init(json: String?, quiet: Bool, reports: ReportOutputs, command: String, title: String, viewInputs: [String],
                 inputs: [LoadReport.Input] = [], shard: ShardPlan? = nil) {
        self.json = json
        self.quiet = quiet
        self.reports = reports
        self.command = command
        self.title = title
        self.viewInputs = viewInputs
        self.inputs = inputs
        self.shard = shard
    }
}

/// How a load run ended (`LoadReport.outcome(part:)`, the word every view shows); the exit code follows from it
/// (docs/conventions.md).
package struct LoadRunOutcome: Equatable, Sendable {
    package var outcome: ResultOutcome

    /// A shard 1..N-1 that delivered its part: shard 0 decides.
    package static let delivered = LoadRunOutcome(outcome: ResultOutcome("PASS"))

    /// The exit code and the message of an outcome other than a pass.
    package var exit: (message: String, code: Int32)? {
        outcome.exitCode == 0 ? nil : (outcome.reason ?? outcome.result, outcome.exitCode)
    }

    /// A result's outcome (one run, shards merged, `merge` of load results); `part` names what was merged.
    package init(_ report: LoadReport, part: String = "the run") {
        outcome = report.outcome(part: part)
    }

    init(outcome: ResultOutcome) {
        self.outcome = outcome
    }
}

/// Runs a load with the live view and signal handling, prints the summary, writes the JSON (and the reports asked
/// for: JUnit and HTML titled by `options`, Prometheus, SMP, .hgrm), and says how the run ended. Bad input and
/// unwritable outputs are thrown (`ExitError`, exit 2; the configuration refused by the engine as
/// `LoadPlanError`); a sharded run that cannot complete is thrown with exit 3.
package func executeLoad(_ configuration: LoadConfiguration, options: LoadRunOptions) async throws -> LoadRunOutcome {
    let (json, quiet, reports, inputs, shard) = (options.json, options.quiet, options.reports, options.inputs, options.shard)
    try await SidecarSession.ready()
    let started = Date()
    let aggregator = try await startLoadAggregator(shard, inputs: inputs, command: options.command)
    defer { if let aggregator { Task { await aggregator.stop() } } }
    var configuration = configuration
    let session = try await reports.start(&configuration)
    let group = MultiThreadedEventLoopGroup.singleton
    let generator = LoadGenerator(configuration: configuration, group: group)
    let signalled = NIOLockedValueBox(false)
    let signals = SignalStopper {
        signalled.withLockedValue { $0 = true }
        generator.stop()
    }
    defer { signals.cancel() }
    if !quiet {
        let bound = configuration.plan.requests.map { "\($0) requests" } ?? ""
        let time = configuration.plan.duration.map { String(format: "%.1fs", $0) } ?? ""
        printError("meshprobe load: \(configuration.plan.targets.map(\.description).joined(separator: " ")), c=\(configuration.plan.connections) m=\(configuration.plan.streamsPerConnection), \([bound, time].filter { !$0.isEmpty }.joined(separator: " or "))")
    }
    let progressTask = quiet ? nil : startLiveView(generator, configuration: configuration)
    var result: LoadResult
    do {
        result = try await generator.run()
        progressTask?.cancel()
    } catch {
        // A `LoadPlanError` names a flag; the command line says it as typed.
        progressTask?.cancel()
        throw error
    }
    // A signal at any moment, even before the first request, makes the run aborted, wherever it is reported.
    if signalled.withLockedValue({ $0 }) { result.aborted = true }
    var report = LoadReport(result: result, configuration: configuration, commandLine: CommandLine.arguments,
                            startedAt: started, version: meshprobeVersion, inputs: inputs)
    var distribution = result.latency
    if let shard, !shard.isAggregator {
        printLine(TerminalSummary(style: stdoutStyle()).render(report))
        try await sendShardResult(try report.jsonData(), plan: shard, command: options.command, group: group)
        return .delivered
    }
    if let aggregator {
        report = try await mergeLoadShards(own: report, aggregator: aggregator, command: options.command, export: session.export)
        distribution = ResultMerger.histogram(report.histograms.latency)
    }
    let makeRunReport = {
        loadRunReport(report, distribution: distribution, configuration: configuration, command: options.command,
                      title: options.title, inputs: options.viewInputs, startedAt: started)
    }
    var runReport = makeRunReport()
    printLine(TerminalSummary(style: stdoutStyle()).render(report))
    printVerdicts(runReport)
    try await session.finish(report: report, json: json)
    // A signal during the end-of-run outputs (the push): the command did not complete, and what it writes says so.
    if signalled.withLockedValue({ $0 }) && !result.aborted {
        result.aborted = true
        report.summary.aborted = true
        runReport = makeRunReport()
    }
    try reports.writeJSON(report.jsonData(), json: json)
    try reports.write(runReport)
    return LoadRunOutcome(report, part: aggregator != nil ? "the sharded run" : "the run")
}

/// The live view of a running load on stderr: an updating block on a terminal, one plain line a second otherwise (CI,
/// `kubectl logs`). Cancel the task to end it.
package func startLiveView(_ generator: LoadGenerator, configuration: LoadConfiguration) -> Task<Void, Never> {
    let view = LiveView(plan: configuration.plan)
    var state = LiveViewState(warmup: configuration.plan.warmup)
    return Task {
        let start = Date()
        let tty = isatty(STDERR_FILENO) == 1
        var shown = 0
        // Each update comes after the collection of the second just ended, so its last second is that one.
        let phase = Duration.nanoseconds(LoadGenerator.collectorPhase.nanoseconds) * 2
        var next = ContinuousClock.now + .seconds(1) + phase
        while !Task.isCancelled {
            try? await Task.sleep(until: next, clock: .continuous)
            next += .seconds(1)
            if Task.isCancelled { break }
            let status = state.update(await generator.progress(), wallElapsed: Date().timeIntervalSince(start))
            if tty {
                let lines = view.block(status)
                // The cursor moves are ours; the block's text is defanged like every other line.
                var text = shown > 0 ? "\u{1B}[\(shown)A\u{1B}[J" : ""
                text += TerminalStyle.defang(lines.joined(separator: "\n")) + "\n"
                writeAll(STDERR_FILENO, text)
                shown = lines.count
            } else {
                printError(view.line(status, at: Date()))
            }
        }
    }
}

/// Shard 0 of a sharded load: listens for the other shards' results before its own part runs. A result of another
/// scenario or policy (their SHA-256 in meta.inputs), or not a `meshprobe.load/v2` result, is refused.
func startLoadAggregator(_ shard: ShardPlan?, inputs: [LoadReport.Input], command: String) async throws -> ShardAggregator? {
    guard let shard, shard.isAggregator else { return nil }
    let defining = inputs.filter { ["policy", "scenario", "gameday"].contains($0.role) }
    return try await ShardAggregator.listen(shard, command: command) { index, body in
        let report: LoadReport
        do { report = try ResultMerger.read(data: body, name: "shard \(index)") } catch { return String(describing: error) }
        let theirs = (report.meta.inputs ?? []).filter { ["policy", "scenario", "gameday"].contains($0.role) }
        for role in Set(defining.map(\.role)).union(theirs.map(\.role)) {
            let mine = defining.first { $0.role == role }?.sha256, other = theirs.first { $0.role == role }?.sha256
            if mine != other {
                return "shard \(index): its \(role) (sha256 \(other ?? "none")) differs from shard 0's (sha256 \(mine ?? "none"))"
            }
        }
        return nil
    }
}

/// Waits for shards 1..N-1 (up to --shard-timeout) and merges their results with shard 0's exactly. Missing or
/// refused shards make the run incomplete: exit 3 naming them, nothing merged or written.
/// The other shards' series are added to `export` (shard 0's own were fed as it ran), each as a run of its own.
func mergeLoadShards(own: LoadReport, aggregator: ShardAggregator, command: String, export: PrometheusExport) async throws -> LoadReport {
    let plan = aggregator.plan
    let received = try await aggregator.collectAll(command: command)
    var inputs: [(file: String, report: LoadReport)] = [("shard 0", own)]
    do {
        for i in 1..<plan.count { inputs.append(("shard \(i)", try ResultMerger.read(data: received[i]!, name: "shard \(i)"))) }
        let merged = try ResultMerger.merge(inputs, commandLine: CommandLine.arguments)
        for (i, input) in inputs.enumerated().dropFirst() { export.update(input.report.identityMetrics(), run: Int.max - i) }
        printError("meshprobe \(command): shard 0/\(plan.count): merged \(plan.count) shards (\(merged.summary.requests) requests)")
        return merged
    } catch {
        throw ExitError(message: "incomplete: the shards' results cannot be merged: \(error.description)", exitCode: 3)
    }
}

/// The run report of one load whose latency histogram is `distribution` (a run's own, or shards' merged).
package func loadRunReport(_ report: LoadReport, distribution: LatencyHistogram, configuration: LoadConfiguration, command: String,
                   title: String, inputs: [String], startedAt: Date) -> RunReport {
    let load = RunReport.Load(name: title, report: report, distribution: RunReport.Load.distribution(distribution))
    let checks = RunReport.Check.loadChecks(report, guards: configuration.plan.guards)
    let section = RunReport.Section(name: title, seconds: report.summary.elapsedSeconds, checks: checks, loads: [load])
    var view = RunReport(command: command, title: title, inputs: inputs, version: meshprobeVersion, commandLine: CommandLine.arguments,
                         startedAt: startedAt, seconds: Date().timeIntervalSince(startedAt), sections: [section],
                         abortReason: report.summary.aborted && report.summary.guardFired == nil ? "a signal stopped the run" : nil)
    (view.outcomeNote, view.badgeNote) = RunReport.Check.loadNotes(report)
    view.outcomeWord = report.outcome().result
    return view
}
