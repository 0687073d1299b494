import Foundation
import MeshprobeIdentity
import MeshprobeLoad

/// The end-of-run summary for a terminal or a CI log: aligned tables, colours only when asked (`TerminalStyle.detect`:
/// a terminal, no NO_COLOR).
public struct TerminalSummary {
    public var style: TerminalStyle

    public init(style: TerminalStyle) {
        self.style = style
    }

    public init(color: Bool) {
        style = TerminalStyle(color: color)
    }

    private func bold(_ s: String) -> TerminalText { style.bold(s) }
    private func red(_ s: TerminalText) -> TerminalText { style.red(s) }
    private func yellow(_ s: String) -> TerminalText { style.yellow(s) }

    /// The summary; every value in it from the result (targets, identities, reasons: a merged result is a file from
    /// elsewhere) is plain text, only the headings and warnings are coloured.
    public func render(_ report: LoadReport) -> TerminalText {
        var out = TerminalText()
        let s = report.summary
        out += bold("meshprobe load") + "  \(report.meta.targets.joined(separator: " "))  c=\(report.meta.connections) m=\(report.meta.streamsPerConnection)\n"
        var model = "model:      \(report.meta.modelText)"
        if report.meta.warmupSeconds > 0 {
            model += String(format: "; warm-up %.1fs (%d requests left out)", report.meta.warmupSeconds, s.warmupRequests)
        }
        if report.meta.churn != "reuse" { model += "; new connection \(report.meta.churn)" }
        out += model + "\n"
        if let loosened = report.meta.tlsLoosened, !loosened.isEmpty {
            out += yellow("TLS:        loosened: \(loosened.joined(separator: "; "))") + "\n"
        }
        if let r = report.meta.identityRotations {
            let line = "identity:   \(r.source == "workload-api" ? "Workload API" : "SVID files"): \(r.rotations) rotation\(r.rotations == 1 ? "" : "s")"
                + (r.rejected > 0 ? ", \(r.rejected) update\(r.rejected == 1 ? "" : "s") rejected (old identity kept)" : "")
                + ", \(r.tlsFailures) TLS failure\(r.tlsFailures == 1 ? "" : "s")"
                + (r.interruptions.map { ", stream lost \($0) time\($0 == 1 ? "" : "s") (identity kept; last: \(TerminalStyle.sanitize(r.lastInterruption ?? "")))" } ?? "")
            if r.tlsFailures > 0 || r.rejected > 0 || r.interruptions != nil { out += yellow(line) + "\n" } else { out += line + "\n" }
        }
        out += "requests:   \(s.requests) total, \(s.succeeded) succeeded, \(s.failed) failed\(s.aborted ? " (aborted)" : "")\n"
        out += String(format: "throughput: %.1f req/s over %.3f s\n", s.rps, s.elapsedSeconds)
        let l = s.latencyMs
        // p95, the usual threshold, from the result's histogram (the JSON's summary keeps p50, p90, p99, p99.9).
        let histogram = ResultMerger.histogram(report.histograms.latency)
        let p95 = histogram.totalCount > 0 ? Double(LatencySummary.percentile(histogram, 95)) / 1000 : 0
        out += String(format: "latency ms: p50 %.3f  p90 %.3f  p95 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  mean %.3f\n",
                      l.p50, l.p90, p95, l.p99, l.p999, l.max, l.mean)
        if let delay = s.sendDelayMs {
            let u = s.latencyUncorrectedMs
            out += String(format: "  uncorrected (from actual send): p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n", u.p50, u.p90, u.p99, u.max)
            let late = s.late.values.reduce(0, +)
            var line = String(format: "send delay ms: p50 %.3f  p99 %.3f  max %.3f;  late: %d", delay.p50, delay.p99, delay.max, late)
            if late > 0 { line += " (" + s.late.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")" }
            out += line + "\n"
        }
        var generator = String(format: "generator:  %.2f CPU s (%.1f us/request), timer lag p99 %.3f ms",
                               s.cpuSeconds, s.cpuMicrosecondsPerRequest, s.loopLagMs.p99)
        if let coalesced = s.coalescedRequests, coalesced > 0, s.requests > 0 {
            generator += String(format: ", writes coalesced for %.0f%% of requests", Double(coalesced) / Double(s.requests) * 100)
        }
        out += generator + "\n"
        for warning in s.warnings { out += yellow("warning: ") + warning + "\n" }
        if let fired = s.guardFired {
            let what = fired.action == "hold" ? "the load was held at its level from then on" : "the load was stopped"
            out += red(bold("guard fired: ")) + "\(fired.guardDescription) in second \(fired.second) (\(fired.observed)); \(what)\n"
        }
        if !s.statuses.isEmpty {
            let statuses = s.statuses.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
            out += "statuses:   \(statuses)\n"
        }
        let c = report.connections
        var conn = "connections: \(c.established) established of \(c.attempts) attempts"
        if c.tlsHandshakes > 0 {
            conn += String(format: ", %d TLS handshakes (%d resumed, %.1f/s, p50 %.3f ms, p99 %.3f ms)", c.tlsHandshakes, c.tlsResumed,
                           c.handshakesPerSecond, c.handshakeMs.p50, c.handshakeMs.p99)
        }
        if !c.protocols.isEmpty {
            conn += ", ALPN " + c.protocols.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        // "Established" is TCP: a connection whose TLS handshake or HTTP/2 setup then failed is established too, and
        // failed; said on the same line, so that "125 established of 125" does not read as 125 working connections.
        let failures = c.failures.filter { $0.value > 0 }
        if !failures.isEmpty {
            conn += "; failed: " + failures.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        }
        out += conn + "\n"
        if !s.errors.isEmpty || !failures.isEmpty {
            out += red(bold("errors")) + "\n"
            for (kind, count) in s.errors.sorted(by: { $0.key < $1.key }) {
                out += "  \(kind): \(counted(count, "request"))\n"
            }
            for (kind, count) in failures.sorted(by: { $0.key < $1.key }) {
                out += "  \(kind): \(count) connection attempts\n"
            }
            let kinds = Set(s.errors.keys).union(failures.keys)
            for kind in kinds.sorted() {
                if let why = s.errorExplanations[kind] { out += "  why \(kind): \(TerminalStyle.sanitize(why))\n" }
            }
        }
        if !report.failures.isEmpty {
            out += bold("failures by origin") + "\n"
            for f in report.failures {
                var line = "  \(f.origin): \(f.reason)"
                let detail = [f.proxy, f.flag].compactMap { $0 }
                if !detail.isEmpty { line += " (\(detail.joined(separator: " ")))" }
                line += ": \(f.count)"
                if let ms = f.latencyMs {
                    line += String(format: ", p50 %.3f ms, p99 %.3f ms", ms.p50, ms.p99)
                    // Requests failed together (the budget left when connections were given up) have no time of their own.
                    let timed = f.histogram.map { Int(ResultMerger.histogram($0).totalCount) } ?? f.count
                    if timed < f.count { line += " (of the \(timed) with a time)" }
                }
                if let message = f.message { line += ", \"\(message)\"" }
                out += line + "\n"
            }
        }
        out += "\n" + bold("by workload identity") + "\n"
        // A gRPC run's rows say which statuses each identity answered with.
        let grpc = report.meta.grpc != nil
        let header = ["workload", "version", "cluster", "identity", "requests", "share", "errors", "p50 ms", "p99 ms"]
            + (grpc ? ["grpc-status"] : [])
        var rows: [[String]] = []
        for row in report.workloads {
            // A row without a stamp and without answers: requests nobody answered (refused connections, not sent,
            // timed out: counted under the connection's TLS peer, if any); without a peer either, answers with no
            // stamp. Said so, not shown as a workload called "-". An unstamped row with both (the JSON's one row per
            // identity) is shown as two: the answers, and the requests without one.
            let unstamped = row.workload.isEmpty && row.version.isEmpty && row.cluster.isEmpty
            let parts = unstamped ? Self.answersAndNoResponses(row) : [row]
            for w in parts {
                let answered = !w.statuses.isEmpty
                let unnamed = !answered ? "(no response)" : w.identity.isEmpty ? "(not stamped)" : "-"
                rows.append([
                    unstamped ? unnamed : w.workload.isEmpty ? "-" : w.workload,
                    w.version.isEmpty ? "-" : w.version, w.cluster.isEmpty ? "-" : w.cluster,
                    w.identity.isEmpty ? "-" : w.identity, String(w.requests), String(format: "%.1f%%", w.share * 100),
                    String(w.errors), answered ? String(format: "%.3f", w.latencyMs.p50) : "-",
                    answered ? String(format: "%.3f", w.latencyMs.p99) : "-",
                ] + (grpc ? [Self.statusCounts(w.statuses)] : []))
            }
        }
        out += Self.table(header: header, rows: rows, rightAligned: Set(4..<9))
        if !report.steps.isEmpty {
            out += "\n" + bold("by step") + " (\(report.iterationsCompleted ?? 0) iterations ran every step)\n"
            let stepRows = report.steps.map { step in
                [step.name, String(step.requests), String(step.succeeded), String(step.failed), String(step.extractionFailures),
                 String(format: "%.3f", step.latencyMs.p50), String(format: "%.3f", step.latencyMs.p99)]
            }
            out += Self.table(header: ["step", "requests", "ok", "failed", "extraction failed", "p50 ms", "p99 ms"], rows: stepRows,
                              rightAligned: Set(1..<7))
        }
        return out
    }

    /// An unstamped row's answers and its requests without an answer (its client error kinds), as two rows when it
    /// has both; else the row itself.
    static func answersAndNoResponses(_ w: LoadReport.Workload) -> [LoadReport.Workload] {
        let unanswered = w.errorKinds.values.reduce(0, +)
        guard !w.statuses.isEmpty, unanswered > 0, unanswered < w.requests else { return [w] }
        var answers = w, none = w
        answers.requests = w.requests - unanswered
        answers.errors = w.errors - unanswered
        answers.errorKinds = [:]
        answers.share = w.share * Double(answers.requests) / Double(w.requests)
        none.requests = unanswered
        none.errors = unanswered
        none.succeeded = 0
        none.statuses = [:]
        none.share = w.share - answers.share
        return [answers, none]
    }

    /// Response counts by code, most first (`OK 150, UNAVAILABLE 50`); `-` without responses.
    static func statusCounts(_ statuses: [String: Int]) -> String {
        guard !statuses.isEmpty else { return "-" }
        return statuses.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }

    /// Renders columns padded to their widest cell.
    public static func table(header: [String], rows: [[String]], rightAligned: Set<Int>) -> String {
        let rows = rows.map { $0.map(TerminalStyle.sanitize) }
        var widths = header.map(\.count)
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: max(0, widths[i] - cell.count))
                return rightAligned.contains(i) ? pad + cell : cell + pad
            }.joined(separator: "  ").droppingTrailingWhitespace() + "\n"
        }
        var out = line(header)
        for row in rows { out += line(row) }
        if rows.isEmpty { out += "(no responses)\n" }
        return out
    }
}
