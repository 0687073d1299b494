import Foundation
import MeshprobeHTTP2
import NIOCore
import Testing

@Suite("Our server against h2load, nghttp and curl", .serialized, .timeLimit(.minutes(2)), .tags(.endToEnd))
struct ServerAgainstNghttp2ToolsTests {
    @Test func servesTwoThousandH2loadRequestsWithoutAFailure() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let result = try await run(
            "/usr/bin/h2load", ["-n", "2000", "-c", "4", "-m", "10", "http://127.0.0.1:\(server.port)/"], timeout: 60)
        let line = result.output.split(separator: "\n").first { $0.hasPrefix("requests:") } ?? ""
        // "requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored, 0 timeout"
        #expect(line.contains("2000 succeeded"), "\(result.output)")
        #expect(line.contains(" 0 failed"), "\(result.output)")
        #expect(line.contains(" 0 errored"), "\(result.output)")
        #expect(result.output.contains("status codes: 2000 2xx"), "\(result.output)")
    }

    @Test func showsResponseHeadersToNghttp() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let result = try await run(
            "/usr/bin/nghttp", ["-v", "-H", "x-probe: 1", "http://127.0.0.1:\(server.port)/hello?x=1"], timeout: 20)
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains(":status: 200"), "\(result.output)")
        #expect(result.output.contains("x-echo-path: /hello?x=1"), "\(result.output)")
        #expect(result.output.contains("x-echo-method: GET"), "\(result.output)")
        #expect(result.output.contains("content-length: 5"), "\(result.output)")
    }

    /// gRPC's shape: HEADERS, DATA without END_STREAM, trailers with END_STREAM; and a trailers-only answer.
    @Test func sendsTrailersAfterTheBodyAndTrailersOnlyResponsesToNghttp() async throws {
        let server = try await TestServer.start { request, writer in
            if request.path == "/only" {
                writer.respond(status: 200, headers: [HTTP2Header("grpc-status", "12")], body: nil, trailers: [])
            } else {
                // Larger than one frame, so the trailers follow several DATA frames.
                writer.respond(status: 200, headers: [HTTP2Header("content-type", "application/grpc")],
                               body: ByteBuffer(repeating: 0x61, count: 40_000), trailers: [HTTP2Header("grpc-status", "0"), HTTP2Header("grpc-message", "done")])
            }
        }
        defer { Task { await server.stop() } }
        // nghttp's one request is on stream 13 (after its PRIORITY anchors).
        let full = try await run("/usr/bin/nghttp", ["-v", "-n", "http://127.0.0.1:\(server.port)/full"], timeout: 20)
        #expect(full.status == 0, "\(full.output)")
        let frames = full.output.split(separator: "\n").filter { $0.contains("recv ") && $0.contains("frame <") && $0.contains("stream_id=13>") }
        let data = frames.filter { $0.contains("recv DATA") }
        #expect(data.count >= 3, "\(full.output)")
        // nghttp prints a frame's flags: END_STREAM is 0x01, END_HEADERS 0x04.
        #expect(data.allSatisfy { $0.contains("flags=0x00") }, "\(full.output)")
        let last = try #require(frames.last, "\(full.output)")
        #expect(last.contains("recv HEADERS") && last.contains("flags=0x05"), "\(full.output)")
        #expect(full.output.contains("grpc-status: 0") && full.output.contains("grpc-message: done"), "\(full.output)")
        #expect(!full.output.contains("content-length"), "\(full.output)")

        let only = try await run("/usr/bin/nghttp", ["-v", "-n", "http://127.0.0.1:\(server.port)/only"], timeout: 20)
        let onlyFrames = only.output.split(separator: "\n").filter { $0.contains("recv ") && $0.contains("frame <") && $0.contains("stream_id=13>") }
        #expect(onlyFrames.count == 1 && onlyFrames[0].contains("recv HEADERS") && onlyFrames[0].contains("flags=0x05"), "\(only.output)")
        #expect(only.output.contains("grpc-status: 12"), "\(only.output)")
    }

    @Test func echoesARequestBodyToCurl() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let payload = String(repeating: "meshprobe-", count: 20_000)  // 200 kB: several windows and frames
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-h2-\(UUID()).txt")
        try Data(payload.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let result = try await run(
            "/usr/bin/curl",
            ["-s", "--http2-prior-knowledge", "--data-binary", "@\(file.path)", "http://127.0.0.1:\(server.port)/post"],
            timeout: 20)
        #expect(result.status == 0)
        #expect(result.output == payload)
        let headers = try await run(
            "/usr/bin/curl", ["-s", "-i", "--http2-prior-knowledge", "http://127.0.0.1:\(server.port)/x"], timeout: 20)
        #expect(headers.output.hasPrefix("HTTP/2 200"), "\(headers.output)")
        #expect(headers.output.contains("x-echo-method: GET"), "\(headers.output)")
    }
}
