/// One URL a load run sends to.
public struct LoadTarget: Sendable, Hashable, CustomStringConvertible {
    public enum Scheme: String, Sendable { case http, https }
    public var scheme: Scheme
    public var host: String
    public var port: Int
    /// Path and query, starting with `/`.
    public var path: String
    /// The TLS server name (SNI) for this target, instead of the host (or the run's `--sni`): an east-west gateway
    /// routes by it, one per remote cluster.
    public var serverName: String?
    /// The ALPN a mesh's sidecar expects on this target's port (`meshAlpn: istio`); nil offers h2 and http/1.1.
    public var meshALPN: MeshALPN?
    /// Written `grpc://` or `grpcs://`: gRPC calls over h2c or TLS (the scheme says which), the path naming the method.
    public var grpc = false

    /// The `:authority` (HTTP/2) or `Host` (HTTP/1.1) value.
    public var authority: String {
        let defaultPort = scheme == .https ? 443 : 80
        let h = host.contains(":") ? "[\(host)]" : host
        return port == defaultPort ? h : "\(h):\(port)"
    }

    /// The URL as written: `grpc` and `grpcs` for gRPC targets.
    public var schemeText: String {
        guard grpc else { return scheme.rawValue }
        return scheme == .https ? "grpcs" : "grpc"
    }

    public var description: String { "\(schemeText)://\(authority)\(path)" }

    /// True when the host is an IPv4 or IPv6 literal (no SNI is sent for those).
    public var hostIsIPLiteral: Bool {
        if host.contains(":") { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { UInt8($0) != nil }
    }

    public init(scheme: Scheme, host: String, port: Int, path: String) {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.path = path
    }

    /// Parses `http://host[:port][/path]` and `https://...`, with `[v6]` literals; `grpc://` and `grpcs://` are
    /// the same over h2c and TLS, for gRPC calls (their default ports are 80 and 443 too: a mesh's gRPC port is
    /// whatever its Service says, so give it).
    public init(parsing url: String) throws(LoadPlanError) {
        let fail = { (reason: String) in LoadPlanError(field: "URL", value: url, reason: reason) }
        guard let schemeEnd = url.range(of: "://") else {
            throw fail("expected http://HOST[:PORT]/PATH or https://HOST[:PORT]/PATH")
        }
        let schemeText = url[..<schemeEnd.lowerBound].lowercased()
        let grpc = schemeText == "grpc" || schemeText == "grpcs"
        guard let scheme = grpc ? (schemeText == "grpcs" ? .https : .http) : Scheme(rawValue: schemeText) else {
            throw fail("the scheme must be http (h2c or HTTP/1.1), https (TLS), grpc (gRPC over h2c) or grpcs (gRPC over TLS)")
        }
        let rest = url[schemeEnd.upperBound...]
        let pathStart = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        var hostPort = rest[..<pathStart]
        var path = String(rest[pathStart...])
        if path.isEmpty { path = "/" } else if path.hasPrefix("?") { path = "/" + path }
        if hostPort.contains("@") { throw fail("user info in the URL is not supported") }
        if let hash = path.firstIndex(of: "#") { path = String(path[..<hash]) }
        var host: String
        var port = scheme == .https ? 443 : 80
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { throw fail("unterminated IPv6 literal") }
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            hostPort = hostPort[hostPort.index(after: close)...]
            if hostPort.hasPrefix(":") {
                guard let p = Int(hostPort.dropFirst()), (1...65535).contains(p) else { throw fail("the port must be 1-65535") }
                port = p
            } else if !hostPort.isEmpty {
                throw fail("unexpected text after the IPv6 literal")
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = String(hostPort[..<colon])
            guard let p = Int(hostPort[hostPort.index(after: colon)...]), (1...65535).contains(p) else {
                throw fail("the port must be 1-65535")
            }
            port = p
        } else {
            host = String(hostPort)
        }
        if host.isEmpty { throw fail("the host is empty") }
        // A request line cannot carry these; percent-encode them (%20 for a space).
        if let bad = url.unicodeScalars.first(where: { $0.value <= 0x20 || $0.value == 0x7F }) {
            throw fail("contains \(bad == " " ? "a space" : "the control character 0x" + String(bad.value, radix: 16, uppercase: true)); percent-encode it (%20 for a space)")
        }
        self.init(scheme: scheme, host: host, port: port, path: path)
        self.grpc = grpc
    }
}

/// A bad value for a load setting: names the setting, the value and what was expected; `setting` says which of the
/// plan's settings it is, when it is one (a file points at its line).
public struct LoadPlanError: Error, Sendable, CustomStringConvertible, Equatable {
    public var field: String
    public var value: String
    public var reason: String
    public var setting: LoadPlan.Setting?

    public init(field: String, value: String, reason: String, setting: LoadPlan.Setting? = nil) {
        self.field = field
        self.value = value
        self.reason = reason
        self.setting = setting
    }

    /// An error about `setting`, named by `name`.
    init(_ setting: LoadPlan.Setting, naming name: (LoadPlan.Setting) -> String, value: String, reason: String) {
        self.init(field: name(setting), value: value, reason: reason, setting: setting)
    }

    /// The same error, about `setting`.
    func about(_ setting: LoadPlan.Setting) -> LoadPlanError {
        var error = self
        error.setting = setting
        return error
    }

    public var description: String { "\(field) '\(value)': \(reason)" }
}
