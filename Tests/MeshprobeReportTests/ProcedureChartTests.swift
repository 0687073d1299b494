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

    /// A circuit breaker's two phases over time: 10 at once for 1.02 s, then 22 at once until `end`, the upstream
    /// holding 10 throughout, overflow replies in the second phase.
    func overTime(end: Double = 1.62) -> VerifyReport.OverTime {
        let points = (0..<17).map { i -> VerifyReport.OverTime.Point in
            let above = i >= 10
            return VerifyReport.OverTime.Point(at: (Double(i) * 100).rounded() / 1000, held: i == 16 ? 6 : 10, succeeded: 10,
                                              overflow: above ? 60 : 0, failed: i == 12 ? 1 : 0)
        }
        return VerifyReport.OverTime(interval: 0.1, phases: [.init(name: "at the limit", concurrency: 10, start: 0, end: 1.02),
                                                            .init(name: "above it", concurrency: 22, start: 1.03, end: end)], points: points)
    }

    @Test func aCircuitBreakerOverTimeIsDrawnAgainstItsLimit() throws {
        let svg = SVGChart.circuitBreakerOverTime(overTime(), limit: 10, pending: 1, title: "t")
        for words in ["at the limit: 10 at once", "above it: 22 at once", ">limit 10<", ">admitted 11<", "sent at once by the client",
                      "held by the upstream at once", "overflow: refused for the limit", "succeeded (lowest)", "other failures (highest)",
                      "420 overflow replies"] {
            #expect(svg.contains(words), "\(words)")
        }
        #expect(svg.components(separatedBy: "<rect class=\"phase ").count - 1 == 2)
        // The last 0.02 s (from 1.6 s to the end at 1.62 s) is a sliver: it joins the interval before it, whose 0.12 s
        // then hold both intervals' replies, as a rate over that time.
        let spans = SVGChart.intervals(overTime())
        #expect(spans.count == 16)
        let tail = try #require(spans.last)
        #expect(!tail.partial && abs(tail.length - 0.12) < 1e-9)
        #expect(tail.point.overflow == 120 && tail.point.held == 10)
        #expect(abs(tail.rate(tail.point.overflow) - 1000) < 1e-6)
        // Ending at 1.65 s, the last 0.05 s is an interval of its own, partial: its 60 overflow replies are 1200/s.
        let partial = try #require(SVGChart.intervals(overTime(end: 1.65)).last)
        #expect(partial.partial && abs(partial.length - 0.05) < 1e-9 && abs(partial.rate(partial.point.overflow) - 1200) < 1e-6)
        #expect(SVGChart.circuitBreakerOverTime(overTime(end: 1.65), limit: 10, pending: 1, title: "t").contains("lighter: the last 0.05 s"))
        // Without a hold there is no upstream line, and no limit without a declared one.
        var unheld = overTime()
        unheld.points = unheld.points.map { var p = $0; p.held = nil; return p }
        let bare = SVGChart.circuitBreakerOverTime(unheld, limit: nil, pending: nil, title: "t")
        #expect(!bare.contains("held by the upstream") && !bare.contains("limit 10"))
    }

    @Test func theSeriesTravelsInTheVerifyResultAndIsDrawnWithItsProcedure() throws {
        var verify = VerifyReport(file: "policy.yaml")
        verify.appendProcedureCheck(kind: "circuit_breaker", name: "circuit breaker (demo): the service never had more than 10 in flight", passed: true,
                                    reason: nil, observed: ["limit": 10, "requests": 300], declared: ["max_requests": 10, "max_pending": 1],
                                    test: "t")
        verify.verdicts[0].evidence.overTime = overTime()
        let back = try JSONDecoder().decode(VerifyReport.self, from: try JSONEncoder().encode(verify))
        #expect(back.verdicts[0].evidence.overTime == overTime())
        let json = try #require(String(data: try JSONEncoder().encode(verify), encoding: .utf8))
        #expect(json.contains("\"over_time\"") && json.contains("\"interval\":0.1"))
        var checks = breakerChecks()
        checks[2].overTime = overTime()
        var report = try sampleReport(command: "verify")
        report.sections = [RunReport.Section(name: "verify", seconds: 4, checks: checks)]
        let html = HTMLReport(report).render()
        #expect(html.contains("<title>circuit breaker over time: circuit breaker (demo)</title>"))
        #expect(html.contains(">admitted 11<"))
    }
}
