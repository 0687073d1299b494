import MeshprobePolicy

/// An HAProxy configuration for the lab that stands in for a mesh's sidecar: an h2c frontend, weighted random
/// balancing per request over echo workloads, and optionally a header route to one of them; or (`layer4`) an L4
/// balancer that picks a workload per connection.
///
/// `balance random(1)` picks by weight for every request; plain `random` means `random(2)` (power of two choices),
/// which is nearly deterministic under light load and would not show the configured split.
public struct HAProxyConfig: Sendable {
    public struct Server: Sendable {
        public var name: String
        public var port: Int
        public var weight: Int
        public init(_ name: String, port: Int, weight: Int) {
            self.name = name
            self.port = port
            self.weight = weight
        }
    }

    public var frontendPort: Int
    public var servers: [Server]
    /// Requests whose `header` matches go to 127.0.0.1:`port` only.
    public var headerRoute: (header: String, match: ValueMatch, port: Int)?
    /// Requests each weighted server may have at once (`maxconn`); with `queueTimeout`, a request that finds every
    /// slot taken waits at most that long in HAProxy's queue, then HAProxy answers 503 itself: a connection-pool
    /// circuit breaker for the lab (HAProxy's `maxqueue` does not refuse with a single server: it redispatches
    /// to the backend queue).
    public var serverMaxConn: Int?
    public var queueTimeout: Double?
    /// Retries to a server before HAProxy gives up (its default is 3): connection retries, and with `retryOn` L7
    /// retries too (a request is then tried at most `retries + 1` times, as Envoy's `num_retries`).
    public var retries: Int?
    /// Each retry goes to another server (`option redispatch 1`), as Envoy's `previous_hosts` retry predicate
    /// (Istio's default) sends it.
    public var redispatchEveryRetry = false
    /// HAProxy's `retry-on` keywords (`503`, `504`, `response-timeout`, ...): L7 retries. HAProxy keeps a copy of
    /// every request to replay it (requests larger than a buffer are never retried).
    public var retryOn: [String] = []
    /// `timeout server`: how long HAProxy waits for a server's response (default 10 s) before answering 504 itself.
    /// With `response-timeout` in `retryOn` each try has this long (a per-try timeout); otherwise it is the whole
    /// request's timeout. HAProxy has no timeout across tries, so a route timeout shorter than the per-try timeouts
    /// added up cannot be stood in for.
    public var serverTimeout: Double?
    /// A Unix socket for HAProxy's runtime API at admin level (`set weight weighted/v1 90` changes a weight live).
    public var adminSocket: String?
    /// HAProxy closes each server connection after one response (`option http-server-close`): maxRequestsPerConnection
    /// 1 for the lab. (`max-reuse N` would be the general limit, but HAProxy 2.6 did not apply it to HTTP/1.1 server
    /// connections here: 62 requests went over one connection with `max-reuse 4`.)
    public var serverCloseAfterEachRequest = false
    /// `max-reuse N`: HAProxy reuses a server connection N more times, so it carries at most N + 1 requests. Measured
    /// here with HTTP/2 server connections (`serverHTTP2`): `max-reuse 4` kept every one to 5 streams, where HTTP/1.1
    /// connections ignored it (see `serverCloseAfterEachRequest`).
    public var serverMaxReuse: Int?
    /// Outlier ejection for the lab (see `Ejection`).
    public var ejection: Ejection?
    /// HAProxy talks TLS to the servers and presents this PEM file (certificate, then key) as its client
    /// certificate, as a sidecar does with its SVID; nil talks plaintext HTTP/1.1.
    public var serverClientCertificate: String?
    /// `mode tcp`: HAProxy forwards each connection as bytes to one server picked by weight when it opens (TLS stays
    /// end to end, between the client and the echo), as an L4 balancer does (kube-proxy, Istio ambient's ztunnel,
    /// Linkerd on opaque ports). Every request on a connection then reaches the same workload. Header routes, L7
    /// retries, request limits and ejection need `mode http` and are left out.
    public var layer4 = false
    /// HTTP/2 to the servers too (`proto h2`, prior knowledge), as gRPC needs end to end; else HTTP/1.1.
    public var serverHTTP2 = false
    /// The backend's algorithm: `random(1)` picks by weight (per request in `mode http`, per connection in `mode
    /// tcp`); `source` hashes the client's address, so one client always reaches one server (client-keyed routing,
    /// as a Service with `sessionAffinity: ClientIP` or consistent hashing on the source address does).
    public var balance = "random(1)"

    /// Passive health checking as outlier detection: after `errorLimit` consecutive 5xx replies (HAProxy leaves out
    /// 501 and 505) a server is marked down (`observe layer7 error-limit N on-error mark-down`); active checks (a
    /// TCP, or TLS, handshake) every `checkInterval` while it is down bring it back after `rise` successes, so an
    /// ejection lasts about `rise` x `checkInterval`, whether the server still fails requests or not (as in Envoy,
    /// where an ejection lasts a fixed time). While a server is up it is checked only once a minute: a successful
    /// check restarts HAProxy's count of consecutive errors (measured: with checks every 100 ms, 7 to 14 errors
    /// went by before an ejection instead of 5).
    public struct Ejection: Sendable {
        public var errorLimit: Int
        public var checkInterval: Double
        public var rise: Int

        public init(errorLimit: Int, checkInterval: Double, rise: Int) {
            self.errorLimit = errorLimit
            self.checkInterval = checkInterval
            self.rise = rise
        }
    }

    public init(frontendPort: Int, servers: [Server], headerRoute: (header: String, match: ValueMatch, port: Int)? = nil,
                adminSocket: String? = nil) {
        self.frontendPort = frontendPort
        self.servers = servers
        self.headerRoute = headerRoute
        self.adminSocket = adminSocket
    }

    /// Stands in for a declared retry policy: `retries` = attempts, `retry-on` = the retried statuses HAProxy
    /// knows (401, 403, 404, 408, 425, 500-504) plus `response-timeout` when timeouts are retried with a per-try
    /// timeout, `timeout server` = the per-try timeout, else the route timeout.
    public mutating func standIn(for e: RetryExpectation) {
        let known: Set<Int> = [401, 403, 404, 408, 425, 500, 501, 502, 503, 504]
        retries = e.attempts ?? 0
        retryOn = e.retryOn.statuses.intersection(known).sorted().map(String.init)
        if e.perTryTimeout != nil && e.retryOn.retriesTimeouts { retryOn.append("response-timeout") }
        if retryOn.isEmpty { retryOn = ["none"] }
        serverTimeout = e.perTryTimeout ?? e.timeout
    }

    /// The configuration file's text (with the final newline HAProxy requires).
    public var text: String {
        if layer4 {
            return ([
                "global", "    maxconn 1000",
                "defaults", "    mode tcp", "    timeout connect 2s", "    timeout client 10s", "    timeout server 10s",
                "frontend fe", "    bind 127.0.0.1:\(frontendPort)", "    default_backend weighted",
                "backend weighted", "    balance \(balance)",
            ] + servers.map { "    server \($0.name) 127.0.0.1:\($0.port) weight \($0.weight)" }).joined(separator: "\n") + "\n"
        }
        var lines = [
            "global", "    maxconn 1000",
        ]
        if let adminSocket { lines.append("    stats socket \(adminSocket) mode 600 level admin") }
        lines += [
            "defaults", "    mode http", "    timeout connect 2s", "    timeout client 10s",
            "    timeout server \(max(1, Int(((serverTimeout ?? 10) * 1000).rounded())))ms",
        ]
        if let retries { lines.append("    retries \(retries)") }
        if !retryOn.isEmpty { lines.append("    retry-on \(retryOn.joined(separator: " "))") }
        if redispatchEveryRetry { lines.append("    option redispatch 1") }
        lines += [
            "frontend fe", "    bind 127.0.0.1:\(frontendPort) proto h2",
        ]
        if let route = headerRoute {
            let acl: String
            switch route.match {
            case .exact(let v): acl = "-m str \(v)"
            case .prefix(let v): acl = "-m beg \(v)"
            case .regex(let v): acl = "-m reg \(v)"
            }
            lines += ["    acl routed req.hdr(\(route.header)) \(acl)", "    use_backend routed if routed"]
        }
        lines += ["    default_backend weighted"]
        if let route = headerRoute {
            lines += ["backend routed", "    server routed 127.0.0.1:\(route.port)"]
        }
        lines += ["backend weighted", "    balance \(balance)"]
        if serverCloseAfterEachRequest { lines.append("    option http-server-close") }
        var limits = ""
        if serverHTTP2 { limits += " proto h2" }
        if let serverMaxReuse { limits += " max-reuse \(serverMaxReuse)" }
        if let serverMaxConn { limits += " maxconn \(serverMaxConn)" }
        if let serverClientCertificate {
            // The echo picks HTTP/2 over TLS by ALPN alone.
            limits += " ssl verify none crt \(serverClientCertificate)\(serverHTTP2 ? " alpn h2" : "")"
        }
        if let ejection {
            let inter = "\(max(1, Int((ejection.checkInterval * 1000).rounded())))ms"
            limits += " check inter 60s fastinter \(inter) downinter \(inter) rise \(ejection.rise) fall 1"
                + " observe layer7 error-limit \(ejection.errorLimit) on-error mark-down"
        }
        if let queueTimeout { lines.append("    timeout queue \(max(1, Int((queueTimeout * 1000).rounded())))ms") }
        lines += servers.map { "    server \($0.name) 127.0.0.1:\($0.port) weight \($0.weight)\(limits)" }
        return lines.joined(separator: "\n") + "\n"
    }
}
