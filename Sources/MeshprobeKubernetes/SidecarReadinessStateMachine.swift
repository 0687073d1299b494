/// Decides, round by round of probes, whether the sidecar is ready, absent, or never going to be in time.
///
/// Each round probes every candidate mesh's readiness endpoint; the caller feeds the outcomes in with `round` and does
/// what the returned action says. With an explicit mesh, only its endpoint is probed until it answers 200 or the
/// timeout passes. With `auto`, both meshes' endpoints are probed; the first that answers HTTP at all (even 503: a
/// proxy starting up) decides the mesh, and the wait goes on for that one. If neither answers within the detection
/// window, there is no sidecar: auto is only as good as the proxy being up when the prober starts (Istio's
/// `holdApplicationUntilProxyStarts`, Linkerd's default `proxy-await`), which is why it is not the default.
public struct SidecarReadinessStateMachine: Sendable {
    public enum Action: Sendable, Equatable {
        /// Sleep for the poll interval, then probe `candidates` again.
        case probeAgain
        /// The proxy of this mesh answered 200 on its readiness endpoint.
        case ready(Mesh)
        /// `auto`: no mesh's admin port answered within the detection window.
        case noSidecar
        /// The proxy did not become ready before the timeout; `mesh` is the one waited for (nil: auto never found
        /// one), `lastSeen` what its endpoint last said.
        case timedOut(mesh: Mesh?, lastSeen: String)
    }

    enum State: Sendable, Equatable {
        case waiting(candidates: [Mesh], detected: Bool)
        case finished(Action)
    }

    private(set) var state: State
    private var lastSeen: [Mesh: ProbeOutcome] = [:]
    public let timeout: Double
    public let detectWindow: Double

    /// `mesh` nil is auto. `timeout`: the longest wait in seconds; `detectWindow`: how long auto looks for any admin
    /// port before it concludes there is no sidecar (capped by the timeout).
    public init(mesh: Mesh?, timeout: Double, detectWindow: Double = 2) {
        self.timeout = timeout
        self.detectWindow = min(detectWindow, timeout)
        state = mesh.map { .waiting(candidates: [$0], detected: true) } ?? .waiting(candidates: Mesh.allCases, detected: false)
    }

    /// The meshes to probe in the next round (empty once decided).
    public var candidates: [Mesh] {
        if case .waiting(let candidates, _) = state { return candidates }
        return []
    }

    /// Feeds one round's outcomes (`elapsed`: seconds since the wait began, taken after the round) and returns what
    /// to do next. After a final action, later rounds return it again.
    public mutating func round(_ outcomes: [Mesh: ProbeOutcome], elapsed: Double) -> Action {
        guard case .waiting(let candidates, var detected) = state else {
            if case .finished(let action) = state { return action }
            return .probeAgain
        }
        for (mesh, outcome) in outcomes where candidates.contains(mesh) { lastSeen[mesh] = outcome }
        // Ready beats everything in the same round.
        if let mesh = candidates.first(where: { outcomes[$0] == .status(200) }) {
            return finish(.ready(mesh))
        }
        var remaining = candidates
        if !detected, let answered = candidates.first(where: { if case .status = outcomes[$0] { return true } else { return false } }) {
            detected = true
            remaining = [answered]
        }
        if !detected && elapsed >= detectWindow { return finish(.noSidecar) }
        if elapsed >= timeout {
            let mesh = detected ? remaining.first : nil
            let seen = mesh.flatMap { lastSeen[$0]?.describe }
                ?? Mesh.allCases.compactMap { m in lastSeen[m].map { "\(m.rawValue): \($0.describe)" } }.joined(separator: "; ")
            return finish(.timedOut(mesh: mesh, lastSeen: seen.isEmpty ? "no answer" : seen))
        }
        state = .waiting(candidates: remaining, detected: detected)
        return .probeAgain
    }

    private mutating func finish(_ action: Action) -> Action {
        state = .finished(action)
        return action
    }
}
