import Foundation
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeSpec
import NIOCore
import NIOPosix
import Testing

extension EndToEnd {
    /// Peers that accept a connection and then never let it carry a request, and a rate too low for the run's
    /// duration: the run must still end by itself, with the reason counted (each of these once hung `load -n N`).
    @Suite(.timeLimit(.minutes(1)), .tags(.timing)) struct HostilePeerTests {
    /// A loopback server that accepts connections and, when `zeroStreams`, sends an HTTP/2 SETTINGS frame allowing
    /// no concurrent streams; otherwise it never sends a byte.
    func server(zeroStreams: Bool) async throws -> any Channel {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if zeroStreams { try channel.pipeline.syncOperations.addHandler(ZeroStreamsSettings()) }
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func timed(_ body: () async throws -> LoadResult) async throws -> (LoadResult, Duration) {
        let clock = ContinuousClock()
        let start = clock.now
        let result = try await body()
        return (result, clock.now - start)
    }

    @Test func aPeerThatNeverSendsSettingsEndsTheRunWithConnectTimeouts() async throws {
        let peer = try await server(zeroStreams: false)
        defer { peer.close(promise: nil) }
        let port = try #require(peer.localAddress?.port)
        let (result, elapsed) = try await timed {
            try await runLoad(["http://127.0.0.1:\(port)/"], requests: 3, connections: 1, streams: 1) { $0.plan.connectTimeout = 0.3 }
        }
        #expect(elapsed < .seconds(10), "\(elapsed)")
        #expect(result.succeeded == 0)
        #expect(result.connectionsEstablished >= 1, "the peer accepted: the test exercised the stage after connect")
        #expect((result.connectionFailures[.connectTimeout] ?? 0) >= 1, "\(result.connectionFailures)")
        #expect(result.errors.values.reduce(0, +) == 3, "every request is counted: \(result.errors)")
    }

    @Test func aPeerThatNeverAnswersTheTLSHandshakeEndsTheRun() async throws {
        let peer = try await server(zeroStreams: false)
        defer { peer.close(promise: nil) }
        let port = try #require(peer.localAddress?.port)
        let pki = try LabPKIFixture()
        let client = try pki.svid("productpage", uris: [pki.id("productpage")])
        let tls = try pki.clientTLS(client, expect: nil, alpn: ["h2"])
        let (result, elapsed) = try await timed {
            try await runLoad(["https://127.0.0.1:\(port)/"], tls: tls, requests: 2, connections: 1, streams: 1) { $0.plan.connectTimeout = 0.3 }
        }
        #expect(elapsed < .seconds(10), "\(elapsed)")
        #expect(result.succeeded == 0)
        #expect(result.tlsHandshakes == 0)
        #expect((result.connectionFailures[.connectTimeout] ?? 0) >= 1, "\(result.connectionFailures)")
    }

    @Test func aPeerAllowingNoStreamsIsAProtocolErrorNotAWait() async throws {
        let peer = try await server(zeroStreams: true)
        defer { peer.close(promise: nil) }
        let port = try #require(peer.localAddress?.port)
        let (result, elapsed) = try await timed {
            try await runLoad(["http://127.0.0.1:\(port)/"], requests: 3, connections: 1, streams: 1) { $0.plan.connectTimeout = 2 }
        }
        #expect(elapsed < .seconds(10), "\(elapsed)")
        #expect(result.succeeded == 0)
        #expect((result.connectionFailures[.protocolError] ?? 0) >= 1, "\(result.connectionFailures)")
    }

    /// A template can render what no static check sees: a header value with CR LF (here from the environment). Each
    /// such request is counted as not sent, on HTTP/1.1 (whose encoder refused it, and the run hung) and HTTP/2.
    @Test(arguments: [HTTPVersionPreference.http1, .http2])
    func aTemplateThatRendersAnUnsendableHeaderIsCountedNotSent(_ version: HTTPVersionPreference) async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let (result, elapsed) = try await timed {
            try await runLoad(["http://127.0.0.1:\(echo.port)/"], requests: 3, connections: 1, streams: 1, http: version) {
                $0.plan.headers = [HTTP2HeaderPair("x-a", "{{env:EVIL}}")]
                $0.plan.environment = ["EVIL": "a\r\nx-injected: 1"]
                $0.plan.requestTimeout = 1
            }
        }
        #expect(elapsed < .seconds(5), "\(elapsed)")
        #expect(result.errors[.notSent] == 3, "\(result.errors)")
    }

    /// A body kept for extraction is bounded on HTTP/1.1 as on HTTP/2 (64 MiB): a server that sends more fails the
    /// request instead of taking the generator's memory.
    @Test func anEndlessHTTP1BodyKeptForExtractionIsCutOff() async throws {
        let peer = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(HugeBody()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { peer.close(promise: nil) }
        let port = try #require(peer.localAddress?.port)
        let (result, elapsed) = try await timed {
            try await runLoad(["http://127.0.0.1:\(port)/"], requests: 1, connections: 1, streams: 1, http: .http1) {
                $0.keepLastStepResponse = true
                $0.plan.requestTimeout = 20
            }
        }
        #expect(elapsed < .seconds(15), "\(elapsed)")
        #expect(result.succeeded == 0)
        #expect(result.errors[.connectionLost] == 1, "\(result.errors)")
        #expect(result.errorExplanations[.connectionLost]?.contains("64 MiB") == true, "\(result.errorExplanations)")
    }

    @Test func aRateBelowOneArrivalPerRunEndsAtTheDuration() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let (result, elapsed) = try await timed {
            try await runLoad(["http://127.0.0.1:\(echo.port)/"], connections: 1, streams: 1) {
                $0.plan.requests = nil
                $0.plan.duration = 0.5
                $0.plan.model = .open(rate: LoadProfile(start: 0.1), arrivals: .uniform)
            }
        }
        // The second arrival is due at 10 s, after the end of the run: nothing to wait for.
        #expect(elapsed < .seconds(5), "\(elapsed)")
        #expect(result.succeeded == 1)
    }

    /// Each request is counted as not sent, the run ends at its deadline, and the event loop keeps reading its
    /// sockets meanwhile (two such runs at once on one event loop group both connect and count).
    @Test(arguments: [HTTPVersionPreference.http2, .http1])
    func aRunWhoseEveryRenderedRequestIsUnsendableEndsAtItsDuration(http: HTTPVersionPreference) async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let rows = try CSVTable(parsing: "value\n\"a\nx-evil: 1\"\n", source: "rows.csv")
        let (result, elapsed) = try await timed {
            try await runLoad(["http://127.0.0.1:\(echo.port)/"], connections: 1, streams: 4, http: http) {
                $0.plan.requests = nil
                $0.plan.duration = 0.5
                $0.plan.csv = rows
                $0.plan.headers = [HTTP2HeaderPair("x-row", "{{csv:value}}")]
            }
        }
        #expect(elapsed < .seconds(5), "\(elapsed)")
        #expect(result.succeeded == 0)
        #expect((result.errors[.notSent] ?? 0) > 0, "\(result.errors) \(result.connectionFailures), \(result.connectionsEstablished) connections")
        #expect(result.errorExplanations[.notSent]?.contains("CR, LF or NUL") == true, "\(result.errorExplanations)")
    }
    }
}

/// Answers the first request with a 100 MB body, in 1 MiB writes.
private final class HugeBody: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var answered = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        answered = true
        context.write(wrapOutboundOut(context.channel.allocator.buffer(string: "HTTP/1.1 200 OK\r\ncontent-length: 100000000\r\n\r\n")),
                      promise: nil)
        let chunk = context.channel.allocator.buffer(repeating: UInt8(ascii: "x"), count: 1 << 20)
        for _ in 0..<95 { context.write(wrapOutboundOut(chunk), promise: nil) }
        context.flush()
    }
}

/// The server's connection preface: one SETTINGS frame, SETTINGS_MAX_CONCURRENT_STREAMS = 0.
private final class ZeroStreamsSettings: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelActive(context: ChannelHandlerContext) {
        let frame: [UInt8] = [0, 0, 6, 0x4, 0, 0, 0, 0, 0, 0, 0x3, 0, 0, 0, 0]
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: frame)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

extension EndToEnd {
    /// Flags and values that once crashed the process, hung it, or lost the result after the load: refused up front
    /// with exit 2 and the flag named.
    @Suite struct HostileInputTests {
    func refuses(_ arguments: [String], naming needle: String) async throws {
        let out = try await run(meshprobeBinary, arguments, timeout: 30)
        #expect(out.status == 2, "\(arguments): \(out.status) \(out.stdout)\(out.stderr)")
        #expect(out.stderr.contains(needle), "\(arguments): \(out.stderr)")
        #expect(!out.stdout.contains("requests:"), "no load ran: \(out.stdout)")
    }

    @Test func hugeAndTinyNumbersAreBadInput() async throws {
        let port = try freePort()
        let url = "http://127.0.0.1:\(port)/"
        // The flag as typed: `-d`, not `--duration`.
        try await refuses(["load", url, "-n", "5", "-d", "99999999999999999999h"], naming: "-d: '99999999999999999999h': must be at most")
        try await refuses(["load", url, "--duration", "18446744074s"], naming: "--duration")
        try await refuses(["load", url, "-d", "1s", "--rate", "1e308"], naming: "--rate")
        try await refuses(["load", url, "-d", "1s", "--rate", "1e-10"], naming: "--rate")
        try await refuses(["load", url, "--rate", "10", "--stage", "1s:1e308"], naming: "--rate stage 1 target")
        try await refuses(["load", url, "-n", "5", "--warmup", "9000h"], naming: "--warmup")
        try await refuses(["echo", "--h2c", "--listen", "127.0.0.1:\(port)", "--max-delay", "99999999999999999999h"], naming: "--max-delay")
        try await refuses(["pki", "ca", "--trust-domain", "example.org", "--out", "/tmp/meshprobe-never", "--days", "99999999999999"],
                          naming: "--days")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/meshprobe-never"))
    }

    /// A negative number is a value, refused by its own rule, not taken for a flag ("Missing value").
    @Test func negativeNumbersAreRefusedByTheirRule() async throws {
        let url = "http://127.0.0.1:\(try freePort())/"
        try await refuses(["load", url, "-d", "1s", "--rate", "-5"], naming: "--rate: '-5': expected requests per second")
        try await refuses(["load", url, "-n", "-5"], naming: "-n must be at least 1")
        try await refuses(["load", url, "-n", "5", "-c", "-2"], naming: "-c must be at least 1")
        try await refuses(["load", url, "-n", "5", "--churn", "-3"], naming: "--churn: '-3'")
        try await refuses(["load", url, "--stage", "-1s:10"], naming: "'-1s': expected a positive duration")
    }

    @Test func requestsThatCannotBeSentAreBadInput() async throws {
        let url = "http://127.0.0.1:\(try freePort())/"
        try await refuses(["load", url, "-n", "2", "--http", "1.1", "-H", "x-a: b\r\nx-evil: 1"], naming: "CR, LF or NUL")
        try await refuses(["load", url, "-n", "2", "--method", "GE T"], naming: "--method: 'GE T': must be an HTTP method token")
        try await refuses(["load", url + "a b", "-n", "2"], naming: "percent-encode")
        try await refuses(["load", url, "-n", "2", "-H", "content-length: 99999"], naming: "from the body")
    }

    @Test func flagsThatContradictEachOtherAreBadInput() async throws {
        let port = try freePort()
        try await refuses(["load", "https://127.0.0.1:\(port)/", "-n", "1", "-k", "--expect-peer", "spiffe://example.org/ns/a/sa/b"],
                          naming: "-k (insecure) skips")
        try await refuses(["load", "http://127.0.0.1:\(port)/", "-n", "1", "--sni", "reviews.example"], naming: "--sni needs an https:// or grpcs:// URL")
        try await refuses(["echo", "--h2c", "--listen", "127.0.0.1:\(port)", "--workload", "evil\r\nx-injected: 1"], naming: "--workload")
        try await refuses(["echo", "--h2c", "--listen", "127.0.0.1:\(port)", "--svid-dir", "/tmp"], naming: "--h2c serves plaintext")
    }

    /// Text from a file (or from a server) cannot drive the terminal: every printed line is defanged. Here a bad
    /// duration is quoted in the error message, escape sequences and all.
    @Test func escapeSequencesInAFileNeverReachTheTerminal() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("escape-\(UUID().uuidString).yaml")
        try Data("target: http://127.0.0.1:1/\nload:\n  duration: \"\\e]0;pwned\\a\\e[2K\\rPASS\"\n".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let out = try await run(meshprobeBinary, ["run", file.path, "--check"])
        #expect(out.status == 2, "\(out.stdout)\(out.stderr)")
        #expect(out.stderr.contains("load.duration"), "\(out.stderr)")
        let raw = Array((out.stdout + out.stderr).unicodeScalars)
        #expect(!raw.contains { $0.value == 0x1B || $0.value == 0x07 || $0.value == 0x0D }, "\(out.stderr.debugDescription)")
        #expect(out.stderr.contains("\u{FFFD}]0;pwned"), "\(out.stderr.debugDescription)")
    }

    @Test func theSameResultTwiceIsNotMerged() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("merge-twice-\(UUID().uuidString).json")
        try Data("{}".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let copy = file.path + ".copy"
        try FileManager.default.copyItem(atPath: file.path, toPath: copy)
        defer { try? FileManager.default.removeItem(atPath: copy) }
        try await refuses(["merge", file.path, copy], naming: "the same result as \(file.path)")
    }

    @Test func everyOutputPathIsCheckedBeforeTheLoad() async throws {
        let url = "http://127.0.0.1:\(try freePort())/"
        for flag in ["--json", "--prometheus", "--smp", "--hgrm"] {
            try await refuses(["load", url, "-n", "3", flag, "/nonexistent-dir/out"], naming: "\(flag) '/nonexistent-dir/out'")
        }
    }
    }
}
