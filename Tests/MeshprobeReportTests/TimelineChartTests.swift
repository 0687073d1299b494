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
}
