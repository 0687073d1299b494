import Foundation
import MeshprobeHistogram
import MeshprobeLoad

/// The result as a Service Mesh Performance (SMP) `PerformanceTestResult` (protos/service_mesh_performance.proto in
/// the SMP specification), in proto3's JSON mapping: lowerCamelCase names, timestamps as RFC 3339 strings.
///
/// SMP's result carries latency (ms: min, average, p50, p90, p99, max), the achieved QPS and start and end times; what
/// it has no field for (targets, requests, failures, identities) goes in `labels` (a string map in the spec).
public struct SMPResult: Encodable, Sendable {
    public struct Latency: Encodable, Sendable {
        public var min: Double
        public var average: Double
        public var p50: Double
        public var p90: Double
        public var p99: Double
        public var max: Double
    }

    public var smpVersion: String
    public var id: String
    public var labels: [String: String]
    public var startTime: String
    public var endTime: String
    public var latenciesMs: Latency
    public var actualQPS: Double
    public var detailsUri: String
    public var testId: String

    enum CodingKeys: String, CodingKey {
        case smpVersion, id, labels, startTime, endTime, latenciesMs, detailsUri, testId
        case actualQPS = "actualQPS"
    }

    /// The SMP view of a result; `details` is where the full result is (the `--json` file), when written.
    public init(_ report: LoadReport, details: String?) throws {
        let latency = try HistogramCodec.decode(report.histograms.latency)
        func ms(_ micros: UInt64) -> Double { (Double(micros) / 1000 * 1000).rounded() / 1000 }
        let any = latency.totalCount > 0
        latenciesMs = Latency(min: any ? ms(latency.minNonZero) : 0, average: any ? (latency.meanValue / 1000 * 1000).rounded() / 1000 : 0,
                              p50: ms(LatencySummary.percentile(latency, 50)), p90: ms(LatencySummary.percentile(latency, 90)),
                              p99: ms(LatencySummary.percentile(latency, 99)), max: any ? ms(latency.max) : 0)
        smpVersion = "v0.0.1"  // the version Meshery's SMP examples carry
        let start = (try? Date(report.meta.startedAt, strategy: .iso8601)) ?? Date(timeIntervalSince1970: 0)
        startTime = start.formatted(.iso8601)
        endTime = start.addingTimeInterval(report.summary.elapsedSeconds).formatted(.iso8601)
        actualQPS = report.summary.rps
        detailsUri = details ?? ""
        id = "meshprobe-\(report.meta.startedAt)"
        testId = id
        var labels: [String: String] = [
            "load_generator": "meshprobe \(report.meta.meshprobeVersion)",
            "targets": report.meta.targets.joined(separator: " "),
            "model": report.meta.model,
            "connections": String(report.meta.connections),
            "requests": String(report.summary.requests),
            "succeeded": String(report.summary.succeeded),
            "failed": String(report.summary.failed),
            "coordinated_omission": "corrected from intended send times (open model)",
        ]
        for (i, w) in report.workloads.enumerated() {
            labels["workload_\(i)"] = "\(w.identity.isEmpty ? w.workload : w.identity) \(w.version) \(w.cluster): \(w.requests) requests, p99 \(w.latencyMs.p99) ms"
        }
        self.labels = labels
    }

    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
}
