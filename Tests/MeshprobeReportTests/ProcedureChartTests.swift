import Foundation
import Testing
@testable import MeshprobeReport

/// The procedures' charts: a circuit breaker's in-flight requests against its limit and its overflow replies, and
/// outlier detection's ejections and returns per workload.
@Suite struct ProcedureChartTests {
    /// The three checks of a circuit-breaker procedure as `verify` reports them (the demo's figures).
    func breakerChecks(peak: Double = 10) -> [RunReport.Check] {
        let declared = ["max_requests": 10.0, "max_pending": 1, "hold_ms": 50]
        return [
            RunReport.Check(kind: "circuit_breaker", name: "circuit breaker (demo): at the limit (10 concurrent): nothing overflows", status: .passed,
                            summary: "", observed: ["concurrency": 10, "failed": 0, "overflow": 0, "requests": 150], declared: declared),
            RunReport.Check(kind: "circuit_breaker", name: "circuit breaker (demo): above the limit (22 concurrent): overflow replies, fast", status: .passed,
                            summary: "", observed: ["concurrency": 22, "overflow": 114, "overflow_p50_ms": 21.631, "overflow_p99_ms": 24.831,
                                                    "requests": 150, "generator_lag_p99_ms": 0.128], declared: declared),
            RunReport.Check(kind: "circuit_breaker", name: "circuit breaker (demo): the service (all endpoints together) never had more than 10 in flight",
                            status: peak > 10 ? .failed : .passed, summary: "",
                            observed: ["endpoints": 1, "limit": 10, "peak_in_flight_per_endpoint": peak, "peak_in_flight_service": peak, "requests": 300],
                            declared: declared),
        ]
    }

    @Test func aCircuitBreakerIsDrawnNotOnlyWritten() throws {
        let svg = try #require(SVGChart.circuitBreaker(breakerChecks(), title: "t"))
        for words in ["requests in flight", "sent at once, at the limit", "sent at once, above it", "most held by the service", ">limit 10<",
                      "admitted 11 (limit + pending)", "overflow replies", "0 of 150 (0%)", "114 of 150 (76%)", "overflow reply time",
                      "21.6 ms", "24.8 ms", "half the hold: 25 ms"] {
            #expect(svg.contains(words), "\(words)")
        }
        #expect(svg.contains("class=\"held ok\""))
        #expect(try #require(SVGChart.circuitBreaker(breakerChecks(peak: 14), title: "t")).contains("class=\"held off\""), "over the limit")
        #expect(SVGChart.circuitBreaker([RunReport.Check(kind: "circuit_breaker", name: "x", status: .passed, summary: "")], title: "t") == nil)
    }

    /// A phase above the limit with no overflow reply has no reply times: it is still drawn as sent, with 0 refused,
    /// and no reply-time bars.
    @Test func aBreakerWithoutOverflowHasNoReplyTimes() throws {
        var checks = breakerChecks()
        checks[1].observed = ["concurrency": 22, "overflow": 0, "requests": 160, "generator_lag_p99_ms": 0.128]
        checks[1].status = .failed
        let svg = try #require(SVGChart.circuitBreaker(checks, title: "t"))
        #expect(svg.contains("sent at once, above it") && svg.contains("0 of 160 (0%)"), "\(svg)")
        #expect(!svg.contains("overflow reply time") && !svg.contains("overflow reply p99"), "\(svg)")
    }

    @Test func theReportHasAChartPerCircuitBreakerProcedure() throws {
        var report = try sampleReport(command: "verify")
        report.sections = [RunReport.Section(name: "verify", seconds: 4, checks: breakerChecks() + breakerChecks().map { check in
            var c = check
            c.name = c.name.replacingOccurrences(of: "(demo)", with: "(other)")
            return c
        })]
        let html = HTMLReport(report).render()
        #expect(html.components(separatedBy: "<title>circuit breaker: ").count - 1 == 2)
        #expect(html.contains("<h3>circuit breaker (demo) <span class=\"badge passed\">PASS</span></h3>"))
        #expect(html.contains("<title>circuit breaker: circuit breaker (other)</title>"))
    }

    @Test func ejectionsAndReturnsAreReadFromTheTimeline() {
        let events = [RunReport.Event(at: 0.1, text: "fault f1 set on https://127.0.0.1:1/: 503 to every request"),
                      RunReport.Event(at: 1.2, text: "reviews-v1 ejected after 5 consecutive errors (its last response)"),
                      RunReport.Event(at: 1.3, text: "reviews-v2 ejected after 5 consecutive errors (its last response)"),
                      RunReport.Event(at: 3.4, text: "reviews-v1 back after 2.200 s"),
                      RunReport.Event(at: 3.5, text: "fault f1 cleared"),
                      RunReport.Event(at: 9, text: "reviews-v2 not back")]
        let ejections = SVGChart.ejections(events)
        #expect(ejections == [SVGChart.Ejection(workload: "reviews-v1", from: 1.2, to: 3.4), SVGChart.Ejection(workload: "reviews-v2", from: 1.3, to: nil)])
        let svg = SVGChart.ejectionLanes(ejections, end: 9, title: "t")
        #expect(svg.contains(">reviews-v1</text>") && svg.contains(">reviews-v2</text>"))
        #expect(svg.contains("ejected 1.20 s, back 3.40 s (2.20 s out)"))
        #expect(svg.contains("ejected 1.30 s, not back"))
        #expect(svg.components(separatedBy: "<rect class=\"ejected open\"").count - 1 == 1)
    }

    @Test func anOutlierTimelineGetsItsLanes() throws {
        let html = HTMLReport(try sampleReport()).render()
        #expect(html.contains("<title>ejections: outlier detection (DestinationRule reviews): ejected</title>"))
        #expect(html.contains("ejected 1.20 s, back 3.40 s (2.20 s out)"))
    }
}
