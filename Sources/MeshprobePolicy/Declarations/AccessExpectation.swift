import MeshprobeIdentity
import MeshprobeSpec
import MeshprobeYAML

/// Who calls in an access check: an SVID this prober holds, or one of the callers every mesh policy has to answer.
public enum AccessCaller: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// A SPIFFE ID whose SVID the policy's `identities` (or `identity`) give.
    case spiffe(String)
    /// TLS without a client certificate.
    case anonymous
    /// No TLS at all, to the same port.
    case plaintext
    /// `identities.foreign`: a valid SVID of another trust domain.
    case foreign

    /// Parses a caller as files write it: a SPIFFE ID, `anonymous`, `plaintext` or `foreign`.
    public init(parsing text: String) throws(InputValueError) {
        switch text {
        case "anonymous": self = .anonymous
        case "plaintext": self = .plaintext
        case "foreign": self = .foreign
        default:
            guard text.hasPrefix("spiffe://") else {
                throw InputValueError("'\(text)': a caller is a SPIFFE ID (spiffe://TRUST_DOMAIN/PATH), anonymous, plaintext or foreign")
            }
            do { _ = try SPIFFEID(parsing: text) } catch { throw InputValueError("'\(text)': \(error.reason)") }
            self = .spiffe(text)
        }
    }

    public var description: String {
        switch self {
        case .spiffe(let id): id
        case .anonymous: "anonymous"
        case .plaintext: "plaintext"
        case .foreign: "foreign"
        }
    }

    /// Callers holding an SVID first (by ID), then anonymous, plaintext, foreign: the matrix's row order.
    public static func < (a: AccessCaller, b: AccessCaller) -> Bool {
        func rank(_ c: AccessCaller) -> (Int, String) {
            switch c {
            case .spiffe(let id): (0, id)
            case .foreign: (1, "")
            case .anonymous: (2, "")
            case .plaintext: (3, "")
            }
        }
        return rank(a) < rank(b)
    }
}

/// One request of an access check: method, path, headers and, when the policy names one, another port of the target.
public struct AccessRequest: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var method: String
    public var path: String
    /// Sorted by name: two rows naming the same headers in another order are one request.
    public var headers: [String: String]
    public var port: Int?

    public init(method: String = "GET", path: String = "/", headers: [String: String] = [:], port: Int? = nil) {
        self.method = method
        self.path = path
        self.headers = headers
        self.port = port
    }

    /// `GET /reviews`, `POST :9080/admin [x-user: a]`: the matrix's column name and part of each cell's name.
    public var description: String {
        var text = "\(method) " + (port.map { ":\($0)" } ?? "") + path
        if !headers.isEmpty {
            text += " [" + headers.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "]"
        }
        return text
    }

    public static func < (a: AccessRequest, b: AccessRequest) -> Bool { a.description < b.description }
}

/// What a declaration says should happen to a request.
public enum AccessDecision: String, Sendable, Equatable, CaseIterable {
    case allow, deny
}

/// One cell of the matrix: a caller, a request, and the decision declared for it (nil: not checked, with why).
public struct AccessCell: Sendable, Equatable {
    public var caller: AccessCaller
    public var request: AccessRequest
    public var expected: AccessDecision?
    /// Why the cell has no expected decision (a manifest feature this prober cannot express).
    public var notChecked: String?
    /// Where the decision was declared (`FILE:LINE expect.access.rules[2]`, or a manifest's resource).
    public var source: String

    public init(caller: AccessCaller, request: AccessRequest, expected: AccessDecision?, notChecked: String? = nil, source: String) {
        self.caller = caller
        self.request = request
        self.expected = expected
        self.notChecked = notChecked
        self.source = source
    }

    /// The cell's stable name in every report: `access: CALLER -> METHOD PATH`.
    public var name: String { "access: \(caller) -> \(request)" }

    /// Where and what a try of this cell sends, from the policy's target and request headers: the request's port in
    /// place of the target's, plain HTTP for `plaintext` (no SNI), and the request's headers over the policy's of the
    /// same name. The access check sends this and the manifest importers judge it, so both see one request.
    public func sent(to base: LoadTarget, headers: [HTTP2HeaderPair]) -> (target: LoadTarget, headers: [HTTP2HeaderPair]) {
        var target = base
        target.path = request.path
        if let port = request.port { target.port = port }
        if caller == .plaintext {
            target.scheme = .http
            target.serverName = nil
        }
        let names = Set(request.headers.keys)
        let merged = headers.filter { !names.contains($0.name.lowercased()) }
            + request.headers.sorted { $0.key < $1.key }.map { HTTP2HeaderPair($0.key, $0.value) }
        return (target, merged)
    }
}

/// An SVID a policy holds for calling as another workload (`identities:`), by its SPIFFE ID, or `foreign`.
public struct CallerIdentity: Sendable, Equatable {
    public var caller: AccessCaller
    /// Only `cert` and `key`, or `svidDir`: the trust bundles are the policy's `identity`'s.
    public var tls: TLSIdentitySpec
    /// Where it is written (`FILE:LINE:COLUMN: identities.NAME`), for errors found when its files are read.
    public var location: String

    public init(caller: AccessCaller, tls: TLSIdentitySpec, location: String) {
        self.caller = caller
        self.tls = tls
        self.location = location
    }
}

/// `expect.access`: which callers may make which requests, each cell tried `attempts` times on fresh connections.
public struct AccessExpectation: Sendable, Equatable {
    public var cells: [AccessCell]
    /// Tries per cell, each on its own connection: a cell is decided only when every try says the same.
    public var attempts: Int = 3
    /// Manifest features no cell can express, listed so nothing is silently dropped.
    public var notChecked: [String] = []
    public var source: String

    public init(cells: [AccessCell], source: String) {
        self.cells = cells
        self.source = source
    }

    /// The callers the cells name, in matrix order.
    public var callers: [AccessCaller] { Array(Set(cells.map(\.caller))).sorted() }
    /// The requests the cells name, in matrix order.
    public var requests: [AccessRequest] { Array(Set(cells.map(\.request))).sorted() }

    /// Cells no rule decides and no manifest has decided yet (nor said why it cannot).
    public var decidedByManifests: [AccessCell] { cells.filter { $0.expected == nil && $0.notChecked == nil } }

    /// Refuses a matrix with cells nothing decides: a rule must, or the mesh's authorization manifests.
    public func checkDecided() throws(YAMLInputError) {
        let open = decidedByManifests
        guard let first = open.first else { return }
        let names = open.prefix(3).map { "\($0.caller) -> \($0.request)" }.joined(separator: ", ") + (open.count > 3 ? ", ..." : "")
        let (file, line) = Self.position(first.source)
        throw YAMLInputError(file: file, line: line, column: 1, field: "expect.access",
                             message: "\(counted(open.count, "cell")) of the matrix have no decision (\(names)): add rules for them, or give the mesh's authorization manifests (AuthorizationPolicy, PeerAuthentication, Linkerd's Server and AuthorizationPolicy)")
    }

    /// `FILE:LINE` of a `FILE:LINE FIELD` source.
    static func position(_ source: String) -> (String, Int) {
        let head = source.split(separator: " ").first.map(String.init) ?? source
        guard let colon = head.lastIndex(of: ":"), let line = Int(head[head.index(after: colon)...]) else { return (source, 1) }
        return (String(head[..<colon]), line)
    }
}

extension Policy {
    /// `identities: {spiffe://td/ns/a/sa/b: {svidDir: DIR}, spiffe://...: {cert: C, key: K}, foreign: {svidDir: DIR}}`.
    static func identities(_ value: YAMLValue, resolve: (YAMLValue) throws(YAMLInputError) -> String) throws(YAMLInputError) -> [CallerIdentity] {
        var out: [CallerIdentity] = []
        for (name, _, at) in try value.stringMapKeys() {
            let caller: AccessCaller
            do { caller = try AccessCaller(parsing: name) } catch { throw at.error(error.message) }
            if caller == .anonymous || caller == .plaintext {
                throw at.error("'\(name)' holds no SVID: it is a caller of expect.access without an entry here")
            }
            let m = try at.mapping(allowed: ["svidDir", "cert", "key"])
            var tls = TLSIdentitySpec()
            switch (m["svidDir"], m["cert"], m["key"]) {
            case let (dir?, nil, nil): tls.svidDir = try resolve(dir)
            case let (nil, cert?, key?):
                tls.cert = try resolve(cert)
                tls.key = try resolve(key)
            default:
                throw at.error("give svidDir, or cert and key (the trust bundles are the identity section's)")
            }
            out.append(CallerIdentity(caller: caller, tls: tls, location: "\(at.file):\(at.line):\(at.column): \(at.path)"))
        }
        return out
    }

    /// `access: {attempts: 3, callers: [...], requests: [...], rules: [{callers: [...], requests: [{method, path,
    /// headers, port}], expect: allow|deny}]}`. `callers` x `requests` is the matrix to try; `rules` declare
    /// decisions (their cells join the matrix); a matrix cell no rule covers takes its decision from the mesh's
    /// manifests (`decidedByManifests`). A cell given twice with different decisions is refused at the second;
    /// `foreign` needs `identities.foreign` (a SPIFFE ID's SVID, in `identities` or the prober's own, is found when
    /// the identities are read).
    static func access(_ value: YAMLValue, holders: Set<AccessCaller>) throws(YAMLInputError) -> AccessExpectation {
        let m = try value.mapping(allowed: ["attempts", "callers", "requests", "rules"])
        var expectation = AccessExpectation(cells: [], source: "\(value.file):\(value.line) \(value.path)")
        if let a = m["attempts"] {
            expectation.attempts = try a.int(minimum: 1)
            guard expectation.attempts <= 20 else { throw a.error("at most 20 tries per cell") }
        }
        if (m["callers"] == nil) != (m["requests"] == nil), let given = m["callers"] ?? m["requests"] {
            throw given.error("callers and requests go together: the matrix to try is every caller with every request")
        }
        guard m["rules"] != nil || (m["callers"] != nil && m["requests"] != nil) else {
            throw value.error("access needs rules: [{callers: [...], requests: [...], expect: allow|deny}], or callers and requests to try with the mesh's authorization manifests")
        }
        func callers(_ v: YAMLValue) throws(YAMLInputError) -> [AccessCaller] {
            var out: [AccessCaller] = []
            for c in try Self.oneOrMany(v) {
                let caller = try c.parsed(AccessCaller.init(parsing:))
                if caller == .foreign && !holders.contains(.foreign) {
                    throw c.error("foreign needs identities.foreign: {svidDir: DIR} (an SVID of another trust domain)")
                }
                if !out.contains(caller) { out.append(caller) }
            }
            if out.isEmpty { throw v.error("callers is empty") }
            return out
        }
        func requests(_ v: YAMLValue) throws(YAMLInputError) -> [AccessRequest] {
            var out: [AccessRequest] = []
            for item in try Self.oneOrMany(v) {
                let request = try Self.request(item)
                if !out.contains(request) { out.append(request) }
            }
            if out.isEmpty { throw v.error("requests is empty") }
            return out
        }
        var seen: [AccessCell] = []
        if let c = m["callers"], let r = m["requests"] {
            let source = "\(value.file):\(value.line) \(value.path)"
            for caller in try callers(c) {
                for request in try requests(r) {
                    seen.append(AccessCell(caller: caller, request: request, expected: nil, source: source))
                }
            }
        }
        for rule in try (m["rules"]?.list() ?? []) {
            let r = try rule.mapping(allowed: ["callers", "requests", "expect"])
            guard let callersValue = r["callers"], let requestsValue = r["requests"], let expectValue = r["expect"] else {
                throw rule.error("a rule needs callers, requests and expect")
            }
            let decisionText = try expectValue.string()
            guard let decision = AccessDecision(rawValue: decisionText) else { throw expectValue.error("expected allow or deny, got '\(decisionText)'") }
            let source = "\(rule.file):\(rule.line) \(rule.path)"
            for caller in try callers(callersValue) {
                for request in try requests(requestsValue) {
                    guard let index = seen.firstIndex(where: { $0.caller == caller && $0.request == request }) else {
                        seen.append(AccessCell(caller: caller, request: request, expected: decision, source: source))
                        continue
                    }
                    if let earlier = seen[index].expected, earlier != decision {
                        throw rule.error("\(caller) -> \(request) is declared \(earlier.rawValue) at \(seen[index].source) and \(decision.rawValue) here")
                    }
                    seen[index].expected = decision
                    seen[index].source = source
                }
            }
        }
        if seen.isEmpty { throw value.error("access has no cell to try") }
        // Matrix order: callers as `AccessCaller` sorts them, each caller's requests as first written.
        let order = Dictionary(seen.map(\.request).enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        expectation.cells = seen.sorted { ($0.caller, order[$0.request] ?? 0) < ($1.caller, order[$1.request] ?? 0) }
        return expectation
    }

    /// A list, or one item written without one.
    static func oneOrMany(_ value: YAMLValue) throws(YAMLInputError) -> [YAMLValue] {
        if case .sequence = value.node { return try value.list() }
        return [value]
    }

    /// `{method: GET, path: /reviews, headers: {x-user: a}, port: 9080}`; each optional (GET, /).
    static func request(_ value: YAMLValue) throws(YAMLInputError) -> AccessRequest {
        let m = try value.mapping(allowed: ["method", "path", "headers", "port"])
        var request = AccessRequest()
        if let v = m["method"] {
            let method = try v.string()
            guard !method.isEmpty, method.allSatisfy({ $0.isLetter && $0.isASCII }) else { throw v.error("'\(method)' is not an HTTP method") }
            request.method = method.uppercased()
        }
        if let v = m["path"] {
            let path = try v.string()
            guard path.hasPrefix("/"), !path.contains(where: { $0 == " " || $0.isNewline }) else {
                throw v.error("'\(path)': a path starts with / and has no spaces")
            }
            request.path = path
        }
        if let v = m["headers"] {
            for (name, text, at) in try v.stringMap() {
                let lower = name.lowercased()
                guard !lower.isEmpty, !lower.hasPrefix(":"), lower.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
                    throw at.error("'\(name)' is not a header name")
                }
                request.headers[lower] = text
            }
        }
        if let v = m["port"] {
            let port = try v.int(minimum: 1)
            guard port <= 65535 else { throw v.error("a port is at most 65535") }
            request.port = port
        }
        return request
    }
}
