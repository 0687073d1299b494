/// The response headers `meshprobe echo` stamps on every response: a contract with the prober and users.
public enum EchoStamp {
    public static let workload = "x-meshprobe-workload"
    public static let version = "x-meshprobe-version"
    public static let cluster = "x-meshprobe-cluster"
    public static let namespace = "x-meshprobe-namespace"
    public static let pod = "x-meshprobe-pod"
    /// The echo's own SPIFFE ID (from its serving certificate).
    public static let identity = "x-meshprobe-identity"
    /// The caller as the echo saw it: the mTLS peer's SPIFFE ID, else the URI in `x-forwarded-client-cert`,
    /// else `l5d-client-id`; empty when none.
    public static let caller = "x-meshprobe-caller"
    /// Where the caller identity came from: `mtls`, `xfcc`, `l5d-client-id` or `none`.
    public static let callerSource = "x-meshprobe-caller-source"
    /// Requests the echo had in flight (including this one) when it started this response.
    public static let inFlight = "x-meshprobe-inflight"
    /// The TLS server name (SNI) the caller sent, empty when none or plaintext.
    public static let serverName = "x-meshprobe-sni"
    /// The fault the echo applied to this request, if any (for example `status=503`, or `status=503;control=f1`
    /// for a fault set through the control API).
    public static let fault = "x-meshprobe-fault"
    /// How many requests with this request's `x-request-id` the echo has seen, this one included (1 for the first);
    /// absent when the request has no `x-request-id`.
    public static let attempt = "x-meshprobe-attempt"
    /// Which request this is on the connection it came on (1 for the first): a proxy's upstream connection reuse,
    /// as the workload sees it (Istio `maxRequestsPerConnection`).
    public static let connectionRequest = "x-meshprobe-connection-request"
    /// Retries (requests whose `x-request-id` this echo had seen before) in flight at the echo, this one included;
    /// only on retries: a proxy's concurrent-retry limit (Istio `maxRetries`), as the workload sees it.
    public static let retriesInFlight = "x-meshprobe-retries-inflight"

    /// Every stamp's name.
    public static let all = [workload, version, cluster, namespace, pod, identity, caller, callerSource, inFlight, serverName,
                             fault, attempt, connectionRequest, retriesInFlight]
}

/// The identity of whatever answered a request, as far as the prober could tell.
public struct WorkloadIdentity: Hashable, Sendable, Codable {
    /// The SPIFFE ID of the server (TLS peer certificate, else the echo's identity stamp), or "" when unknown.
    public var identity: String
    public var workload: String
    public var version: String
    public var cluster: String

    public init(identity: String = "", workload: String = "", version: String = "", cluster: String = "") {
        self.identity = identity
        self.workload = workload
        self.version = version
        self.cluster = cluster
    }

    public static let unknown = WorkloadIdentity()

    /// A short label for tables: workload/version, else the identity, else "(unknown)".
    public var label: String {
        if !workload.isEmpty { return version.isEmpty ? workload : "\(workload)/\(version)" }
        if !identity.isEmpty { return identity }
        return "(unknown)"
    }
}
