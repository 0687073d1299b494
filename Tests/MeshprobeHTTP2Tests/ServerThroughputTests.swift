import Foundation
import MeshprobeHTTP2
import Testing

/// A manual throughput check, off unless MESHPROBE_H2_PERF=1 (use with `swift test -c release`).
@Suite("Server throughput", .timeLimit(.minutes(2)), .tags(.endToEnd))
struct ServerThroughputTests {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["MESHPROBE_H2_PERF"] == "1"))
    func printsH2loadThroughputForTwoHundredThousandRequests() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let result = try await run(
            "/usr/bin/h2load", ["-n", "200000", "-c", "4", "-m", "100", "-t", "1", "http://127.0.0.1:\(server.port)/"],
            timeout: 100)
        print(result.output.split(separator: "\n").filter { $0.hasPrefix("finished") || $0.hasPrefix("requests") }
            .joined(separator: "\n"))
        #expect(result.output.contains("200000 succeeded"))
    }
}
