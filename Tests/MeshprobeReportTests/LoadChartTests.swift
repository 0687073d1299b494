import Foundation
import MeshprobeHistogram
import MeshprobeLoad
import Testing
@testable import MeshprobeReport

/// A load's charts: they scale to the page, the last partial second is a rate over the time it covered, a throughput
/// chart stands beside the latency, and a run too short for a time series gets a histogram.
@Suite struct LoadChartTests {
    /// A load of `seconds` whole seconds at 100 responses a second (2 failed each), then `tail` seconds more at the
    /// same rate, after `warmup` seconds of warm-up (the timeline counts from the start, warm-up included).
    func steadyLoad(seconds: Int, tail: Double, warmup: Double = 0) throws -> RunReport.Load {
        var load = try sampleLoad(requests: 100 * seconds, seconds: seconds)
        load.report.meta.warmupSeconds = warmup
        load.report.summary.elapsedSeconds = Double(seconds) + tail
        // Shift the whole seconds past the warm-up and add the tail's second with its share of the rate.
        let offset = Int(warmup.rounded(.up))
        load.report.timeline = load.report.timeline.map { second in
            var s = second
            s.second += offset
            return s
        }
        if tail > 0 {
            let n = Int((100 * tail).rounded())
            load.report.timeline.append(LoadReport.Second(second: offset + seconds, sent: n, responses: n, succeeded: n, p50Ms: 1, p99Ms: 2))
        }
        return load
    }

    /// The heights of the throughput chart's bars (succeeded and failed stacked), one per second.
    func barHeights(_ svg: String) -> [Double] {
        let groups = svg.components(separatedBy: "<g class=\"rate").dropFirst()
        let pattern = try! NSRegularExpression(pattern: "<rect class=\"(?:ok|failed)\" [^>]*height=\"([0-9.]+)\"")
        return groups.map { group in
            pattern.matches(in: group, range: NSRange(group.startIndex..., in: group)).reduce(0.0) { sum, m in
                sum + Double(group[Range(m.range(at: 1), in: group)!])!
            }
        }
    }

    @Test func theLastPartialSecondCoversOnlyItsPart() throws {
        let spans = try steadyLoad(seconds: 5, tail: 0.3).report.timelineSpans()
        #expect(spans.count == 6)
        #expect(spans.dropLast().allSatisfy { $0.length == 1 && !$0.partial })
        let last = try #require(spans.last)
        #expect(abs(last.length - 0.3) < 1e-9 && last.partial)
        #expect(abs(last.start - 5) < 1e-9)
        // 30 responses in 0.3 s: 100 a second, as every whole second.
        #expect(abs(last.responsesPerSecond - 100) < 1e-6)
        #expect(spans.dropLast().allSatisfy { abs($0.responsesPerSecond - 100) < 1e-6 })
    }

    @Test func theSecondTheWarmupEndedInCoversTheRestOfIt() throws {
        // 1.5 s of warm-up: second 1 is measured from 1.5 s only; seconds 2... are whole.
        var load = try steadyLoad(seconds: 3, tail: 0, warmup: 1.5)
        load.report.timeline.insert(LoadReport.Second(second: 1, sent: 50, responses: 50, succeeded: 50, p50Ms: 1, p99Ms: 2), at: 0)
        load.report.summary.elapsedSeconds = 3.5
        let spans = load.report.timelineSpans()
        #expect(spans.map(\.start) == [1.5, 2, 3, 4])
        #expect(spans.map(\.length) == [0.5, 1, 1, 1])
        #expect(abs(spans[0].responsesPerSecond - 100) < 1e-6)
    }

    @Test func aSliverOfASecondJoinsTheSecondBeforeIt() throws {
        // 5.04 s: the last 0.04 s (4 responses) would read as a rate of noise; it is added to second 4.
        let spans = try steadyLoad(seconds: 5, tail: 0.04).report.timelineSpans()
        #expect(spans.count == 5)
        let last = try #require(spans.last)
        #expect(abs(last.length - 1.04) < 1e-9)
        #expect(last.second.responses == 104)
        #expect(abs(last.responsesPerSecond - 100) < 1e-6)
    }

    /// A verify load run in two phases: the second phase's seconds start from 0 again.
    @Test func phasesThatRepeatASecondAreMergedIntoOnePoint() throws {
        var load = try steadyLoad(seconds: 2, tail: 0.5)
        let phase = load.report.timeline
        load.report.timeline += phase
        let spans = load.report.timelineSpans()
        #expect(spans.map(\.second.second) == [0, 1, 2])
        #expect(spans.map(\.second.responses) == [200, 200, 100])
        #expect(spans[0].second.p50Ms != nil, "percentiles from the merged histograms")
    }

    @Test func thePartialSecondDrawsNoFalseDipOrSpike() throws {
        let load = try steadyLoad(seconds: 5, tail: 0.3)
        let svg = SVGChart.throughput(load.report.timelineSpans(), title: "t")
        let heights = barHeights(svg)
        #expect(heights.count == 6, "\(svg)")
        let whole = try #require(heights.first)
        #expect(whole > 100, "the bars use the plot's height: \(heights)")
        // The whole seconds have 2 of their 100 failed, the tail none: the same total rate, the same height.
        #expect(heights.allSatisfy { abs($0 - whole) <= 0.2 }, "\(heights)")
        #expect(svg.components(separatedBy: "<g class=\"rate partial\"").count - 1 == 1)
        #expect(svg.contains("the last 0.30 s"))
        // Latency: the partial second's dots at the middle of its 0.3 s, hollow.
        let latency = SVGChart.latencyOverTime(load.report.timelineSpans(), title: "t")
        #expect(latency.components(separatedBy: "class=\"dot p50 partial\"").count - 1 == 1)
        #expect(latency.contains("second 5 (0.30 s measured)"))
    }

    @Test func chartsScaleToThePageWithNoFixedSize() throws {
        let html = HTMLReport(try sampleReport()).render()
        let svgs = html.components(separatedBy: "<svg ").dropFirst().map { $0.prefix { $0 != ">" } }
        #expect(svgs.count >= 6)
        for svg in svgs {
            #expect(svg.contains("viewBox=\"0 0 "), "\(svg)")
            #expect(!svg.contains(" width=") && !svg.contains(" height="), "no fixed size: \(svg)")
        }
        #expect(html.contains("svg.chart{display:block;box-sizing:border-box;width:100%;height:auto"))
        #expect(!html.contains("max-width:1100px"))
    }

    @Test func throughputStandsBesideLatency() throws {
        let html = HTMLReport(try sampleReport()).render()
        let latency = try #require(html.range(of: "<title>latency over time: "))
        let throughput = try #require(html.range(of: "<title>throughput: "))
        let distribution = try #require(html.range(of: "<title>latency distribution: "))
        #expect(latency.lowerBound < throughput.lowerBound && throughput.lowerBound < distribution.lowerBound)
        // The three in one grid of charts, the throughput right after the latency.
        let grid = html[html.range(of: "<div class=\"charts\">")!.lowerBound..<distribution.lowerBound]
        #expect(grid.contains("<figcaption>Throughput (responses per second)</figcaption>"))
        #expect(html.contains("succeeded/s (lower)") && html.contains("failed/s (upper)"), "labelled, not only coloured")
    }

    @Test func aRunShorterThanThreeSecondsGetsAHistogram() throws {
        var report = try sampleReport(command: "load")
        report.sections = [RunReport.Section(name: "short", seconds: 1, loads: [try sampleLoad(requests: 300, seconds: 1)])]
        let html = HTMLReport(report).render()
        #expect(!html.contains("<title>latency over time: "))
        #expect(!html.contains("<title>throughput: "))
        #expect(html.contains("<title>latency histogram: "))
        #expect(html.contains("too short for a time series"))
        #expect(html.contains("<title>latency distribution: "))
        // Its bars hold every response.
        let pattern = try NSRegularExpression(pattern: "ms: ([0-9]+)</title></rect>")
        let counts = pattern.matches(in: html, range: NSRange(html.startIndex..., in: html)).map {
            Int(html[Range($0.range(at: 1), in: html)!])!
        }
        #expect(counts.reduce(0, +) == 300, "\(counts)")
    }

    @Test func histogramBinsHoldEveryResponseAndTheTailInTheLast() throws {
        var histogram = LatencyHistogram.latency()
        for i in 0..<999 { histogram.record(UInt64(1000 + i)) }
        histogram.record(900_000)
        let bins = LatencyBin.bins(histogram, count: 10)
        #expect(bins.count == 10)
        #expect(bins.reduce(0) { $0 + $1.count } == 1000)
        #expect(bins.last!.high < 100, "the slowest response does not stretch the axis: \(bins.last!)")
        #expect(bins.last!.count >= 1)
    }
}

/// Verify's convergence chart: the observed share per destination against the tolerance band, by responses judged.
@Suite struct ConvergenceChartTests {
    @Test func aSplitWithATrajectoryShowsHowItConverged() throws {
        let html = HTMLReport(try sampleReport()).render()
        let split = try #require(html.range(of: "<title>observed against declared split: "))
        let convergence = try #require(html.range(of: "<title>convergence of the split: reviews canary "))
        #expect(split.lowerBound < convergence.lowerBound)
        let svg = String(html[convergence.lowerBound...].components(separatedBy: "</svg>")[0])
        // A line per destination, a band and a declared line per declared share, each line named at its end.
        #expect(svg.components(separatedBy: "<polyline class=\"line share").count - 1 == 2)
        #expect(svg.components(separatedBy: "<rect class=\"tolerance\"").count - 1 == 2)
        #expect(svg.components(separatedBy: "class=\"declared-line").count - 1 == 2)
        #expect(svg.contains(">v1 90.2% (90%)</text>"), "\(svg)")
        #expect(svg.contains("decided (PASS) after 1840 responses on 27 connections"))
        #expect(!svg.contains("<script"), "the hostile name is escaped")
    }

    @Test func aSplitWithoutATrajectoryHasNoConvergenceChart() throws {
        var report = try sampleReport()
        report.sections[0].checks[0].trajectory = []
        #expect(!HTMLReport(report).render().contains("convergence of the split"))
    }

    @Test func endLabelsNeverCoverEachOther() {
        // 50/50: both lines end at the same height.
        let placed = SVGChart.spread([100, 100, 101], gap: 14, top: 0, bottom: 300)
        let sorted = placed.sorted()
        #expect(zip(sorted, sorted.dropFirst()).allSatisfy { $1 - $0 >= 14 - 1e-9 }, "\(placed)")
        // Near the bottom the column moves up instead of out of the chart.
        let low = SVGChart.spread([295, 296], gap: 14, top: 0, bottom: 300)
        #expect(low.max()! <= 300 && abs(low[1] - low[0]) >= 14 - 1e-9, "\(low)")
        // A crowd at the bottom moves up as far as it must, and a label well above it stays by its line.
        let crowd = SVGChart.spread([120, 247, 247, 248, 248, 249, 249], gap: 14, top: 0, bottom: 280)
        #expect(crowd[0] == 120, "\(crowd)")
        #expect(crowd.max()! <= 280, "\(crowd)")
        let sortedCrowd = crowd.sorted()
        #expect(zip(sortedCrowd, sortedCrowd.dropFirst()).allSatisfy { $1 - $0 >= 14 - 1e-9 }, "\(crowd)")
    }
}
