@testable import MeshprobeHTTP2
import Testing

/// The action's case name, so tests can compare actions that carry an error.
private func name(_ action: HTTP2ConnectionStateMachine.Action) -> String {
    switch action {
    case .none: "none"
    case .startSession: "startSession"
    case .sendGoAway: "sendGoAway"
    case .notifyReady: "notifyReady"
    case .notifyGoAway(let code): "notifyGoAway(\(code))"
    case .closeChannel: "closeChannel"
    case .failConnection: "failConnection"
    case .reportClosed(let error): error == nil ? "reportClosed(nil)" : "reportClosed(error)"
    }
}

private struct SocketError: Error {}

/// A machine whose session has started and whose peer allows `peerStreams` streams.
private func readyMachine(peerStreams: UInt32 = 100) -> HTTP2ConnectionStateMachine {
    var machine = HTTP2ConnectionStateMachine()
    _ = machine.channelActive()
    _ = machine.peerSettingsReceived(maxConcurrentStreams: peerStreams)
    return machine
}

@Suite("HTTP/2 connection state machine")
struct HTTP2ConnectionStateMachineTests {
    @Test func startsTheSessionOnceWhenTheChannelBecomesActive() {
        var machine = HTTP2ConnectionStateMachine()
        #expect(!machine.isOpen)
        #expect(name(machine.channelActive()) == "startSession")
        #expect(machine.isOpen)
        #expect(name(machine.channelActive()) == "none")
    }

    @Test func offersNoStreamsUntilThePeerSettingsArrive() {
        var machine = HTTP2ConnectionStateMachine()
        _ = machine.channelActive()
        #expect(machine.isUsable)
        #expect(machine.peerStreamLimit == nil)
        #expect(name(machine.peerSettingsReceived(maxConcurrentStreams: 50)) == "notifyReady")
        #expect(machine.peerStreamLimit == 50)
    }

    @Test func notifiesReadyAgainOnlyWhenThePeerChangesItsStreamLimit() {
        var machine = readyMachine(peerStreams: 100)
        #expect(name(machine.peerSettingsReceived(maxConcurrentStreams: 100)) == "none")
        #expect(name(machine.peerSettingsReceived(maxConcurrentStreams: 10)) == "notifyReady")
        #expect(machine.peerStreamLimit == 10)
    }

    @Test func notifiesTheFirstGoAwayOnlyAndKeepsTheLatestLastStreamID() {
        var machine = readyMachine()
        #expect(name(machine.goAwayReceived(lastStreamID: 7, errorCode: 0)) == "notifyGoAway(0)")
        #expect(name(machine.goAwayReceived(lastStreamID: 3, errorCode: 0)) == "none")
        #expect(machine.goAwayReceived == .init(lastStreamID: 3, errorCode: 0))
        #expect(machine.peerStreamLimit == nil)
        #expect(!machine.isUsable)
        #expect(machine.isOpen)
    }

    @Test func reportsAPeerGoAwayWithAnErrorCodeAsTheConnectionError() {
        var machine = readyMachine()
        _ = machine.goAwayReceived(lastStreamID: 1, errorCode: 2)
        #expect(name(machine.sessionFinished()) == "closeChannel")
        #expect(name(machine.channelClosed()) == "reportClosed(error)")
        #expect(
            machine.error as? HTTP2ConnectionError == .protocolError("peer sent GOAWAY with error code 2"))
    }

    @Test func sendsOneGoAwayForAGracefulCloseAndStaysOpenForInFlightStreams() {
        var machine = readyMachine()
        #expect(name(machine.closeRequested(graceful: true)) == "sendGoAway")
        #expect(machine.isOpen)
        #expect(machine.peerStreamLimit == nil)
        #expect(name(machine.closeRequested(graceful: true)) == "none")
        #expect(name(machine.sessionFinished()) == "closeChannel")
        #expect(!machine.isOpen)
        #expect(machine.isRunning)
        _ = machine.channelClosed()
        #expect(!machine.isRunning)
    }

    @Test func closesAtOnceForAnAbruptCloseEvenAfterAGracefulOne() {
        var machine = readyMachine()
        _ = machine.closeRequested(graceful: true)
        #expect(name(machine.closeRequested(graceful: false)) == "closeChannel")
        #expect(name(machine.closeRequested(graceful: false)) == "none")
        #expect(name(machine.sessionFinished()) == "none")
    }

    @Test func closesAChannelThatNeverBecameActive() {
        var machine = HTTP2ConnectionStateMachine()
        #expect(name(machine.closeRequested(graceful: true)) == "closeChannel")
        #expect(name(machine.channelActive()) == "none")
        #expect(name(machine.channelClosed()) == "reportClosed(nil)")
    }

    @Test func failsTheConnectionOnceAndKeepsTheFirstError() {
        var machine = readyMachine()
        let action = machine.sessionFailed(.protocolError("bad frame"))
        guard case .failConnection(let error) = action else {
            Issue.record("expected failConnection, got \(name(action))")
            return
        }
        #expect(error == .protocolError("bad frame"))
        #expect(!machine.isOpen)
        #expect(name(machine.sessionFailed(.protocolError("later"))) == "none")
        #expect(name(machine.errorCaught(SocketError())) == "none")
        #expect(machine.error as? HTTP2ConnectionError == .protocolError("bad frame"))
    }

    @Test func closesOnACaughtErrorAndReportsIt() {
        var machine = readyMachine()
        #expect(name(machine.errorCaught(SocketError())) == "closeChannel")
        #expect(name(machine.channelClosed()) == "reportClosed(error)")
        #expect(machine.error is SocketError)
    }

    @Test func recordsAnErrorGoAwayWeSentButNotAGracefulOne() {
        var machine = readyMachine()
        machine.goAwaySent(errorCode: 0)
        #expect(machine.error == nil)
        machine.goAwaySent(errorCode: 1)
        #expect(machine.error != nil)
    }

    @Test func reportsTheCloseExactlyOnce() {
        var machine = readyMachine()
        #expect(name(machine.channelClosed()) == "reportClosed(nil)")
        #expect(name(machine.channelClosed()) == "none")
        #expect(name(machine.closeRequested(graceful: false)) == "none")
        #expect(name(machine.peerSettingsReceived(maxConcurrentStreams: 5)) == "none")
        #expect(name(machine.goAwayReceived(lastStreamID: 1, errorCode: 0)) == "none")
        #expect(!machine.isOpen)
    }

    @Test func keepsThePeerGoAwayWhileClosingSoRefusedStreamsCanBeNamed() {
        var machine = readyMachine()
        _ = machine.closeRequested(graceful: false)
        _ = machine.goAwayReceived(lastStreamID: 5, errorCode: 0)
        #expect(machine.goAwayReceived == .init(lastStreamID: 5, errorCode: 0))
    }
}
