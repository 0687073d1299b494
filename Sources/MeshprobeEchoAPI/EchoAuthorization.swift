import MeshprobeIdentity
import MeshprobeYAML

/// The echo's allow list (`meshprobe echo --authorize FILE`): a request passes when one rule matches it, as an Istio
/// ALLOW AuthorizationPolicy; any other is answered as Envoy's HTTP RBAC filter answers a denial
/// (`EchoAuthorization.denial`). The control API (`/.meshprobe/faults`) keeps its own allow list.
///
/// ```yaml
/// rules:
///   - principals: [spiffe://lab.test/ns/web/sa/frontend]   # exact, PREFIX*, *SUFFIX, or * (any client SVID)
///     methods: [GET, HEAD]                                  # optional: any method
///     paths: [/reviews, /reviews/*]                         # optional: exact, PREFIX*, *SUFFIX
/// ```
/// A rule without `principals` matches any caller, one without a client certificate too.
public struct EchoAuthorization: Sendable, Equatable {
    public struct Rule: Sendable, Equatable {
        public var principals: [String]?
        public var methods: [String]?
        public var paths: [String]?

        public init(principals: [String]? = nil, methods: [String]? = nil, paths: [String]? = nil) {
            self.principals = principals
            self.methods = methods
            self.paths = paths
        }

        func matches(principal: String?, method: String, path: String) -> Bool {
            if let principals {
                guard let principal, !principal.isEmpty, principals.contains(where: { EchoAuthorization.matches($0, principal) }) else { return false }
            }
            if let methods, !methods.contains(method.uppercased()) { return false }
            if let paths {
                let bare = path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? path
                guard paths.contains(where: { EchoAuthorization.matches($0, bare) }) else { return false }
            }
            return true
        }
    }

    public var rules: [Rule]

    public init(rules: [Rule]) {
        self.rules = rules
    }

    /// Whether a request from `principal` (the mTLS peer's SPIFFE ID; nil without a client certificate) may pass.
    public func allows(principal: String?, method: String, path: String) -> Bool {
        rules.contains { $0.matches(principal: principal, method: method, path: path) }
    }

    /// Istio's string match: `*` anything (non-empty), `PREFIX*`, `*SUFFIX`, else exact.
    static func matches(_ pattern: String, _ value: String) -> Bool {
        if pattern == "*" { return !value.isEmpty }
        if pattern.hasSuffix("*") { return value.hasPrefix(pattern.dropLast()) }
        if pattern.hasPrefix("*") { return value.hasSuffix(pattern.dropFirst()) }
        return pattern == value
    }

    /// Envoy's HTTP RBAC filter's answer to a denied request: 403, the fixed body `RBAC: access denied` as
    /// `text/plain`, from `server: envoy` (Envoy's default server name), and none of the echo's stamps (a proxy's local
    /// reply, not the workload's).
    public static let denial = (status: 403, body: "RBAC: access denied",
                                headers: [(name: "content-type", value: "text/plain"), (name: "server", value: "envoy")])
}

extension EchoAuthorization {
    /// Reads an allow list; errors name the file, line and field.
    public static func load(path: String) throws(YAMLInputError) -> EchoAuthorization {
        let data: [UInt8]
        do { data = try InputFile.read(path, limit: .yaml) } catch {
            throw YAMLInputError(file: path, line: 1, column: 1, field: "", message: "the file \(error.reason)")
        }
        guard let text = String(bytes: data, encoding: .utf8) else {
            throw YAMLInputError(file: path, line: 1, column: 1, field: "", message: "the file is not UTF-8 text")
        }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws(YAMLInputError) -> EchoAuthorization {
        let root = try YAMLValue.parse(text, file: file)
        let top = try root.mapping(allowed: ["rules"])
        guard let rulesValue = top["rules"] else {
            throw root.error("an allow list needs rules: [{principals: [SPIFFE_ID], methods: [GET], paths: [/PATH]}]")
        }
        var rules: [Rule] = []
        for item in try rulesValue.list() {
            let m = try item.mapping(allowed: ["principals", "methods", "paths"])
            func strings(_ key: String, _ check: (String) -> String?) throws(YAMLInputError) -> [String]? {
                guard let v = m[key] else { return nil }
                var out: [String] = []
                for entry in try v.list() {
                    let s = try entry.string()
                    if let problem = check(s) { throw entry.error("'\(s)': \(problem)") }
                    out.append(s)
                }
                if out.isEmpty { throw v.error("\(key) is empty: leave it out to match any") }
                return out
            }
            let principals = try strings("principals") { p in
                p == "*" || p.hasPrefix("spiffe://") || p.hasPrefix("*") ? nil : "a principal is a SPIFFE ID (spiffe://...), PREFIX*, *SUFFIX or *"
            }
            let methods = try strings("methods") { m in
                !m.isEmpty && m.allSatisfy { $0.isASCII && $0.isLetter } ? nil : "not an HTTP method"
            }?.map { $0.uppercased() }
            let paths = try strings("paths") { p in p.hasPrefix("/") || p.hasPrefix("*") ? nil : "a path starts with / (or is *SUFFIX)" }
            rules.append(Rule(principals: principals, methods: methods, paths: paths))
        }
        return EchoAuthorization(rules: rules)
    }
}
