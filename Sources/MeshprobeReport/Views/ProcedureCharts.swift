import Foundation

/// The resilience procedures' charts: a circuit breaker's requests in flight against its limit and its overflow
/// replies, and outlier detection's ejections and returns per workload.
extension SVGChart {
    /// A bar of a group: its label (left of the plot), length, the words at its end, and its class.
    struct Bar {
        var label: String
        var value: Double
        var words: String
        var cls: String
    }

    /// A group of horizontal bars on one scale from 0 to `top`, with labelled reference lines (a limit): the group's
    /// SVG, drawn from `y`, and its height. The labels are words, so the bars read without colour.
    private static func barGroup(heading: String, bars: [Bar], lines: [(value: Double, label: String)], top: Double, y: Double) -> (String, Double) {
        let left = 250.0, right = 190.0, row = 22.0
        let plot = width - left - right
        func x(_ v: Double) -> Double { left + plot * min(1, max(0, v / max(top, 1e-9))) }
        var out = text(20, y + 12, heading, cls: "lbl name")
        let barsTop = y + 20
        for (i, bar) in bars.enumerated() {
            let by = barsTop + Double(i) * row
            out += text(left - 8, by + 12, bar.label, anchor: "end")
            out += "<rect class=\"\(bar.cls)\" x=\"\(f(left))\" y=\"\(f(by + 2))\" width=\"\(f(max(1, x(bar.value) - left)))\" height=\"12\"/>"
            out += text(x(bar.value) + 6, by + 12, bar.words, cls: "note")
        }
        let bottom = barsTop + Double(bars.count) * row
        for (i, line) in lines.enumerated() {
            out += "<line class=\"limit\" x1=\"\(f(x(line.value)))\" y1=\"\(f(barsTop - 2))\" x2=\"\(f(x(line.value)))\" y2=\"\(f(bottom))\"/>"
            out += text(x(line.value), bottom + 12 + Double(i) * 13, line.label, anchor: "middle", cls: "note")
        }
        return (out, bottom + 8 + Double(lines.count) * 13 - y)
    }

    /// A circuit-breaker procedure: requests sent at once at and above the limit, and the most the upstream held,
    /// against the limit; the share of requests refused with an overflow reply in each phase; and how fast the
    /// refusals came against half the upstream's hold. Nil when the checks carry none of these figures.
    static func circuitBreaker(_ checks: [RunReport.Check], title: String) -> String? {
        // The check above the limit is the one with the generator's lag (its overflow percentiles are there only
        // when something overflowed).
        func isAbove(_ check: RunReport.Check) -> Bool {
            check.observed["generator_lag_p99_ms"] != nil || check.observed["overflow_p50_ms"] != nil
        }
        let below = checks.first { $0.observed["concurrency"] != nil && !isAbove($0) }
        let above = checks.first(where: isAbove)
        let inFlight = checks.first { $0.observed["limit"] != nil }
        guard below != nil || above != nil || inFlight != nil else { return nil }
        let declared = checks.first?.declared ?? [:]
        let limit = inFlight?.observed["limit"] ?? declared["max_requests"]
        var body = ""
        var y = 8.0
        // Requests in flight against the limit.
        var bars: [Bar] = []
        if let c = below?.observed["concurrency"] { bars.append(Bar(label: "sent at once, at the limit", value: c, words: "\(Int(c))", cls: "sent")) }
        if let c = above?.observed["concurrency"] { bars.append(Bar(label: "sent at once, above it", value: c, words: "\(Int(c))", cls: "sent")) }
        if let peak = inFlight?.observed["peak_in_flight_service"] ?? inFlight?.observed["peak_in_flight_per_endpoint"] {
            let scope = inFlight?.observed["peak_in_flight_service"] != nil ? "the service" : "an endpoint"
            bars.append(Bar(label: "most held by \(scope)", value: peak, words: "\(Int(peak))", cls: "held \(limit.map { peak > $0 } ?? false ? "off" : "ok")"))
        }
        if !bars.isEmpty {
            var lines: [(value: Double, label: String)] = []
            if let limit { lines.append((limit, "limit \(Int(limit))")) }
            if let limit, let pending = declared["max_pending"], pending > 0 { lines.append((limit + pending, "admitted \(Int(limit + pending)) (limit + pending)")) }
            let top = (bars.map(\.value) + lines.map(\.value)).max()! * 1.1
            let (svg, h) = barGroup(heading: "requests in flight", bars: bars, lines: lines, top: top, y: y)
            body += svg
            y += h + 10
        }
        // Overflow replies: the share of each phase's requests the proxy refused.
        var refused: [Bar] = []
        for (phase, check) in [("at the limit", below), ("above it", above)] {
            guard let check, let requests = check.observed["requests"], requests > 0 else { continue }
            let n = check.observed["overflow"] ?? 0
            refused.append(Bar(label: "refused \(phase)", value: n / requests, words: "\(Int(n)) of \(Int(requests)) (\(String(format: "%.0f%%", n / requests * 100)))",
                               cls: "failed"))
        }
        if !refused.isEmpty {
            let (svg, h) = barGroup(heading: "overflow replies", bars: refused, lines: [], top: 1, y: y)
            body += svg
            y += h + 10
        }
        // How fast the refusals came, against half the hold (slower: queued, not refused).
        if let above, let p50 = above.observed["overflow_p50_ms"], let p99 = above.observed["overflow_p99_ms"], (above.observed["overflow"] ?? 0) > 0 {
            let hold = declared["hold_ms"]
            let fast = [Bar(label: "overflow reply p50", value: p50, words: String(format: "%.1f ms", p50), cls: "reply"),
                        Bar(label: "overflow reply p99", value: p99, words: String(format: "%.1f ms", p99), cls: "reply")]
            let lines = hold.map { [(value: $0 / 2, label: String(format: "half the hold: %.0f ms", $0 / 2))] } ?? []
            let top = (fast.map(\.value) + lines.map(\.value)).max()! * 1.15
            let (svg, h) = barGroup(heading: "overflow reply time", bars: fast, lines: lines, top: top, y: y)
            body += svg
            y += h + 10
        }
        let height = y + 4
        return open(height: height, title: title) + body + "</svg>"
    }

    /// A workload's ejection: from when it was ejected to when it came back (nil: not back by the end).
    struct Ejection: Equatable {
        var workload: String
        var from: Double
        var to: Double?
    }

    /// The ejections in an outlier-detection timeline, from its words: `W ejected ...` opens one for W, `W back ...`
    /// closes it; `W not back` leaves it open.
    static func ejections(_ events: [RunReport.Event]) -> [Ejection] {
        var out: [Ejection] = []
        for event in events.sorted(by: { $0.at < $1.at }) {
            let words = event.text.split(separator: " ", maxSplits: 2).map(String.init)
            guard words.count >= 2 else { continue }
            let workload = words[0]
            if words[1] == "ejected" {
                out.append(Ejection(workload: workload, from: event.at, to: nil))
            } else if words[1] == "back", let i = out.lastIndex(where: { $0.workload == workload && $0.to == nil }) {
                out[i].to = event.at
            }
        }
        return out
    }

    /// A lane per workload with each ejection as a bar from its ejection to its return, an open one to the end of the
    /// procedure, each bar's times in words beside it.
    static func ejectionLanes(_ ejections: [Ejection], end: Double, title: String) -> String {
        let left = 160.0, right = 20.0, top = 10.0, row = 30.0
        let workloads = ejections.map(\.workload).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        let span = max(1, end, ejections.map { $0.to ?? $0.from }.max() ?? 0)
        let plot = width - left - right
        func x(_ t: Double) -> Double { left + plot * max(0, t) / span }
        let axisY = top + Double(workloads.count) * row + 4
        let height = axisY + 36
        var out = open(height: height, title: title)
        for (i, workload) in workloads.enumerated() {
            let y = top + Double(i) * row
            out += text(left - 8, y + 17, workload, anchor: "end", cls: "lbl name")
            for ejection in ejections where ejection.workload == workload {
                let to = ejection.to ?? span
                let words = ejection.to.map { String(format: "ejected %.2f s, back %.2f s (%.2f s out)", ejection.from, $0, $0 - ejection.from) }
                    ?? String(format: "ejected %.2f s, not back", ejection.from)
                out += "<rect class=\"ejected\(ejection.to == nil ? " open" : "")\" x=\"\(f(x(ejection.from)))\" y=\"\(f(y + 4))\" "
                    + "width=\"\(f(max(2, x(to) - x(ejection.from))))\" height=\"18\"><title>\(e(workload + ": " + words))</title></rect>"
                // The words (about 6 units a character) right of the bar when they fit there, else left of its start,
                // else on the bar itself (a bar too long for either has room for them).
                let wide = Double(words.count) * 6
                if x(to) + 6 + wide <= width - right {
                    out += text(x(to) + 6, y + 17, words, cls: "note")
                } else if x(ejection.from) - 6 - wide >= left {
                    out += text(x(ejection.from) - 6, y + 17, words, anchor: "end", cls: "note")
                } else {
                    out += text(x(ejection.from) + 4, y + 17, words, cls: "lbl on-bar")
                }
            }
        }
        out += "<line x1=\"\(f(left))\" y1=\"\(f(axisY))\" x2=\"\(f(width - right))\" y2=\"\(f(axisY))\" class=\"axis\"/>"
        for t in ticks(upTo: span, count: 8) where t <= span {
            out += text(x(t), axisY + 16, "\(label(t)) s", anchor: "middle")
        }
        return out + "</svg>"
    }
}
