import Foundation
import Testing
@testable import MeshprobeReport

@Suite struct HTMLReportTests {
    @Test func verdictsComeFirstWithAOneLineReasonEach() throws {
        let html = HTMLReport(try sampleReport()).render()
        let verdicts = try #require(html.range(of: "id=\"verdicts\""))
        let firstChart = try #require(html.range(of: "<svg"))
        #expect(verdicts.lowerBound < firstChart.lowerBound)
        #expect(html.components(separatedBy: "class=\"verdict failed\"").count - 1 == 1)
        #expect(html.components(separatedBy: "class=\"verdict undecided\"").count - 1 == 2)
        #expect(html.components(separatedBy: "class=\"verdict skipped\"").count - 1 == 1)
        #expect(html.contains("<td>success rate 0.97 &lt; 0.999: 9 of 300 failed &lt;with&gt; &quot;quotes&quot; &amp; ampersands</td>"))
        #expect(html.contains("id=\"overall\">FAIL</span>"))
    }

    @Test func hostileTextIsEscapedEverywhere() throws {
        let html = HTMLReport(try sampleReport()).render()
        #expect(!html.contains("<script"))
        #expect(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"))
        #expect(!html.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" && $0 != "\t" }, "no raw control characters")
    }

    @Test func isSelfContained() throws {
        let html = HTMLReport(try sampleReport()).render()
        #expect(html.contains("Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\""))
        for reference in ["src=", "href=", "<link", "@import", "url("] {
            #expect(!html.contains(reference), "\(reference)")
        }
    }

    @Test func hasTheSplitTheTimelinesAndTheLoadCharts() throws {
        let html = HTMLReport(try sampleReport()).render()
        #expect(html.contains("id=\"gameday-timeline\""))
        #expect(html.contains("<title>observed against declared split: reviews canary"))
        // Game-day timeline: a band per step that ran (the skipped one has none), and the outlier events.
        #expect(html.components(separatedBy: "class=\"band ").count - 1 == 4)
        #expect(html.contains("eject v1: reviews-v1 ejected after 5 consecutive errors"))
        #expect(html.components(separatedBy: "<title>latency over time: ").count - 1 == 2)
        #expect(html.components(separatedBy: "<title>latency distribution: ").count - 1 == 2)
        // The per-identity table: both identities, the hostile version escaped.
        #expect(html.contains("<td>reviews</td><td>v1</td><td>c1</td>"))
        #expect(html.contains("<td>reviews</td><td>v2&quot;&gt;&lt;script&gt;"))
    }

    @Test func eventsAreClassifiedFromTheirWords() {
        #expect(RunReport.Event(at: 0, text: "reviews-v1 ejected after 5 consecutive errors (its last response)").kind == .ejection)
        #expect(RunReport.Event(at: 0, text: "reviews-v1 back after 2.200 s").kind == .recovery)
        #expect(RunReport.Event(at: 0, text: "reviews-v1 not back").kind == .error)
        #expect(RunReport.Event(at: 0, text: "fault f1 set on https://x/: 503 to every request").kind == .fault)
        #expect(RunReport.Event(at: 0, text: "fault f1 cleared").kind == .recovery)
        #expect(RunReport.Event(at: 0, text: "baseline: 40 responses from v1, v2").kind == .info)
    }
}
