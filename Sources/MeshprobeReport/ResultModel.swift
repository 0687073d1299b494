import Foundation
import Histogram
import MeshprobeHistogram
import MeshprobeLoad

extension LoadReport {
    /// A file the run read, with its SHA-256 (`merge` refuses results whose policy or scenario hashes differ).
    public struct Input: Codable, Sendable, Equatable {
        /// scenario, policy, manifest or gameday.
        public var role: String
        public var path: String
        public var sha256: String

        public init(role: String, path: String, sha256: String) {
            self.role = role
            self.path = path
            self.sha256 = sha256
        }
    }

    /// One row of the per-identity metrics model.
    public struct Series: Codable, Sendable {
        public var labels: SeriesLabels
        public var requests: Int
        public var latencyMs: LatencySummary
        /// HdrHistogram compressed V2, base64 (microseconds).
        public var histogram: String

        enum CodingKeys: String, CodingKey {
            case labels, requests, histogram
            case latencyMs = "latency_ms"
        }

        public init(labels: SeriesLabels, stats: SeriesStats) {
            self.labels = labels
            requests = stats.requests
            latencyMs = LatencySummary(stats.latency)
            histogram = HistogramCodec.encode(stats.latency)
        }
    }

    /// The run's own histograms, microseconds, HdrHistogram compressed V2 in base64.
    public struct Histograms: Codable, Sendable {
        public var latency: String
        public var latencyUncorrected: String
        public var sendDelay: String?
        public var loopLag: String
        public var handshake: String
        /// The waits of the requests lost with a connection meshprobe closed after a timeout (a lower bound of their
        /// latency); absent when there were none.
        public var abandoned: String?

        enum CodingKeys: String, CodingKey {
            case latency, handshake, abandoned
            case latencyUncorrected = "latency_uncorrected"
            case sendDelay = "send_delay"
            case loopLag = "loop_lag"
        }

        public init(_ result: LoadResult, open: Bool) {
            latency = HistogramCodec.encode(result.latency)
            latencyUncorrected = HistogramCodec.encode(result.serviceLatency)
            sendDelay = open ? HistogramCodec.encode(result.sendDelay) : nil
            loopLag = HistogramCodec.encode(result.loopLag)
            handshake = HistogramCodec.encode(result.handshakeLatency)
            abandoned = result.abandonedWaits.totalCount > 0 ? HistogramCodec.encode(result.abandonedWaits) : nil
        }

        public init(latency: String, latencyUncorrected: String, sendDelay: String?, loopLag: String, handshake: String,
                    abandoned: String? = nil) {
            self.latency = latency
            self.latencyUncorrected = latencyUncorrected
            self.sendDelay = sendDelay
            self.loopLag = loopLag
            self.handshake = handshake
            self.abandoned = abandoned
        }
    }

    /// Reads a result written by `jsonData()`.
    public static func decode(_ data: Data) throws -> LoadReport {
        try JSONDecoder().decode(LoadReport.self, from: data)
    }
}

extension LoadReport {
    /// The per-identity metrics the result's series hold (histograms decoded; a bad one counts as empty, which
    /// `ResultMerger.read` rules out for files).
    public func identityMetrics() -> IdentityMetrics {
        var metrics = IdentityMetrics()
        for row in series {
            let latency = (try? HistogramCodec.decode(row.histogram)) ?? LatencyHistogram.latency()
            metrics.series[row.labels, default: SeriesStats()].merge(SeriesStats(requests: row.requests, latency: latency))
        }
        return metrics
    }
}
