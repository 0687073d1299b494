/// Who produced a failed response, and why: the sidecar-aware classification every report carries.
///
/// A failure is answered by the application (the echo's stamp or the configured identity header is present), made
/// by a proxy (recognised by a signature, or a proxy reply with no known signature), or seen only by the client
/// (no response: an `ErrorKind`).
public struct FailureClass: Hashable, Sendable, Comparable, CustomStringConvertible {
    public enum Origin: String, Sendable, Codable, Comparable {
        case application
        case proxy
        case client
        /// A failed response with neither an application stamp nor a proxy signature, from a target that does not
        /// stamp its replies at all: who made it cannot be told.
        case unknown

        public static func < (lhs: Origin, rhs: Origin) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    public var origin: Origin
    /// For the application: the status (`"503"`); for a proxy: the signature's reason (`circuit_breaker_overflow`,
    /// `no_healthy_upstream`, ..., `unrecognised`); for the client: the `ErrorKind` raw value.
    public var reason: String
    /// The proxy the signature belongs to (`envoy`, `linkerd`, `haproxy`, or a user's name); nil when unknown.
    public var proxy: String?
    /// The proxy's own short code for the reason, when it has one (Envoy's response flags: `UO`, `UH`, ...).
    public var flag: String?

    public init(origin: Origin, reason: String, proxy: String? = nil, flag: String? = nil) {
        self.origin = origin
        self.reason = reason
        self.proxy = proxy
        self.flag = flag
    }

    public static func client(_ kind: ErrorKind) -> FailureClass { FailureClass(origin: .client, reason: kind.rawValue) }

    /// The error kind of a client class (a request without a response); nil for any other.
    public var clientKind: ErrorKind? { origin == .client ? ErrorKind(rawValue: reason) : nil }

    public var description: String {
        var text = "\(origin.rawValue): \(reason)"
        let detail = [proxy, flag].compactMap { $0 }
        if !detail.isEmpty { text += " (\(detail.joined(separator: " ")))" }
        return text
    }

    public static func < (lhs: FailureClass, rhs: FailureClass) -> Bool {
        (lhs.origin, lhs.reason, lhs.proxy ?? "") < (rhs.origin, rhs.reason, rhs.proxy ?? "")
    }

    /// True for the reasons that mean a proxy refused to send the request on because a limit was reached:
    /// circuit-breaker overflow, load shedding, and a proxy saying no server is available (HAProxy's reply when
    /// its `maxconn` slots are taken and the queue wait expires; also when every server is down).
    public var isOverflow: Bool {
        origin == .proxy && [Reason.circuitBreakerOverflow, Reason.loadShed, Reason.noServerAvailable].contains(reason)
    }

    /// Reason names used by the built-in signatures.
    public enum Reason {
        public static let circuitBreakerOverflow = "circuit_breaker_overflow"
        public static let noHealthyUpstream = "no_healthy_upstream"
        public static let upstreamTimeout = "upstream_timeout"
        public static let upstreamConnectionFailure = "upstream_connection_failure"
        public static let upstreamReset = "upstream_reset"
        public static let rateLimited = "rate_limited"
        public static let failFast = "fail_fast"
        public static let loadShed = "load_shed"
        public static let noServerAvailable = "no_server_available"
        /// A proxy refused the request for who sent it or what it asked (an authorization policy).
        public static let accessDenied = "access_denied"
        /// A gRPC call answered without `grpc-status` and without an HTTP error status (a 200 with no trailers, a
        /// redirect): not a gRPC answer; counted INTERNAL, as gRPC clients count it.
        public static let noGRPCStatus = "no_grpc_status"
        /// A gRPC call that ended after the workload's stamped headers without a `grpc-status`: the workload answered
        /// and something ended the call before its trailers (a proxy's timeout does so: HAProxy's `timeout server`
        /// ends the stream with an empty DATA frame), or the server did. Of unknown origin; counted INTERNAL.
        public static let endedAfterHeaders = "ended_after_headers"
        /// A proxy reply (no application stamp) that matches no signature.
        public static let unrecognised = "unrecognised"
    }
}

/// How to recognise one kind of proxy-generated reply: every condition given must hold.
public struct ProxySignature: Sendable, Equatable {
    public var proxy: String
    public var reason: String
    public var flag: String?
    /// The response status, when the signature needs one.
    public var status: Int?
    /// A response header (lowercase) that must be present ...
    public var header: String?
    /// ... and, when given, whose value contains this text (case-insensitive).
    public var headerContains: String?
    /// Text the start of the body must contain (case-insensitive; the prober keeps the first 512 bytes of a
    /// failed response's body).
    public var bodyContains: String?

    public init(proxy: String, reason: String, flag: String? = nil, status: Int? = nil, header: String? = nil,
                headerContains: String? = nil, bodyContains: String? = nil) {
        self.proxy = proxy
        self.reason = reason
        self.flag = flag
        self.status = status
        self.header = header
        self.headerContains = headerContains
        self.bodyContains = bodyContains
    }

    func matches(status: Int, headers: [(name: String, value: String)], body: String) -> Bool {
        if let expected = self.status, expected != status { return false }
        if let header {
            guard let value = headers.first(where: { $0.name == header })?.value else { return false }
            if let text = headerContains, !value.lowercased().contains(text.lowercased()) { return false }
        }
        if let text = bodyContains, !body.lowercased().contains(text.lowercased()) { return false }
        return true
    }
}

/// The signature table: the built-in signatures, which a policy or scenario file can extend (its own come first).
///
/// The built-in facts, from the proxies' documentation (neither Envoy nor Linkerd runs in this project's tests; the
/// fixtures built from these facts say so):
/// - Envoy marks circuit-breaker overflow replies with `x-envoy-overloaded: true` (response flag UO) and its
///   rate-limit replies with `x-envoy-ratelimited` (RL, 429); its local replies carry bodies such as
///   `no healthy upstream` (UH, 503), `upstream request timeout` (UT, 504) and `upstream connect error or
///   disconnect/reset before headers. reset reason: connection failure` (UF) / `overflow` (UO) /
///   `connection termination` (UC).
/// - Linkerd's proxy marks its own error replies with an `l5d-proxy-error` header whose text says why: fail-fast
///   (no endpoints available: 503 or 504), load shedding (503), timeouts, connection errors (502).
/// - HAProxy's own 503 page says `No server is available to handle this request.` (every server down, or the
///   queue timed out when `maxconn` is reached); its 504 page, `The server didn't respond in time.` (`timeout
///   server` expired; seen in this project's lab).
/// - Denials: Envoy's HTTP RBAC filter answers 403 with the fixed body `RBAC: access denied` (no response flag; its
///   response code details say `rbac_access_denied_matched_policy[...]`, which only its access log shows);
///   Linkerd's proxy answers an unauthorized request 403 with `l5d-proxy-error`; HAProxy's `http-request deny`
///   page says `Request forbidden by administrative rules.`; nginx's 403 page names nginx, and with
///   `ssl_verify_client on` nginx finishes the handshake and answers 400 `No required SSL certificate was sent` (no
///   client certificate), `The SSL certificate error` (one it does not trust) or `The plain HTTP request was sent
///   to HTTPS port` (plaintext HTTP/1.1 on a TLS port) (all seen in this project's lab).
public struct SignatureTable: Sendable, Equatable {
    public var signatures: [ProxySignature]

    public init(extra: [ProxySignature] = []) {
        signatures = extra + Self.builtIn
    }

    public static let builtIn: [ProxySignature] = {
        typealias R = FailureClass.Reason
        return [
            // Envoy.
            ProxySignature(proxy: "envoy", reason: R.circuitBreakerOverflow, flag: "UO", header: "x-envoy-overloaded"),
            ProxySignature(proxy: "envoy", reason: R.rateLimited, flag: "RL", header: "x-envoy-ratelimited"),
            ProxySignature(proxy: "envoy", reason: R.rateLimited, flag: "RL", status: 429, bodyContains: "local_rate_limited"),
            ProxySignature(proxy: "envoy", reason: R.noHealthyUpstream, flag: "UH", bodyContains: "no healthy upstream"),
            ProxySignature(proxy: "envoy", reason: R.upstreamTimeout, flag: "UT", bodyContains: "upstream request timeout"),
            ProxySignature(proxy: "envoy", reason: R.circuitBreakerOverflow, flag: "UO", bodyContains: "reset reason: overflow"),
            ProxySignature(proxy: "envoy", reason: R.upstreamConnectionFailure, flag: "UF", bodyContains: "reset reason: connection failure"),
            ProxySignature(proxy: "envoy", reason: R.upstreamReset, flag: "UC", bodyContains: "reset reason: connection termination"),
            ProxySignature(proxy: "envoy", reason: R.upstreamReset, flag: "UR", bodyContains: "upstream connect error or disconnect/reset"),
            ProxySignature(proxy: "envoy", reason: R.accessDenied, flag: "RBAC", status: 403, bodyContains: "RBAC: access denied"),
            // Linkerd.
            ProxySignature(proxy: "linkerd", reason: R.accessDenied, status: 403, header: "l5d-proxy-error"),
            ProxySignature(proxy: "linkerd", reason: R.failFast, header: "l5d-proxy-error", headerContains: "fail-fast"),
            ProxySignature(proxy: "linkerd", reason: R.failFast, header: "l5d-proxy-error", headerContains: "failfast"),
            ProxySignature(proxy: "linkerd", reason: R.loadShed, header: "l5d-proxy-error", headerContains: "load"),
            ProxySignature(proxy: "linkerd", reason: R.upstreamTimeout, header: "l5d-proxy-error", headerContains: "timed out"),
            ProxySignature(proxy: "linkerd", reason: R.upstreamTimeout, header: "l5d-proxy-error", headerContains: "timeout"),
            ProxySignature(proxy: "linkerd", reason: R.upstreamConnectionFailure, header: "l5d-proxy-error", headerContains: "connect"),
            ProxySignature(proxy: "linkerd", reason: R.unrecognised, header: "l5d-proxy-error"),
            // HAProxy.
            ProxySignature(proxy: "haproxy", reason: R.noServerAvailable, status: 503, bodyContains: "No server is available to handle this request"),
            ProxySignature(proxy: "haproxy", reason: R.upstreamTimeout, status: 504, bodyContains: "The server didn't respond in time"),
            ProxySignature(proxy: "haproxy", reason: R.accessDenied, status: 403, bodyContains: "Request forbidden by administrative rules"),
            // nginx.
            ProxySignature(proxy: "nginx", reason: R.accessDenied, status: 403, bodyContains: "<center>nginx"),
            ProxySignature(proxy: "nginx", reason: R.accessDenied, flag: "no client certificate", status: 400,
                           bodyContains: "No required SSL certificate was sent"),
            ProxySignature(proxy: "nginx", reason: R.accessDenied, flag: "client certificate refused", status: 400,
                           bodyContains: "The SSL certificate error"),
            ProxySignature(proxy: "nginx", reason: R.accessDenied, flag: "plaintext refused", status: 400,
                           bodyContains: "The plain HTTP request was sent to HTTPS port"),
        ]
    }()

    /// Header names (lowercase) the classification reads; the load engine keeps these on responses.
    public var headerNames: [String] {
        var names: [String] = []
        for s in signatures { if let h = s.header, !names.contains(h) { names.append(h) } }
        return names
    }

    /// The class of a response with a failing `ResponseCode` (not 2xx/3xx, not gRPC OK). A signature's status is
    /// compared with the code's HTTP equivalent (a gRPC UNAVAILABLE is Envoy's 503); an application failure's
    /// reason is the code as reports name it (`503`, `UNAVAILABLE`).
    /// - Parameters:
    ///   - stamped: the application's identity stamp (or the configured identity header) is present.
    ///   - stampsExpected: the target's replies carry stamps (an identity header is configured, or responses were
    ///     stamped before), so an unstamped reply without a signature is a proxy's; otherwise its origin is unknown.
    public func classify(status: Int, headers: [(name: String, value: String)], body: String, stamped: Bool,
                         stampsExpected: Bool = true) -> FailureClass {
        if stamped { return FailureClass(origin: .application, reason: ResponseCode.text(status)) }
        let httpStatus = ResponseCode.httpEquivalent(status)
        for s in signatures where s.matches(status: httpStatus, headers: headers, body: body) {
            return FailureClass(origin: .proxy, reason: s.reason, proxy: s.proxy, flag: s.flag)
        }
        return stampsExpected ? FailureClass(origin: .proxy, reason: FailureClass.Reason.unrecognised)
            : FailureClass(origin: .unknown, reason: ResponseCode.text(status))
    }
}
