import Foundation
import Histogram
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeSpec
@testable import MeshprobeReport

// Every file of this target sees the shared test support (processes, ports, waiting).
@_exported import MeshprobeTestSupport

/// The workload identity of the merge tests' results, and the series labels of its successful responses.
let mergeIdentity = WorkloadIdentity(identity: "spiffe://example.org/ns/a/sa/reviews", workload: "reviews", version: "v1", cluster: "east")
let mergeLabels = SeriesLabels(sourceWorkload: "meshprobe", destinationService: "127.0.0.1:8443", destinationPrincipal: mergeIdentity.identity,
                               destinationWorkload: "reviews", destinationVersion: "v1", destinationCluster: "east", responseCode: 200,
                               connectionSecurityPolicy: "mutual_tls")

/// A load result built from known samples: every sample a response of `identity` with `status`.
func result(_ latencies: [UInt64], identity: WorkloadIdentity, status: Int, labels: SeriesLabels) -> LoadResult {
    var r = LoadResult()
    var stats = SeriesStats()
    var identityStats = IdentityStats()
    for v in latencies {
        _ = r.latency.record(v)
        _ = r.serviceLatency.record(v)
        _ = stats.latency.record(v)
        _ = identityStats.latency.record(v)
    }
    stats.requests = latencies.count
    identityStats.requests = latencies.count
    r.responses = latencies.count
    if (200..<400).contains(status) { r.succeeded = latencies.count } else { r.failed = latencies.count }
    r.identities[identity] = identityStats
    r.metrics.series[labels] = stats
    r.elapsedSeconds = 1
    return r
}

/// Text a hostile or broken server could put in a stamp or an error message: markup, quotes, ampersands, control
/// characters, and bytes that are not UTF-8 (decoded as Swift does, to U+FFFD).
let hostile = "v2\"><script>alert('x')</script> & \u{01}\u{1B}[31m" + String(decoding: [0xFF, 0xFE, 0x41] as [UInt8], as: UTF8.self)

/// A load of `requests` responses over two identities (one named by `hostile`), with a per-second timeline.
func sampleLoad(requests: Int = 300, seconds: Int = 3, failedPerSecond: Int = 2) throws -> RunReport.Load {
    var result = LoadResult()
    result.requestsSent = requests
    result.responses = requests
    result.succeeded = requests - failedPerSecond * seconds
    result.failed = failedPerSecond * seconds
    result.elapsedSeconds = Double(seconds)
    for i in 0..<requests { result.latency.record(UInt64(500 + (i % 100) * 40)) }
    for (version, share) in [("v1", 0.9), (hostile, 0.1)] {
        var stats = IdentityStats()
        stats.requests = Int(Double(requests) * share)
        stats.succeeded = stats.requests
        for i in 0..<stats.requests { stats.latency.record(UInt64(400 + i * 10)) }
        result.identities[WorkloadIdentity(identity: "spiffe://lab/ns/x/sa/reviews", workload: "reviews", version: version, cluster: "c1")] = stats
    }
    for second in 0..<seconds {
        var bucket = TimelineBucket(second: second)
        bucket.sent = requests / seconds
        bucket.responses = requests / seconds
        bucket.failed = failedPerSecond
        bucket.succeeded = bucket.responses - failedPerSecond
        for i in 0..<bucket.responses { bucket.latency.record(UInt64(600 + i * (second + 1) * 5)) }
        result.timeline.append(TimelinePoint(bucket))
    }
    let configuration = LoadConfiguration(targets: [try LoadTarget(parsing: "http://127.0.0.1:8080/reviews")])
    return RunReport.Load(name: "route \(hostile)", result: result, configuration: configuration, startedAt: Date(timeIntervalSince1970: 1_800_000_000))
}

/// A game-day-shaped report with every status: a passing split, a failed SLO, an undecided outlier check with a
/// timeline, a step that could not run, and a skipped step; names and reasons carry hostile text.
func sampleReport(command: String = "gameday") throws -> RunReport {
    let split = RunReport.Check(
        kind: "split", name: "reviews canary \(hostile)", status: .passed, summary: "v1 90.2% (declared 90.0%) after 1840 requests",
        evidence: ["test: sequential probability ratio tests; tolerance 0.050"], seconds: 2.25,
        shares: [RunReport.Share(name: "v1", declared: 0.9, observed: 0.902, count: 1660),
                 RunReport.Share(name: hostile, declared: 0.1, observed: 0.098, count: 180)], tolerance: 0.05,
        trajectory: (1...46).map { i in
            let n = i * 40
            let v2 = i < 10 ? n / 4 : n * 98 / 1000
            return VerifyReport.TrajectoryPoint(samples: n, counts: ["v1": n - v2, hostile: v2])
        }, connections: 27)
    let slo = RunReport.Check(kind: "slo", name: "SLO: success rate >= 0.999", status: .failed,
                              reason: "success rate 0.97 < 0.999: 9 of 300 failed <with> \"quotes\" & ampersands",
                              summary: "observed 0.9700", evidence: ["point estimate over every request", "second line\twith a tab"], seconds: 3)
    let outlier = RunReport.Check(
        kind: "outlier_detection", name: "outlier detection (DestinationRule reviews): ejected", status: .undecided,
        reason: "could not make a workload fail: 403 \(hostile)", summary: "ejected 0", seconds: 4.5,
        timeline: [RunReport.Event(at: 0.1, text: "fault f1 set on https://127.0.0.1:1/: 503 to every request"),
                   RunReport.Event(at: 1.2, text: "reviews-v1 ejected after 5 consecutive errors (its last response)"),
                   RunReport.Event(at: 3.4, text: "reviews-v1 back after 2.200 s"),
                   RunReport.Event(at: 3.5, text: "fault f1 cleared")])
    let load = try sampleLoad()
    return RunReport(
        command: command, title: "reviews game day \(hostile)", inputs: ["gamedays/reviews.yaml"], version: "0.1.0-test",
        commandLine: ["meshprobe", command, "gamedays/reviews.yaml", "--junit", "out.xml"], startedAt: Date(timeIntervalSince1970: 1_800_000_000),
        seconds: 12.5, sections: [
            RunReport.Section(name: "baseline", offset: 0, seconds: 3, checks: [split], loads: [load]),
            RunReport.Section(name: "v1 fails", offset: 3, seconds: 3, notes: ["f1 on https://127.0.0.1:1/: status 503 (cleared)"], checks: [slo], loads: [load]),
            RunReport.Section(name: "eject v1", offset: 6, seconds: 4.5, checks: [outlier]),
            RunReport.Section(name: "breaker", offset: 10.5, seconds: 2, problem: "cannot reach the echo at https://127.0.0.1:1"),
            RunReport.Section(name: "after", offset: 12.5, seconds: 0, problem: "not run: aborted: step 'breaker' could not run", skipped: true),
        ], abortReason: "step 'breaker' could not run")
}

/// Where scripts/install-deps puts the Jenkins xunit plugin's junit-10.xsd versions (one directory per commit).
var junitSchemas: [String] {
    let dir = ProcessInfo.processInfo.environment["JUNIT_XSD_DIR"] ?? "/usr/local/share/meshprobe-test/junit-xsd"
    let commits = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
    return commits.sorted().map { "\(dir)/\($0)/junit-10.xsd" }.filter { FileManager.default.fileExists(atPath: $0) }
}
