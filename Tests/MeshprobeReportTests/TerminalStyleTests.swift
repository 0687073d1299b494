import MeshprobeLoad
@testable import MeshprobeReport
import Testing

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

/// The identity table's unstamped rows: answers with no stamp and requests with no answer share one identity (none,
/// or the connection's TLS peer) and so one JSON row; the table shows them apart, each under its own name.
@Suite struct UnstampedRowTests {
    static func row(identity: String = "", statuses: [String: Int], errorKinds: [String: Int], failedAnswers: Int = 0) -> LoadReport.Workload {
        let answers = statuses.values.reduce(0, +), none = errorKinds.values.reduce(0, +)
        return LoadReport.Workload(identity: identity, workload: "", version: "", cluster: "", requests: answers + none, share: 0.5,
                                   succeeded: answers - failedAnswers, errors: failedAnswers + none, statuses: statuses, errorKinds: errorKinds,
                                   latencyMs: LatencySummary(.latency()))
    }

    @Test func aRowWithAnswersAndNoResponsesIsShownAsTwo() throws {
        let parts = TerminalSummary.answersAndNoResponses(Self.row(statuses: ["200": 60, "503": 10], errorKinds: ["stream_reset": 30], failedAnswers: 10))
        try #require(parts.count == 2)
        #expect(parts[0].requests == 70 && parts[0].errors == 10 && parts[0].succeeded == 60 && parts[0].errorKinds.isEmpty)
        #expect(parts[1].requests == 30 && parts[1].errors == 30 && parts[1].succeeded == 0 && parts[1].statuses.isEmpty)
        #expect(abs(parts[0].share - 0.35) < 1e-9 && abs(parts[1].share - 0.15) < 1e-9)
        // One kind alone, either way, stays one row.
        #expect(TerminalSummary.answersAndNoResponses(Self.row(statuses: ["200": 5], errorKinds: [:])).count == 1)
        #expect(TerminalSummary.answersAndNoResponses(Self.row(statuses: [:], errorKinds: ["connect_refused": 5])).count == 1)
    }

    @Test func theTableNamesEachPart() throws {
        var report = try sampleLoad().report
        report.workloads = [Self.row(statuses: ["200": 60], errorKinds: ["stream_reset": 30]),
                            Self.row(identity: "spiffe://lab/ns/x/sa/proxy", statuses: ["200": 5], errorKinds: ["request_timeout": 2])]
        let text = TerminalSummary(color: false).render(report).rendered
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("(not stamped)") && $0.contains(" 60 ") })
        #expect(lines.contains { $0.hasPrefix("(no response)") && $0.contains(" 30 ") && $0.contains(" 30 ") })
        // Behind a TLS peer: the answers' row and the unanswered requests' row both name the peer.
        #expect(lines.contains { $0.hasPrefix("-") && $0.contains("spiffe://lab/ns/x/sa/proxy") && $0.contains(" 5 ") })
        #expect(lines.contains { $0.hasPrefix("(no response)") && $0.contains("spiffe://lab/ns/x/sa/proxy") && $0.contains(" 2 ") })
    }
}

/// A target that stopped answering for whole seconds is named, even when few requests failed.
@Suite struct SilenceWarningTests {
    static func timeline(_ done: [Int]) -> [TimelinePoint] {
        done.enumerated().map { second, n in
            var bucket = TimelineBucket(second: second)
            bucket.responses = n
            return TimelinePoint(bucket)
        }
    }

    @Test func theLongestGapBetweenAnsweringSecondsIsNamed() throws {
        let silence = try #require(LoadReport.longestSilence(Self.timeline([2000, 2000, 0, 0, 0, 1800, 0, 0, 2000, 2000])))
        #expect(silence.first == 2 && silence.seconds == 3 && silence.rate == 1960)
    }

    /// A target that died before the end: the silence runs to the run's last whole second (no second after it answered).
    @Test func aSilenceToTheEndOfTheRunCounts() throws {
        let silence = try #require(LoadReport.longestSilence(Self.timeline([2000, 2000, 0]), lastSecond: 7))
        #expect(silence.first == 2 && silence.seconds == 6)
        // Failures are not answers: a second with only failures is silent too.
        var failing = TimelineBucket(second: 2)
        failing.failed = 30
        let withFailures = Self.timeline([2000, 2000]) + [TimelinePoint(failing)]
        #expect(LoadReport.longestSilence(withFailures, lastSecond: 4)?.seconds == 3)
    }

    @Test func oneQuietSecondALowRateOrTheEndsAreNotSilences() {
        #expect(LoadReport.longestSilence(Self.timeline([2000, 0, 2000, 0, 2000])) == nil)
        #expect(LoadReport.longestSilence(Self.timeline([3, 0, 0, 4, 0, 0, 5])) == nil)
        #expect(LoadReport.longestSilence(Self.timeline([0, 0, 0, 2000, 2000, 0, 0, 0])) == nil)
    }
}
