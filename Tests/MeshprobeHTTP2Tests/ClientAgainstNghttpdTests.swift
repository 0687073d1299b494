import Foundation
import MeshprobeHTTP2
import NIOCore
import Testing

@Suite("Our client against nghttpd", .serialized, .timeLimit(.minutes(1)), .tags(.endToEnd))
struct ClientAgainstNghttpdTests {
    static let fileBytes: [UInt8] = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }

    private func withNghttpd(_ body: (Int) async throws -> Void) async throws {
        let root = try makeDocumentRoot(["data.bin": Self.fileBytes, "small.txt": Array("hi\n".utf8)])
        let server = try await NghttpdProcess.start(serving: root)
        defer {
            server.stop()
            try? FileManager.default.removeItem(atPath: root)
        }
        try await body(server.port)
    }

    @Test func getsAFileWithTheRightStatusAndBody() async throws {
        try await withNghttpd { port in
            let run = try await ClientRun.connect(
                port: port, requests: [getRequest("/data.bin", port: port)], collectBodies: true)
            let report = try await run.outcomes()
            guard case .response(let response) = report.outcomes[0] else {
                Issue.record("no response: \(report)")
                return
            }
            #expect(response.status == 200)
            #expect(response.bodyLength == Self.fileBytes.count)
            #expect(response.body.map { Array($0.readableBytesView) } == Self.fileBytes)
            #expect(response.headers.contains { $0.name == "content-length" && $0.value == "100000" })
            #expect(!response.headers.contains { $0.name.hasPrefix(":") })
            try await run.onLoop { $0.close(goAway: true) }
            let closed = try await run.closed()
            #expect(closed.closedCount == 1)
            #expect(closed.closedError == nil)
        }
    }

    @Test func getsNotFoundForAMissingFile() async throws {
        try await withNghttpd { port in
            let run = try await ClientRun.connect(port: port, requests: [getRequest("/missing", port: port)])
            let report = try await run.outcomes()
            #expect(report.outcomes[0]?.status == 404)
            try await run.channel.close()
        }
    }

    @Test func accountsForEveryOneOfTwoHundredRequestsOnOneConnection() async throws {
        try await withNghttpd { port in
            let requests = (0..<200).map { i in getRequest(i % 2 == 0 ? "/small.txt" : "/data.bin", port: port) }
            let run = try await ClientRun.connect(port: port, requests: requests)
            let report = try await run.outcomes()
            #expect(report.outcomes.count == 200)
            #expect(report.duplicateOutcomes == 0)
            #expect(report.outcomes.values.allSatisfy { $0.status == 200 })
            // nghttpd advertises 100 concurrent streams and refuses any above that, so 200 successes also show
            // that the cap was honoured.
            #expect(report.availableAtFirstReady == 100)
            #expect(report.maxInFlight > 1)
            let bytes = report.outcomes.values.reduce(0) { total, outcome in
                if case .response(let response) = outcome { return total + response.bodyLength }
                return total
            }
            #expect(bytes == 100 * 3 + 100 * Self.fileBytes.count)
            try await run.channel.close()
            let closed = try await run.closed()
            #expect(closed.closedCount == 1)
        }
    }

    @Test func postsABodyLargerThanTheDefaultWindow() async throws {
        try await withNghttpd { port in
            let body = ByteBuffer(bytes: Self.fileBytes + Self.fileBytes)
            let request = HTTP2Request(
                method: "POST", scheme: "http", authority: "127.0.0.1:\(port)", path: "/small.txt",
                headers: [HTTP2Header("content-type", "application/octet-stream")], body: body)
            let run = try await ClientRun.connect(port: port, requests: [request])
            let report = try await run.outcomes()
            #expect(report.outcomes[0]?.status == 200)
            try await run.channel.close()
        }
    }
}
