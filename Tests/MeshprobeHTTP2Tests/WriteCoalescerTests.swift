import Dispatch
@testable import MeshprobeHTTP2
import NIOCore
import NIOPosix
import Testing

/// `HTTP2WriteCoalescer` against our server: a held request leaves at the coalescer's deadline when the only other
/// response is slow, and it is reported as written then; the policy's conditions keep it from holding.
@Suite(.timeLimit(.minutes(1)), .tags(.endToEnd, .timing)) struct WriteCoalescerTests {
    @Test func aHeldRequestLeavesAtTheDeadlineNotWithTheSlowResponse() async throws {
        let outcome = try await runChain(policy: .always)
        // Every fast request is submitted in the read burst of a fast response, with "/slow" still in flight: it is
        // held, and only the deadline sends it, 100 ms later (wide, for a loaded test machine); held until the slow
        // response, it would take up to 1 s.
        #expect(outcome.heldWrites >= 1, "no request was held: the test did not exercise the coalescer")
        #expect(outcome.slowestFastMilliseconds < 600, "a held request waited \(outcome.slowestFastMilliseconds) ms")
    }

    /// With one connection on the loop a hold leaves the loop idle: the default policy asks for two.
    @Test func aLoneConnectionDoesNotHold() async throws {
        let policy = HTTP2WriteCoalescer.Policy(minimumConnections: 2, minimumOthersInFlight: 1, busyThreshold: 0, busyFloor: 0)
        let outcome = try await runChain(policy: policy)
        // The coalescer's own count: how long a request took is the machine's speed, no evidence of a hold.
        #expect(outcome.heldWrites == 0, "a request waited \(outcome.slowestFastMilliseconds) ms")
    }

    /// Only "/slow" is in flight besides each fast request: fewer than the two others this policy asks for.
    @Test func tooFewOthersInFlightDoNotHold() async throws {
        let policy = HTTP2WriteCoalescer.Policy(minimumConnections: 1, minimumOthersInFlight: 2, busyThreshold: 0, busyFloor: 0)
        let outcome = try await runChain(policy: policy)
        #expect(outcome.heldWrites == 0)
    }

    /// The loop's busy share: starts holding at the threshold, goes on down to the floor, reads the CPU clock once
    /// per sample period.
    @Test func loopLoadHysteresis() {
        var load = LoopLoad(busyThreshold: 0.7, busyFloor: 0.55)
        var reads = 0
        let ms: UInt64 = 1_000_000
        func sample(_ wall: UInt64, _ cpu: UInt64) -> Bool {
            load.isBusy(wallNanoseconds: wall * ms, cpuNanoseconds: { reads += 1; return cpu * ms })
        }
        #expect(sample(1000, 0) == false)  // the first reading only starts a period
        #expect(sample(1003, 3) == false)  // within the period: no clock read, no change
        #expect(reads == 1)
        #expect(sample(1005, 3) == false)  // 3 of 5 ms: 60%, below the threshold
        #expect(sample(1010, 7) == true)   // 4 of 5: 80%
        #expect(sample(1015, 10) == true)  // 3 of 5: 60%, above the floor
        #expect(sample(1020, 12) == false) // 2 of 5: 40%, below the floor
        #expect(sample(1025, 15) == false) // 60% again: under the threshold, which applies once idle
        #expect(sample(2025, 15) == false) // a long idle gap
        #expect(reads == 7)
    }
}

/// Runs the chain of fast requests (see `ChainDelegate`) against a server that answers "/slow" after 1 s and
/// everything else at once, on one connection with a 100 ms coalescer of the given policy.
private func runChain(policy: HTTP2WriteCoalescer.Policy) async throws -> ChainDelegate.Outcome {
    let server = try await TestServer.start { request, writer in
        if request.path == "/slow" {
            writer.eventLoop.scheduleTask(in: .seconds(1)) { echo(request, writer) }
        } else {
            echo(request, writer)
        }
    }
    defer { Task { await server.stop() } }
    let loop = MultiThreadedEventLoopGroup.singleton.next()
    let done = loop.makePromise(of: ChainDelegate.Outcome.self)
    let channel = try await ClientBootstrap(group: loop)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                let coalescer = HTTP2WriteCoalescer(eventLoop: channel.eventLoop, window: .milliseconds(100), policy: policy)
                let delegate = ChainDelegate(port: server.port, done: done)
                try channel.pipeline.syncOperations.addHandler(
                    HTTP2ClientConnectionHandler(writeCoalescer: coalescer, delegate: delegate))
            }
        }
        .connect(host: "127.0.0.1", port: server.port).get()
    defer { channel.close(promise: nil) }
    return try await wait(done.futureResult, seconds: 10, for: "the chain of fast requests")
}

/// Sends "/slow" and a fast request, then a fast request after each fast response, without flushing (as the load
/// engine does in a read burst), until five fast ones have answered; reports the slowest fast one.
private final class ChainDelegate: HTTP2ClientDelegate {
    struct Outcome: Sendable {
        /// The longest time from submitting a fast request to its response.
        var slowestFastMilliseconds: Double
        var heldWrites: Int
    }

    private let port: Int
    private let done: EventLoopPromise<Outcome>
    private var fastAnswered = 0
    private var submitted: [UInt64: UInt64] = [:]
    private var slowestFast: Double = 0
    private var heldWrites = 0
    private var nextToken: UInt64 = 1
    private var finished = false

    init(port: Int, done: EventLoopPromise<Outcome>) {
        self.port = port
        self.done = done
    }

    private func send(_ path: String, on connection: HTTP2ClientConnectionHandler) {
        submitted[nextToken] = DispatchTime.now().uptimeNanoseconds
        _ = connection.send(HTTP2Request(scheme: "http", authority: "127.0.0.1:\(port)", path: path), token: nextToken)
        nextToken += 1
    }

    func http2ConnectionReady(_ connection: HTTP2ClientConnectionHandler) {
        guard nextToken == 1 else { return }
        send("/slow", on: connection)
        send("/fast", on: connection)
        connection.flush()
    }

    func http2Response(_ connection: HTTP2ClientConnectionHandler, token: UInt64, response: HTTP2Response) {
        guard token != 1 else { return }  // the slow one
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - (submitted[token] ?? 0)) / 1e6
        slowestFast = max(slowestFast, elapsed)
        fastAnswered += 1
        if fastAnswered == 5 {
            finish(.success(Outcome(slowestFastMilliseconds: slowestFast, heldWrites: heldWrites)))
            return
        }
        send("/fast", on: connection)  // no flush: the burst's end (or the coalescer) sends it
    }

    func http2HeldRequestsWritten(_ connection: HTTP2ClientConnectionHandler, tokens: [UInt64]) {
        heldWrites += 1
    }

    func http2StreamFailed(_ connection: HTTP2ClientConnectionHandler, token: UInt64, failure: HTTP2StreamFailure) {
        finish(.failure(TestTimeout(what: "stream \(token) failed: \(failure)")))
    }

    func http2GoAwayReceived(_ connection: HTTP2ClientConnectionHandler, errorCode: UInt32) {}

    func http2ConnectionClosed(_ connection: HTTP2ClientConnectionHandler, error: (any Error)?) {
        finish(.failure(TestTimeout(what: "the connection closed")))
    }

    private func finish(_ result: Result<Outcome, any Error>) {
        guard !finished else { return }
        finished = true
        done.completeWith(result)
    }
}
