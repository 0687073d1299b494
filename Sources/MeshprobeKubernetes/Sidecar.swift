/// Which sidecar proxy this process shares its pod with, and how to reach its admin endpoints.
///
/// Jobs inside a mesh never finish while the sidecar runs: the prober waits for the proxy to be ready before it sends,
/// and tells it to stop when it exits. Istio: readiness `GET :15021/healthz/ready`, shutdown `POST
/// :15020/quitquitquit`. Linkerd: readiness `GET :4191/ready`, shutdown `POST :4191/shutdown` (answered only when the
/// workload enables it with `config.linkerd.io/proxy-admin-shutdown: enabled`). A Kubernetes native sidecar (an init
/// container with `restartPolicy: Always`) is started before and stopped after the prober by Kubernetes itself, so
/// it needs neither.
public enum SidecarMode: String, CaseIterable, Sendable {
    /// Find out by probing both meshes' readiness ports (see `SidecarReadinessStateMachine`).
    case auto
    case istio
    case linkerd
    /// Outside a mesh, or a native sidecar: wait for nothing, stop nothing.
    case none
}

/// A mesh whose sidecar the prober talks to.
public enum Mesh: String, CaseIterable, Sendable {
    case istio
    case linkerd
}

/// Where the sidecar's admin endpoints listen: always loopback (the proxies accept shutdown only from inside the pod).
public struct SidecarEndpoints: Sendable, Equatable {
    public var host = "127.0.0.1"
    /// Istio's status port (`/healthz/ready`).
    public var istioReadyPort = 15021
    /// Istio's pilot-agent port (`/quitquitquit`).
    public var istioQuitPort = 15020
    /// Linkerd's admin port (`/ready`, `/shutdown`).
    public var linkerdAdminPort = 4191

    public init() {}

    /// The readiness endpoint of `mesh`: 200 means ready, anything else (or no connection) not yet.
    public func readiness(_ mesh: Mesh) -> (port: Int, path: String) {
        switch mesh {
        case .istio: return (istioReadyPort, "/healthz/ready")
        case .linkerd: return (linkerdAdminPort, "/ready")
        }
    }

    /// The endpoint that stops the proxy of `mesh`, with POST.
    public func shutdown(_ mesh: Mesh) -> (port: Int, path: String) {
        switch mesh {
        case .istio: return (istioQuitPort, "/quitquitquit")
        case .linkerd: return (linkerdAdminPort, "/shutdown")
        }
    }

    public func describe(_ endpoint: (port: Int, path: String)) -> String { "http://\(host):\(endpoint.port)\(endpoint.path)" }
}

/// What one probe of an admin endpoint saw.
public enum ProbeOutcome: Sendable, Equatable {
    /// The endpoint answered with this HTTP status.
    case status(Int)
    /// No HTTP answer: connection refused, reset or timed out (the reason, for the error message).
    case unreachable(String)

    var describe: String {
        switch self {
        case .status(let code): return "HTTP \(code)"
        case .unreachable(let why): return why
        }
    }
}
