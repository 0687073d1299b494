import Foundation

/// The HTML report's charts as inline SVG (no script, no fonts or files fetched): every label escaped.
///
/// Every chart scales to the width of its place on the page (a `viewBox`, no fixed size: the page's CSS makes it
/// `width: 100%`): the full-width charts (splits, timelines) are drawn `width` units wide, the charts of a load, two
/// side by side, `pairWidth`. Text is 11 units high, so it reads at about 11 px wherever a chart is about as wide as
/// it was drawn. Every label stays inside its chart: the margins hold the widest label they carry.
enum SVGChart {
    static let width = 1000.0
    static let pairWidth = 600.0

    static func e(_ text: String) -> String { MarkupText.escape(text) }

    static func f(_ v: Double) -> String { String(format: "%.1f", v.isFinite ? v : 0) }

    /// A short number for an axis label: 0.25, 1.25, 12, 1.5k (three significant digits below 100, so that a tick
    /// at 1.25 never reads 1.2).
    static func label(_ v: Double) -> String {
        if v == 0 { return "0" }
        if abs(v) >= 10_000 { return String(format: "%.0fk", v / 1000) }
        if abs(v) >= 100 || v == v.rounded() { return String(format: "%.0f", v) }
        return String(format: "%.3g", v)
    }

    /// Axis ticks from 0 to a round number at or above `maximum` (about `count` of them).
    static func ticks(upTo maximum: Double, count: Int = 5) -> [Double] {
        guard maximum > 0, maximum.isFinite else { return [0, 1] }
        let raw = maximum / Double(count)
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        let top = (maximum / step).rounded(.up) * step
        return stride(from: 0, through: top + step / 2, by: step).map { $0 }
    }

    static func open(width: Double = width, height: Double, title: String) -> String {
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" viewBox=\"0 0 \(f(width)) \(f(height))\" "
            + "preserveAspectRatio=\"xMidYMid meet\"><title>\(e(title))</title>"
    }

    static func text(_ x: Double, _ y: Double, _ s: String, anchor: String = "start", cls: String = "lbl") -> String {
        "<text x=\"\(f(x))\" y=\"\(f(y))\" text-anchor=\"\(anchor)\" class=\"\(cls)\">\(e(s))</text>"
    }

    /// Declared against observed share per backend, the tolerance shaded around the declared share.
    static func split(_ shares: [RunReport.Share], tolerance: Double?, title: String) -> String {
        let row = 46.0, left = 150.0, right = 160.0, top = 26.0
        let height = top + Double(shares.count) * row + 30
        let plot = width - left - right
        func x(_ share: Double) -> Double { left + plot * min(1, max(0, share)) }
        var out = open(height: height, title: title)
        out += text(left, 14, "declared (grey) and observed share; shaded: the tolerance", cls: "note")
        for t in stride(from: 0.0, through: 1.0001, by: 0.25) {
            out += "<line x1=\"\(f(x(t)))\" y1=\"\(f(top - 4))\" x2=\"\(f(x(t)))\" y2=\"\(f(height - 26))\" class=\"grid\"/>"
            out += text(x(t), height - 10, String(format: "%.0f%%", t * 100), anchor: "middle")
        }
        for (i, s) in shares.enumerated() {
            let y = top + Double(i) * row
            out += text(left - 8, y + 20, s.name, anchor: "end", cls: "lbl name")
            if let declared = s.declared {
                if let tolerance, tolerance > 0 {
                    out += "<rect class=\"tolerance\" x=\"\(f(x(declared - tolerance)))\" y=\"\(f(y))\" width=\"\(f(x(declared + tolerance) - x(declared - tolerance)))\" height=\"\(f(row - 8))\"/>"
                }
                out += "<rect class=\"declared\" x=\"\(f(left))\" y=\"\(f(y + 2))\" width=\"\(f(x(declared) - left))\" height=\"14\"/>"
                out += text(x(declared) + 4, y + 14, String(format: "%.1f%% declared", declared * 100), cls: "note")
            }
            let within = s.declared.map { abs(s.observed - $0) <= (tolerance ?? 0) + 1e-9 } ?? (s.observed == 0)
            out += "<rect class=\"observed \(within ? "ok" : "off")\" x=\"\(f(left))\" y=\"\(f(y + 20))\" width=\"\(f(x(s.observed) - left))\" height=\"16\"/>"
            out += text(x(s.observed) + 4, y + 33, String(format: "%.1f%% observed (%d)", s.observed * 100, s.count))
        }
        return out + "</svg>"
    }

    /// End labels `gap` apart at least, each as near its wanted position as the others allow: in order, pushed down,
    /// then from the bottom up, pushed up as far as the ones below them need (those that run past `bottom`), so a
    /// crowd at the bottom moves up without taking a label far above it along.
    static func spread(_ wanted: [Double], gap: Double, top: Double, bottom: Double) -> [Double] {
        let order = wanted.indices.sorted { wanted[$0] < wanted[$1] }
        var placed = [Double](repeating: 0, count: wanted.count)
        var last = -Double.infinity
        for i in order {
            placed[i] = max(wanted[i], last + gap, top)
            last = placed[i]
        }
        var below = bottom + gap
        for i in order.reversed() {
            placed[i] = min(placed[i], below - gap)
            below = placed[i]
        }
        return placed
    }

    /// How a split converged: each destination's observed share after so many judged responses, against its declared
    /// share and the tolerance band around it; each line named at its end (and dashed its own way), so it reads
    /// without colour. The last point is where the test decided (or the run ended).
    static func convergence(_ points: [VerifyReport.TrajectoryPoint], declared: [String: Double], tolerance: Double?,
                            outcome: String, title: String) -> String {
        let left = 56.0, right = 170.0, top = 24.0, plotHeight = 220.0
        let height = top + plotHeight + 44
        let plot = width - left - right
        let last = Double(max(1, points.last?.samples ?? 1))
        let names = Set(declared.keys).union(points.flatMap(\.counts.keys)).sorted()
        func x(_ n: Double) -> Double { left + plot * n / last }
        func y(_ share: Double) -> Double { top + plotHeight * (1 - min(1, max(0, share))) }
        var out = open(height: height, title: title)
        out += text(left, 13, "observed share by responses judged; dashed: declared; shaded: the tolerance", cls: "note")
        for t in stride(from: 0.0, through: 1.0001, by: 0.25) {
            out += "<line x1=\"\(f(left))\" y1=\"\(f(y(t)))\" x2=\"\(f(left + plot))\" y2=\"\(f(y(t)))\" class=\"grid\"/>"
            out += text(left - 6, y(t) + 4, String(format: "%.0f%%", t * 100), anchor: "end")
        }
        for t in ticks(upTo: last, count: 6) where t <= last {
            out += text(x(t), top + plotHeight + 16, label(t), anchor: "middle")
        }
        out += text(left + plot, top + plotHeight + 34, "responses judged; \(outcome)", anchor: "end", cls: "note")
        for (i, name) in names.enumerated() {
            guard let share = declared[name] else { continue }
            if let tolerance, tolerance > 0 {
                out += "<rect class=\"tolerance\" x=\"\(f(left))\" y=\"\(f(y(share + tolerance)))\" width=\"\(f(plot))\" height=\"\(f(y(share - tolerance) - y(share + tolerance)))\"/>"
            }
            out += "<line class=\"declared-line d\(i % 4)\" x1=\"\(f(left))\" y1=\"\(f(y(share)))\" x2=\"\(f(left + plot))\" y2=\"\(f(y(share)))\"/>"
        }
        var ends: [(name: String, y: Double, text: String)] = []
        for (i, name) in names.enumerated() {
            let path = points.filter { $0.samples > 0 }.map { p in
                "\(f(x(Double(p.samples)))),\(f(y(Double(p.counts[name] ?? 0) / Double(p.samples))))"
            }
            guard let final = points.last, final.samples > 0 else { continue }
            let observed = Double(final.counts[name] ?? 0) / Double(final.samples)
            if path.count > 1 { out += "<polyline class=\"line share d\(i % 4)\" points=\"\(path.joined(separator: " "))\"/>" }
            let declaredText = declared[name].map { String(format: " (%.0f%%)", $0 * 100) } ?? " (undeclared)"
            ends.append((name, y(observed), String(format: "%.1f%%", observed * 100) + declaredText))
        }
        let placed = spread(ends.map { $0.y + 4 }, gap: 14, top: top + 8, bottom: top + plotHeight + 4)
        for (end, ly) in zip(ends, placed) {
            out += text(left + plot + 6, ly, "\(end.name) \(end.text)", cls: "lbl name")
        }
        out += "<line class=\"axis\" x1=\"\(f(x(last)))\" y1=\"\(f(top))\" x2=\"\(f(x(last)))\" y2=\"\(f(top + plotHeight))\"/>"
        return out + "</svg>"
    }

    /// The time axis of a load's per-second charts: from the start of the run to the end of its last measured span.
    private static func timeAxis(_ spans: [TimelineSpan]) -> Double { max(1, spans.map(\.end).max() ?? 0) }

    /// Per-second p50 and p99 (ms) over the run, each drawn at the middle of the time its second was measured (the
    /// last second of a 5.3 s run at 5.15 s); a partial second's dot is hollow.
    static func latencyOverTime(_ spans: [TimelineSpan], title: String) -> String {
        let width = pairWidth, left = 56.0, right = 24.0, top = 24.0, plotHeight = 200.0
        let height = top + plotHeight + 44
        let plot = width - left - right
        let last = timeAxis(spans)
        // A merged second's percentiles come from its merged histogram; a merge with a result written before the
        // histograms were kept has counts only for the seconds it touches: those draw no latency.
        let yTicks = ticks(upTo: spans.compactMap(\.second.p99Ms).max() ?? 0)
        let yTop = yTicks.last ?? 1
        func x(_ s: Double) -> Double { left + plot * s / last }
        func y(_ ms: Double) -> Double { top + plotHeight * (1 - ms / yTop) }
        var out = open(width: width, height: height, title: title)
        out += "<rect class=\"swatch p50\" x=\"\(f(left))\" y=\"6\" width=\"14\" height=\"4\"/>" + text(left + 18, 12, "p50", cls: "note")
        out += "<rect class=\"swatch p99\" x=\"\(f(left + 50))\" y=\"6\" width=\"14\" height=\"4\"/>" + text(left + 68, 12, "p99 (ms, from the intended send time)", cls: "note")
        for t in yTicks {
            out += "<line x1=\"\(f(left))\" y1=\"\(f(y(t)))\" x2=\"\(f(width - right))\" y2=\"\(f(y(t)))\" class=\"grid\"/>"
            out += text(left - 6, y(t) + 4, label(t), anchor: "end")
        }
        for t in ticks(upTo: last, count: 6) where t <= last {
            out += text(x(t), top + plotHeight + 16, "\(label(t)) s", anchor: "middle")
        }
        let answered = spans.filter { $0.second.responses > 0 }
        for cls in ["p50", "p99"] {
            let points = answered.compactMap { span in (cls == "p50" ? span.second.p50Ms : span.second.p99Ms).map { (span, $0) } }
            let path = points.map { "\(f(x($0.0.start + $0.0.length / 2))),\(f(y($0.1)))" }
            if path.count > 1 { out += "<polyline class=\"line \(cls)\" points=\"\(path.joined(separator: " "))\"/>" }
            for (span, ms) in points {
                out += "<circle class=\"dot \(cls)\(span.partial ? " partial" : "")\" cx=\"\(f(x(span.start + span.length / 2)))\" cy=\"\(f(y(ms)))\" r=\"2.5\">"
                    + "<title>second \(span.second.second)\(partialNote(span)): \(cls) \(String(format: "%.3f", ms)) ms</title></circle>"
            }
        }
        if let tail = spans.last, tail.partial {
            out += text(width - right, top + plotHeight + 34, String(format: "hollow: the last %.2f s, a partial second", tail.length), anchor: "end", cls: "note")
        }
        return out + "</svg>"
    }

    static func partialNote(_ span: TimelineSpan) -> String {
        span.partial ? String(format: " (%.2f s measured)", span.length) : ""
    }

    /// Responses per second over the run, stacked: succeeded below, failed above. Each bar spans the time its second
    /// was measured and its height is the count over that time, so the last 0.3 s of a run is a narrow bar as high as
    /// the rate it ran at (no false dip or spike), drawn lighter and dashed as partial.
    static func throughput(_ spans: [TimelineSpan], title: String) -> String {
        let width = pairWidth, left = 56.0, right = 24.0, top = 24.0, plotHeight = 200.0
        let height = top + plotHeight + 44
        let plot = width - left - right
        let last = timeAxis(spans)
        let yTicks = ticks(upTo: spans.map(\.responsesPerSecond).max() ?? 0)
        let yTop = yTicks.last ?? 1
        func x(_ s: Double) -> Double { left + plot * s / last }
        func h(_ rate: Double) -> Double { plotHeight * rate / yTop }
        var out = open(width: width, height: height, title: title)
        out += "<rect class=\"ok\" x=\"\(f(left))\" y=\"4\" width=\"10\" height=\"10\"/>" + text(left + 14, 13, "succeeded/s (lower)", cls: "note")
        out += "<rect class=\"failed\" x=\"\(f(left + 140))\" y=\"4\" width=\"10\" height=\"10\"/>" + text(left + 154, 13, "failed/s (upper)", cls: "note")
        for t in yTicks {
            let ty = top + plotHeight - h(t)
            out += "<line x1=\"\(f(left))\" y1=\"\(f(ty))\" x2=\"\(f(width - right))\" y2=\"\(f(ty))\" class=\"grid\"/>"
            out += text(left - 6, ty + 4, label(t), anchor: "end")
        }
        for t in ticks(upTo: last, count: 6) where t <= last {
            out += text(x(t), top + plotHeight + 16, "\(label(t)) s", anchor: "middle")
        }
        let base = top + plotHeight
        for span in spans {
            let bx = x(span.start) + 0.5, bw = max(1, x(span.end) - x(span.start) - 1)
            let ok = h(span.succeededPerSecond), bad = h(span.failedPerSecond)
            let partial = span.partial ? " partial" : ""
            out += "<g class=\"rate\(partial)\"><title>second \(span.second.second)\(partialNote(span)): "
                + String(format: "%.1f responses/s (%d succeeded, %d failed)", span.responsesPerSecond, span.second.succeeded, span.second.failed) + "</title>"
            if ok > 0 { out += "<rect class=\"ok\" x=\"\(f(bx))\" y=\"\(f(base - ok))\" width=\"\(f(bw))\" height=\"\(f(ok))\"/>" }
            if bad > 0 { out += "<rect class=\"failed\" x=\"\(f(bx))\" y=\"\(f(base - ok - bad))\" width=\"\(f(bw))\" height=\"\(f(bad))\"/>" }
            out += "</g>"
        }
        out += "<line x1=\"\(f(left))\" y1=\"\(f(base))\" x2=\"\(f(width - right))\" y2=\"\(f(base))\" class=\"axis\"/>"
        let failed = spans.reduce(0) { $0 + $1.second.failed }
        var note = failed == 0 ? "no failed requests" : "\(failed) failed"
        if let tail = spans.last, tail.partial { note += String(format: "; lighter: the last %.2f s, its count over that time", tail.length) }
        out += text(width - right, top + plotHeight + 34, note, anchor: "end", cls: "note")
        return out + "</svg>"
    }

    /// How many responses took how long: a run too short for a time series (fewer than three seconds).
    static func histogram(_ bins: [LatencyBin], title: String) -> String {
        let width = pairWidth, left = 56.0, right = 24.0, top = 24.0, plotHeight = 200.0
        let height = top + plotHeight + 44
        let plot = width - left - right
        let low = bins.first?.low ?? 0, high = bins.last?.high ?? 1
        let yTicks = ticks(upTo: Double(bins.map(\.count).max() ?? 0))
        let yTop = yTicks.last ?? 1
        func x(_ ms: Double) -> Double { left + plot * (ms - low) / max(high - low, 1e-9) }
        func h(_ n: Double) -> Double { plotHeight * n / yTop }
        var out = open(width: width, height: height, title: title)
        out += text(left, 13, "responses by latency (ms, from the intended send time)", cls: "note")
        for t in yTicks {
            let ty = top + plotHeight - h(t)
            out += "<line x1=\"\(f(left))\" y1=\"\(f(ty))\" x2=\"\(f(width - right))\" y2=\"\(f(ty))\" class=\"grid\"/>"
            out += text(left - 6, ty + 4, label(t), anchor: "end")
        }
        let base = top + plotHeight
        for bin in bins where bin.count > 0 {
            let bh = h(Double(bin.count))
            out += "<rect class=\"bar\" x=\"\(f(x(bin.low) + 0.5))\" y=\"\(f(base - bh))\" width=\"\(f(max(1, x(bin.high) - x(bin.low) - 1)))\" height=\"\(f(bh))\">"
                + "<title>" + e(String(format: "%.3f to %.3f ms: ", bin.low, bin.high) + "\(bin.count)") + "</title></rect>"
        }
        out += "<line x1=\"\(f(left))\" y1=\"\(f(base))\" x2=\"\(f(width - right))\" y2=\"\(f(base))\" class=\"axis\"/>"
        for i in 0...4 {
            let ms = low + (high - low) * Double(i) / 4
            out += text(x(ms), base + 16, "\(label(ms)) ms", anchor: i == 0 ? "start" : i == 4 ? "end" : "middle")
        }
        out += text(width - right, base + 34, "the last bar holds the slowest 0.1%", anchor: "end", cls: "note")
        return out + "</svg>"
    }

    /// Latency by percentile, the percentile axis stretched toward the tail (1/(1-p), as HdrHistogram plots it).
    static func distribution(_ points: [RunReport.Load.Point], requests: Int, title: String) -> String {
        let width = pairWidth, left = 60.0, right = 30.0, top = 16.0, plotHeight = 200.0
        let height = top + plotHeight + 40
        let plot = width - left - right
        let nines = min(5, max(2, ceil(log10(Double(max(requests, 1))))))
        func position(_ p: Double) -> Double { p >= 100 ? nines : min(nines, -log10(1 - p / 100)) }
        let yTicks = ticks(upTo: points.map(\.milliseconds).max() ?? 0)
        let yTop = yTicks.last ?? 1
        func x(_ p: Double) -> Double { left + plot * position(p) / nines }
        func y(_ ms: Double) -> Double { top + plotHeight * (1 - ms / yTop) }
        var out = open(width: width, height: height, title: title)
        for t in yTicks {
            out += "<line x1=\"\(f(left))\" y1=\"\(f(y(t)))\" x2=\"\(f(width - right))\" y2=\"\(f(y(t)))\" class=\"grid\"/>"
            out += text(left - 6, y(t) + 4, "\(label(t)) ms", anchor: "end")
        }
        let labels = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
        for n in 0...Int(nines) {
            let px = left + plot * Double(n) / nines
            out += "<line x1=\"\(f(px))\" y1=\"\(f(top))\" x2=\"\(f(px))\" y2=\"\(f(top + plotHeight))\" class=\"grid\"/>"
            out += text(px, top + plotHeight + 16, labels[n], anchor: "middle")
        }
        out += text(left + plot / 2, top + plotHeight + 34, "percentile (latency from the intended send time)", anchor: "middle", cls: "note")
        var seen = Set<Double>()
        let path = points.filter { seen.insert(position($0.percentile)).inserted }.map { "\(f(x($0.percentile))),\(f(y($0.milliseconds)))" }
        if !path.isEmpty { out += "<polyline class=\"line p99\" points=\"\(path.joined(separator: " "))\"/>" }
        return out + "</svg>"
    }

    /// A band of time (a game-day step) on the event timeline.
    struct Band {
        var name: String
        var start: Double
        var end: Double
        var status: RunReport.Status
    }

    /// The rows markers closer than a marker's width are stacked on: each marker takes the first row whose last
    /// marker is at least `gap` to its left, so no two overlap (the last row takes what the others cannot).
    static func markerRows(_ positions: [Double], gap: Double, rows: Int) -> [Int] {
        var lastX = [Double](repeating: -.infinity, count: rows)
        return positions.map { px in
            let row = (0..<rows).first { px - lastX[$0] >= gap } ?? (0..<rows).min { lastX[$0] < lastX[$1] }!
            lastX[row] = px
            return row
        }
    }

    /// Failed requests in a stretch of the event timeline: `count` in the `length` seconds from `at` (a load's second,
    /// or the part of it the load ran in).
    struct FailedSpan: Equatable {
        var at: Double
        var length: Double
        var count: Int

        var rate: Double { Double(count) / length }
        var partial: Bool { length < 0.999 }
    }

    /// Events on a time axis: bands (game-day steps, numbered, their names in full in a legend below), failed
    /// requests per second as bars (each as wide as the time it covers and as high as its count over that time, so
    /// a load's last partial second is a narrow bar at its rate, drawn lighter), numbered event markers (the numbers
    /// refer to the table beside the chart) stacked in as many rows as they need not to overlap (the chart grows a
    /// row at a time).
    static func timeline(events: [RunReport.Event], bands: [Band], failures: [FailedSpan], title: String) -> String {
        let left = 20.0, right = 20.0, top = 10.0, markerGap = 18.0, rowHeight = 20.0
        let bandHeight = bands.isEmpty ? 0.0 : 26.0
        let barsHeight = failures.isEmpty ? 0.0 : 50.0
        let plot = width - left - right
        let span = max(1, max(bands.map(\.end).max() ?? 0, events.map(\.at).max() ?? 0, failures.map { $0.at + $0.length }.max() ?? 0))
        func x(_ t: Double) -> Double { left + plot * max(0, t) / span }
        let rows = markerRows(events.map { x($0.at) }, gap: markerGap, rows: max(1, events.count))
        let usedRows = Double((rows.max() ?? 0) + 1)
        let markerTop = top + bandHeight + barsHeight + 8
        let axisY = markerTop + 20 + rowHeight * (usedRows - 1)
        let legendTop = axisY + 48
        let legendLines = bands.isEmpty ? 0 : legendLayout(bands).count
        // Without bands there is no legend: the chart ends below the time axis's labels (at axisY + 28).
        let height = bands.isEmpty ? axisY + 36 : legendTop + Double(legendLines) * 16 + 4
        var out = open(height: height, title: title)
        for (i, b) in bands.enumerated() {
            out += "<rect class=\"band \(b.status.rawValue)\" x=\"\(f(x(b.start)))\" y=\"\(f(top))\" width=\"\(f(max(2, x(b.end) - x(b.start))))\" height=\"\(f(bandHeight - 4))\"><title>\(e(b.name))</title></rect>"
            // The step's number in its band when it fits; its name is in the legend, never cut.
            if x(b.end) - x(b.start) >= 14 { out += text(x(b.start) + 3, top + 16, String(i + 1), cls: "lbl band-label") }
        }
        if !failures.isEmpty {
            let most = max(1e-9, failures.map(\.rate).max() ?? 1)
            let base = top + bandHeight + barsHeight
            out += "<line x1=\"\(f(left))\" y1=\"\(f(base))\" x2=\"\(f(width - right))\" y2=\"\(f(base))\" class=\"axis\"/>"
            for failed in failures where failed.count > 0 {
                let h = (barsHeight - 8) * failed.rate / most
                let words = failed.partial ? String(format: "%d failed in %.2f s (%.1f/s)", failed.count, failed.length, failed.rate) : "\(failed.count) failed"
                out += "<rect class=\"failed\(failed.partial ? " partial" : "")\" x=\"\(f(x(failed.at)))\" y=\"\(f(base - h))\" "
                    + "width=\"\(f(max(1, x(failed.at + failed.length) - x(failed.at) - 1)))\" height=\"\(f(h))\"><title>\(words)</title></rect>"
            }
            let worst = failures.filter { $0.count > 0 }.map(\.rate).max()
            var note = worst.map { "failed requests per second (most: \(label($0.rounded()))/s)" } ?? "no failed requests"
            if failures.contains(where: { $0.partial && $0.count > 0 }) { note += "; lighter: a partial second" }
            out += text(width - right, top + bandHeight + 10, note, anchor: "end", cls: "note")
        }
        out += "<line x1=\"\(f(left))\" y1=\"\(f(axisY))\" x2=\"\(f(width - right))\" y2=\"\(f(axisY))\" class=\"axis\"/>"
        // Every marker's line first, then the markers: a line down to a lower row never crosses a marker's number.
        let centres = events.indices.map { (x: x(events[$0].at), y: markerTop + 20 + rowHeight * Double(rows[$0])) }
        for (i, event) in events.enumerated() {
            out += "<g class=\"event \(event.kind.rawValue)\"><line x1=\"\(f(centres[i].x))\" y1=\"\(f(top))\" x2=\"\(f(centres[i].x))\" y2=\"\(f(centres[i].y))\"/></g>"
        }
        for (i, event) in events.enumerated() {
            let (px, cy) = centres[i]
            out += "<g class=\"event \(event.kind.rawValue)\"><title>\(e(String(format: "%.3f s: ", event.at) + event.text))</title>"
            out += "<circle cx=\"\(f(px))\" cy=\"\(f(cy))\" r=\"8\"/>"
            out += text(px, cy + 4, String(i + 1), anchor: "middle", cls: "num") + "</g>"
        }
        for t in ticks(upTo: span, count: 8) where t <= span {
            out += text(x(t), axisY + 28, "\(label(t)) s", anchor: "middle")
        }
        for (line, entries) in legendLayout(bands).enumerated() {
            out += text(left, legendTop + Double(line) * 16, entries, cls: "note legend")
        }
        return out + "</svg>"
    }

    /// The steps' legend, `1 name · 2 name`, in lines that fit the chart's width (about 6.5 px a character); a
    /// name longer than a line goes on over lines of its own, broken between words.
    static func legendLayout(_ bands: [Band]) -> [String] {
        let perLine = Int((width - 40) / 6.5)
        var lines: [String] = []
        var line = ""
        for (i, b) in bands.enumerated() {
            let entry = "\(i + 1) \(b.name)"
            if !line.isEmpty, line.count + 3 + entry.count <= perLine {
                line += " · " + entry
                continue
            }
            if !line.isEmpty { lines.append(line) }
            line = ""
            for word in entry.split(separator: " ", omittingEmptySubsequences: false) {
                if !line.isEmpty, line.count + 1 + word.count > perLine {
                    lines.append(line)
                    line = ""
                }
                line += (line.isEmpty ? "" : " ") + word
            }
        }
        if !line.isEmpty { lines.append(line) }
        return lines
    }
}
