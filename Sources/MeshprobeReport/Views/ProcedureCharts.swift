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

    /// An interval of a procedure's series as drawn: from `start` for `length` seconds (the part of it the procedure
    /// ran in: the last one may be shorter), and its point.
    struct Interval {
        var start: Double
        var length: Double
        var point: VerifyReport.OverTime.Point
        var partial: Bool

        var end: Double { start + length }
        func rate(_ count: Int) -> Double { Double(count) / length }
    }

    /// The series' intervals with how long each was measured: the part of it before the procedure's end (the last
    /// phase's); a last part shorter than a quarter of an interval is added to the one before it (a rate over a sliver
    /// is noise), as a load's last partial second is.
    static func intervals(_ series: VerifyReport.OverTime) -> [Interval] {
        let end = series.phases.map(\.end).max() ?? (series.points.last.map { $0.at + series.interval } ?? 0)
        var out: [Interval] = []
        for point in series.points {
            let length = min(series.interval, end - point.at)
            if length < series.interval / 4, var previous = out.last {
                previous.length += max(0, length)
                previous.partial = previous.length < series.interval * 0.999
                previous.point.held = point.held.map { max(previous.point.held ?? 0, $0) } ?? previous.point.held
                previous.point.succeeded += point.succeeded
                previous.point.overflow += point.overflow
                previous.point.failed += point.failed
                out[out.count - 1] = previous
                continue
            }
            out.append(Interval(start: point.at, length: max(length, series.interval / 4), point: point, partial: length < series.interval * 0.999))
        }
        return out
    }

    /// A swatch of a line's style and its words, from `x`: the SVG and where the next one may start.
    private static func legendEntry(_ x: Double, _ y: Double, cls: String, words: String) -> (String, Double) {
        let svg = "<g class=\"\(cls)\"><line class=\"step\" x1=\"\(f(x))\" y1=\"\(f(y - 4))\" x2=\"\(f(x + 16))\" y2=\"\(f(y - 4))\"/></g>"
            + text(x + 20, y, words, cls: "note")
        return (svg, x + 20 + Double(words.count) * 6 + 18)
    }

    /// A circuit-breaker procedure over time. Above: what the client sent at once in each phase, and the most the
    /// upstream held in each interval (estimated from the answers' arrival times and the hold, as the in-flight check
    /// does), against the limit and what the proxy admits with pending requests. Below: the replies per second,
    /// succeeded, overflow (refused for the limit) and other failures stacked, the last interval a rate over the part
    /// of it the procedure ran in. The phases are named bands; every line is named in words, so it reads without colour.
    static func circuitBreakerOverTime(_ series: VerifyReport.OverTime, limit: Double?, pending: Double?, title: String) -> String {
        let left = 56.0, right = 110.0, bandTop = 22.0, plotTop = 42.0, plotHeight = 150.0
        let lowerTop = plotTop + plotHeight + 30, lowerHeight = 80.0
        let axisY = lowerTop + lowerHeight
        let height = axisY + 44
        let plot = width - left - right
        let spans = intervals(series)
        let end = max(series.interval, spans.last?.end ?? 0, series.phases.map(\.end).max() ?? 0)
        func x(_ t: Double) -> Double { left + plot * min(max(t, 0), end) / end }
        let admitted = limit.flatMap { l in pending.map { l + $0 } }
        let held = spans.contains { $0.point.held != nil }
        let most = (spans.map { Double($0.point.held ?? 0) } + series.phases.map { Double($0.concurrency) } + [limit ?? 0, admitted ?? 0]).max() ?? 0
        let yTicks = ticks(upTo: most, count: 4)
        let yTop = yTicks.last ?? 1
        func y(_ n: Double) -> Double { plotTop + plotHeight * (1 - n / yTop) }
        let rateTicks = ticks(upTo: spans.map { $0.rate($0.point.succeeded + $0.point.overflow + $0.point.failed) }.max() ?? 0, count: 2)
        let rateTop = rateTicks.last ?? 1
        func h(_ rate: Double) -> Double { lowerHeight * rate / rateTop }
        var out = open(height: height, title: title)
        var (entry, lx) = legendEntry(left, 13, cls: "cb client", words: "sent at once by the client")
        out += entry
        if held {
            (entry, lx) = legendEntry(lx, 13, cls: "cb upstream", words: "held by the upstream at once (each interval's most, from the answers' arrival times and the hold)")
            out += entry
        }
        // The phases, as bands over both panels, named when the name fits.
        for (i, phase) in series.phases.enumerated() {
            let x0 = x(phase.start), x1 = x(phase.end)
            out += "<rect class=\"phase p\(i % 2)\" x=\"\(f(x0))\" y=\"\(f(bandTop))\" width=\"\(f(max(1, x1 - x0)))\" height=\"\(f(axisY - bandTop))\">"
                + "<title>\(e(phase.name)): \(phase.concurrency) sent at once, \(String(format: "%.2f to %.2f s", phase.start, phase.end))</title></rect>"
            let words = "\(phase.name): \(phase.concurrency) at once", short = "\(phase.concurrency) at once"
            if let fitting = [words, short].first(where: { Double($0.count) * 6.6 + 8 <= x1 - x0 }) {
                out += text(x0 + 4, bandTop + 13, fitting, cls: "lbl name")
            }
        }
        for t in yTicks {
            out += "<line x1=\"\(f(left))\" y1=\"\(f(y(t)))\" x2=\"\(f(left + plot))\" y2=\"\(f(y(t)))\" class=\"grid\"/>"
            out += text(left - 6, y(t) + 4, label(t), anchor: "end")
        }
        for phase in series.phases {
            out += "<g class=\"cb client\"><line class=\"step\" x1=\"\(f(x(phase.start)))\" y1=\"\(f(y(Double(phase.concurrency))))\" "
                + "x2=\"\(f(x(phase.end)))\" y2=\"\(f(y(Double(phase.concurrency))))\"><title>\(e(phase.name)): \(phase.concurrency) sent at once</title></line></g>"
        }
        if held {
            var path = "", last: Int?
            for span in spans {
                guard let v = span.point.held else { continue }
                if v != last { path += (path.isEmpty ? "M" : "L") + "\(f(x(span.start))),\(f(y(Double(v))))" }
                path += "L\(f(x(span.end))),\(f(y(Double(v))))"
                last = v
            }
            out += "<g class=\"cb upstream\"><path class=\"step\" d=\"\(path)\"><title>the most the upstream held at once, interval by interval</title></path></g>"
        }
        // The limits, over the lines, named at the right.
        var limits: [(value: Double, words: String, cls: String)] = []
        if let limit { limits.append((limit, "limit \(Int(limit))", "limit")) }
        if let admitted, let limit, admitted > limit { limits.append((admitted, "admitted \(Int(admitted))", "limit admitted")) }
        let placed = spread(limits.map { y($0.value) + 4 }, gap: 13, top: plotTop + 4, bottom: plotTop + plotHeight + 4)
        for (line, ly) in zip(limits, placed) {
            out += "<line class=\"\(line.cls)\" x1=\"\(f(left))\" y1=\"\(f(y(line.value)))\" x2=\"\(f(left + plot))\" y2=\"\(f(y(line.value)))\"/>"
            out += text(left + plot + 6, ly, line.words, cls: "lbl name")
        }
        out += "<line x1=\"\(f(left))\" y1=\"\(f(plotTop + plotHeight))\" x2=\"\(f(left + plot))\" y2=\"\(f(plotTop + plotHeight))\" class=\"axis\"/>"
        // The replies per second, stacked.
        var kx = left
        out += text(kx, lowerTop - 8, "replies/s:", cls: "note")
        kx += 66
        for (cls, words) in [("ok", "succeeded (lowest)"), ("reply", "overflow: refused for the limit"), ("failed", "other failures (highest)")] {
            out += "<rect class=\"\(cls)\" x=\"\(f(kx))\" y=\"\(f(lowerTop - 17))\" width=\"10\" height=\"10\"/>" + text(kx + 14, lowerTop - 8, words, cls: "note")
            kx += 14 + Double(words.count) * 6 + 18
        }
        for t in rateTicks {
            let ty = axisY - h(t)
            out += "<line x1=\"\(f(left))\" y1=\"\(f(ty))\" x2=\"\(f(left + plot))\" y2=\"\(f(ty))\" class=\"grid\"/>"
            out += text(left - 6, ty + 4, label(t), anchor: "end")
        }
        for span in spans {
            let p = span.point
            let bx = x(span.start) + 0.5, bw = max(1, x(span.end) - x(span.start) - 1)
            var base = axisY
            out += "<g class=\"rate\(span.partial ? " partial" : "")\"><title>" + e(String(format: "%.2f to %.2f s: ", span.start, span.end))
                + "\(p.succeeded) succeeded, \(p.overflow) overflow, \(p.failed) other failed" + (p.held.map { "; the upstream held \($0) at most" } ?? "") + "</title>"
            for (cls, count) in [("ok", p.succeeded), ("reply", p.overflow), ("failed", p.failed)] where count > 0 {
                let bh = h(span.rate(count))
                out += "<rect class=\"\(cls)\" x=\"\(f(bx))\" y=\"\(f(base - bh))\" width=\"\(f(bw))\" height=\"\(f(bh))\"/>"
                base -= bh
            }
            out += "</g>"
        }
        out += "<line x1=\"\(f(left))\" y1=\"\(f(axisY))\" x2=\"\(f(left + plot))\" y2=\"\(f(axisY))\" class=\"axis\"/>"
        for t in ticks(upTo: end, count: 8) where t <= end {
            // Lower than the other charts' time labels: this chart is drawn full width, its text larger on the page,
            // and its lower panel's 0 stands just above the first of them.
            out += text(x(t), axisY + 19, "\(label(t)) s", anchor: "middle")
        }
        let overflow = series.points.reduce(0) { $0 + $1.overflow }
        var note = "seconds from the procedure's start, in intervals of \(label(series.interval)) s; \(overflow) overflow repl\(overflow == 1 ? "y" : "ies")"
        if let tail = spans.last, tail.partial { note += String(format: "; lighter: the last %.2f s, its count over that time", tail.length) }
        out += text(left + plot, axisY + 37, note, anchor: "end", cls: "note")
        return out + "</svg>"
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
