import Foundation
import Histogram
import MeshprobeLoad
import Testing

/// HTTP/2 write coalescing (`--coalesce-window`): requests held for the next read burst leave within the window even
/// when the next response is slow, so a fast request is never held behind a slow one.
@Suite(.timeLimit(.minutes(1))) struct WriteCoalescingTests {
    @Test func aHeldRequestLeavesWithinTheWindowWhenTheNextResponseIsSlow() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        // One connection, two streams, half of the responses 300 ms late (the echo draws each one). A fast response
        // that follows a recent one frees a request while the other stream may be waiting for a slow response; that
        // request is held for the next read burst, and only the coalescer's 20 ms deadline sends it before the slow
        // response arrives.
        let url = "http://127.0.0.1:\(echo.port)/?delay=300ms:50"
        let result = try await runLoad([url], requests: 60, connections: 1, streams: 2) { configuration in
            configuration.coalesceWindow = 0.02
        }
        #expect(result.succeeded == 60)
        // Held until a slow response, a fast request would take about 300 ms; with the deadline, at most about 20 ms
        // more than its own round trip. The 25th percentile lies among the fast ones (16 or more of 60 are fast with
        // probability 0.9999).
        let p25 = result.latency.valueAtPercentile(25)
        #expect(p25 < 150_000, "fast requests took \(p25) us: held behind slow ones")
        // A slow request held behind another slow one would take up to 600 ms; with the deadline at most about 320.
        #expect(result.latency.max < 450_000, "a request took \(result.latency.max) us: held until the next response")
        #expect(result.latency.valueAtPercentile(95) >= 300_000, "no slow responses: the test did not exercise holding")
    }

    @Test func offSendsAfterEveryReadBurst() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/"], requests: 300, connections: 2, streams: 10) { configuration in
            configuration.coalesceWindow = 0
        }
        #expect(result.succeeded == 300)
    }
}
