import Foundation
import MeshprobeHTTP2
import NIOCore
import NIOPosix
import Testing

@Suite("Our client against our server", .timeLimit(.minutes(1)), .tags(.endToEnd))
struct ClientAgainstOurServerTests {
    @Test func deliversResponsesTheServerSendsLater() async throws {
        let server = try await TestServer.start { request, writer in
            writer.eventLoop.scheduleTask(in: .milliseconds(30)) {
                writer.respond(status: 201, headers: [HTTP2Header("x-late", "yes")], body: ByteBuffer(string: request.path))
            }
        }
        defer { Task { await server.stop() } }
        let requests = (0..<20).map { getRequest("/late/\($0)", port: server.port) }
        let run = try await ClientRun.connect(port: server.port, requests: requests, collectBodies: true)
        let report = try await run.outcomes()
        #expect(report.outcomes.count == 20)
        for (token, outcome) in report.outcomes {
            guard case .response(let response) = outcome else {
                Issue.record("token \(token): \(outcome)")
                continue
            }
            #expect(response.status == 201)
            #expect(response.headers.contains(HTTP2Header("x-late", "yes")))
            #expect(response.body.map { String(buffer: $0) } == "/late/\(token)")
        }
        try await run.channel.close()
    }

    /// A request sent with `streamingData` gets its body chunk by chunk (a server-streaming gRPC call reads its
    /// messages as they come) and a final response without one; the others on the connection are collected whole.
    @Test func handsOverTheDataOfAStreamedRequestChunkByChunk() async throws {
        let body = ByteBuffer(bytes: (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let server = try await TestServer.start { _, writer in writer.respond(status: 200, headers: [], body: body) }
        defer { Task { await server.stop() } }
        let requests = ["/streamed", "/whole"].map { getRequest($0, port: server.port) }
        let run = try await ClientRun.connect(port: server.port, requests: requests, collectBodies: true, streaming: [0])
        let report = try await run.outcomes()
        let chunks = try await run.chunks()
        let streamed = try #require(chunks[0])
        #expect(streamed.count > 1, "one chunk per DATA frame (16 KiB at most): \(streamed.count)")
        var joined = ByteBuffer()
        for var chunk in streamed { joined.writeBuffer(&chunk) }
        #expect(joined == body)
        guard case .response(let first)? = report.outcomes[0], case .response(let second)? = report.outcomes[1] else {
            Issue.record("\(report.outcomes)")
            return
        }
        #expect(first.body == nil && first.bodyLength == body.readableBytes)
        #expect(chunks[1] == nil && second.body == body)
        try await run.channel.close()
    }

    /// The load engine's handlers collect no bodies: on them a streamed request is an ordinary one.
    @Test func streamsNothingOnAHandlerThatCollectsNoBodies() async throws {
        let server = try await TestServer.start { request, writer in echo(request, writer) }
        defer { Task { await server.stop() } }
        let run = try await ClientRun.connect(port: server.port, requests: [getRequest("/a", port: server.port)], streaming: [0])
        let report = try await run.outcomes()
        #expect(report.outcomes[0]?.status == 200)
        #expect(try await run.chunks().isEmpty)
        try await run.channel.close()
    }

    @Test func reportsAStreamTheServerResets() async throws {
        let server = try await TestServer.start { request, writer in
            if request.path == "/reset" {
                writer.reset(errorCode: 8)  // CANCEL
            } else {
                echo(request, writer)
            }
        }
        defer { Task { await server.stop() } }
        let requests = ["/a", "/reset", "/b"].map { getRequest($0, port: server.port) }
        let run = try await ClientRun.connect(port: server.port, requests: requests)
        let report = try await run.outcomes()
        #expect(report.outcomes[0]?.status == 200)
        #expect(report.outcomes[1] == .failure(.reset(errorCode: 8)))
        #expect(report.outcomes[2]?.status == 200)
        try await run.onLoop { #expect($0.isUsable) }
        try await run.channel.close()
    }

    @Test func failsEveryInFlightStreamOnceWhenTheServerDropsTheConnection() async throws {
        let server = try await TestServer.start { request, writer in
            // Nobody gets an answer; the fifth request pulls the plug.
            if request.path == "/4" { writer.closeConnection() }
        }
        defer { Task { await server.stop() } }
        let requests = (0..<10).map { getRequest("/\($0)", port: server.port) }
        let run = try await ClientRun.connect(port: server.port, requests: requests)
        let report = try await run.closed()
        #expect(report.outcomes.count == 10)
        #expect(report.outcomes.values.allSatisfy { $0 == .failure(.connectionLost) })
        #expect(report.duplicateOutcomes == 0)
        #expect(report.closedCount == 1)
        #expect(report.outcomesAfterClose == 0)
        try await run.onLoop {
            #expect(!$0.isUsable)
            #expect($0.availableStreams == 0)
            #expect(!$0.send(HTTP2Request(scheme: "http", authority: "x", path: "/"), token: 99))
        }
    }

    @Test func completesStreamsBelowGoAwayAndRefusesTheRest() async throws {
        let server = try await TestServer.start { request, writer in
            if request.path == "/goaway" { writer.goAway(lastStreamID: writer.streamID) }
            writer.eventLoop.scheduleTask(in: .milliseconds(50)) { echo(request, writer) }
        }
        defer { Task { await server.stop() } }
        // Stream ids 1, 3, 5 (/goaway), 7, 9.
        let requests = ["/a", "/b", "/goaway", "/c", "/d"].map { getRequest($0, port: server.port) }
        let run = try await ClientRun.connect(port: server.port, requests: requests)
        let report = try await run.closed()
        #expect(report.goAwayCodes == [0])
        #expect(report.usableAfterGoAway == false)
        #expect(report.outcomes[0]?.status == 200)
        #expect(report.outcomes[1]?.status == 200)
        #expect(report.outcomes[2]?.status == 200)
        #expect(report.outcomes[3] == .failure(.refusedByGoAway(lastStreamID: 5, errorCode: 0)))
        #expect(report.outcomes[4] == .failure(.refusedByGoAway(lastStreamID: 5, errorCode: 0)))
        #expect(report.closedCount == 1)
        #expect(report.closedError == nil)
    }

    @Test func closesGracefullyFromTheClientAfterInFlightStreamsComplete() async throws {
        let server = try await TestServer.start { request, writer in
            writer.eventLoop.scheduleTask(in: .milliseconds(50)) { echo(request, writer) }
        }
        defer { Task { await server.stop() } }
        let requests = (0..<3).map { getRequest("/\($0)", port: server.port) }
        let run = try await ClientRun.connect(port: server.port, requests: requests)
        // Wait until all three are on the wire (submitted and flushed once the server's SETTINGS came: polled, not a
        // fixed sleep, which a loaded machine outran), then ask for a graceful close while they are in flight.
        let deadline = ContinuousClock.now + .seconds(5)
        while try await run.report().maxInFlight < 3, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(2))
        }
        #expect(try await run.report().maxInFlight == 3)
        try await run.onLoop { $0.close(goAway: true) }
        let report = try await run.closed()
        #expect(report.outcomes.values.filter { $0.status == 200 }.count == 3)
        #expect(report.closedCount == 1)
    }

    @Test func capsAvailableStreamsAtThePeersMaxConcurrentStreams() async throws {
        let open = NIOLockedCounter()
        var settings = HTTP2Settings()
        settings.maxConcurrentStreams = 2
        let server = try await TestServer.start(settings: settings) { request, writer in
            open.add(1)
            writer.eventLoop.scheduleTask(in: .milliseconds(10)) {
                open.add(-1)
                echo(request, writer)
            }
        }
        defer { Task { await server.stop() } }
        let requests = (0..<10).map { getRequest("/\($0)", port: server.port) }
        let run = try await ClientRun.connect(port: server.port, requests: requests)
        let report = try await run.outcomes()
        #expect(report.availableAtFirstReady == 2)
        #expect(report.outcomes.values.allSatisfy { $0.status == 200 })
        #expect(report.outcomes.count == 10)
        #expect(open.maximum <= 2)
        try await run.channel.close()
    }
}

/// A counter that remembers its maximum, shared between a test and its server's event loop.
// @unchecked Sendable: every access to the two vars goes through `lock`.
final class NIOLockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    private var max = 0
    func add(_ delta: Int) {
        lock.lock()
        value += delta
        max = Swift.max(max, value)
        lock.unlock()
    }
    var maximum: Int {
        lock.lock()
        defer { lock.unlock() }
        return max
    }
}
