/// An HAProxy configuration for the lab that stands in for a mesh's sidecar: an h2c frontend, weighted random
/// balancing per request over echo workloads, and optionally a header route to one of them.
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
    /// Connection retries to a server before HAProxy answers 503 itself (its default is 3, a second apart).
    public var retries: Int?
    /// A Unix socket for HAProxy's runtime API at admin level (`set weight weighted/v1 90` changes a weight live).
    public var adminSocket: String?
    /// Outlier ejection for the lab (see `Ejection`).
    public var ejection: Ejection?
    /// HAProxy talks TLS to the servers and presents this PEM file (certificate, then key) as its client
    /// certificate, as a sidecar does with its SVID; nil talks plaintext HTTP/1.1.
    public var serverClientCertificate: String?

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

    /// The configuration file's text (with the final newline HAProxy requires).
    public var text: String {
        var lines = [
            "global", "    maxconn 1000",
        ]
        if let adminSocket { lines.append("    stats socket \(adminSocket) mode 600 level admin") }
        lines += [
            "defaults", "    mode http", "    timeout connect 2s", "    timeout client 10s", "    timeout server 10s",
        ]
        if let retries { lines.append("    retries \(retries)") }
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
        lines += ["backend weighted", "    balance random(1)"]
        var limits = ""
        if let serverMaxConn { limits += " maxconn \(serverMaxConn)" }
        if let serverClientCertificate { limits += " ssl verify none crt \(serverClientCertificate)" }
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
