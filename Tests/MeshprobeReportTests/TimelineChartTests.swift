import Foundation
import Testing

@testable import MeshprobeReport

/// The event timeline (game days, procedures): markers never overlap, step names are never cut.
@Suite struct TimelineChartTests {
    @Test func markersCloserThanTheirWidthTakeTheNextRow() {
        #expect(SVGChart.markerRows([100, 105, 110, 200, 205], gap: 18, rows: 3) == [0, 1, 2, 0, 1])
        #expect(SVGChart.markerRows([10, 40, 70], gap: 18, rows: 3) == [0, 0, 0])
    }

    /// Circles (markers) of the rendered SVG: their centres.
    func circles(_ svg: String) -> [(x: Double, y: Double)] {
        let pattern = try! NSRegularExpression(pattern: "<circle cx=\"([0-9.]+)\" cy=\"([0-9.]+)\"")
        return pattern.matches(in: svg, range: NSRange(svg.startIndex..., in: svg)).map { m in
            (Double(svg[Range(m.range(at: 1), in: svg)!])!, Double(svg[Range(m.range(at: 2), in: svg)!])!)
        }
    }

    @Test func eventsAtTheSameMomentDoNotCoverEachOther() {
        // Three events within 0.2 s of a 300 s game day: the same pixel column.
        let events = [RunReport.Event(at: 60, text: "fault set", kind: .fault), RunReport.Event(at: 60.1, text: "ejected", kind: .ejection),
                      RunReport.Event(at: 60.2, text: "step starts", kind: .info), RunReport.Event(at: 240, text: "back", kind: .recovery)]
        let svg = SVGChart.timeline(events: events, bands: [], failures: [], title: "t")
        let centres = circles(svg)
        #expect(centres.count == 4)
        for i in centres.indices {
            for j in centres.indices where j > i {
                let apart = hypot(centres[i].x - centres[j].x, centres[i].y - centres[j].y)
                #expect(apart >= 16, "markers \(i + 1) and \(j + 1) overlap: \(centres[i]) \(centres[j])")
            }
        }
    }

    /// A game day's step start, its fault and a procedure's first events within a fraction of a second: more markers
    /// in one place than three rows hold (the fourth row used to be the third again, one marker over another).
    @Test func anyNumberOfEventsAtOneMomentGetRowsOfTheirOwn() {
        let events = (0..<7).map { RunReport.Event(at: 2 + Double($0) * 0.05, text: "event \($0)", kind: .info) } + [RunReport.Event(at: 32, text: "late")]
        let svg = SVGChart.timeline(events: events, bands: [SVGChart.Band(name: "a", start: 0, end: 40, status: .passed)], failures: [], title: "t")
        let centres = circles(svg)
        #expect(centres.count == 8)
        for i in centres.indices {
            for j in centres.indices where j > i {
                #expect(hypot(centres[i].x - centres[j].x, centres[i].y - centres[j].y) >= 16, "markers \(i + 1) and \(j + 1) overlap")
            }
        }
    }

    /// A marker's line runs from the top down to its row, past the rows above: drawn before every marker, it never
    /// crosses a number.
    @Test func markerLinesAreDrawnBeneathEveryMarker() throws {
        let events = (0..<4).map { RunReport.Event(at: 2 + Double($0) * 0.05, text: "event \($0)", kind: .info) }
        let svg = SVGChart.timeline(events: events, bands: [], failures: [], title: "t")
        let lastLine = try #require(svg.range(of: "<g class=\"event info\"><line", options: .backwards))
        let firstCircle = try #require(svg.range(of: "<circle"))
        #expect(lastLine.lowerBound < firstCircle.lowerBound)
    }

    /// Every text's baseline lies inside the chart's height, with room below for its descenders.
    @Test func aProcedureTimelineHasRoomForItsTimeLabels() throws {
        let events = [RunReport.Event(at: 0.1, text: "fault set"), RunReport.Event(at: 3.4, text: "back")]
        let svg = SVGChart.timeline(events: events, bands: [], failures: [], title: "t")
        let height = try #require(Double(svg.components(separatedBy: "viewBox=\"0 0 ")[1].split(separator: "\"")[0].split(separator: " ")[1]))
        let pattern = try NSRegularExpression(pattern: "<text x=\"[0-9.]+\" y=\"([0-9.]+)\"")
        let baselines = pattern.matches(in: svg, range: NSRange(svg.startIndex..., in: svg)).map { Double(svg[Range($0.range(at: 1), in: svg)!])! }
        #expect(!baselines.isEmpty)
        #expect(baselines.allSatisfy { $0 + 4 <= height }, "\(baselines) in \(height)")
    }

    @Test func stepNamesAreInTheLegendWhole() {
        let long = "v1 answers 503 to half its requests; retries should hide it from the callers of the reviews service at every hop"
        let bands = [SVGChart.Band(name: "baseline", start: 0, end: 30, status: .passed),
                     SVGChart.Band(name: long, start: 30, end: 31, status: .failed),
                     SVGChart.Band(name: "ejection", start: 31, end: 90, status: .undecided)]
        let svg = SVGChart.timeline(events: [], bands: bands, failures: [], title: "t")
        let legend = SVGChart.legendLayout(bands)
        #expect(legend.joined(separator: " ").contains("2 \(long)"), "\(legend)")
        #expect(legend.allSatisfy { $0.count <= Int((SVGChart.width - 40) / 6.5) }, "\(legend)")
        #expect(svg.contains("1 baseline"))
        #expect(!svg.contains("…"), "no name is cut")
    }

    /// A game day's failed requests per second: the last 0.3 s of a step's load is a bar 0.3 s wide at its rate,
    /// drawn lighter, not a whole second's bar a third as high.
    @Test func failedBarsOfAPartialSecondAreItsRate() throws {
        let failures = [SVGChart.FailedSpan(at: 10, length: 1, count: 30), SVGChart.FailedSpan(at: 11, length: 1, count: 30),
                        SVGChart.FailedSpan(at: 12, length: 0.3, count: 9)]
        let svg = SVGChart.timeline(events: [], bands: [SVGChart.Band(name: "step", start: 10, end: 12.3, status: .failed)], failures: failures, title: "t")
        let pattern = try NSRegularExpression(pattern: "<rect class=\"failed( partial)?\" x=\"[0-9.]+\" y=\"[0-9.]+\" width=\"([0-9.]+)\" height=\"([0-9.]+)\"")
        let bars = pattern.matches(in: svg, range: NSRange(svg.startIndex..., in: svg)).map { m in
            (partial: m.range(at: 1).location != NSNotFound, width: Double(svg[Range(m.range(at: 2), in: svg)!])!,
             height: Double(svg[Range(m.range(at: 3), in: svg)!])!)
        }
        #expect(bars.count == 3)
        #expect(bars.map(\.partial) == [false, false, true])
        #expect(abs(bars[2].height - bars[0].height) < 0.2, "30/s, as the whole seconds: \(bars)")
        #expect(bars[2].width < bars[0].width * 0.4, "\(bars)")
        #expect(svg.contains("9 failed in 0.30 s (30.0/s)"))
        #expect(svg.contains("failed requests per second (most: 30/s); lighter: a partial second"))
    }

    /// The game day's chart takes each step's load seconds as the load charts do: the last partial one as partial.
    @Test func aGameDaysLoadEndsWithItsPartialSecond() throws {
        var report = try sampleReport()
        report.sections[0].loads[0].report.summary.elapsedSeconds = 2.5
        let html = HTMLReport(report).render()
        #expect(html.contains("<rect class=\"failed partial\""))
        #expect(html.contains("2 failed in 0.50 s (4.0/s)"))
    }
}
