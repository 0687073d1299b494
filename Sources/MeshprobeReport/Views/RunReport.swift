import Foundation
import MeshprobeHistogram
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeSpec

/// What a run checked and what it saw, in the shape every report view renders (JUnit XML, HTML, the terminal's
/// verdict table): sections (a verify run, a game-day step, a load) holding checks (one per expectation) and loads
/// (per-identity tables, timelines, latency distributions).
///
/// The commands build it from their own results (`VerifyReport`, `GameDayResult`, `LoadReport`); it is a view, not
/// the JSON result, and is never decoded.
public struct RunReport: Sendable {
    /// The outcome of one check (or of a whole run).
    public enum Status: String, Sendable {
        case passed, failed
        /// The check ran but could not reach a verdict (a test ended before deciding, a procedure could not run).
        case undecided
        /// The check never ran (a game day aborted before its step).
        case skipped

        /// PASS, FAIL, UNDECIDED, SKIPPED.
        public var label: String {
            switch self {
            case .passed: return "PASS"
            case .failed: return "FAIL"
            case .undecided: return "UNDECIDED"
            case .skipped: return "SKIPPED"
            }
        }
    }

    /// A moment in a procedure or a game day: a fault set, an ejection, a return.
    public struct Event: Sendable, Equatable {
        public enum Kind: String, Sendable {
            case fault, error, ejection, recovery, info
        }

        /// Seconds from the start of the run (game days) or of the procedure (verify).
        public var at: Double
        public var text: String
        public var kind: Kind

        public init(at: Double, text: String, kind: Kind? = nil) {
            self.at = at
            self.text = text
            self.kind = kind ?? Self.classify(text)
        }

        /// The kind of an outlier-detection or game-day timeline entry, from its words.
        static func classify(_ text: String) -> Kind {
            let t = text.lowercased()
            if t.contains("not back") || t.contains("still receiving") { return .error }
            if t.contains("ejected") { return .ejection }
            if t.contains(" back ") || t.hasSuffix(" back") || t.contains("cleared") || t.contains("recovered") { return .recovery }
            if t.contains("fault") { return .fault }
            if t.contains("error") || t.contains("fail") { return .error }
            return .info
        }
    }

    /// One backend's declared and observed share of a split.
    public struct Share: Sendable, Equatable {
        public var name: String
        /// 0...1; nil when the backend was not declared (it answered anyway).
        public var declared: Double?
        public var observed: Double
        public var count: Int

        public init(name: String, declared: Double?, observed: Double, count: Int) {
            self.name = name
            self.declared = declared
            self.observed = observed
            self.count = count
        }
    }

    /// One expectation and its verdict.
    public struct Check: Sendable {
        /// split, mtls, clusters, slo, circuit_breaker, retries, timeout, outlier_detection, load, guard...
        public var kind: String
        public var name: String
        public var status: Status
        /// Why it failed or could not decide; for a pass, usually nil.
        public var reason: String?
        /// One line: what was observed (`v1 90.2% (declared 90%), v2 9.8% (10%) after 1840 requests`).
        public var summary: String
        /// The evidence, a line each (what JUnit carries as the failure text and the HTML shows under the row).
        public var evidence: [String]
        /// How long the run that decided it took (checks of one procedure share its run, and its time).
        public var seconds: Double
        /// Declared against observed shares (splits), for the bar chart.
        public var shares: [Share]
        /// What happened when (outlier detection).
        public var timeline: [Event]
        /// The split's tolerance (drawn around the declared share).
        public var tolerance: Double?
        /// How a split's counts grew until its test decided (the convergence chart).
        public var trajectory: [VerifyReport.TrajectoryPoint]
        /// The connections a split's responses came on.
        public var connections: Int?
        /// The verdict's figures by name, observed and declared (`overflow`, `peak_in_flight_service`, `max_requests`):
        /// what a procedure's chart draws.
        public var observed: [String: Double]
        public var declared: [String: Double]
        /// A procedure over time (a circuit breaker's in flight against its limit, and its replies).
        public var overTime: VerifyReport.OverTime?
        /// An access cell: its caller, request, declared and observed decisions (the access matrix).
        public var access: AccessCellEvidence?

        public init(kind: String, name: String, status: Status, reason: String? = nil, summary: String, evidence: [String] = [],
                    seconds: Double = 0, shares: [Share] = [], timeline: [Event] = [], tolerance: Double? = nil,
                    trajectory: [VerifyReport.TrajectoryPoint] = [], connections: Int? = nil, observed: [String: Double] = [:],
                    declared: [String: Double] = [:], overTime: VerifyReport.OverTime? = nil, access: AccessCellEvidence? = nil) {
            self.kind = kind
            self.name = name
            self.status = status
            self.reason = reason
            self.summary = summary
            self.evidence = evidence
            self.seconds = seconds
            self.shares = shares
            self.timeline = timeline
            self.tolerance = tolerance
            self.trajectory = trajectory
            self.connections = connections
            self.observed = observed
            self.declared = declared
            self.overTime = overTime
            self.access = access
        }

        /// The one-line reason a verdict table shows: the reason's first line, else the summary.
        public var oneLine: String {
            let text = reason ?? summary
            return text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: true).first.map(String.init) ?? ""
        }
    }

    /// A load a section ran: its per-identity table, per-second timeline and latency distribution.
    public struct Load: Sendable {
        /// A point of the latency distribution: `percentile` (0...100) at or below `milliseconds`.
        public struct Point: Sendable, Equatable {
            public var percentile: Double
            public var milliseconds: Double
        }

        public var name: String
        public var report: LoadReport
        /// Latency from the intended send time, by percentile, from the run's whole histogram.
        public var distribution: [Point]

        /// The percentiles the distribution curve is drawn through.
        public static let percentiles: [Double] = [0, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 92.5, 95, 96.25, 97.5, 98.125, 98.75,
                                                   99, 99.375, 99.5, 99.6875, 99.75, 99.84375, 99.9, 99.95, 99.97, 99.99, 99.999, 100]

        public init(name: String, result: LoadResult, configuration: LoadConfiguration, commandLine: [String] = [],
                    startedAt: Date = Date(), version: String = "") {
            self.name = name
            report = LoadReport(result: result, configuration: configuration, commandLine: commandLine, startedAt: startedAt, version: version)
            distribution = Self.distribution(result.latency)
        }

        public init(name: String, report: LoadReport, distribution: [Point]) {
            self.name = name
            self.report = report
            self.distribution = distribution
        }

        /// A load from its lossless result alone (a merged one): the distribution from its latency histogram.
        public init(name: String, report: LoadReport) {
            let histogram = (try? HistogramCodec.decode(report.histograms.latency)).map { Self.distribution($0) } ?? []
            self.init(name: name, report: report, distribution: histogram)
        }

        /// The latency distribution of `histogram` at `percentiles`, in milliseconds.
        public static func distribution(_ histogram: LatencyHistogram) -> [Point] {
            guard histogram.totalCount > 0 else { return [] }
            let values = histogram.values(atPercentiles: percentiles)
            return zip(percentiles, values).map { p, value in
                let micros = p >= 100 ? histogram.max : value
                return Point(percentile: p, milliseconds: Double(micros) / 1000)
            }
        }
    }

    /// A group of checks: a verify run, a game-day step, a load; a JUnit test suite.
    public struct Section: Sendable {
        public var name: String
        /// Seconds from the start of the run (game-day steps).
        public var offset: Double
        public var seconds: Double
        /// Why the section could not run or stopped (a game-day step aborted).
        public var problem: String?
        /// Plain facts shown with the section (faults a game-day step set).
        public var notes: [String]
        public var checks: [Check]
        public var loads: [Load]
        /// The section never started (a game day aborted before it).
        public var skipped: Bool

        public init(name: String, offset: Double = 0, seconds: Double, problem: String? = nil, notes: [String] = [], checks: [Check] = [],
                    loads: [Load] = [], skipped: Bool = false) {
            self.name = name
            self.offset = offset
            self.seconds = seconds
            self.problem = problem
            self.notes = notes
            self.checks = checks
            self.loads = loads
            self.skipped = skipped
        }

        /// Failed if a check failed; undecided if one could not decide or the section could not run.
        public var status: Status {
            if skipped { return .skipped }
            if checks.contains(where: { $0.status == .failed }) { return .failed }
            if problem != nil || checks.contains(where: { $0.status == .undecided }) { return .undecided }
            return .passed
        }
    }

    /// `verify`, `gameday`, `load`, `run`, `demo`.
    public var command: String
    /// What was checked (`reviews canary 90/10`).
    public var title: String
    /// The files that made the run (policy, manifests, scenario, game-day file) or its targets.
    public var inputs: [String]
    public var version: String
    public var commandLine: [String]
    public var startedAt: Date
    public var seconds: Double
    public var sections: [Section]
    /// Why the run stopped early (a signal, an abort file, a time cap).
    public var abortReason: String?
    /// What the outcome does not say, beside it in every view: a load's failed requests, and that no threshold gated
    /// them (`no thresholds set; 56 of 5000 requests failed`). A badge never shows a bare PASS over failures.
    public var outcomeNote: String?
    /// The badge's words after the outcome (`56 failed`).
    public var badgeNote: String?

    public init(command: String, title: String, inputs: [String], version: String, commandLine: [String], startedAt: Date,
                seconds: Double, sections: [Section], abortReason: String? = nil) {
        self.command = command
        self.title = title
        self.inputs = inputs
        self.version = version
        self.commandLine = commandLine
        self.startedAt = startedAt
        self.seconds = seconds
        self.sections = sections
        self.abortReason = abortReason
    }

    public var checks: [Check] { sections.flatMap(\.checks) }

    /// The run's outcome: failed if any check failed, undecided if any could not decide or the run stopped early.
    public var status: Status {
        let statuses = sections.map(\.status)
        if statuses.contains(.failed) { return .failed }
        if abortReason != nil || statuses.contains(.undecided) || statuses.contains(.skipped) { return .undecided }
        return .passed
    }

    /// The command's own last word, when it has one (a game day's INCOMPLETE), so that every view says what the
    /// terminal says.
    public var outcomeWord: String?

    /// PASS, FAIL, UNDECIDED, or ABORTED when the run stopped early; the command's own word when it has one.
    public var statusLabel: String {
        if let outcomeWord { return outcomeWord }
        if status == .failed { return "FAIL" }
        if abortReason != nil { return "ABORTED" }
        return status.label
    }
}

extension RunReport.Check {
    /// The checks of a plain load (`load`, `run`): the run completed, every guard held, requests succeeded; the same
    /// rules as the command's exit code.
    /// Why no request succeeded, with its cause: the most common failure, a class of failed responses (`unknown:
    /// DEADLINE_EXCEEDED`, `application: 503`) when those outnumber every error kind, else the most common error (no
    /// response), or, when no request could even be sent, the connection failure that kept every connection from being
    /// made.
    public static func noSuccessReason(_ report: LoadReport) -> String {
        let s = report.summary
        let topError = s.errors.max(by: { ($0.value, $1.key) < ($1.value, $0.key) })
        if let top = report.failures.filter({ $0.origin != FailureClass.Origin.client.rawValue }).max(by: { $0.count < $1.count }),
           top.count > (topError?.value ?? 0) {
            let detail = [top.proxy, top.flag].compactMap { $0 }.joined(separator: " ")
            // nginx's answer to plaintext on its TLS port is a denial to the access checks, and a wrong URL to a load.
            let hint = top.proxy == "nginx" && top.flag == "plaintext refused" ? ": the port serves TLS, use https://" : ""
            return "no request succeeded: most common failure \(top.origin): \(top.reason)\(detail.isEmpty ? "" : " (\(detail))") (\(top.count))\(hint)"
        }
        if let top = topError {
            return "no request succeeded: most common error \(top.key) (\(top.value))"
        }
        if report.connections.established == 0, let top = report.connections.failures.max(by: { $0.value < $1.value }) {
            let attempts = report.connections.failures.values.reduce(0, +)
            return "no request succeeded: no connection could be made in \(attempts) attempt\(attempts == 1 ? "" : "s") (\(top.key)"
                + (s.errorExplanations[top.key].map { ": \($0)" } ?? "") + ")"
        }
        return "no request succeeded"
    }

    public static func loadChecks(_ report: LoadReport, guards: [LoadGuard]) -> [RunReport.Check] {
        let s = report.summary
        let seconds = s.elapsedSeconds
        var evidence = ["requests \(s.requests), succeeded \(s.succeeded), failed \(s.failed), responses \(s.responses)"]
        if !s.statuses.isEmpty {
            evidence.append("statuses: " + s.statuses.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        for (kind, count) in s.errors.sorted(by: { $0.key < $1.key }) {
            evidence.append("error \(kind): \(counted(count, "request"))" + (s.errorExplanations[kind].map { " (\($0))" } ?? ""))
        }
        for f in report.failures {
            evidence.append("failed by origin: \(f.origin): \(f.reason)" + ([f.proxy, f.flag].compactMap { $0 }.isEmpty ? "" : " (\([f.proxy, f.flag].compactMap { $0 }.joined(separator: " ")))") + ": \(f.count)")
        }
        evidence += s.warnings.map { "warning: \($0)" }
        var checks: [RunReport.Check] = []
        let completed = !s.aborted && s.endedEarly == nil
        var why: String?
        if s.aborted {
            why = s.guardFired.map { "stopped by the guard '\($0.guardDescription)' in second \($0.second)" } ?? "aborted (a signal) before the run completed"
        } else if let endedEarly = s.endedEarly {
            why = "ended before its planned end: " + endedEarly
        }
        // Stopped (a signal, a stopping guard): no verdict. Ended on its own before its end: the run failed.
        let status: RunReport.Status = completed ? .passed : (s.aborted ? .undecided : .failed)
        checks.append(RunReport.Check(
            kind: "load", name: "the run completed", status: status, reason: why,
            summary: String(format: "%d requests in %.3f s", s.requests, s.elapsedSeconds), evidence: evidence, seconds: seconds))
        for g in guards {
            let fired = s.guardFired.flatMap { $0.guardDescription == g.description ? $0 : nil }
            checks.append(RunReport.Check(
                kind: "guard", name: "guard: no second with \(g.description)", status: fired == nil ? .passed : .failed,
                reason: fired.map { "fired in second \($0.second): \($0.observed); the load was \($0.action == "hold" ? "held" : "stopped")" },
                summary: fired == nil ? "held for \(report.timeline.count) seconds" : "fired", evidence: evidence, seconds: seconds))
        }
        let ok = s.succeeded > 0
        // A run a signal stopped before any success has not shown that none can succeed.
        let signalled = s.aborted && s.guardFired == nil
        checks.append(RunReport.Check(
            kind: "load", name: "requests succeeded", status: ok ? .passed : signalled ? .undecided : .failed,
            reason: ok ? nil : noSuccessReason(report),
            summary: "\(s.succeeded) of \(s.requests) succeeded", evidence: evidence, seconds: seconds))
        for t in report.thresholds ?? [] {
            checks.append(RunReport.Check(
                kind: "threshold", name: "threshold \(t.threshold)", status: t.decided ? (t.passed ? .passed : .failed) : .undecided,
                // A pass that counted failed requests says so, as the JSON does.
                reason: t.passed ? nil : t.reason, summary: t.passed ? t.reason.map { "\(t.comparisonText); \($0)" } ?? t.comparisonText : t.comparisonText,
                evidence: ["observed \(t.comparisonText) over \(counted(t.sample, t.limitFraction != nil ? "request" : "response"))"],
                seconds: seconds))
        }
        return checks
    }

    /// A load's outcome note and badge words: failed requests are always named, and a load without thresholds says so.
    public static func loadNotes(_ report: LoadReport) -> (outcome: String?, badge: String?) {
        let s = report.summary
        let failed = s.failed > 0 ? "\(s.failed) of \(counted(s.requests, "request")) failed" : nil
        let gated = !(report.thresholds ?? []).isEmpty
        let outcome = gated ? failed : (["no thresholds set"] + [failed].compactMap { $0 }).joined(separator: "; ")
        return (outcome, s.failed > 0 ? "\(s.failed) failed" : nil)
    }
}
