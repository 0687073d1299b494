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
    /// Requests whose `header` equals `value` go to 127.0.0.1:`port` only.
    public var headerRoute: (header: String, value: String, port: Int)?

    public init(frontendPort: Int, servers: [Server], headerRoute: (header: String, value: String, port: Int)? = nil) {
        self.frontendPort = frontendPort
        self.servers = servers
        self.headerRoute = headerRoute
    }

    /// The configuration file's text (with the final newline HAProxy requires).
    public var text: String {
        var lines = [
            "global", "    maxconn 1000",
            "defaults", "    mode http", "    timeout connect 2s", "    timeout client 10s", "    timeout server 10s",
            "frontend fe", "    bind 127.0.0.1:\(frontendPort) proto h2",
        ]
        if let route = headerRoute {
            lines += ["    acl routed req.hdr(\(route.header)) -m str \(route.value)", "    use_backend routed if routed"]
        }
        lines += ["    default_backend weighted"]
        if let route = headerRoute {
            lines += ["backend routed", "    server routed 127.0.0.1:\(route.port)"]
        }
        lines += ["backend weighted", "    balance random(1)"]
        lines += servers.map { "    server \($0.name) 127.0.0.1:\($0.port) weight \($0.weight)" }
        return lines.joined(separator: "\n") + "\n"
    }
}
