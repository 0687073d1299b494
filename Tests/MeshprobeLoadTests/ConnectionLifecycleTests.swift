import MeshprobeIdentity
import MeshprobeSpec
import Testing
@testable import MeshprobeLoad

/// A connection slot's decisions, without a socket: when a close counts as a failure, and when the slot connects
/// again, backs off or is given up.
@Suite struct ConnectionLifecycleTests {
    func slot() -> ConnectionLifecycle { ConnectionLifecycle(maximumConsecutiveFailures: 3) }

    @Test func aRunBoundedByACountGivesTheSlotUpAfterThreeFailuresInARow() {
        var lifecycle = slot()
        var decisions: [ConnectionLifecycle.Next] = []
        for _ in 0..<3 {
            let started = lifecycle.startAttempt()
            #expect(started)
            lifecycle.connectFailed(.connectRefused)
            #expect(lifecycle.isFailing)
            decisions.append(lifecycle.next(boundedByTime: false, wantsMoreRequests: true))
        }
        #expect(decisions == [.connect(afterMilliseconds: 100), .connect(afterMilliseconds: 200), .giveUp])
        #expect(lifecycle.state == .dead)
        let startedAfterGivingUp = lifecycle.startAttempt()
        #expect(!startedAfterGivingUp)
    }

    @Test func aRunBoundedByTimeKeepsRetryingAnOutageWithABackoffCappedAtOneSecond() {
        var lifecycle = slot()
        var delays: [ConnectionLifecycle.Next] = []
        for _ in 0..<7 {
            _ = lifecycle.startAttempt()
            lifecycle.connectFailed(.connectRefused)
            delays.append(lifecycle.next(boundedByTime: true, wantsMoreRequests: true))
        }
        #expect(delays == [100, 200, 400, 800, 1000, 1000, 1000].map { .connect(afterMilliseconds: $0) })
        // The server is back: one response and the next close reconnects at once.
        _ = lifecycle.startAttempt()
        lifecycle.ready()
        lifecycle.responded()
        let afterAnswering = lifecycle.closed(reason: nil, authority: "a:1")
        #expect(afterAnswering == nil)
        let next = lifecycle.next(boundedByTime: true, wantsMoreRequests: true)
        #expect(next == .connectNow)
    }

    @Test func aRefusalRetryingCannotChangeIsGivenUpEvenWhenTheRunIsBoundedByTime() {
        var lifecycle = slot()
        for _ in 0..<3 {
            _ = lifecycle.startAttempt()
            lifecycle.handshaking()
            let failure = lifecycle.closed(reason: (.tlsWrongSPIFFEID, "not the expected SPIFFE ID"), authority: "a:1")
            #expect(failure?.kind == .tlsWrongSPIFFEID)
        }
        let next = lifecycle.next(boundedByTime: true, wantsMoreRequests: true)
        #expect(next == .giveUp)
    }

    @Test func aCloseBeforeAnyAnswerIsAFailureNamedForItsStage() {
        var lifecycle = slot()
        _ = lifecycle.startAttempt()
        lifecycle.handshaking()
        let beforeReady = lifecycle.closed(reason: nil, authority: "a:1")
        #expect(beforeReady?.kind == .tlsHandshakeFailed)
        #expect(beforeReady?.message.contains("before it could carry requests") == true)
        _ = lifecycle.startAttempt()
        lifecycle.ready()
        let beforeAnswering = lifecycle.closed(reason: nil, authority: "a:1")
        #expect(beforeAnswering?.kind == .connectionLost)
        #expect(beforeAnswering?.message == "a:1 closed the connection before answering any request")
        #expect(lifecycle.consecutiveFailures == 2)
    }

    @Test func aCloseMidRequestByAnAnsweringPeerFailsTheRequestsNotTheAttempt() {
        var lifecycle = slot()
        // An HTTP/1.1 server that drops some requests by closing: after it has answered others, each such close is
        // the request's failure (counted by the connection), and the slot reconnects at once, never given up.
        for _ in 0..<5 {
            _ = lifecycle.startAttempt()
            lifecycle.ready()
            #expect(lifecycle.closed(reason: (.connectionLost, "dropped"), authority: "a:1", droppedRequests: true) == nil)
            #expect(lifecycle.next(boundedByTime: false, wantsMoreRequests: true) == .connectNow)
        }
        #expect(lifecycle.consecutiveFailures == 0)
        // Before any answer on the target, the same close is a failed attempt (a TLS port, a proxy refusing).
        _ = lifecycle.startAttempt()
        lifecycle.ready()
        #expect(lifecycle.closed(reason: nil, authority: "a:1", droppedRequests: false)?.kind == .connectionLost)
        #expect(lifecycle.consecutiveFailures == 1)
    }

    @Test func churnAndTimeoutClosesAreNotFailures() {
        var lifecycle = slot()
        _ = lifecycle.startAttempt()
        lifecycle.ready()
        lifecycle.retire()
        let retired = lifecycle.closed(reason: nil, authority: "a:1")
        #expect(retired == nil)
        let next = lifecycle.next(boundedByTime: false, wantsMoreRequests: true)
        #expect(next == .connectNow)
        // A new attempt is not retiring any more; a close after meshprobe timed a request out is not a failure.
        let started = lifecycle.startAttempt()
        #expect(started)
        #expect(!lifecycle.isRetiring)
        lifecycle.ready()
        lifecycle.closingForTimeout()
        let afterTimeout = lifecycle.closed(reason: (.connectionLost, "closed by meshprobe"), authority: "a:1")
        #expect(afterTimeout == nil)
        #expect(lifecycle.consecutiveFailures == 0)
    }

    @Test func aRunThatWantsNothingMoreStaysIdleAndAShutDownSlotNeverConnects() {
        var lifecycle = slot()
        _ = lifecycle.startAttempt()
        lifecycle.ready()
        lifecycle.responded()
        _ = lifecycle.closed(reason: nil, authority: "a:1")
        let next = lifecycle.next(boundedByTime: false, wantsMoreRequests: false)
        #expect(next == .stayIdle)
        #expect(!lifecycle.isFailing)
        lifecycle.shutDown()
        #expect(lifecycle.isFailing)
        let started = lifecycle.startAttempt()
        #expect(!started)
    }

    @Test func theServersALPNAnswerPicksTheProtocolOrRefusesARequiredOne() throws {
        typealias L = ConnectionLifecycle
        #expect(try L.protocolAfterHandshake(alpn: "h2", preference: .auto).get() == true)
        #expect(try L.protocolAfterHandshake(alpn: "http/1.1", preference: .auto).get() == false)
        #expect(try L.protocolAfterHandshake(alpn: nil, preference: .auto).get() == false)
        #expect(try L.protocolAfterHandshake(alpn: "h2", preference: .http2).get() == true)
        #expect(try L.protocolAfterHandshake(alpn: nil, preference: .http1).get() == false)
        let noH2 = L.protocolAfterHandshake(alpn: nil, preference: .http2)
        #expect(noH2 == .failure(L.ProtocolRefusal(kind: .tlsALPNMismatch, message: "HTTP/2 was required but the server's ALPN answer was none")))
        let noH1 = L.protocolAfterHandshake(alpn: "h2", preference: .http1)
        #expect(noH1 == .failure(L.ProtocolRefusal(kind: .tlsALPNMismatch, message: "HTTP/1.1 was required but the server chose 'h2' by ALPN")))
    }
}
