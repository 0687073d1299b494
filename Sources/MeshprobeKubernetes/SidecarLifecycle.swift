import NIOCore

/// Waits for the sidecar proxy before the prober sends, and stops it when the prober exits, so that a Job in a mesh
/// completes. See `SidecarMode` for the endpoints and `SidecarReadinessStateMachine` for how the wait decides.
public struct SidecarLifecycle: Sendable {
    public var mode: SidecarMode
    public var endpoints: SidecarEndpoints
    /// The longest wait for readiness, in seconds.
    public var timeout: Double
    /// Time between probes.
    public var pollInterval: Double = 0.25
    /// `auto`: how long to look for an admin port before concluding there is no sidecar.
    public var detectWindow: Double = 2
    /// Each probe's own time limit.
    public var requestTimeout: Double = 1

    public init(mode: SidecarMode, endpoints: SidecarEndpoints = SidecarEndpoints(), timeout: Double) {
        self.mode = mode
        self.endpoints = endpoints
        self.timeout = timeout
    }

    /// How the wait ended.
    public enum Readiness: Sendable, Equatable {
        /// `mode` none: nothing waited for.
        case notWaited
        /// The proxy answered 200 after `probes` rounds and `seconds`.
        case ready(Mesh, probes: Int, seconds: Double)
        /// `auto` found no admin port: no sidecar (or it did not start in the detection window).
        case noSidecar(seconds: Double)
        /// Never ready in time.
        case timedOut(mesh: Mesh?, lastSeen: String, seconds: Double)
    }

    /// Probes until the proxy is ready, absent (auto) or the timeout passes. Throws `CancellationError` when the task
    /// is cancelled (a signal during the wait).
    public func waitUntilReady(group: any EventLoopGroup) async throws -> Readiness {
        let mesh: Mesh?
        switch mode {
        case .none: return .notWaited
        case .auto: mesh = nil
        case .istio: mesh = .istio
        case .linkerd: mesh = .linkerd
        }
        var machine = SidecarReadinessStateMachine(mesh: mesh, timeout: timeout, detectWindow: detectWindow)
        let clock = ContinuousClock()
        let start = clock.now
        var rounds = 0
        while true {
            try Task.checkCancellation()
            rounds += 1
            var outcomes: [Mesh: ProbeOutcome] = [:]
            for candidate in machine.candidates {
                let endpoint = endpoints.readiness(candidate)
                outcomes[candidate] = await AdminHTTPClient.request(.GET, host: endpoints.host, port: endpoint.port, path: endpoint.path,
                                                                    timeout: .milliseconds(Int64(requestTimeout * 1000)), group: group)
            }
            let elapsed = Self.seconds(clock.now - start)
            switch machine.round(outcomes, elapsed: elapsed) {
            case .probeAgain:
                try await Task.sleep(for: .milliseconds(Int(pollInterval * 1000)))
            case .ready(let mesh):
                return .ready(mesh, probes: rounds, seconds: elapsed)
            case .noSidecar:
                return .noSidecar(seconds: elapsed)
            case .timedOut(let mesh, let lastSeen):
                return .timedOut(mesh: mesh, lastSeen: lastSeen, seconds: elapsed)
            }
        }
    }

    /// How a shutdown call went.
    public enum Shutdown: Sendable, Equatable {
        case stopped(Mesh, status: Int)
        /// The proxy answered but refused (Linkerd answers 404 when its shutdown endpoint is not enabled).
        case refused(Mesh, status: Int, hint: String)
        case unreachable(Mesh, reason: String)
    }

    /// Tells the proxy of `mesh` to stop (one POST; a proxy that is already gone is reported, not retried).
    public func shutdown(_ mesh: Mesh, group: any EventLoopGroup) async -> Shutdown {
        let endpoint = endpoints.shutdown(mesh)
        let outcome = await AdminHTTPClient.request(.POST, host: endpoints.host, port: endpoint.port, path: endpoint.path,
                                                    timeout: .seconds(2), group: group)
        switch outcome {
        case .status(let code) where (200..<300).contains(code):
            return .stopped(mesh, status: code)
        case .status(let code):
            let hint = mesh == .linkerd
                ? "enable the proxy's shutdown endpoint with the pod annotation config.linkerd.io/proxy-admin-shutdown: enabled"
                : "check that the pilot-agent serves \(endpoints.describe(endpoint))"
            return .refused(mesh, status: code, hint: hint)
        case .unreachable(let why):
            return .unreachable(mesh, reason: why)
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
