import Foundation
import Histogram
import MeshprobeHistogram
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeReport
import MeshprobeSpec
import MeshprobeTLS
import MeshprobeTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

@Suite struct MergeTests {
    let identity = mergeIdentity
    let labels = mergeLabels
    let configuration = LoadConfiguration(targets: [try! LoadTarget(parsing: "https://127.0.0.1:8443/")])
    let policy = LoadReport.Input(role: "policy", path: "p.yaml", sha256: String(repeating: "a", count: 64))

    func report(_ values: [UInt64], inputs: [LoadReport.Input]? = nil, seconds: [Int]? = nil) throws -> LoadReport {
        var r = result(values, identity: identity, status: 200, labels: labels)
        if let seconds { r.timeline = timeline(values, seconds: seconds) }
        let report = LoadReport(result: r, configuration: configuration, commandLine: ["meshprobe"], startedAt: Date(timeIntervalSince1970: 0),
                                version: "test", inputs: inputs ?? [policy])
        // Through JSON and back, as `merge` reads files.
        return try LoadReport.decode(try report.jsonData())
    }

    @Test func shardsMergeToExactlyTheSingleRunOfTheSameSamples() throws {
        let all = samples(30_000, seed: 5)
        let single = try report(all)
        let shards = [Array(all[0..<7_000]), Array(all[7_000..<19_000]), Array(all[19_000...])]
        let merged = try ResultMerger.merge(try shards.enumerated().map { ("shard-\($0.offset).json", try report($0.element)) }, commandLine: ["merge"])
        #expect(merged.summary.requests == 30_000)
        #expect(merged.summary.latencyMs == single.summary.latencyMs)
        #expect(merged.summary.latencyUncorrectedMs == single.summary.latencyUncorrectedMs)
        #expect(merged.histograms.latency == single.histograms.latency)  // the same encoded histogram, byte for byte
        #expect(merged.series.count == 1)
        #expect(merged.series[0].requests == single.series[0].requests)
        #expect(merged.series[0].latencyMs == single.series[0].latencyMs)
        #expect(merged.series[0].histogram == single.series[0].histogram)
        #expect(merged.workloads.count == 1)
        #expect(merged.workloads[0].latencyMs == single.workloads[0].latencyMs)
        #expect(merged.workloads[0].requests == 30_000)
        #expect(merged.meta.mergedFrom == 3)
        // Averaging the shards' p99 would not give this (the shards differ): the merge recomputes it.
        let averaged = shards.map { try! report($0).summary.latencyMs.p99 }.reduce(0, +) / 3
        #expect(averaged != merged.summary.latencyMs.p99)
    }

    /// Each shard's identity rotations are its own: the merge adds them, and names the source `mixed` when the runs'
    /// identities came from different ones.
    @Test func shardsIdentityRotationsAddUp() throws {
        func shard(_ source: String, rotations: Int, interruptions: Int) throws -> LoadReport {
            var r = try report(samples(100, seed: 1))
            var rotation = TLSContextSource.Rotations(source: source)
            rotation.count = rotations
            rotation.interruptions = interruptions
            rotation.lastInterruption = interruptions > 0 ? "Unavailable" : nil
            r.meta.identityRotations = LoadReport.IdentityRotations(rotation, result: LoadResult())
            return r
        }
        let merged = try ResultMerger.merge([("0.json", try shard("workload-api", rotations: 3, interruptions: 0)),
                                             ("1.json", try shard("workload-api", rotations: 4, interruptions: 2))], commandLine: ["merge"])
        #expect(merged.meta.identityRotations?.rotations == 7 && merged.meta.identityRotations?.source == "workload-api")
        #expect(merged.meta.identityRotations?.interruptions == 2 && merged.meta.identityRotations?.lastInterruption == "Unavailable")
        let mixed = try ResultMerger.merge([("0.json", try shard("workload-api", rotations: 1, interruptions: 0)),
                                            ("1.json", try shard("files", rotations: 1, interruptions: 0))], commandLine: ["merge"])
        #expect(mixed.meta.identityRotations?.source == "mixed" && mixed.meta.identityRotations?.rotations == 2)
    }

    /// The finished seconds of a run in which sample i completed in second `seconds[i]`.
    func timeline(_ values: [UInt64], seconds: [Int]) -> [TimelinePoint] {
        var buckets: [Int: TimelineBucket] = [:]
        for (v, second) in zip(values, seconds) {
            buckets[second, default: TimelineBucket(second: second)].responses += 1
            buckets[second]!.succeeded += 1
            buckets[second]!.sent += 1
            _ = buckets[second]!.latency.record(v)
        }
        return buckets.values.sorted { $0.second < $1.second }.map(TimelinePoint.init)
    }

    @Test func shardTimelinesMergeToTheSingleRunsPerSecondPercentiles() throws {
        let all = samples(24_000, seed: 8)
        // Each sample's second from its run's start; the shards' seconds differ in load and latency.
        let seconds = all.indices.map { ($0 * 7) % 5 }
        let single = try report(all, seconds: seconds)
        let cuts = [0, 5_000, 16_000, 24_000]
        let shards = try (0..<3).map { i in
            ("shard-\(i).json", try report(Array(all[cuts[i]..<cuts[i + 1]]), seconds: Array(seconds[cuts[i]..<cuts[i + 1]])))
        }
        let merged = try ResultMerger.merge(shards, commandLine: ["merge"])
        #expect(merged.timeline.count == 5)
        for (m, s) in zip(merged.timeline, single.timeline) {
            #expect(m.second == s.second)
            #expect(m.responses == s.responses)
            #expect(m.p50Ms != nil && m.p90Ms != nil && m.p99Ms != nil && m.maxMs != nil)
            #expect(m.p50Ms == s.p50Ms && m.p90Ms == s.p90Ms && m.p99Ms == s.p99Ms && m.maxMs == s.maxMs, "second \(m.second)")
            #expect(m.histogram == s.histogram, "second \(m.second): the same encoded histogram, byte for byte")
        }
        // Averaging the shards' per-second p99 would not give it: the merge recomputes it from the merged histogram.
        let averaged = shards.map { $0.1.timeline[2].p99Ms! }.reduce(0, +) / 3
        #expect(averaged != merged.timeline[2].p99Ms)
        // A merge of one result is that result.
        let one = try ResultMerger.merge([("single.json", single)], commandLine: ["merge"])
        #expect(one.timeline.map(\.p99Ms) == single.timeline.map(\.p99Ms))
        #expect(one.timeline.map(\.histogram) == single.timeline.map(\.histogram))
    }

    @Test func resultsWithoutPerSecondHistogramsStillMergeWithoutPercentiles() throws {
        let all = samples(2_000, seed: 9)
        let seconds = all.indices.map { $0 % 3 }
        let new = try report(all, seconds: seconds)
        var old = try report(all, seconds: seconds)
        for i in old.timeline.indices { old.timeline[i].histogram = nil }
        // Through JSON, as a file written before the histograms were kept reads.
        old = try LoadReport.decode(try old.jsonData())
        let merged = try ResultMerger.merge([("new.json", new), ("old.json", old)], commandLine: ["merge"])
        #expect(merged.timeline.map(\.responses) == new.timeline.map { 2 * $0.responses })
        #expect(merged.timeline.allSatisfy { $0.p50Ms == nil && $0.p99Ms == nil && $0.maxMs == nil && $0.histogram == nil })
    }

    /// Shards of one run start together; a run started well after another (past 2 s and a tenth of the shortest
    /// run) is refused, naming the first and the last to start. A merged result's model is each run's.
    @Test func resultsThatDidNotStartTogetherAreRefused() throws {
        func started(_ text: String, seconds: Double) throws -> LoadReport {
            var r = try report(samples(100, seed: 3))
            r.meta.startedAt = text
            r.summary.elapsedSeconds = seconds
            return r
        }
        let a = try started("2026-12-07T07:39:37Z", seconds: 60)
        // 8 s apart over runs of 60 s: within 2 s + 6 s.
        try ResultMerger.checkStartedTogether([("a.json", a), ("b.json", try started("2026-12-07T07:39:45Z", seconds: 60))])
        let apart = [("a.json", a), ("c.json", try started("2026-12-07T07:40:37Z", seconds: 30)), ("b.json", try started("2026-12-07T07:39:45Z", seconds: 60))]
        do {
            try ResultMerger.checkStartedTogether(apart)
            Issue.record("a run started 60 s after the first is refused")
        } catch {
            #expect(error.description.hasPrefix("c.json started at 2026-12-07T07:40:37Z, 60 s after a.json (2026-12-07T07:39:37Z)"), "\(error)")
            #expect(error.description.contains("within 5 s") && error.description.contains("--allow-different-times"), "\(error)")
        }
        let undated = [("a.json", a), ("b.json", try started("yesterday", seconds: 1))]
        #expect(throws: ResultMerger.MergeError("b.json: meta.started_at is 'yesterday': expected a UTC time such as 2026-12-07T07:39:37Z")) {
            try ResultMerger.checkStartedTogether(undated)
        }
        let merged = try ResultMerger.merge([("a.json", a), ("b.json", a)], commandLine: ["merge"])
        #expect(merged.meta.connections == 2 * a.meta.connections && merged.meta.modelText == "each of 2 runs: \(a.meta.model)", "\(merged.meta)")
        #expect(a.meta.modelText == a.meta.model)
    }

    @Test func differentPoliciesSchemasAndCorruptedFilesAreRefusedNamingTheFile() throws {
        let a = try report(samples(100, seed: 1))
        let other = LoadReport.Input(role: "policy", path: "p.yaml", sha256: String(repeating: "b", count: 64))
        let b = try report(samples(100, seed: 2), inputs: [other])
        #expect(throws: ResultMerger.MergeError.self) { try ResultMerger.merge([("a.json", a), ("b.json", b)], commandLine: []) }
        do {
            _ = try ResultMerger.merge([("a.json", a), ("b.json", b)], commandLine: [])
        } catch {
            #expect(error.description.hasPrefix("b.json: its policy"), "\(error)")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("merge-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = try a.jsonData()
        let timed = try report(samples(100, seed: 1), seconds: (0..<100).map { $0 % 2 })
        let cases: [(String, Data, String)] = [
            ("truncated.json", good.prefix(good.count / 2), "not JSON"),
            ("old.json", Data(String(decoding: good, as: UTF8.self).replacingOccurrences(of: "meshprobe.load/v2", with: "meshprobe.load/v1").utf8), "meshprobe.load/v1"),
            ("histogram.json", Data(String(decoding: good, as: UTF8.self).replacingOccurrences(of: a.histograms.latency, with: "HISTFAAAxyz").utf8), "histograms.latency"),
            ("second.json", Data(String(decoding: try timed.jsonData(), as: UTF8.self)
                .replacingOccurrences(of: timed.timeline[1].histogram!, with: "HISTFAAAxyz").utf8), "timeline[1].histogram"),
            ("field.json", Data(String(decoding: good, as: UTF8.self).replacingOccurrences(of: "\"series\"", with: "\"sirius\"").utf8), "series"),
            // Edited counts: merged, they would be silently wrong or overflow (the largest once crashed merge).
            ("negative.json", try edited(good) { $0["summary", "requests"] = -5 }, "summary.requests is -5"),
            ("huge.json", try edited(good) { $0["summary", "requests"] = Int.max }, "summary.requests is \(Int.max)"),
            ("elapsed.json", try edited(good) { $0["summary", "elapsed_seconds"] = -1.0 }, "summary.elapsed_seconds"),
            ("toolarge.json", Data(String(decoding: try edited(good) { $0["summary", "requests"] = 7 }, as: UTF8.self)
                .replacingOccurrences(of: "\"requests\":7", with: "\"requests\":1e308").utf8), "does not fit"),
            // A histogram of another layout (4 digits up to 1e12 us) once crashed the merge into meshprobe's.
            ("layout.json", Data(String(decoding: good, as: UTF8.self).replacingOccurrences(of: a.histograms.latency, with: otherLayout(.four)).utf8),
             "not meshprobe's histogram layout"),
            // At 5 digits its counts array (3 million, 24 MiB) is refused before it is allocated.
            ("counts.json", Data(String(decoding: good, as: UTF8.self).replacingOccurrences(of: a.histograms.latency, with: otherLayout(.five)).utf8),
             "need 3145728 counts; a decoded histogram has at most 1048576"),
            // A second's histogram at 3 digits is meshprobe's layout, but not the timeline's (2 digits): it once passed
            // the check and then trapped in the merge of the seconds.
            ("timeline-layout.json", Data(String(decoding: try timed.jsonData(), as: UTF8.self)
                .replacingOccurrences(of: timed.timeline[0].histogram!, with: timed.histograms.latency).utf8),
             "timeline[0].histogram: not meshprobe's histogram layout"),
            // A decompression bomb: a valid header and 64 MiB of zeros in about 64 KB of zlib (MergeCLITests merges
            // the 1 GiB one of issue 15).
            ("bomb.json", Data(String(decoding: good, as: UTF8.self)
                .replacingOccurrences(of: a.histograms.latency, with: CraftedHistogram.text(try CraftedHistogram.bomb(inflatedBytes: 64 << 20))).utf8),
             "histograms.latency: the compressed payload inflates to more than"),
        ]
        for (name, data, expected) in cases {
            let path = dir.appendingPathComponent(name).path
            try data.write(to: URL(fileURLWithPath: path))
            do {
                _ = try ResultMerger.read(path)
                Issue.record("\(name) was accepted")
            } catch {
                #expect(error.description.hasPrefix(path), "\(error)")
                #expect(error.description.contains(expected), "\(error)")
            }
        }
    }
}

/// `data` (a result's JSON) with one field changed by `change` on its parsed form.
private func edited(_ data: Data, _ change: (inout JSONObject) -> Void) throws -> Data {
    var object = JSONObject(try JSONSerialization.jsonObject(with: data) as! [String: Any])
    change(&object)
    return try JSONSerialization.data(withJSONObject: object.value, options: [.sortedKeys])
}

/// A JSON object with a two-level subscript for the edits above.
private struct JSONObject {
    var value: [String: Any]
    init(_ value: [String: Any]) { self.value = value }
    subscript(section: String, key: String) -> Any? {
        get { (value[section] as? [String: Any])?[key] }
        set {
            var inner = value[section] as? [String: Any] ?? [:]
            inner[key] = newValue
            value[section] = inner
        }
    }
}

/// A valid V2 histogram that meshprobe never writes: 4 or 5 significant digits, up to 1e12 us.
private func otherLayout(_ digits: SignificantDigits) -> String {
    var h = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 1_000_000_000_000, numberOfSignificantValueDigits: digits)
    _ = h.record(999_999_999_999)
    return HistogramCodec.encode(h)
}

@Suite struct PrometheusTests {
    func metrics(_ values: [UInt64], code: Int) -> IdentityMetrics {
        var stats = SeriesStats()
        for v in values { _ = stats.latency.record(v) }
        stats.requests = values.count
        let labels = SeriesLabels(sourceWorkload: "meshprobe", sourcePrincipal: "spiffe://example.org/ns/a/sa/prober",
                                  destinationPrincipal: "spiffe://example.org/ns/a/sa/reviews", destinationWorkload: "reviews",
                                  destinationVersion: "v2", destinationCluster: "east", responseCode: code,
                                  responseFlags: code == 503 ? "UO" : "-", failureClass: code == 503 ? "proxy:circuit_breaker_overflow" : "",
                                  connectionSecurityPolicy: "mutual_tls")
        return IdentityMetrics(series: [labels: stats])
    }

    /// Python's prometheus_client parser: families, and per sample name+labels -> value.
    static let parser = """
        import sys, json
        from prometheus_client.parser import text_string_to_metric_families
        out = {}
        for family in text_string_to_metric_families(sys.stdin.read()):
            for s in family.samples:
                labels = dict(s.labels)
                key = s.name + '|' + labels.get('response_code', '') + '|' + labels.get('le', '')
                out[key] = s.value
                out['type:' + family.name] = family.type
                out['flags:' + labels.get('response_code', '')] = labels.get('response_flags', '')
        print(json.dumps(out))
        """

    @Test func theExpositionParsesWithPrometheusClientAndCountsOnlyWhatIsNew() async throws {
        let export = PrometheusExport()
        let first = samples(1000, seed: 3)
        export.update(metrics(first, code: 200), run: 1)
        export.update(metrics(first, code: 200), run: 1)  // the same snapshot again adds nothing
        let more = first + samples(500, seed: 4)
        export.update(metrics(more, code: 200), run: 1)
        export.update(metrics(Array(repeating: 100, count: 7), code: 503), run: 2)
        let out = try await python(Self.parser, stdin: export.text())
        #expect(out.status == 0, "\(out.stderr)")
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any])
        #expect(parsed["type:meshprobe_requests"] as? String == "counter")
        #expect(parsed["type:meshprobe_request_duration_seconds"] as? String == "histogram")
        #expect(parsed["meshprobe_requests_total|200|"] as? Double == 1500)
        #expect(parsed["meshprobe_requests_total|503|"] as? Double == 7)
        #expect(parsed["meshprobe_request_duration_seconds_count|200|"] as? Double == 1500)
        #expect(parsed["flags:503"] as? String == "UO")
        // Buckets: every sample of 100 us is under 0.5 ms; the 200s split as the HdrHistogram says.
        #expect(parsed["meshprobe_request_duration_seconds_bucket|503|0.0005"] as? Double == 7)
        var h = LatencyHistogram.latency()
        for v in more { _ = h.record(v) }
        let under10ms = more.filter { h.lowestEquivalentForValue($0) <= 10_000 }.count
        #expect(parsed["meshprobe_request_duration_seconds_bucket|200|0.01"] as? Double == Double(under10ms))
        #expect(parsed["meshprobe_request_duration_seconds_bucket|200|+Inf"] as? Double == 1500)
    }

    @Test func aGRPCSeriesIsLabelledAsIstioLabelsIt() async throws {
        // UNAVAILABLE: response_code 200 with grpc_response_status 14; an HTTP series has the label empty.
        let (code, grpc) = SeriesLabels.codes(ResponseCode.grpc(.unavailable))
        #expect(code == 200 && grpc == "14")
        #expect(SeriesLabels.codes(503) == (503, nil))
        var stats = SeriesStats()
        stats.requests = 3
        let unavailable = SeriesLabels(sourceWorkload: "meshprobe", destinationWorkload: "ratings", responseCode: code, grpcResponseStatus: grpc,
                                       failureClass: "application:UNAVAILABLE")
        #expect(unavailable.code == ResponseCode.grpc(.unavailable))
        let http = SeriesLabels(sourceWorkload: "meshprobe", destinationWorkload: "ratings", responseCode: 503)
        #expect(http.code == 503)
        let export = PrometheusExport()
        export.update(IdentityMetrics(series: [unavailable: stats, http: stats]))
        let out = try await python("""
            import sys, json
            from prometheus_client.parser import text_string_to_metric_families
            print(json.dumps(sorted([s.labels['response_code'] + '/' + s.labels['grpc_response_status']
                                     for f in text_string_to_metric_families(sys.stdin.read()) for s in f.samples
                                     if s.name == 'meshprobe_requests_total'])))
            """, stdin: export.text())
        #expect(out.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == #"["200/14", "503/"]"#, "\(out.stderr)")
        // A result written before the label reads as HTTP.
        let old = try JSONDecoder().decode(SeriesLabels.self, from: Data(#"{"source_workload":"","source_principal":"","destination_service":"","destination_principal":"","destination_workload":"","destination_version":"","destination_cluster":"","route":"","response_code":503,"response_flags":"-","failure_class":"","connection_security_policy":"none"}"#.utf8))
        #expect(old.grpcResponseStatus == nil && old.code == 503)
    }

    @Test func theLiveEndpointServesTheExposition() async throws {
        let export = PrometheusExport()
        export.update(metrics([1000, 2000], code: 200))
        let server = try await MetricsServer.start(host: "127.0.0.1", port: 0, group: MultiThreadedEventLoopGroup.singleton) { export.text() }
        defer { Task { await server.stop() } }
        let port = try #require(server.localAddress?.port)
        let script = """
            import sys, urllib.request
            from prometheus_client.parser import text_string_to_metric_families
            body = urllib.request.urlopen('http://127.0.0.1:%s/metrics' % sys.argv[1], timeout=10).read().decode()
            print(sum(s.value for f in text_string_to_metric_families(body) for s in f.samples if s.name == 'meshprobe_requests_total'))
            try:
                urllib.request.urlopen('http://127.0.0.1:%s/other' % sys.argv[1], timeout=10)
            except urllib.error.HTTPError as e:
                print(e.code)
            """
        let out = try await python(script, [String(port)])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.split(separator: "\n").map { Double($0) } == [2, 404], "\(out.stdout)\(out.stderr)")
    }

    /// The real Pushgateway cannot run here (not packaged for Debian 12 nor on PyPI); a local HTTP server records
    /// the request instead, and the recorded body is parsed with prometheus_client.
    @Test func thePushPutsTheExpositionToTheJobsGroup() async throws {
        // A stand-in for the Pushgateway: answers 202, or 400 under /refuse.
        let recorder = try await RecordingHTTPServer.start { _, uri in .init(status: uri.hasPrefix("/refuse") ? 400 : 202) }
        defer { Task { await recorder.stop() } }
        let export = PrometheusExport()
        export.update(metrics([1000, 2000, 3000], code: 200))
        try await PushgatewayClient.push(export.text(), url: "http://127.0.0.1:\(recorder.port)/", job: "canary-check",
                                         group: MultiThreadedEventLoopGroup.singleton)
        let request = try #require(recorder.requests.first)
        #expect(request.method == "PUT")
        #expect(request.uri == "/metrics/job/canary-check")
        #expect(request.headers.first { $0.0 == "content-type" }?.1.hasPrefix("text/plain; version=0.0.4") == true)
        let out = try await python(Self.parser, stdin: request.body)
        #expect(out.status == 0, "\(out.stderr)")
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any])
        #expect(parsed["meshprobe_requests_total|200|"] as? Double == 3, "\(out.stdout)")
        // A gateway that refuses is an error that says so.
        await #expect(throws: PushgatewayClient.PushError.self) {
            try await PushgatewayClient.push("x", url: "http://127.0.0.1:\(recorder.port)/refuse", job: "j",
                                             group: MultiThreadedEventLoopGroup.singleton)
        }
    }
}
