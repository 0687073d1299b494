import Testing
@testable import MeshprobeReport

@Suite struct TerminalStyleTests {
    @Test func coloursOnlyOnATerminal() {
        #expect(TerminalStyle.detect(isTerminal: true, environment: [:]).color)
        #expect(!TerminalStyle.detect(isTerminal: false, environment: [:]).color)
    }

    @Test func noColorWithAnyNonEmptyValueTurnsColoursOff() {
        #expect(!TerminalStyle.detect(isTerminal: true, environment: ["NO_COLOR": "1"]).color)
        #expect(!TerminalStyle.detect(isTerminal: true, environment: ["NO_COLOR": "yes please"]).color)
        // no-color.org: an empty NO_COLOR does not count.
        #expect(TerminalStyle.detect(isTerminal: true, environment: ["NO_COLOR": ""]).color)
        #expect(!TerminalStyle.detect(isTerminal: true, environment: ["TERM": "dumb"]).color)
    }

    @Test func verdictTableAlignsColumnsAndGivesEachVerdictOneLine() throws {
        let report = try sampleReport()
        let text = VerdictTable(report, style: TerminalStyle(color: false)).render().rendered
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.first == "verdicts")
        let rows = Array(lines.dropFirst())
        // One line per check, per step that could not run and per skipped step.
        #expect(rows.count == 5, "\(text)")
        #expect(!text.contains("\u{1B}"))
        // The check names start in one column, whatever the status word's length.
        let starts = Set(rows.map { row -> Int in
            let afterStatus = row.dropFirst(2).drop { $0 != " " }.drop { $0 == " " }
            return row.count - afterStatus.count
        })
        #expect(starts.count == 1, "\(text)")
        #expect(rows[1].hasPrefix("  FAIL       v1 fails: SLO: success rate >= 0.999  "), "\(text)")
        // The reasons start in one column too.
        func column(_ row: String, _ reason: String) -> Int? {
            row.range(of: reason).map { row.distance(from: row.startIndex, to: $0.lowerBound) }
        }
        let reasons = [column(rows[1], "success rate 0.97 < 0.999"), column(rows[3], "cannot reach the echo"), column(rows[4], "not run: aborted")]
        #expect(reasons.allSatisfy { $0 != nil } && Set(reasons).count == 1, "\(text)")
        #expect(rows.contains { $0.hasPrefix("  SKIPPED    after") })
        #expect(VerdictTable(report, style: TerminalStyle(color: false)).outcome.rendered == "FAIL")
    }

    /// Under verify's verdict blocks (which print each reason whole) the table shortens a long reason, at a clause's
    /// end when one fits; a load's table, the only place its reasons are printed, keeps them whole.
    @Test func aLongReasonIsShortenedOnlyUnderItsBlock() throws {
        let long = "undecided: v2 (59 error responses) answered with errors, which the split of successful responses leaves out; "
            + "counted with them the shares are as declared (v1 88.2%, v2 11.8%): the routing may be right and that destination "
            + "failing (see the failures), which a split of successes cannot tell apart from a wrong weight"
        var report = try sampleReport()
        report.sections[0].checks[0].status = .undecided
        report.sections[0].checks[0].reason = long
        let short = VerdictTable(report, style: TerminalStyle(color: false), reasonsAbove: true).render().rendered
        #expect(short.contains("undecided: v2 (59 error responses) answered with errors, which the split of successful responses leaves out …\n"), "\(short)")
        #expect(!short.contains("wrong weight"), "\(short)")
        let whole = VerdictTable(report, style: TerminalStyle(color: false)).render().rendered
        #expect(whole.contains(long), "\(whole)")
        #expect(VerdictTable.shortened("short enough") == "short enough")
        let words = String(repeating: "word ", count: 40)
        #expect(VerdictTable.shortened(words).count <= VerdictTable.shortReason && VerdictTable.shortened(words).hasSuffix("word …"))
        #expect(VerdictTable.shortened(String(repeating: "x", count: 200)) == String(repeating: "x", count: 119) + "…")
    }

    @Test func colouredTableKeepsTheSameColumnsOnScreen() throws {
        let report = try sampleReport()
        let plain = VerdictTable(report, style: TerminalStyle(color: false)).render().rendered
        let coloured = VerdictTable(report, style: TerminalStyle(color: true)).render().rendered
        #expect(coloured.contains("\u{1B}[31m"))
        let stripped = coloured.replacingOccurrences(of: "\u{1B}\\[[0-9;]*m", with: "", options: .regularExpression)
        #expect(stripped == plain)
    }

    @Test func terminalSummaryHonoursTheStyle() throws {
        let load = try sampleLoad()
        #expect(!TerminalSummary(style: TerminalStyle(color: false)).render(load.report).rendered.contains("\u{1B}"))
        #expect(TerminalSummary(style: TerminalStyle(color: true)).render(load.report).rendered.contains("\u{1B}[1m"))
    }
}
