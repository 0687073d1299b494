import Foundation

/// A load's throughput by the workload identity that answered: a line per identity, each named at its end.
extension SVGChart {
    /// The identities drawn on their own; the rest are added up as one line, "other", so that a broken setup with
    /// hundreds of identities (a pod name in the identity, churning) still reads.
    static let identityLines = 6

    /// One line of the chart: an identity (or the rest, added up), its responses per second span by span.
    struct IdentityLine: Equatable {
        var name: String
        var rates: [Double]
        var total: Int
        /// "other": the identities not drawn on their own, added up.
        var isOther = false
    }

    /// The lines to draw for `names` (the load's workloads, in the order `responses_by_workload` indexes them): the
    /// `limit` identities with the most responses, then "other" with the rest when there are more. Nil when the
    /// spans lack the counts (a result written before they were kept) or fewer than two identities answered.
    static func identityLines(_ spans: [TimelineSpan], names: [String], limit: Int = identityLines) -> [IdentityLine]? {
        guard spans.allSatisfy({ $0.second.responses == 0 || $0.second.responsesByWorkload != nil }) else { return nil }
        var totals = [Int](repeating: 0, count: names.count)
        for span in spans {
            for (i, n) in (span.second.responsesByWorkload ?? []).enumerated() where i < totals.count { totals[i] += n }
        }
        let answered = totals.indices.filter { totals[$0] > 0 }.sorted { (totals[$0], $1) > (totals[$1], $0) }
        guard answered.count >= 2 else { return nil }
        // "other" only when it stands for two or more: a single identity left over gets its own line instead.
        let own = answered.count <= limit + 1 ? answered : Array(answered.prefix(limit))
        var lines = own.map { i in
            IdentityLine(name: names[i], rates: spans.map { $0.responsesPerSecond(workload: i) }, total: totals[i])
        }
        let rest = answered.dropFirst(own.count)
        if !rest.isEmpty {
            lines.append(IdentityLine(name: "other (\(rest.count))",
                                      rates: spans.map { span in rest.reduce(0) { $0 + span.responsesPerSecond(workload: $1) } },
                                      total: rest.reduce(0) { $0 + totals[$1] }, isOther: true))
        }
        return lines
    }

    /// The workloads' names for the chart: workload/version (else the SPIFFE ID), with the cluster, then the row's
    /// number, added where two would read the same.
    static func identityNames(_ workloads: [LoadReport.Workload]) -> [String] {
        var names = workloads.map(\.workloadIdentity.label)
        for pass in 0..<2 {
            let counts = Dictionary(names.map { ($0, 1) }, uniquingKeysWith: +)
            for i in names.indices where counts[names[i], default: 0] > 1 {
                names[i] += pass == 0 ? (workloads[i].cluster.isEmpty ? "" : " @\(workloads[i].cluster)") : " #\(i + 1)"
            }
        }
        return names
    }

    /// A name cut to `characters` in its middle, so that both ends stay (a workload's version, a SPIFFE ID's service
    /// account); the whole name is in the line's tooltip.
    static func shortened(_ name: String, to characters: Int) -> String {
        guard name.count > characters, characters > 2 else { return name }
        let head = (characters - 1) / 2
        return String(name.prefix(head)) + "…" + String(name.suffix(characters - 1 - head))
    }

    /// Responses per second by the identity that answered, a line per identity, each dot at the middle of the time
    /// its second was measured (a partial second's dot hollow, its rate its count over the time it covered, as in the
    /// throughput chart). Each line is dashed its own way and named at its end beside a sample of its dash, so it
    /// reads without colour.
    static func throughputByIdentity(_ spans: [TimelineSpan], lines: [IdentityLine], title: String) -> String {
        let width = pairWidth, left = 56.0, right = 150.0, top = 24.0, plotHeight = 200.0
        let height = top + plotHeight + 44
        let plot = width - left - right
        let last = max(1, spans.map(\.end).max() ?? 0)
        let yTicks = ticks(upTo: lines.flatMap(\.rates).max() ?? 0)
        let yTop = yTicks.last ?? 1
        func x(_ s: Double) -> Double { left + plot * s / last }
        func y(_ rate: Double) -> Double { top + plotHeight * (1 - rate / yTop) }
        var out = open(width: width, height: height, title: title)
        out += text(left, 13, "responses/s by the identity that answered", cls: "note")
        for t in yTicks {
            out += "<line x1=\"\(f(left))\" y1=\"\(f(y(t)))\" x2=\"\(f(left + plot))\" y2=\"\(f(y(t)))\" class=\"grid\"/>"
            out += text(left - 6, y(t) + 4, label(t), anchor: "end")
        }
        for t in ticks(upTo: last, count: 5) where t <= last {
            out += text(x(t), top + plotHeight + 16, "\(label(t)) s", anchor: "middle")
        }
        out += "<line x1=\"\(f(left))\" y1=\"\(f(top + plotHeight))\" x2=\"\(f(left + plot))\" y2=\"\(f(top + plotHeight))\" class=\"axis\"/>"
        for (n, line) in lines.enumerated() {
            let cls = "ident \(line.isOther ? "other" : "i\(n)")"
            let points = zip(spans, line.rates).map { (x: x($0.start + $0.length / 2), y: y($1), span: $0, rate: $1) }
            out += "<g class=\"\(cls)\"><title>\(e(line.name)): \(line.total) responses</title>"
            if points.count > 1 {
                out += "<polyline class=\"line\" points=\"\(points.map { "\(f($0.x)),\(f($0.y))" }.joined(separator: " "))\"/>"
            }
            for p in points {
                out += "<circle class=\"dot\(p.span.partial ? " partial" : "")\" cx=\"\(f(p.x))\" cy=\"\(f(p.y))\" r=\"2.5\">"
                    + "<title>\(e(line.name)), second \(p.span.second.second)\(partialNote(p.span)): "
                    + String(format: "%.1f responses/s", p.rate) + "</title></circle>"
            }
            out += "</g>"
        }
        // The names at the lines' ends, apart from each other, each after a sample of its line's dash.
        let ends = lines.map { y($0.rates.last ?? 0) + 4 }
        let placed = spread(ends, gap: 14, top: top + 4, bottom: top + plotHeight + 4)
        // About 7 units a character (DejaVu Sans, the widest of the usual system fonts, at 11 units).
        let characters = Int((right - 30) / 7)
        for (n, (line, ly)) in zip(lines, placed).enumerated() {
            let cls = "ident \(line.isOther ? "other" : "i\(n)")"
            out += "<g class=\"\(cls)\"><line class=\"line\" x1=\"\(f(left + plot + 6))\" y1=\"\(f(ly - 4))\" x2=\"\(f(left + plot + 22))\" y2=\"\(f(ly - 4))\"/></g>"
            out += text(left + plot + 26, ly, shortened(line.name, to: characters))
        }
        var note = "every identity that answered"
        if let other = lines.last, other.isOther { note = "the \(lines.count - 1) with the most responses, then the rest added up" }
        if let tail = spans.last, tail.partial { note += String(format: "; hollow: the last %.2f s", tail.length) }
        out += text(left + plot, top + plotHeight + 34, note, anchor: "end", cls: "note")
        return out + "</svg>"
    }
}
