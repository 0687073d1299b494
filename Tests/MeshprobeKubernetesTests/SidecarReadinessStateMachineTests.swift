import MeshprobeKubernetes
import Testing

/// The readiness wait's decisions, round by round, without a socket.
@Suite struct SidecarReadinessStateMachineTests {
    @Test func explicitMeshIsReadyOnlyAfterA200() {
        var machine = SidecarReadinessStateMachine(mesh: .istio, timeout: 10)
        #expect(machine.candidates == [.istio])
        #expect(machine.round([.istio: .unreachable("connection refused")], elapsed: 0.1) == .probeAgain)
        #expect(machine.round([.istio: .status(503)], elapsed: 0.4) == .probeAgain)
        #expect(machine.round([.istio: .status(200)], elapsed: 0.7) == .ready(.istio))
        #expect(machine.candidates.isEmpty)
    }

    @Test func explicitMeshTimesOutWithWhatItLastSaw() {
        var machine = SidecarReadinessStateMachine(mesh: .linkerd, timeout: 1)
        #expect(machine.round([.linkerd: .status(503)], elapsed: 0.5) == .probeAgain)
        #expect(machine.round([.linkerd: .status(503)], elapsed: 1.0) == .timedOut(mesh: .linkerd, lastSeen: "HTTP 503"))
        // Decided: later rounds say the same.
        #expect(machine.round([.linkerd: .status(200)], elapsed: 1.2) == .timedOut(mesh: .linkerd, lastSeen: "HTTP 503"))
    }

    @Test func explicitMeshNeverConcludesThereIsNoSidecar() {
        var machine = SidecarReadinessStateMachine(mesh: .istio, timeout: 5, detectWindow: 1)
        #expect(machine.round([.istio: .unreachable("connection refused")], elapsed: 2) == .probeAgain)
        #expect(machine.round([.istio: .unreachable("connection refused")], elapsed: 5) == .timedOut(mesh: .istio, lastSeen: "connection refused"))
    }

    @Test func autoProbesBothMeshesThenFollowsTheOneThatAnswers() {
        var machine = SidecarReadinessStateMachine(mesh: nil, timeout: 10, detectWindow: 2)
        #expect(Set(machine.candidates) == [.istio, .linkerd])
        #expect(machine.round([.istio: .unreachable("connection refused"), .linkerd: .unreachable("connection refused")], elapsed: 0.5) == .probeAgain)
        #expect(machine.round([.istio: .unreachable("connection refused"), .linkerd: .status(503)], elapsed: 1) == .probeAgain)
        #expect(machine.candidates == [.linkerd])
        // Past the detection window, a detected mesh is still waited for.
        #expect(machine.round([.linkerd: .status(503)], elapsed: 3) == .probeAgain)
        #expect(machine.round([.linkerd: .status(200)], elapsed: 3.5) == .ready(.linkerd))
    }

    @Test func autoConcludesNoSidecarWhenNothingAnswersInTheWindow() {
        var machine = SidecarReadinessStateMachine(mesh: nil, timeout: 60, detectWindow: 2)
        let nothing: [Mesh: ProbeOutcome] = [.istio: .unreachable("connection refused"), .linkerd: .unreachable("connection refused")]
        #expect(machine.round(nothing, elapsed: 1.9) == .probeAgain)
        #expect(machine.round(nothing, elapsed: 2.0) == .noSidecar)
    }

    @Test func autoTimesOutOnADetectedMeshThatNeverGetsReady() {
        var machine = SidecarReadinessStateMachine(mesh: nil, timeout: 3, detectWindow: 1)
        #expect(machine.round([.istio: .status(503), .linkerd: .unreachable("connection refused")], elapsed: 0.2) == .probeAgain)
        #expect(machine.round([.istio: .status(500)], elapsed: 3) == .timedOut(mesh: .istio, lastSeen: "HTTP 500"))
    }

    @Test func theDetectionWindowNeverOutlastsTheTimeout() {
        let machine = SidecarReadinessStateMachine(mesh: nil, timeout: 0.5, detectWindow: 2)
        #expect(machine.detectWindow == 0.5)
    }
}
