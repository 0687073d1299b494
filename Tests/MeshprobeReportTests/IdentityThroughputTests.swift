import Foundation
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeSpec
import Testing
@testable import MeshprobeReport

/// Responses per second by identity in the JSON result (`timeline[].responses_by_workload`, indexing `workloads`),
/// through `merge`, and the throughput-by-identity chart: a line per identity, the last partial second a rate over
/// its part, the most frequent few drawn and the rest added up.
@Suite struct IdentityThroughputTests {
    let configuration = LoadConfiguration(targets: [try! LoadTarget(parsing: "http://127.0.0.1:8080/reviews")])

    static func identity(_ version: String, cluster: String = "east") -> WorkloadIdentity {
        WorkloadIdentity(identity: "spiffe://lab/ns/a/sa/reviews", workload: "reviews", version: version, cluster: cluster)
    }

    /// A load whose second i had `seconds[i]` responses by identity (all successful), measured `elapsed` seconds.
    func result(_ seconds: [[WorkloadIdentity: Int]], elapsed: Double? = nil) -> LoadResult {
        var r = LoadResult()
        for (i, counts) in seconds.enumerated() {
            var bucket = TimelineBucket(second: i)
            for (identity, n) in counts {
                bucket.responses += n
                bucket.succeeded += n
                bucket.sent += n
                bucket.identities[identity, default: 0] += n
                for _ in 0..<n { _ = bucket.latency.record(700) }
                r.identities[identity, default: IdentityStats()].requests += n
                r.identities[identity, default: IdentityStats()].succeeded += n
                let labels = SeriesLabels(sourceWorkload: "meshprobe", destinationService: "127.0.0.1:8080", destinationPrincipal: identity.identity,
                                          destinationWorkload: identity.workload, destinationVersion: identity.version,
                                          destinationCluster: identity.cluster, responseCode: 200, connectionSecurityPolicy: "none")
                r.metrics.series[labels, default: SeriesStats()].requests += n
                for _ in 0..<n { _ = r.latency.record(700) }
            }
            r.responses += bucket.responses
            r.succeeded += bucket.succeeded
            r.requestsSent += bucket.sent
            r.timeline.append(TimelinePoint(bucket))
        }
        r.elapsedSeconds = elapsed ?? Double(seconds.count)
        return r
    }

    /// Through JSON and back, as `merge` and the reports read a result.
    func report(_ r: LoadResult) throws -> LoadReport {
        let report = LoadReport(result: r, configuration: configuration, commandLine: ["meshprobe"], startedAt: Date(timeIntervalSince1970: 0), version: "test")
        return try LoadReport.decode(try report.jsonData())
    }

    func counts(_ report: LoadReport, second: Int) -> [String: Int] {
        let row = report.timeline.first { $0.second == second }?.responsesByWorkload ?? []
        return Dictionary(row.enumerated().filter { $0.element > 0 }.map { (report.workloads[$0.offset].version, $0.element) }, uniquingKeysWith: +)
    }

    @Test func theJSONIndexesTheWorkloadsTableAndAddsUpToTheResponses() throws {
        let r = try report(result([[Self.identity("v1"): 90, Self.identity("v2"): 10], [Self.identity("v1"): 80], [:]]))
        #expect(r.workloads.map(\.version) == ["v1", "v2"])
        #expect(r.timeline[0].responsesByWorkload == [90, 10])
        #expect(r.timeline[1].responsesByWorkload == [80], "trailing zeros left out")
        #expect(r.timeline[2].responsesByWorkload == nil, "a second without responses has none")
        for second in r.timeline { #expect((second.responsesByWorkload ?? []).reduce(0, +) == second.responses) }
        let json = try #require(String(data: try r.jsonData(), encoding: .utf8))
        #expect(json.contains("\"responses_by_workload\""))
    }

    @Test func aResultWrittenBeforeItWasKeptStillReads() throws {
        let r = try report(result([[Self.identity("v1"): 5]]))
        var object = try #require(JSONSerialization.jsonObject(with: try r.jsonData()) as? [String: Any])
        object["timeline"] = (object["timeline"] as? [[String: Any]])?.map { $0.filter { $0.key != "responses_by_workload" } }
        let old = try LoadReport.decode(try JSONSerialization.data(withJSONObject: object))
        #expect(old.timeline[0].responsesByWorkload == nil && old.timeline[0].responses == 5)
        // Its charts draw no line per identity rather than wrong ones.
        #expect(SVGChart.identityLines(old.timelineSpans(), names: SVGChart.identityNames(old.workloads)) == nil)
    }

    /// The last 0.4 s of a 3.4 s run: its 40 responses are 100 a second, not 40.
    @Test func theLastPartialSecondIsARateOverItsPart() throws {
        let steady = [Self.identity("v1"): 70, Self.identity("v2"): 30]
        let r = try report(result([steady, steady, steady, [Self.identity("v1"): 28, Self.identity("v2"): 12]], elapsed: 3.4))
        let spans = r.timelineSpans()
        let tail = try #require(spans.last)
        #expect(tail.partial && abs(tail.length - 0.4) < 1e-9)
        #expect(abs(tail.responsesPerSecond(workload: 0) - 70) < 1e-6)
        #expect(abs(tail.responsesPerSecond(workload: 1) - 30) < 1e-6)
        let lines = try #require(SVGChart.identityLines(spans, names: SVGChart.identityNames(r.workloads)))
        #expect(lines.map(\.name) == ["reviews/v1", "reviews/v2"])
        for line in lines { #expect(Set(line.rates.map { $0.rounded() }).count == 1, "\(line.name): \(line.rates)") }
        let svg = SVGChart.throughputByIdentity(spans, lines: lines, title: "t")
        #expect(svg.components(separatedBy: "<circle class=\"dot partial\"").count - 1 == 2, "one hollow dot per line")
        #expect(svg.contains("hollow: the last 0.40 s"))
    }

    /// Shards whose workloads tables are in different orders (each sorted by its own counts) merge by identity.
    @Test func mergeAddsThemUpByIdentity() throws {
        let a = try report(result([[Self.identity("v1"): 50, Self.identity("v2"): 10], [Self.identity("v1"): 40]]))
        let b = try report(result([[Self.identity("v2"): 60, Self.identity("v1"): 5], [:], [Self.identity("v3"): 7]]))
        #expect(a.workloads.map(\.version) == ["v1", "v2"] && b.workloads.map(\.version) == ["v2", "v3", "v1"])
        let merged = try ResultMerger.merge([("a.json", a), ("b.json", b)], commandLine: ["merge"])
        #expect(counts(merged, second: 0) == ["v1": 55, "v2": 70])
        #expect(counts(merged, second: 1) == ["v1": 40])
        #expect(counts(merged, second: 2) == ["v3": 7])
        for second in merged.timeline { #expect((second.responsesByWorkload ?? []).reduce(0, +) == second.responses) }
        // Merged again with itself's inputs the other way round: the same.
        let again = try ResultMerger.merge([("b.json", b), ("a.json", a)], commandLine: ["merge"])
        #expect((0...2).allSatisfy { counts(again, second: $0) == counts(merged, second: $0) })
    }

    /// An input from before the counts were kept: the seconds it has responses in have none (not a partial count).
    @Test func mergeWithAnOlderResultLeavesItsSecondsWithout() throws {
        let a = try report(result([[Self.identity("v1"): 50], [Self.identity("v1"): 40]]))
        var old = try report(result([[Self.identity("v2"): 60]]))
        old.timeline = old.timeline.map { var s = $0; s.responsesByWorkload = nil; return s }
        let merged = try ResultMerger.merge([("a.json", a), ("old.json", old)], commandLine: ["merge"])
        #expect(merged.timeline[0].responsesByWorkload == nil)
        #expect(counts(merged, second: 1) == ["v1": 40])
    }

    /// A broken setup answering as dozens of identities: the six with the most responses, then "other".
    @Test func theLinesAreCappedWithTheRestAddedUp() throws {
        var second: [WorkloadIdentity: Int] = [:]
        for i in 1...40 { second[Self.identity("v\(i)")] = 100 - i }
        let r = try report(result([second, second, second]))
        let lines = try #require(SVGChart.identityLines(r.timelineSpans(), names: SVGChart.identityNames(r.workloads)))
        #expect(lines.count == SVGChart.identityLines + 1)
        #expect(lines.prefix(6).map(\.name) == (1...6).map { "reviews/v\($0)" })
        let other = try #require(lines.last)
        #expect(other.isOther && other.name == "other (34)")
        #expect(other.total == (7...40).reduce(0) { $0 + 3 * (100 - $1) })
        #expect(abs(other.rates[0] - Double((7...40).reduce(0) { $0 + (100 - $1) })) < 1e-6)
        // Seven identities: each its own line (an "other" of one would hide a name for nothing).
        var seven: [WorkloadIdentity: Int] = [:]
        for i in 1...7 { seven[Self.identity("v\(i)")] = 10 * i }
        let r7 = try report(result([seven, seven, seven]))
        #expect(SVGChart.identityLines(r7.timelineSpans(), names: SVGChart.identityNames(r7.workloads))?.contains { $0.isOther } == false)
    }

    @Test func namesTellIdentitiesApartAndKeepBothEnds() {
        let rows = [Self.identity("v1", cluster: "east"), Self.identity("v1", cluster: "west"), WorkloadIdentity(identity: "spiffe://lab/ns/a/sa/ratings")]
            .map { LoadReport.Workload(identity: $0.identity, workload: $0.workload, version: $0.version, cluster: $0.cluster, requests: 1, share: 0,
                                       succeeded: 1, errors: 0, statuses: [:], errorKinds: [:], latencyMs: LatencySummary(.latency())) }
        #expect(SVGChart.identityNames(rows) == ["reviews/v1 @east", "reviews/v1 @west", "spiffe://lab/ns/a/sa/ratings"])
        #expect(SVGChart.shortened("reviews-with-a-rather-long-name/v4", to: 17) == "reviews-…-name/v4")
        #expect(SVGChart.shortened("reviews/v1", to: 17) == "reviews/v1")
    }

    @Test func theReportDrawsTheChartForTwoIdentitiesOrMore() throws {
        let two = try report(result([[Self.identity("v1"): 9, Self.identity("v2"): 1], [Self.identity("v1"): 9, Self.identity("v2"): 1],
                                     [Self.identity("v1"): 9, Self.identity("v2"): 1]]))
        let one = try report(result([[Self.identity("v1"): 9], [Self.identity("v1"): 9], [Self.identity("v1"): 9]]))
        func html(_ r: LoadReport) -> String {
            HTMLReport(RunReport(command: "load", title: "t", inputs: [], version: "test", commandLine: [], startedAt: Date(), seconds: 3,
                                 sections: [RunReport.Section(name: "load", seconds: 3, loads: [RunReport.Load(name: "reviews", report: r)])])).render()
        }
        let page = html(two)
        #expect(page.contains("<title>throughput by identity: reviews</title>"))
        #expect(page.contains("<g class=\"ident i0\"><title>reviews/v1: 27 responses</title>"))
        #expect(page.contains("<g class=\"ident i1\"><title>reviews/v2: 3 responses</title>"))
        #expect(!page.contains("class=\"ident i2\""))
        #expect(!html(one).contains("throughput by identity"), "one identity: the throughput chart says it all")
    }

    /// verify's by-connection phases each count from their own start: the charts say they overlay them.
    @Test func phasesOverlaidAreSaidToBe() throws {
        var r = try report(result([[Self.identity("v1"): 9, Self.identity("v2"): 1], [Self.identity("v1"): 9], [Self.identity("v1"): 9, Self.identity("v2"): 3]]))
        #expect(r.overlaidPhases == 1)
        r.timeline = (r.timeline + r.timeline.prefix(2)).sorted { $0.second < $1.second }
        #expect(r.overlaidPhases == 2)
        let spans = r.timelineSpans()
        #expect(spans.count == 3)
        #expect(spans[0].second.responsesByWorkload == [18, 2], "the phases' seconds add up")
        let page = HTMLReport(RunReport(command: "verify", title: "t", inputs: [], version: "test", commandLine: [], startedAt: Date(), seconds: 3,
                                        sections: [RunReport.Section(name: "v", seconds: 3, loads: [RunReport.Load(name: "reviews", report: r)])])).render()
        #expect(page.contains("Throughput (responses per second; 2 load phases overlaid, each from its own start, their seconds added up)"))
    }
}
