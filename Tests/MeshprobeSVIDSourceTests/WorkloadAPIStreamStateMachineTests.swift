import MeshprobeIdentity
import MeshprobeSVIDSource
import Testing

@Suite struct WorkloadAPIStreamStateMachineTests {
    @Test func connectsOnStartAndStreamsAfterConnecting() {
        var machine = WorkloadAPIStreamStateMachine()
        #expect(machine.start() == .connect)
        #expect(machine.start() == .none)
        #expect(machine.connected() == .none)
        #expect(machine.state == .streaming)
    }

    @Test func backsOffDoublingUpToTheMaximumAndStartsAgainAfterAnUpdate() {
        var machine = WorkloadAPIStreamStateMachine(initialBackoff: 0.5, maximumBackoff: 3)
        _ = machine.start()
        var delays: [Double] = []
        for _ in 0..<5 {
            guard case .reconnect(let delay) = machine.ended(.socketMissing(path: "/s")) else {
                Issue.record("no reconnect")
                return
            }
            delays.append(delay)
            #expect(machine.backoffElapsed() == .connect)
        }
        #expect(delays == [0.5, 1, 2, 3, 3])
        _ = machine.connected()
        machine.updated()
        #expect(machine.ended(.streamEnded(reason: "agent restarted")) == .reconnect(after: 0.5))
    }

    @Test func givesUpOnInvalidArgumentBeforeTheFirstUpdateOnly() {
        var machine = WorkloadAPIStreamStateMachine()
        _ = machine.start()
        let invalid = WorkloadAPIError.status(.invalidArgument, message: "security header missing")
        #expect(machine.ended(invalid) == .fail(invalid))
        #expect(machine.state == .stopped)

        var running = WorkloadAPIStreamStateMachine(initialBackoff: 1)
        _ = running.start()
        _ = running.connected()
        running.updated()
        #expect(running.ended(invalid) == .reconnect(after: 1))
    }

    @Test func retriesPermissionDeniedBecauseARegistrationEntryMayAppear() {
        var machine = WorkloadAPIStreamStateMachine(initialBackoff: 1)
        _ = machine.start()
        #expect(machine.ended(.status(.permissionDenied, message: nil)) == .reconnect(after: 1))
    }

    @Test func stopsForGoodAndIgnoresLateEvents() {
        var machine = WorkloadAPIStreamStateMachine()
        _ = machine.start()
        #expect(machine.stop() == .close)
        #expect(machine.ended(.socketMissing(path: "/s")) == .none)
        #expect(machine.backoffElapsed() == .none)
        #expect(machine.connected() == .close)
        #expect(machine.stop() == .none)
    }

    /// A refresh request (the SVID in use expired during an outage) ends the wait for the next attempt at once; the
    /// backoff's own timer, firing later, then does nothing; a stream that is not waiting is left alone.
    @Test func retryNowEndsTheWaitAndTheLateTimerIsIgnored() {
        var machine = WorkloadAPIStreamStateMachine(initialBackoff: 20, maximumBackoff: 60)
        #expect(machine.retryNow() == .none)
        _ = machine.start()
        #expect(machine.retryNow() == .none)
        #expect(machine.ended(.socketMissing(path: "/s")) == .reconnect(after: 20))
        #expect(machine.retryNow() == .connect)
        #expect(machine.state == .connecting)
        #expect(machine.backoffElapsed() == .none)
        #expect(machine.connected() == .none)
        #expect(machine.retryNow() == .none)
    }
}
