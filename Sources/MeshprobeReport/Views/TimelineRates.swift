import Foundation
import MeshprobeHistogram
import MeshprobeLoad

/// A stretch of a load's timeline with its counts, and how long it was measured: what the per-second charts draw.
public struct TimelineSpan: Sendable {
    /// Seconds from the start of the run (warm-up included), as the timeline counts them.
    public var start: Double
    /// How long the span was measured: 1 s, less for the last second (a run of 5.3 s ends with 0.3 s) and for a
    /// second the warm-up ended in.
    public var length: Double
    public var second: LoadReport.Second

    /// Shorter than a second: its rates are counts over `length`, and the charts draw it as partial.
    public var partial: Bool { length < 0.999 }
    public var end: Double { start + length }
    public var responsesPerSecond: Double { Double(second.responses) / length }
    public var succeededPerSecond: Double { Double(second.succeeded) / length }
    public var failedPerSecond: Double { Double(second.failed) / length }
    /// The responses of `workloads[index]` per second over the span (0 when it has none).
    public func responsesPerSecond(workload index: Int) -> Double {
        guard let counts = second.responsesByWorkload, counts.indices.contains(index) else { return 0 }
        return Double(counts[index]) / length
    }
}

extension LoadReport {
    /// A measured stretch shorter than this is added to the second before it: a rate over a sliver of a second is
    /// noise (one response in 10 ms reads as 100/s).
    static let shortestSpan = 0.1

    /// How many load phases the timeline overlays: a load run in phases one after another (verify's by-connection
    /// splits) has each phase's seconds from the phase's own start, so a second appears once per phase; 1 for a run
    /// in one piece (and for a merge of shards, whose seconds are merged already).
    public var overlaidPhases: Int {
        Dictionary(timeline.map { ($0.second, 1) }, uniquingKeysWith: +).values.max() ?? 1
    }

    /// The timeline's seconds with how long each was measured.
    ///
    /// Second `s` covers the part of [s, s + 1) inside the measured window [warm-up, warm-up + elapsed] (timeline
    /// seconds count from the start of the run, warm-up included; `elapsed_seconds` from the end of the warm-up), so
    /// the last second of a 5.3 s run is 0.3 s long and its rate is its count over 0.3 s, not over a whole second
    /// (which drew a false dip, or with the run's last in-flight responses a false spike). A second that lies
    /// outside the window (a merged shard's clock) counts as whole; a stretch shorter than `shortestSpan` is added to
    /// the second before it (its counts and its length).
    ///
    /// A load run in phases one after another (verify's by-connection splits) has each phase's seconds from the
    /// phase's own start, so a second can appear more than once: those are merged as shards' seconds are (counts add,
    /// percentiles from the merged histograms), one point per second.
    public func timelineSpans() -> [TimelineSpan] {
        let from = max(0, meta.warmupSeconds)
        let to = from + max(0, summary.elapsedSeconds)
        var spans: [TimelineSpan] = []
        let unique = Set(timeline.map(\.second)).count == timeline.count ? timeline
            : ResultMerger.mergedTimeline([(timeline, workloads)], workloads: workloads)
        for second in unique.sorted(by: { $0.second < $1.second }) {
            let s = Double(second.second)
            let covered = min(s + 1, to) - max(s, from)
            let start = covered > 0 ? max(s, from) : s
            let length = covered > 0 ? covered : 1
            if length < Self.shortestSpan, var previous = spans.last, previous.end == start {
                previous.length += length
                previous.second.sent += second.sent
                previous.second.responses += second.responses
                previous.second.succeeded += second.succeeded
                previous.second.failed += second.failed
                previous.second.late += second.late
                previous.second.responsesByWorkload = Self.add(previous.second.responsesByWorkload, second.responsesByWorkload,
                                                               responses: (previous.second.responses - second.responses, second.responses))
                spans[spans.count - 1] = previous
                continue
            }
            spans.append(TimelineSpan(start: start, length: max(length, Self.shortestSpan), second: second))
        }
        return spans
    }

    /// Two seconds' responses by workload added up; nil when either had responses without them.
    static func add(_ a: [Int]?, _ b: [Int]?, responses: (Int, Int)) -> [Int]? {
        if a == nil && responses.0 > 0 || b == nil && responses.1 > 0 { return nil }
        let a = a ?? [], b = b ?? []
        let sum = (0..<max(a.count, b.count)).map { (a.indices.contains($0) ? a[$0] : 0) + (b.indices.contains($0) ? b[$0] : 0) }
        return sum.isEmpty ? nil : sum
    }
}

/// A bar of a latency histogram: responses from `low` up to `high` milliseconds.
public struct LatencyBin: Sendable, Equatable {
    public var low: Double
    public var high: Double
    public var count: UInt64
}

extension LatencyBin {
    /// `count` bins of equal width from the histogram's lowest value to its 99.9th percentile; the responses above it
    /// go in the last bin (so one slow response does not squeeze every other bar into the first), which the chart
    /// says. Values are each bucket's highest equivalent value (HdrHistogram's convention, as the percentiles are).
    public static func bins(_ histogram: LatencyHistogram, count: Int = 30) -> [LatencyBin] {
        guard histogram.totalCount > 0, count > 0 else { return [] }
        let low = Double(histogram.min) / 1000
        let top = max(Double(histogram.value(atPercentile: 99.9)) / 1000, low + 0.001)
        let width = (top - low) / Double(count)
        var bins = (0..<count).map { LatencyBin(low: low + width * Double($0), high: low + width * Double($0 + 1), count: 0) }
        for step in histogram.recordedValues() {
            let ms = Double(step.value) / 1000
            let index = min(count - 1, max(0, Int((ms - low) / width)))
            bins[index].count += UInt64(step.count)
        }
        return bins
    }
}
