import Foundation
import Histogram
import MeshprobeHTTP2
import MeshprobeLoad
import MeshprobeSpec
import Testing

extension EndToEnd {
    /// HTTP/2 write coalescing (`--coalesce-window`) in the load engine: a held request is timed from when it is written,
    /// so the hold is not in its latency.
    @Suite(.timeLimit(.minutes(1)), .tags(.timing)) struct WriteCoalescingTests {
    @Test func aHeldRequestIsTimedFromItsWrite() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        // One connection, two streams, half of the responses 300 ms late (the echo draws each one). A fast response
        // that follows a recent one frees a request while the other stream may be waiting for a slow response; that
        // request is held for the next read burst, and only the coalescer's 100 ms deadline sends it before the slow
        // response arrives.
        let url = "http://127.0.0.1:\(echo.port)/?delay=300ms:50"
        let result = try await runLoad([url], requests: 60, connections: 1, streams: 2) { configuration in
            configuration.plan.coalesceWindow = 0.1
            // One connection, two streams, an idle loop: the default policy would never hold.
            configuration.coalescePolicy = .always
        }
        #expect(result.succeeded == 60)
        // Timed from its write, no request takes much longer than the 300 ms delay (the deadline itself is checked
        // in MeshprobeHTTP2Tests' WriteCoalescerTests).
        #expect(result.latency.max < 450_000, "a request took \(result.latency.max) us")
        // A held request is timed from when it is written: fast ones show their own round trip (about 1 ms), not the
        // 100 ms they were held, and slow ones about 300 ms. Timed with the hold, several land in between; a loaded
        // test machine may put one fast request there by itself.
        let between = result.latency.count(within: 80_000...250_000)
        #expect(between <= 1, "\(between) requests took 80-250 ms: timed with the hold")
        #expect(result.latency.valueAtPercentile(95) >= 300_000, "no slow responses: the test did not exercise holding")
        #expect(result.coalescedRequests > 0, "no request was held")
    }

    @Test func offSendsAfterEveryReadBurst() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/"], requests: 300, connections: 2, streams: 10) { configuration in
            configuration.plan.coalesceWindow = 0
        }
        #expect(result.succeeded == 300)
        #expect(result.coalescedRequests == 0)
    }

    /// Unset, the window is 500 us in the closed model and off in the open model; set, it is what it says.
    @Test func theDefaultWindowIsTheClosedModels() throws {
        var configuration = LoadConfiguration(targets: [try LoadTarget(parsing: "http://127.0.0.1:1/")])
        #expect(configuration.plan.effectiveCoalesceWindow == 0.0005)
        configuration.plan.coalesceWindow = 0
        #expect(configuration.plan.effectiveCoalesceWindow == 0)
        configuration.plan.model = .open(rate: .constant(100), arrivals: .uniform)
        configuration.plan.coalesceWindow = nil
        #expect(configuration.plan.effectiveCoalesceWindow == 0)
        configuration.plan.coalesceWindow = 0.001
        #expect(configuration.plan.effectiveCoalesceWindow == 0.001)
    }
    }
}
