import Foundation
import MeshprobeHistogram
import MeshprobeIdentity

/// A run as one self-contained HTML file (`--html FILE`): inline CSS and inline SVG, no script, nothing fetched (a
/// Content-Security-Policy forbids it), every piece of text escaped.
///
/// Verdicts come first (a row each, with a one-line reason and the evidence folded under it), then the game day's
/// timeline, then per section: split charts (declared against observed), procedure timelines, and per load the
/// per-identity table, latency over time beside throughput (or, for a run of fewer than three seconds, a latency
/// histogram) and the latency distribution. Charts scale to the page's width.
public struct HTMLReport {
    public var report: RunReport

    public init(_ report: RunReport) {
        self.report = report
    }

    private func e(_ text: String) -> String { MarkupText.escape(text) }

    private func badge(_ status: RunReport.Status) -> String {
        "<span class=\"badge \(status.rawValue)\">\(status.label)</span>"
    }

    public func render() -> String {
        var out = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="generator" content="meshprobe \(e(report.version))">
            <title>\(e("meshprobe \(report.command): \(report.title) — \(report.statusLabel)"))</title>
            <style>\(Self.css)</style>
            </head>
            <body>

            """
        out += header()
        out += verdicts()
        out += gameDayTimeline()
        for section in report.sections { out += details(section) }
        out += "<footer>meshprobe \(e(report.version)) · generated \(e(Self.iso(Date())))</footer>\n</body>\n</html>\n"
        return out
    }

    private func header() -> String {
        let overall: RunReport.Status = report.status
        var out = "<header>\n<h1>meshprobe \(e(report.command)): \(e(report.title)) <span class=\"badge \(overall.rawValue) big\" id=\"overall\">\(e(report.statusLabel + (report.badgeNote.map { " · \($0)" } ?? "")))</span></h1>\n"
        out += "<dl class=\"meta\">"
        out += "<dt>started</dt><dd>\(e(Self.iso(report.startedAt)))</dd>"
        out += "<dt>took</dt><dd>\(e(String(format: "%.1f s", report.seconds)))</dd>"
        if !report.inputs.isEmpty { out += "<dt>inputs</dt><dd>\(report.inputs.map { "<code>\(e($0))</code>" }.joined(separator: " "))</dd>" }
        out += "<dt>command</dt><dd><code>\(e(report.commandLine.joined(separator: " ")))</code></dd>"
        out += "<dt>build</dt><dd>meshprobe \(e(report.version))</dd>"
        if let why = report.abortReason { out += "<dt>aborted</dt><dd class=\"failed\">\(e(why))</dd>" }
        if let note = report.outcomeNote { out += "<dt>outcome</dt><dd id=\"outcome-note\">\(e(note))</dd>" }
        out += "</dl>\n</header>\n"
        return out
    }

    private func verdicts() -> String {
        let checks = report.checks
        let counts = [RunReport.Status.passed, .failed, .undecided, .skipped].compactMap { s -> String? in
            let n = checks.filter { $0.status == s }.count + (s == .skipped ? report.sections.filter(\.skipped).count : 0)
            return n > 0 ? "\(n) \(s.label.lowercased())" : nil
        }
        var out = "<section id=\"verdicts\">\n<h2>Verdicts <small>\(e(counts.joined(separator: ", ")))</small></h2>\n"
        out += "<table class=\"verdicts\">\n<thead><tr><th>status</th><th>check</th><th>reason</th><th class=\"num\">time</th></tr></thead>\n<tbody>\n"
        let grouped = report.sections.count > 1
        for section in report.sections {
            if grouped {
                out += "<tr class=\"group\"><th colspan=\"4\">\(badge(section.status)) \(e(section.name))"
                out += " <small>\(e(String(format: "%.1f s", section.seconds)))</small></th></tr>\n"
            }
            if section.skipped {
                out += "<tr class=\"verdict skipped\" data-status=\"skipped\"><td>\(badge(.skipped))</td><td>\(e(section.name))</td><td>\(e(section.problem ?? "not run: the run aborted before it"))</td><td></td></tr>\n"
                continue
            }
            if let problem = section.problem {
                out += "<tr class=\"verdict undecided\" data-status=\"undecided\"><td>\(badge(.undecided))</td><td>\(e(section.name)): ran to the end</td><td>\(e(problem))</td><td class=\"num\">\(e(String(format: "%.1f s", section.seconds)))</td></tr>\n"
            }
            for check in section.checks {
                out += "<tr class=\"verdict \(check.status.rawValue)\" data-status=\"\(check.status.rawValue)\"><td>\(badge(check.status))</td>"
                out += "<td>\(e(check.name))</td><td>\(e(check.oneLine))</td><td class=\"num\">\(e(String(format: "%.1f s", check.seconds)))</td></tr>\n"
                let lines = [check.summary] + (check.reason.map { [$0] } ?? []) + check.evidence
                out += "<tr class=\"evidence\"><td></td><td colspan=\"3\"><details><summary>evidence</summary><pre>\(e(lines.joined(separator: "\n")))</pre></details></td></tr>\n"
            }
        }
        out += "</tbody>\n</table>\n</section>\n"
        return out
    }

    /// A game day's steps on one time axis, with failed requests per second and every procedure's events.
    private func gameDayTimeline() -> String {
        guard report.command == "gameday" else { return "" }
        var bands: [SVGChart.Band] = []
        var events: [RunReport.Event] = []
        var failures: [SVGChart.FailedSpan] = []
        for section in report.sections where !section.skipped {
            bands.append(SVGChart.Band(name: section.name, start: section.offset, end: section.offset + section.seconds, status: section.status))
            events.append(RunReport.Event(at: section.offset, text: "step '\(section.name)' starts", kind: .info))
            for note in section.notes { events.append(RunReport.Event(at: section.offset, text: "fault \(note)", kind: .fault)) }
            for check in section.checks {
                events += check.timeline.map { RunReport.Event(at: section.offset + $0.at, text: "\(section.name): \($0.text)", kind: $0.kind) }
            }
            if let problem = section.problem {
                events.append(RunReport.Event(at: section.offset + section.seconds, text: "\(section.name): \(problem)", kind: .error))
            }
            for load in section.loads {
                failures += load.report.timelineSpans().map { SVGChart.FailedSpan(at: section.offset + $0.start, length: $0.length, count: $0.second.failed) }
            }
        }
        events.sort { $0.at < $1.at }
        var out = "<section id=\"gameday-timeline\">\n<h2>Game-day timeline</h2>\n"
        out += SVGChart.timeline(events: events, bands: bands, failures: failures, title: "game-day timeline: steps, failed requests per second, events")
        out += eventTable(events)
        return out + "</section>\n"
    }

    private func eventTable(_ events: [RunReport.Event]) -> String {
        guard !events.isEmpty else { return "" }
        var out = "<table class=\"events\"><thead><tr><th class=\"num\">#</th><th class=\"num\">at</th><th>kind</th><th>event</th></tr></thead><tbody>\n"
        for (i, event) in events.enumerated() {
            out += "<tr class=\"event-row \(event.kind.rawValue)\"><td class=\"num\">\(i + 1)</td><td class=\"num\">\(e(String(format: "%.3f s", event.at)))</td>"
            out += "<td><span class=\"kind \(event.kind.rawValue)\">\(event.kind.rawValue)</span></td><td>\(e(event.text))</td></tr>\n"
        }
        return out + "</tbody></table>\n"
    }

    private func details(_ section: RunReport.Section) -> String {
        let splits = section.checks.filter { !$0.shares.isEmpty }
        let timelines = section.checks.filter { !$0.timeline.isEmpty }
        let breakers = Self.procedures(section.checks.filter { $0.kind == "circuit_breaker" })
        let access = section.checks.filter { $0.access != nil }
        guard !splits.isEmpty || !timelines.isEmpty || !breakers.isEmpty || !access.isEmpty || !section.loads.isEmpty || !section.notes.isEmpty else { return "" }
        var out = "<section class=\"part\">\n<h2>\(e(section.name)) \(badge(section.status))</h2>\n"
        if !section.notes.isEmpty { out += "<ul class=\"notes\">" + section.notes.map { "<li>\(e($0))</li>" }.joined() + "</ul>\n" }
        if !access.isEmpty { out += accessMatrix(access) }
        for check in splits {
            out += "<h3>Split: \(e(check.name)) \(badge(check.status))</h3>\n"
            out += SVGChart.split(check.shares, tolerance: check.tolerance, title: "observed against declared split: \(check.name)")
            if check.trajectory.count > 1 {
                let declared = Dictionary(check.shares.compactMap { s in s.declared.map { (s.name, $0) } }, uniquingKeysWith: { a, _ in a })
                let samples = check.trajectory.last?.samples ?? 0
                let on = check.connections.map { " responses on \($0) connection\($0 == 1 ? "" : "s")" } ?? ""
                let outcome = (check.status == .undecided ? "undecided after \(samples)" : "decided (\(check.status.label)) after \(samples)") + on
                out += "<figure><figcaption>How the test converged</figcaption>"
                out += SVGChart.convergence(check.trajectory, declared: declared, tolerance: check.tolerance, outcome: outcome,
                                            title: "convergence of the split: \(check.name)") + "</figure>\n"
            }
        }
        for (name, checks) in breakers {
            guard let chart = SVGChart.circuitBreaker(checks, title: "circuit breaker: \(name)") else { continue }
            out += "<h3>\(e(name)) \(badge(RunReport.Section(name: name, seconds: 0, checks: checks).status))</h3>\n" + chart
            if let series = checks.compactMap(\.overTime).first, !series.points.isEmpty {
                let declared = checks.first?.declared ?? [:]
                out += "<figure><figcaption>In flight against the limit, and the replies, over time</figcaption>"
                out += SVGChart.circuitBreakerOverTime(series, limit: declared["max_requests"], pending: declared["max_pending"],
                                                       title: "circuit breaker over time: \(name)") + "</figure>\n"
            }
        }
        for check in timelines {
            out += "<h3>Timeline: \(e(check.name))</h3>\n"
            let events = check.timeline.sorted { $0.at < $1.at }
            let ejections = SVGChart.ejections(events)
            if !ejections.isEmpty {
                out += "<figure><figcaption>Ejections and returns per workload</figcaption>"
                out += SVGChart.ejectionLanes(ejections, end: max(check.seconds, events.last?.at ?? 0), title: "ejections: \(check.name)") + "</figure>\n"
            }
            out += SVGChart.timeline(events: events, bands: [], failures: [], title: "timeline: \(check.name)")
            out += eventTable(events)
        }
        for load in section.loads { out += loadDetails(load) }
        return out + "</section>\n"
    }

    /// The access cells as a matrix, callers by requests, each cell coloured by its verdict: the observed decision,
    /// who decided it, and the declared one when they differ.
    private func accessMatrix(_ checks: [RunReport.Check]) -> String {
        var callers: [String] = []
        var requests: [String] = []
        for a in checks.compactMap(\.access) {
            if !callers.contains(a.caller) { callers.append(a.caller) }
            if !requests.contains(a.requestText) { requests.append(a.requestText) }
        }
        let tries = checks.first?.access?.tries.reduce(0) { $0 + $1.count } ?? 0
        var out = "<h3>Access matrix <small>observed decision per cell, \(e(counted(tries, "try", plural: "tries"))) each; "
            + "green: as declared, red: contradicts the declaration, amber: the tries did not decide</small></h3>\n"
        out += "<table class=\"access\">\n<thead><tr><th>caller \\ request</th>" + requests.map { "<th>\(e($0))</th>" }.joined() + "</tr></thead>\n<tbody>\n"
        for caller in callers {
            out += "<tr><th>\(e(caller))</th>"
            for request in requests {
                guard let check = checks.first(where: { $0.access?.caller == caller && $0.access?.requestText == request }), let a = check.access else {
                    out += "<td class=\"cell none\">-</td>"
                    continue
                }
                let word = a.observed == "inconclusive" ? "inconclusive" : a.observed
                let declared = check.status == .failed || a.observed != a.expected ? "<br><small>declared \(e(a.expected))</small>" : ""
                out += "<td class=\"cell \(check.status.rawValue)\" data-status=\"\(check.status.rawValue)\" title=\"\(e(check.reason ?? check.summary))\">"
                out += "<b>\(e(word))</b> <small>\(e(a.origin))</small>\(declared)</td>"
            }
            out += "</tr>\n"
        }
        return out + "</tbody>\n</table>\n"
    }

    private func loadDetails(_ load: RunReport.Load) -> String {
        let r = load.report
        let s = r.summary
        var out = "<div class=\"load\">\n<h3>Load: \(e(load.name))</h3>\n"
        let line = String(format: "%d requests, %d succeeded, %d failed; %.1f req/s over %.3f s; latency p50 %.3f ms, p99 %.3f ms, max %.3f ms",
                          s.requests, s.succeeded, s.failed, s.rps, s.elapsedSeconds, s.latencyMs.p50, s.latencyMs.p99, s.latencyMs.max)
        out += "<p class=\"summary\">\(e(line))"
        out += "<br><span class=\"note\">\(e(r.meta.modelText)); targets \(e(r.meta.targets.joined(separator: " ")))</span></p>\n"
        for warning in s.warnings { out += "<p class=\"warning\">warning: \(e(warning))</p>\n" }
        out += "<table class=\"identities\">\n<thead><tr><th>workload</th><th>version</th><th>cluster</th><th>identity</th>"
        out += ["requests", "share", "succeeded", "success", "errors", "p50 ms", "p90 ms", "p99 ms", "max ms"].map { "<th class=\"num\">\($0)</th>" }.joined()
        out += "</tr></thead>\n<tbody>\n"
        for w in r.workloads {
            let success = w.requests > 0 ? Double(w.succeeded) / Double(w.requests) * 100 : 0
            out += "<tr>" + [w.workload, w.version, w.cluster, w.identity].map { "<td>\(e($0.isEmpty ? "-" : $0))</td>" }.joined()
            out += [String(w.requests), String(format: "%.1f%%", w.share * 100), String(w.succeeded), String(format: "%.2f%%", success),
                    String(w.errors), String(format: "%.3f", w.latencyMs.p50), String(format: "%.3f", w.latencyMs.p90),
                    String(format: "%.3f", w.latencyMs.p99), String(format: "%.3f", w.latencyMs.max)].map { "<td class=\"num\">\(e($0))</td>" }.joined()
            out += "</tr>\n"
        }
        if r.workloads.isEmpty { out += "<tr><td colspan=\"13\">no responses</td></tr>\n" }
        out += "</tbody>\n</table>\n"
        if !r.failures.isEmpty {
            out += "<table class=\"failures\"><thead><tr><th>origin</th><th>reason</th><th>proxy / flag</th><th class=\"num\">count</th></tr></thead><tbody>\n"
            for f in r.failures {
                out += "<tr><td>\(e(f.origin))</td><td>\(e(f.reason))</td><td>\(e([f.proxy, f.flag].compactMap { $0 }.joined(separator: " ")))</td><td class=\"num\">\(f.count)</td></tr>\n"
            }
            out += "</tbody></table>\n"
        }
        out += "<div class=\"charts\">\n"
        let spans = r.timelineSpans()
        if spans.count < Self.shortestTimeSeries {
            // Too few seconds for a line over time: how many responses took how long, from the run's histogram.
            let bins = (try? HistogramCodec.decode(r.histograms.latency)).map { LatencyBin.bins($0) } ?? []
            out += "<figure><figcaption>Latency histogram (\(e(String(format: s.elapsedSeconds < 1 ? "%.2f s" : "%.1f s", s.elapsedSeconds))): too short for a time series)</figcaption>"
            out += bins.isEmpty ? "<p class=\"note\">no responses</p>" : SVGChart.histogram(bins, title: "latency histogram: \(load.name)")
            out += "</figure>\n"
        } else {
            // A load run in phases (verify's by-connection splits) counts each phase's seconds from its own start, and
            // the result does not say when each phase began: its charts overlay the phases, and say so.
            let phases = r.overlaidPhases
            let overlaid = phases > 1 ? "; \(phases) load phases overlaid, each from its own start, their seconds added up" : ""
            out += "<figure><figcaption>Latency over time (per second\(overlaid))</figcaption>"
            out += SVGChart.latencyOverTime(spans, title: "latency over time: \(load.name)") + "</figure>\n"
            out += "<figure><figcaption>Throughput (responses per second\(overlaid))</figcaption>"
            out += SVGChart.throughput(spans, title: "throughput: \(load.name)") + "</figure>\n"
            if let lines = SVGChart.identityLines(spans, names: SVGChart.identityNames(r.workloads)) {
                out += "<figure><figcaption>Throughput by identity (responses per second\(overlaid))</figcaption>"
                out += SVGChart.throughputByIdentity(spans, lines: lines, title: "throughput by identity: \(load.name)") + "</figure>\n"
            }
        }
        out += "<figure><figcaption>Latency distribution</figcaption>"
        out += load.distribution.isEmpty ? "<p class=\"note\">no responses</p>"
            : SVGChart.distribution(load.distribution, requests: s.responses, title: "latency distribution: \(load.name)")
        out += "</figure>\n</div>\n</div>\n"
        return out
    }

    /// Checks grouped by their procedure, in order: the name before the check's own (`circuit breaker (reviews)` of
    /// `circuit breaker (reviews): at the limit ...`).
    static func procedures(_ checks: [RunReport.Check]) -> [(name: String, checks: [RunReport.Check])] {
        var groups: [(name: String, checks: [RunReport.Check])] = []
        for check in checks {
            let name = check.name.range(of: "): ").map { String(check.name[..<$0.lowerBound]) + ")" } ?? check.name
            if let i = groups.firstIndex(where: { $0.name == name }) { groups[i].checks.append(check) } else { groups.append((name, [check])) }
        }
        return groups
    }

    /// A load with fewer seconds than this gets a latency histogram instead of per-second charts (one or two dots
    /// are no time series).
    static let shortestTimeSeries = 3

    static func iso(_ date: Date) -> String {
        UTCTimestamp.iso8601(date)
    }

    static let css = """
        body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1f2328;margin:0 auto;padding:16px 24px;max-width:1400px;background:#fff}
        h1{font-size:22px;margin:8px 0}h2{font-size:18px;margin:24px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}h3{font-size:15px;margin:16px 0 6px}
        small,.note{color:#59636e;font-weight:normal}code,pre{font-family:"DejaVu Sans Mono",ui-monospace,monospace;font-size:12px}
        pre{white-space:pre-wrap;background:#f6f8fa;padding:8px;border-radius:4px;margin:4px 0}
        dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:8px 0}dl.meta dt{color:#59636e}dl.meta dd{margin:0;overflow-wrap:anywhere}
        table{border-collapse:collapse;margin:6px 0 12px;width:100%}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eaeef2;vertical-align:top}
        th{background:#f6f8fa;font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}td{overflow-wrap:anywhere}
        tr.group th{background:#eef1f4}tr.evidence td{border-bottom:1px solid #d0d7de;padding-top:0}details summary{color:#59636e;cursor:pointer;font-size:12px}
        .badge{display:inline-block;min-width:64px;text-align:center;padding:1px 6px;border-radius:10px;font-size:12px;font-weight:700;color:#fff;white-space:nowrap}
        .badge.big{font-size:14px;padding:2px 10px;vertical-align:middle}
        .passed{--c:#1a7f37}.failed{--c:#cf222e}.undecided{--c:#9a6700}.skipped{--c:#6e7781}
        .badge.passed,.badge.failed,.badge.undecided,.badge.skipped{background:var(--c)}dd.failed{color:#cf222e}
        tr.verdict.failed td{background:#fff5f5}tr.verdict.undecided td{background:#fff8e5}
        table.access{width:auto;max-width:100%}table.access th{font-size:12px}table.access td.cell{min-width:110px;border:1px solid #fff}
        table.access td.cell.passed{background:#dafbe1}table.access td.cell.failed{background:#ffd8d3}table.access td.cell.undecided{background:#fff1c2}
        .warning{color:#9a6700}.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,480px),1fr));gap:12px}
        figure{margin:4px 0;min-width:0}figcaption{font-weight:600;font-size:13px;margin:4px 0}
        svg.chart{display:block;box-sizing:border-box;width:100%;height:auto;background:#fff;border:1px solid #eaeef2;border-radius:4px}
        svg .lbl{font-size:11px;fill:#1f2328}svg .note{font-size:11px;fill:#59636e}svg .name{font-weight:600}svg .num{font-size:10px;fill:#fff;font-weight:700}
        svg .grid{stroke:#eaeef2}svg .axis{stroke:#8c959f}svg polyline.line{fill:none;stroke-width:2}svg .line.p50{stroke:#0969da}svg .line.p99{stroke:#bc4c00}
        svg .swatch.p50,svg .dot.p50{fill:#0969da}svg .swatch.p99,svg .dot.p99{fill:#bc4c00}
        svg .dot.partial{fill:#fff;stroke-width:1.5}svg .dot.partial.p50{stroke:#0969da}svg .dot.partial.p99{stroke:#bc4c00}
        svg .ok{fill:#1a7f37}svg .bar{fill:#0969da}svg .rate.partial rect{opacity:.45;stroke:#1f2328;stroke-dasharray:3 2}
        svg .sent{fill:#8c959f}svg .held.ok{fill:#1a7f37}svg .held.off{fill:#cf222e}svg .reply{fill:#bc4c00}
        svg .limit{stroke:#1f2328;stroke-width:1.5;stroke-dasharray:4 3}svg .ejected{fill:#bc4c00;opacity:.7}
        svg .ejected.open{fill:#cf222e}svg .on-bar{fill:#fff}
        svg .declared{fill:#8c959f}svg .declared-line{stroke:#59636e;stroke-width:1.5;stroke-dasharray:6 4}
        svg .share{stroke-width:2}svg .share.d0{stroke:#0969da}svg .share.d1{stroke:#bc4c00;stroke-dasharray:8 3}
        svg .share.d2{stroke:#8250df;stroke-dasharray:2 3}svg .share.d3{stroke:#1a7f37;stroke-dasharray:8 3 2 3}svg .tolerance{fill:#ddf4ff}svg .observed.ok{fill:#1a7f37}svg .observed.off{fill:#cf222e}svg .failed{fill:#cf222e;opacity:.8}svg rect.failed.partial{opacity:.4;stroke:#1f2328;stroke-dasharray:3 2}
        svg .ident .line{fill:none;stroke:var(--c);stroke-width:2}svg .ident .dot{fill:var(--c);stroke:var(--c)}svg .ident .dot.partial{fill:#fff;stroke-width:1.5}
        svg .ident.i0{--c:#0969da}svg .ident.i1{--c:#bc4c00}svg .ident.i1 .line{stroke-dasharray:8 3}svg .ident.i2{--c:#8250df}svg .ident.i2 .line{stroke-dasharray:2 3}
        svg .ident.i3{--c:#1a7f37}svg .ident.i3 .line{stroke-dasharray:8 3 2 3}svg .ident.i4{--c:#bf3989}svg .ident.i4 .line{stroke-dasharray:4 2}
        svg .ident.i5{--c:#1b7c83}svg .ident.i5 .line{stroke-dasharray:12 3 3 3 3 3}svg .ident.other{--c:#6e7781}svg .ident.other .line{stroke-dasharray:1 3}
        svg .phase.p0{fill:#f6f8fa}svg .phase.p1{fill:#eef1f4}svg .cb .step{fill:none;stroke-width:2}svg .cb.client .step{stroke:#0969da}
        svg .cb.upstream .step{stroke:#bc4c00;stroke-width:3;stroke-opacity:.75}svg .limit.admitted{stroke-dasharray:1 3}
        svg .band{opacity:.25}svg .band.passed{fill:#1a7f37}svg .band.failed{fill:#cf222e}svg .band.undecided{fill:#9a6700}svg .band.skipped{fill:#6e7781}
        svg .band-label{font-weight:600}svg .event line{stroke-width:1.5;stroke-dasharray:3 2}
        svg .event.fault line,svg .event.fault circle{stroke:#8250df;fill:#8250df}svg .event.error line,svg .event.error circle{stroke:#cf222e;fill:#cf222e}
        svg .event.ejection line,svg .event.ejection circle{stroke:#bc4c00;fill:#bc4c00}svg .event.recovery line,svg .event.recovery circle{stroke:#1a7f37;fill:#1a7f37}
        svg .event.info line,svg .event.info circle{stroke:#6e7781;fill:#6e7781}
        .kind{font-size:11px;padding:0 6px;border-radius:8px;color:#fff;background:#6e7781}.kind.fault{background:#8250df}.kind.error{background:#cf222e}
        .kind.ejection{background:#bc4c00}.kind.recovery{background:#1a7f37}
        footer{margin:24px 0 8px;color:#59636e;font-size:12px}
        """
}
