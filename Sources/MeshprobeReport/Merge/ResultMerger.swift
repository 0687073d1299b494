import Foundation
import Histogram
import MeshprobeHistogram
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeSpec

/// Combines the JSON results of several runs or shards exactly: counts add, histograms merge, and every percentile
/// is recomputed from the merged histograms (never averaged).
public enum ResultMerger {
    /// The runs' identity rotations added up (each run, or shard, had its own identity source): counts summed, the
    /// source named when all runs share it (`workload-api`, `files`), else `mixed`; nil when no run had one.
    static func identityRotations(_ all: [LoadReport.IdentityRotations]) -> LoadReport.IdentityRotations? {
        guard var out = all.first else { return nil }
        for r in all.dropFirst() {
            out.rotations += r.rotations
            out.rejected += r.rejected
            out.tlsFailures += r.tlsFailures
            if let n = r.interruptions {
                out.interruptions = (out.interruptions ?? 0) + n
                out.lastInterruption = r.lastInterruption ?? out.lastInterruption
            }
            if r.source != out.source { out.source = "mixed" }
        }
        return out
    }

    public struct MergeError: Error, CustomStringConvertible, Equatable {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// The bytes of a result file: a regular file of at most `InputFile.Limit.result` (256 MiB), the limit a shard's
    /// upload is held to too.
    public static func contents(_ path: String) throws(MergeError) -> Data {
        do { return Data(try InputFile.read(path, limit: .result)) } catch { throw MergeError(error.description) }
    }

    /// What kind of result `data` is, from its schema: `load` (`meta.schema`), `verify` or `game day` (a top-level
    /// `schema`); nil when it is not JSON with a schema (the reader then says what is wrong).
    public static func kind(of data: Data) -> String? {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return nil }
        if let schema = root["schema"] as? String {
            if schema.hasPrefix("meshprobe.verify/") { return "verify" }
            if schema.hasPrefix("meshprobe.gameday.result/") { return "game day" }
        }
        return (root["meta"] as? [String: Any])?["schema"] is String ? "load" : nil
    }

    /// Reads one result file; errors name the file and say what is wrong with it.
    public static func read(_ path: String) throws(MergeError) -> LoadReport {
        try read(data: try contents(path), name: path)
    }

    /// Reads one result from `data` (a file's bytes, or a shard's upload); errors name it `path`.
    public static func read(data: Data, name path: String) throws(MergeError) -> LoadReport {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw MergeError("\(path): not JSON (truncated or corrupted?): \((error as NSError).localizedDescription)")
        }
        guard let root = object as? [String: Any] else { throw MergeError("\(path): expected a JSON object at the top level") }
        let schema = (root["meta"] as? [String: Any])?["schema"] as? String
        guard let schema else { throw MergeError("\(path): meta.schema is missing: not a meshprobe result") }
        guard schema == LoadReport.schemaVersion else {
            throw MergeError("\(path): meta.schema is '\(schema)'; merge reads \(LoadReport.schemaVersion) results (run it again with this build)")
        }
        let report = try decoding(path) { try LoadReport.decode(data) }
        try checkCounts(report, name: path)
        try checkHistograms(report, name: path)
        return report
    }

    /// The largest count a result may hold: sums over thousands of merged results still fit in 64 bits.
    static let largestCount = 1_000_000_000_000_000

    /// Counts must be whole numbers from 0 to `largestCount`, durations finite and not negative: a result that
    /// says otherwise was edited or corrupted, and merging it would be silently wrong (or overflow).
    public static func checkCounts(_ report: LoadReport, name path: String, field prefix: String = "") throws(MergeError) {
        let s = report.summary, c = report.connections
        var counts: [(String, Int)] = [("summary.requests", s.requests), ("summary.succeeded", s.succeeded), ("summary.failed", s.failed),
                                       ("summary.responses", s.responses), ("summary.warmup_requests", s.warmupRequests),
                                       ("connections.attempts", c.attempts), ("connections.established", c.established),
                                       ("connections.tls_handshakes", c.tlsHandshakes), ("connections.tls_resumed", c.tlsResumed)]
        for (key, value) in s.late { counts.append(("summary.late.\(key)", value)) }
        for (key, value) in s.statuses { counts.append(("summary.statuses.\(key)", value)) }
        for (key, value) in s.errors { counts.append(("summary.errors.\(key)", value)) }
        for (key, value) in c.failures { counts.append(("connections.failures.\(key)", value)) }
        for (i, row) in report.series.enumerated() { counts.append(("series[\(i)].requests", row.requests)) }
        for (i, f) in report.failures.enumerated() { counts.append(("failures[\(i)].count", f.count)) }
        for (field, value) in counts where value < 0 || value > largestCount {
            throw MergeError("\(path): \(prefix)\(field) is \(value): a count must be 0-\(largestCount)")
        }
        if s.succeeded > s.requests || s.failed > s.requests {
            throw MergeError("\(path): \(prefix)summary: \(s.succeeded) succeeded and \(s.failed) failed of \(s.requests) requests")
        }
        for (field, value) in [("summary.elapsed_seconds", s.elapsedSeconds), ("summary.cpu_seconds", s.cpuSeconds)]
        where !(value >= 0) || !value.isFinite || value > 1e12 {
            throw MergeError("\(path): \(prefix)\(field) is \(value): expected a number of seconds, 0 or more")
        }
    }

    /// Decodes every histogram of a result (`field` prefixes the fields named in errors, for a result inside another):
    /// a corrupted one would make the merge silently wrong, and one of another layout could not be merged at all (the
    /// package traps on that), so each must have its field's layout exactly.
    public static func checkHistograms(_ report: LoadReport, name path: String, field prefix: String = "") throws(MergeError) {
        let standard = LatencyHistogram.latency(), timeline = LatencyHistogram.timelineLatency()
        var encoded: [(String, String, LatencyHistogram)] = [("histograms.latency", report.histograms.latency, standard),
                                                             ("histograms.latency_uncorrected", report.histograms.latencyUncorrected, standard),
                                                             ("histograms.loop_lag", report.histograms.loopLag, standard),
                                                             ("histograms.handshake", report.histograms.handshake, standard)]
        if let s = report.histograms.sendDelay { encoded.append(("histograms.send_delay", s, standard)) }
        if let a = report.histograms.abandoned { encoded.append(("histograms.abandoned", a, standard)) }
        for (i, row) in report.series.enumerated() { encoded.append(("series[\(i)].histogram", row.histogram, standard)) }
        for (i, f) in report.failures.enumerated() { if let h = f.histogram { encoded.append(("failures[\(i)].histogram", h, standard)) } }
        for (i, s) in report.steps.enumerated() { if let h = s.histogram { encoded.append(("steps[\(i)].histogram", h, standard)) } }
        for (i, s) in report.timeline.enumerated() { if let h = s.histogram { encoded.append(("timeline[\(i)].histogram", h, timeline)) } }
        for (field, text, layout) in encoded {
            let h: LatencyHistogram
            do { h = try HistogramCodec.decode(text) } catch { throw MergeError("\(path): \(prefix)\(field): \(error.description)") }
            // meshprobe writes 1 us to 1 h at 3 significant digits (2 in the timeline).
            guard h.numberOfSignificantValueDigits == layout.numberOfSignificantValueDigits,
                  h.lowestDiscernibleValue == layout.lowestDiscernibleValue,
                  h.highestTrackableValue == layout.highestTrackableValue else {
                throw MergeError("\(path): \(prefix)\(field): not meshprobe's histogram layout (\(h.numberOfSignificantValueDigits.rawValue) significant digits, \(h.lowestDiscernibleValue)-\(h.highestTrackableValue) us; meshprobe writes \(layout.numberOfSignificantValueDigits.rawValue) digits here, \(layout.lowestDiscernibleValue)-\(layout.highestTrackableValue) us)")
            }
            guard h.totalCount <= UInt64(largestCount) else {
                throw MergeError("\(path): \(prefix)\(field): \(h.totalCount) values: more than \(largestCount)")
            }
        }
    }

    /// Runs `decode`, turning a decoding error into one that names the file and the field.
    public static func decoding<T>(_ path: String, _ decode: () throws -> T) throws(MergeError) -> T {
        do { return try decode() } catch let DecodingError.keyNotFound(key, context) {
            throw MergeError("\(path): field \(fieldPath(context.codingPath + [key])) is missing")
        } catch let DecodingError.typeMismatch(_, context) {
            throw MergeError("\(path): field \(fieldPath(context.codingPath)) has the wrong type: \(context.debugDescription)")
        } catch let DecodingError.valueNotFound(_, context) {
            throw MergeError("\(path): field \(fieldPath(context.codingPath)) is null")
        } catch let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty {
            throw MergeError("\(path): field \(fieldPath(context.codingPath)): \(context.debugDescription)")
        } catch DecodingError.dataCorrupted {
            throw MergeError("\(path): a value does not fit its field (a number too large for a count?)")
        } catch {
            throw MergeError("\(path): \(error)")
        }
    }

    static func fieldPath(_ keys: [any CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
    }

    /// The files' policy or scenario inputs must be the same files (by hash): merging different policies means nothing.
    static func checkSameInputs(_ reports: [(file: String, report: LoadReport)]) throws(MergeError) {
        func defining(_ r: LoadReport) -> [String: String] {
            var out: [String: String] = [:]
            for input in r.meta.inputs ?? [] where ["policy", "scenario", "gameday"].contains(input.role) { out[input.role] = input.sha256 }
            return out
        }
        guard let first = reports.first else { return }
        let reference = defining(first.report)
        for (file, report) in reports.dropFirst() {
            let these = defining(report)
            for role in Set(reference.keys).union(these.keys) where reference[role] != these[role] {
                throw MergeError("\(file): its \(role) (sha256 \(these[role] ?? "none")) differs from \(first.file)'s (sha256 \(reference[role] ?? "none")): results of different \(role)s cannot be merged")
            }
        }
    }

    /// How far apart the start times of results `merge` overlays may be: 2 s (the times are whole seconds, and shards
    /// run on machines whose clocks differ) and a tenth of the shortest run.
    public static func startSpreadAllowed(shortestRun seconds: Double) -> Double { 2 + seconds / 10 }

    /// Refuses results that did not start together: a merge overlays the timelines from each run's start and divides
    /// the responses by the longest run, which is right for shards of one run (they start within seconds of each
    /// other) and wrong for runs made at different times. The error names the first and the last to start.
    public static func checkStartedTogether(_ reports: [(file: String, report: LoadReport)]) throws(MergeError) {
        var starts: [(file: String, text: String, date: Date)] = []
        for (file, report) in reports {
            guard let date = try? Date(report.meta.startedAt, strategy: .iso8601) else {
                throw MergeError("\(file): meta.started_at is '\(report.meta.startedAt)': expected a UTC time such as 2026-12-07T07:39:37Z")
            }
            starts.append((file, report.meta.startedAt, date))
        }
        guard let first = starts.min(by: { $0.date < $1.date }), let last = starts.max(by: { $0.date < $1.date }) else { return }
        let shortest = reports.map(\.report.summary.elapsedSeconds).min() ?? 0
        let spread = last.date.timeIntervalSince(first.date), allowed = startSpreadAllowed(shortestRun: shortest)
        guard spread > allowed else { return }
        throw MergeError("\(last.file) started at \(last.text), \(numberText(spread)) s after \(first.file) (\(first.text)): merge overlays "
            + "results from each one's start, as shards of one run that start together (here within \(numberText((allowed * 10).rounded() / 10)) s: "
            + "2 s and a tenth of the shortest run), and runs made at different times would give a wrong timeline and throughput; "
            + "give --allow-different-times to overlay them anyway")
    }

    public static func histogram(_ text: String?) -> LatencyHistogram {
        // Inputs were checked by `read`; a nil (absent) histogram is an empty one.
        text.flatMap { try? HistogramCodec.decode($0) } ?? LatencyHistogram.latency()
    }

    static func add<K: Hashable>(_ a: [K: Int], _ b: [K: Int]) -> [K: Int] { a.merging(b, uniquingKeysWith: +) }

    /// Each kind's distinct explanations in the runs' order (runs with different timeouts, or failing for different
    /// reasons, each keep their words): the first three, then how many more.
    static func explanations(_ runs: [[String: String]]) -> [String: String] {
        var distinct: [String: [String]] = [:]
        for run in runs {
            for (kind, text) in run where !(distinct[kind]?.contains(text) ?? false) { distinct[kind, default: []].append(text) }
        }
        return distinct.mapValues { texts in
            texts.prefix(3).joined(separator: "; also: ") + (texts.count > 3 ? " (and \(texts.count - 3) more)" : "")
        }
    }

    /// Merges checked results (see `read`). `commandLine` is the merge's own.
    public static func merge(_ reports: [(file: String, report: LoadReport)], commandLine: [String]) throws(MergeError) -> LoadReport {
        guard var out = reports.first?.report else { throw MergeError("nothing to merge: give at least one result file") }
        try checkSameInputs(reports)
        let all = reports.map(\.report)
        // meta
        out.meta.commandLine = commandLine
        out.meta.mergedFrom = all.reduce(0) { $0 + ($1.meta.mergedFrom ?? 1) }
        out.meta.startedAt = all.map(\.meta.startedAt).min() ?? out.meta.startedAt
        out.meta.targets = all.flatMap(\.meta.targets).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        out.meta.connections = all.reduce(0) { $0 + $1.meta.connections }
        // Runs with one timeout keep it; with different ones the smallest is a lower bound of every timed-out request's
        // latency; when one does not say, the merged timed-out requests have none, and latency thresholds count them as
        // of unknown latency.
        out.meta.identityRotations = Self.identityRotations(all.compactMap(\.meta.identityRotations))
        let timeouts = Set(all.map(\.meta.requestTimeoutSeconds))
        out.meta.requestTimeoutSeconds = timeouts.contains(nil) ? nil : timeouts.compactMap { $0 }.min()
        out.meta.model = all.map(\.meta.model).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }.joined(separator: "; ")
        var inputs: [LoadReport.Input] = []
        for r in all { for i in r.meta.inputs ?? [] where !inputs.contains(i) { inputs.append(i) } }
        out.meta.inputs = inputs
        // histograms
        func merged(_ pick: (LoadReport.Histograms) -> String?) -> LatencyHistogram {
            var h = LatencyHistogram.latency()
            for r in all { h.add(histogram(pick(r.histograms))) }
            return h
        }
        let latency = merged(\.latency), uncorrected = merged(\.latencyUncorrected), loopLag = merged(\.loopLag)
        let handshake = merged(\.handshake)
        let open = all.contains { $0.histograms.sendDelay != nil }
        let sendDelay = merged(\.sendDelay)
        let abandoned = merged(\.abandoned)
        out.histograms = LoadReport.Histograms(
            latency: HistogramCodec.encode(latency), latencyUncorrected: HistogramCodec.encode(uncorrected),
            sendDelay: open ? HistogramCodec.encode(sendDelay) : nil, loopLag: HistogramCodec.encode(loopLag),
            handshake: HistogramCodec.encode(handshake), abandoned: abandoned.totalCount > 0 ? HistogramCodec.encode(abandoned) : nil)
        // summary
        var s = out.summary
        s.requests = all.reduce(0) { $0 + $1.summary.requests }
        s.succeeded = all.reduce(0) { $0 + $1.summary.succeeded }
        s.failed = all.reduce(0) { $0 + $1.summary.failed }
        s.responses = all.reduce(0) { $0 + $1.summary.responses }
        s.elapsedSeconds = all.map(\.summary.elapsedSeconds).max() ?? 0
        s.rps = s.elapsedSeconds > 0 ? (Double(s.responses) / s.elapsedSeconds * 10).rounded() / 10 : 0
        s.latencyMs = LatencySummary(latency)
        s.latencyUncorrectedMs = LatencySummary(uncorrected)
        s.sendDelayMs = open ? LatencySummary(sendDelay) : nil
        s.loopLagMs = LatencySummary(loopLag)
        s.late = all.reduce([:]) { add($0, $1.summary.late) }
        s.warmupRequests = all.reduce(0) { $0 + $1.summary.warmupRequests }
        s.statuses = all.reduce([:]) { add($0, $1.summary.statuses) }
        s.errors = all.reduce([:]) { add($0, $1.summary.errors) }
        s.errorExplanations = Self.explanations(all.map(\.summary.errorExplanations))
        s.aborted = all.contains { $0.summary.aborted }
        s.cpuSeconds = (all.reduce(0) { $0 + $1.summary.cpuSeconds } * 1000).rounded() / 1000
        s.cpuMicrosecondsPerRequest = s.requests > 0 ? (s.cpuSeconds / Double(s.requests) * 1e7).rounded() / 10 : 0
        s.warnings = all.flatMap(\.summary.warnings).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        s.guardFired = all.compactMap(\.summary.guardFired).first
        s.endedEarly = all.compactMap(\.summary.endedEarly).first
        // Shards run side by side: the merged run's unreachable time is each one's weighted by its rate, so that the
        // requests it stands for (time x the merged rate) are the sum of each shard's.
        var unsent = 0.0, rate = 0.0
        for part in all.map(\.summary) {
            let u = part.unreachableSeconds ?? 0
            let r = Double(part.requests) / max(0.001, part.elapsedSeconds - u)
            unsent += u * r
            rate += r
        }
        s.unreachableSeconds = unsent > 0 && rate > 0 ? (unsent / rate * 100).rounded() / 100 : nil
        out.summary = s
        // series, and the per-workload table from them
        var series: [SeriesLabels: SeriesStats] = [:]
        for r in all {
            for row in r.series { series[row.labels, default: SeriesStats()].merge(SeriesStats(requests: row.requests, latency: histogram(row.histogram))) }
        }
        let metrics = IdentityMetrics(series: series)
        out.series = metrics.sorted.map { LoadReport.Series(labels: $0.labels, stats: $0.stats) }
        out.workloads = workloads(metrics)
        // failures
        struct FailureKey: Hashable { var origin, reason: String; var proxy, flag: String? }
        var failures: [FailureKey: (count: Int, latency: LatencyHistogram?, message: String?)] = [:]
        for r in all {
            for f in r.failures {
                let key = FailureKey(origin: f.origin, reason: f.reason, proxy: f.proxy, flag: f.flag)
                var entry = failures[key] ?? (0, nil, nil)
                entry.count += f.count
                if entry.message == nil { entry.message = f.message }
                if let h = f.histogram {
                    var m = entry.latency ?? LatencyHistogram.latency()
                    m.add(histogram(h))
                    entry.latency = m
                }
                failures[key] = entry
            }
        }
        out.failures = failures.map { key, value in
            LoadReport.Failure(origin: key.origin, reason: key.reason, proxy: key.proxy, flag: key.flag, count: value.count,
                               latencyMs: value.latency.map { LatencySummary($0) }, histogram: value.latency.map { HistogramCodec.encode($0) },
                               message: value.message)
        }.sorted { ($0.count, $1.origin, $1.reason) > ($1.count, $0.origin, $0.reason) }
        // connections
        var c = out.connections
        c.attempts = all.reduce(0) { $0 + $1.connections.attempts }
        c.established = all.reduce(0) { $0 + $1.connections.established }
        c.failures = all.reduce([:]) { add($0, $1.connections.failures) }
        c.tlsHandshakes = all.reduce(0) { $0 + $1.connections.tlsHandshakes }
        c.tlsResumed = all.reduce(0) { $0 + $1.connections.tlsResumed }
        c.handshakesPerSecond = s.elapsedSeconds > 0 ? (Double(c.tlsHandshakes) / s.elapsedSeconds * 10).rounded() / 10 : 0
        c.handshakeMs = LatencySummary(handshake)
        c.protocols = all.reduce([:]) { add($0, $1.connections.protocols) }
        c.tlsVersions = all.reduce([:]) { add($0, $1.connections.tlsVersions) }
        c.peerIdentities = all.reduce([:]) { add($0, $1.connections.peerIdentities) }
        c.callersSeenByServer = all.reduce([:]) { add($0, $1.connections.callersSeenByServer) }
        out.connections = c
        out.timeline = mergedTimeline(all.map { ($0.timeline, $0.workloads) }, workloads: out.workloads)
        // steps, in the first result's order
        var steps: [String: (LoadReport.Step, LatencyHistogram)] = [:]
        var order: [String] = []
        for r in all {
            for step in r.steps {
                if steps[step.name] == nil {
                    order.append(step.name)
                    steps[step.name] = (LoadReport.Step(name: step.name, requests: 0, succeeded: 0, failed: 0, extractionFailures: 0,
                                                        latencyMs: step.latencyMs, histogram: nil), LatencyHistogram.latency())
                }
                steps[step.name]!.0.requests += step.requests
                steps[step.name]!.0.succeeded += step.succeeded
                steps[step.name]!.0.failed += step.failed
                steps[step.name]!.0.extractionFailures += step.extractionFailures
                steps[step.name]!.1.add(histogram(step.histogram))
            }
        }
        out.steps = order.map { name in
            var (step, h) = steps[name]!
            step.latencyMs = LatencySummary(h)
            step.histogram = HistogramCodec.encode(h)
            return step
        }
        let iterations = all.compactMap(\.iterationsCompleted)
        out.iterationsCompleted = iterations.isEmpty ? nil : iterations.reduce(0, +)
        out.thresholds = try mergedThresholds(reports, merged: out)
        return out
    }

    /// The thresholds judged again on the merged result; the results must have been run with the same ones (each
    /// result names its own, as written).
    static func mergedThresholds(_ reports: [(file: String, report: LoadReport)], merged: LoadReport) throws(MergeError) -> [ThresholdVerdict]? {
        guard let first = reports.first else { return nil }
        let texts = (first.report.thresholds ?? []).map(\.threshold)
        for (file, report) in reports.dropFirst() where (report.thresholds ?? []).map(\.threshold) != texts {
            let theirs = (report.thresholds ?? []).map(\.threshold)
            throw MergeError("\(file): its thresholds (\(theirs.isEmpty ? "none" : theirs.joined(separator: ", "))) differ from \(first.file)'s (\(texts.isEmpty ? "none" : texts.joined(separator: ", "))): results gated differently cannot be merged")
        }
        var thresholds: [LoadThreshold] = []
        for text in texts {
            do { thresholds.append(try LoadThreshold(parsing: text)) } catch {
                throw MergeError("\(first.file): thresholds: \(error.message)")
            }
        }
        return first.report.thresholds == nil ? nil : merged.evaluate(thresholds)
    }

    /// Timelines merged second by second from each run's start: counts add, and the seconds' histograms merge, so each
    /// merged second's percentiles are recomputed exactly as a run computes its own (`TimelinePoint`). A second with
    /// responses but no histogram in some input (a result from before the histograms were kept) has counts only.
    /// Responses by identity add up by identity: each input's `responses_by_workload` indexes its own `workloads`, the
    /// merged one `workloads`; a second with responses without them in some input (an older result) has none.
    public static func mergedTimeline(_ timelines: [(seconds: [LoadReport.Second], workloads: [LoadReport.Workload])],
                                      workloads: [LoadReport.Workload]) -> [LoadReport.Second] {
        var buckets: [Int: TimelineBucket] = [:]
        var withoutHistogram = Set<Int>()
        var withoutIdentities = Set<Int>()
        for (timeline, rows) in timelines {
            for p in timeline {
                var part = TimelineBucket(second: p.second)
                part.sent = p.sent
                part.responses = p.responses
                part.succeeded = p.succeeded
                part.failed = p.failed
                part.late = p.late
                if let text = p.histogram, let h = try? HistogramCodec.decode(text) {
                    part.latency.add(h)
                } else if p.responses > 0 {
                    withoutHistogram.insert(p.second)
                }
                if let counts = p.responsesByWorkload {
                    for (i, count) in counts.enumerated() where count > 0 && i < rows.count {
                        part.identities[rows[i].workloadIdentity, default: 0] += count
                    }
                } else if p.responses > 0 {
                    withoutIdentities.insert(p.second)
                }
                buckets[p.second, default: TimelineBucket(second: p.second)].merge(part)
            }
        }
        let rows = LoadReport.indices(workloads)
        return buckets.values.sorted { $0.second < $1.second }.map { bucket in
            var second: LoadReport.Second
            if withoutHistogram.contains(bucket.second) {
                second = LoadReport.Second(second: bucket.second, sent: bucket.sent, responses: bucket.responses, succeeded: bucket.succeeded,
                                           failed: bucket.failed, late: bucket.late,
                                           responsesByWorkload: LoadReport.Second.byWorkload(bucket.identities, rows))
            } else {
                second = LoadReport.Second(TimelinePoint(bucket), workloads: rows)
            }
            if withoutIdentities.contains(bucket.second) { second.responsesByWorkload = nil }
            return second
        }
    }

    /// The per-workload table from the series: requests, successes, statuses, client errors and merged latency.
    public static func workloads(_ metrics: IdentityMetrics) -> [LoadReport.Workload] {
        struct Key: Hashable { var identity, workload, version, cluster: String }
        var rows: [Key: (requests: Int, succeeded: Int, statuses: [String: Int], errors: [String: Int], latency: LatencyHistogram)] = [:]
        for (labels, stats) in metrics.series {
            let key = Key(identity: labels.destinationPrincipal, workload: labels.destinationWorkload,
                          version: labels.destinationVersion, cluster: labels.destinationCluster)
            var row = rows[key] ?? (0, 0, [:], [:], LatencyHistogram.latency())
            row.requests += stats.requests
            if ResponseCode.succeeded(labels.code) { row.succeeded += stats.requests }
            if labels.responseCode > 0 {
                row.statuses[ResponseCode.text(labels.code), default: 0] += stats.requests
            } else if labels.failureClass.hasPrefix("client:") {
                row.errors[String(labels.failureClass.dropFirst("client:".count)), default: 0] += stats.requests
            }
            row.latency.add(stats.latency)
            rows[key] = row
        }
        let total = max(1, rows.values.reduce(0) { $0 + $1.requests })
        return rows.map { key, row in
            LoadReport.Workload(identity: key.identity, workload: key.workload, version: key.version, cluster: key.cluster,
                                requests: row.requests, share: (Double(row.requests) / Double(total) * 10000).rounded() / 10000,
                                succeeded: row.succeeded, errors: row.requests - row.succeeded, statuses: row.statuses,
                                errorKinds: row.errors, latencyMs: LatencySummary(row.latency))
        }.sorted { a, b in
            a.requests != b.requests ? a.requests > b.requests : (a.workload, a.version, a.identity) < (b.workload, b.version, b.identity)
        }
    }
}
