import MeshprobeYAML

/// Linkerd's authorization of the target's pods, from `Server` (policy.linkerd.io v1beta1 to v1beta3),
/// `AuthorizationPolicy`, `MeshTLSAuthentication`, `NetworkAuthentication`, the older `ServerAuthorization`, inbound
/// `HTTPRoute`s (parented by a Server) and the default-policy annotations.
///
/// The rules, with their sources:
/// - A `Server` selects pods (`podSelector`) and one port (a number, or a container port's name); a port no Server
///   selects takes the default policy: the pod's `config.linkerd.io/default-inbound-policy` annotation, else the
///   namespace's, else the cluster's (`all-unauthenticated` unless set at install, which no manifest shows: assumed)
///   (Linkerd docs: 2-edge/reference/authorization-policy, "Default policies").
/// - A Server's traffic is allowed only by its authorizations: AuthorizationPolicies targeting it or its namespace,
///   ServerAuthorizations selecting it, and its `accessPolicy` (default `deny`): a Server without any denies
///   everything (Linkerd docs: the same page, "Server"; linkerd/linkerd2
///   policy-controller/k8s/index/src/inbound/index.rs, client_authzs).
/// - With HTTPRoutes parented by the Server, a request must match one (else the proxy answers 404); the best match
///   wins by Gateway API precedence as the proxy ranks it (host, then path length, header count, query count, method:
///   linkerd/linkerd2-proxy linkerd/http/route), and is allowed by the route's AuthorizationPolicies or the Server's
///   (linkerd2-proxy linkerd/proxy/server-policy: a route's authorizations include its server's).
/// - An authorization admits a client in one of its networks whose authentication holds: unauthenticated (anyone),
///   TLS (any TLS client the proxy terminated), or identities: every `requiredAuthenticationRefs` entry must hold
///   (linkerd2 policy-controller policy_client_authz). A client's identity is its certificate's first SAN: a
///   SPIFFE ID is matched exactly, a DNS name exactly or by `*.suffix` (`*` is every DNS name)
///   (linkerd2-proxy linkerd/app/inbound/src/policy.rs, is_tls_authorized; meshtls/verifier). ServiceAccounts are
///   `SA.NS.serviceaccount.identity.linkerd.cluster.local` (control plane `linkerd`, identity domain `cluster.local`).
/// - A caller's SVID is taken to carry its SPIFFE ID first, so a DNS identity (identityRefs, serviceAccounts,
///   `*.NS.serviceaccount...`, `*`) does not admit it; when such an identity would admit the caller's service account
///   where the SPIFFE ID is denied, the cell depends on the certificate and is not checked.
/// - TLS callers are taken to reach the proxy as mesh TLS, which it terminates when the ClientHello's SNI is its own
///   identity (identity.sni: SA.NS.serviceaccount.identity.linkerd.cluster.local); otherwise it passes the TLS
///   through as an unauthenticated stream (linkerd2-proxy linkerd/tls/src/server.rs). `foreign` is refused at the
///   handshake: the proxy trusts Linkerd's trust anchor only (no federation assumed).
/// - Networks: a NetworkAuthentication or ServerAuthorization network is decided only when it is `0.0.0.0/0` (the
///   prober's address is not known here; IPv4 assumed); the cluster's networks (a ServerAuthorization without
///   `networks`, the `cluster-*` defaults) are taken to include the prober, which runs in the cluster.
struct LinkerdAccess {
    static let kinds: Set<String> = ["Server", "AuthorizationPolicy", "MeshTLSAuthentication", "NetworkAuthentication",
                                     "ServerAuthorization", "GRPCRoute", "HTTPLocalRateLimitPolicy"]
    static let defaultPolicyAnnotation = "config.linkerd.io/default-inbound-policy"
    static let requireIdentityAnnotation = "config.linkerd.io/proxy-require-identity-on-inbound-ports"

    enum Authentication {
        case unauthenticated
        case tls
        /// Identities as written: exact names, `*`, `*.suffix`.
        case identities([String])
    }

    enum Networks {
        case all
        /// The cluster's pod networks: the prober is taken to be in them.
        case cluster
        case cidrs([String], at: String)
    }

    struct Authorization {
        var source: String
        var authentication: Authentication
        var networks: Networks
    }

    struct Match {
        /// Exact, PathPrefix or RegularExpression; nil: every path.
        var path: (type: String, value: String)?
        var headers: [(type: String, name: String, value: String)] = []
        var query: [(type: String, name: String, value: String)] = []
        var method: String?
    }

    struct Route {
        var ref: ManifestName
        var hostnames: [String]
        /// Each rule's matches (empty: the rule matches every request).
        var rules: [[Match]]
        var authorizations: [Authorization] = []
    }

    struct Server {
        var ref: ManifestName
        var labels: [String: String]
        var selects: Truth
        var port: PortRef
        var proxyProtocol: String
        var authorizations: [Authorization] = []
        var routes: [Route] = []
        var grpcRoutes: [String] = []
    }

    enum PortRef { case number(Int), name(String) }

    var servers: [Server] = []
    let workload: TargetWorkload
    /// The default policy and where it is set.
    var defaultPolicy: (name: String, source: String)
    var defaultUnknown: String?
    var requireIdentityPorts: String?

    init(documents: [YAMLValue], workload: TargetWorkload, notes: inout [String], skipped: inout [String]) throws(YAMLInputError) {
        self.workload = workload
        var meshTLS: [String: (ref: ManifestName, identities: [String]?)] = [:]
        var networks: [String: (ref: ManifestName, networks: Networks)] = [:]
        var routes: [(parent: String, route: Route)] = []
        var policies: [(ref: ManifestName, spec: YAMLValue)] = []
        var serverAuthorizations: [(ref: ManifestName, spec: YAMLValue)] = []
        // A resource written without a namespace is applied in the target's.
        func key(_ namespace: String?, _ name: String) -> String { "\(namespace ?? workload.namespace ?? "")/\(name)" }
        for document in documents {
            let kind = try document["kind"]?.string() ?? ""
            let ref = try ManifestName(document, kind: kind)
            // Authentications are referred to by namespace and name, so another namespace's may serve.
            let authentication = kind == "MeshTLSAuthentication" || kind == "NetworkAuthentication"
            guard authentication || workload.isTargetNamespace(ref.namespace) else {
                notes.append("\(ref.file):\(ref.line): not checked: \(ref.resource): namespace \(ref.namespace ?? "") is not the target's (\(workload.namespace ?? ""))")
                continue
            }
            guard let spec = document["spec"], case .mapping = spec.node else { throw (document["spec"] ?? document).error("expected a mapping (spec)") }
            switch kind {
            case "MeshTLSAuthentication":
                var ids = try stringList(spec["identities"])
                var legal = true
                for r in try spec["identityRefs"]?.list() ?? [] {
                    let refKind = try r["kind"]?.string() ?? ""
                    let name = try r["name"]?.name() ?? ""
                    switch refKind {
                    case "ServiceAccount": ids.append(Self.serviceAccountIdentity(name, namespace: try r["namespace"]?.name() ?? ref.namespace ?? workload.namespace ?? ""))
                    case "Namespace": ids.append("*.\(name).serviceaccount.identity.linkerd.cluster.local")
                    default:
                        legal = false
                        notes.append("\(r.file):\(r.line): \(ref.resource): identityRefs kind \(refKind) is not supported by Linkerd: the authentication is refused, so policies requiring it are ignored")
                    }
                }
                meshTLS[key(ref.namespace, ref.name)] = (ref, legal && !ids.isEmpty ? ids : nil)
            case "NetworkAuthentication":
                networks[key(ref.namespace, ref.name)] = (ref, try Self.networks(spec["networks"], ref: ref, skipped: &skipped) ?? .cidrs([], at: ref.source))
            case "Server":
                if spec["externalWorkloadSelector"] != nil {
                    notes.append("\(ref.file):\(ref.line): not checked: \(ref.resource): it selects external workloads, not the target's pods")
                    continue
                }
                guard let selector = spec["podSelector"] else { throw spec.error("a Server needs podSelector") }
                let selects = workload.selects(try LabelSelector(selector, expressions: true))
                guard selects != .no else {
                    notes.append("\(ref.file):\(ref.line): not checked: \(ref.resource): its podSelector does not select the target \(workload.service ?? "")")
                    continue
                }
                guard let portValue = spec["port"] else { throw spec.error("a Server needs port") }
                let portText = try portValue.string()
                let labels = Dictionary(try document["metadata"]?["labels"].map { l throws(YAMLInputError) in try l.stringMap() }?.map { ($0.key, $0.value) } ?? [],
                                        uniquingKeysWith: { a, _ in a })
                var server = Server(ref: ref, labels: labels, selects: selects, port: Int(portText).map { .number($0) } ?? .name(portText),
                                    proxyProtocol: try spec["proxyProtocol"]?.string() ?? "unknown")
                let access = try spec["accessPolicy"]?.string() ?? "deny"
                if let a = try Self.defaultAuthorization(access, source: "\(ref.source) accessPolicy \(access)", at: spec["accessPolicy"] ?? spec) {
                    server.authorizations.append(a)
                    if access == "audit" { skipped.append("\(ref.source): accessPolicy audit lets every request through (logged): decided as allowed") }
                }
                if ["opaque", "TLS"].contains(server.proxyProtocol) {
                    skipped.append("\(ref.source): proxyProtocol \(server.proxyProtocol): decided per connection; a denied connection is refused, not answered 403")
                }
                servers.append(server)
            case "HTTPRoute":
                for parent in try spec["parentRefs"]?.list() ?? [] where try parent["kind"]?.string() == "Server" {
                    routes.append((try parent["name"]?.name() ?? "", try Self.route(spec, ref: ref, skipped: &skipped)))
                }
            case "GRPCRoute":
                for parent in try spec["parentRefs"]?.list() ?? [] where try parent["kind"]?.string() == "Server" {
                    let name = try parent["name"]?.name() ?? ""
                    skipped.append("\(ref.source): gRPC routes are not checked: Server \(name)'s cells are not checked on a gRPC port")
                    routes.append((name, Route(ref: ref, hostnames: [], rules: [])))
                }
            case "AuthorizationPolicy":
                policies.append((ref, spec))
            case "ServerAuthorization":
                serverAuthorizations.append((ref, spec))
            default:
                skipped.append("\(ref.source): \(kind) is not checked (no access decision)")
            }
        }
        // AuthorizationPolicies: their authentications, then their targets.
        for (ref, spec) in policies {
            var identities: [String]?
            var nets: Networks = .all
            var illegal: String?
            var meshCount = 0, networkCount = 0
            for r in try spec["requiredAuthenticationRefs"]?.list() ?? [] {
                let kind = try r["kind"]?.string() ?? ""
                let name = try r["name"]?.name() ?? ""
                let ns = try r["namespace"]?.name() ?? ref.namespace
                switch kind {
                case "MeshTLSAuthentication":
                    meshCount += 1
                    guard let found = meshTLS[key(ns, name)] else { illegal = "MeshTLSAuthentication \(name) is not in the manifests"; continue }
                    guard let ids = found.identities else { illegal = "\(found.ref.resource) is refused by Linkerd"; continue }
                    identities = ids
                case "ServiceAccount":
                    meshCount += 1
                    identities = [Self.serviceAccountIdentity(name, namespace: ns ?? workload.namespace ?? "")]
                case "NetworkAuthentication":
                    networkCount += 1
                    guard let found = networks[key(ns, name)] else { illegal = "NetworkAuthentication \(name) is not in the manifests"; continue }
                    nets = found.networks
                default:
                    illegal = "requiredAuthenticationRefs kind \(kind) is not supported by Linkerd"
                }
            }
            if meshCount > 1 || networkCount > 1 { illegal = "more than one MeshTLSAuthentication, ServiceAccount or NetworkAuthentication" }
            if let illegal {
                notes.append("\(ref.file):\(ref.line): \(ref.resource): \(illegal): Linkerd ignores the policy, and so does this check")
                continue
            }
            let authorization = Authorization(source: ref.source, authentication: identities.map { .identities($0) } ?? .unauthenticated, networks: nets)
            guard let target = spec["targetRef"] else { throw spec.error("an AuthorizationPolicy needs targetRef") }
            let kind = try target["kind"]?.string() ?? ""
            let name = try target["name"]?.name() ?? ""
            switch kind {
            case "Server":
                guard let i = servers.firstIndex(where: { $0.ref.name == name }) else {
                    notes.append("\(ref.file):\(ref.line): not checked: \(ref.resource): Server \(name) is not one of the target's")
                    continue
                }
                servers[i].authorizations.append(authorization)
            case "Namespace":
                for i in servers.indices { servers[i].authorizations.append(authorization) }
            case "HTTPRoute":
                let matching = routes.indices.filter { routes[$0].route.ref.name == name && routes[$0].route.ref.kind == "HTTPRoute" }
                if matching.isEmpty { notes.append("\(ref.file):\(ref.line): not checked: \(ref.resource): HTTPRoute \(name) is not an inbound route of the target's Servers") }
                for i in matching { routes[i].route.authorizations.append(authorization) }
            default:
                skipped.append("\(ref.source): targetRef \(kind) \(name) is not checked")
            }
        }
        for (ref, spec) in serverAuthorizations {
            guard let client = spec["client"] else { throw spec.error("a ServerAuthorization needs client") }
            let authentication: Authentication
            if try client["unauthenticated"]?.bool() == true {
                authentication = .unauthenticated
            } else if let mtls = client["meshTLS"] {
                if try mtls["unauthenticatedTLS"]?.bool() == true {
                    authentication = .tls
                } else {
                    var ids = try stringList(mtls["identities"])
                    for sa in try mtls["serviceAccounts"]?.list() ?? [] {
                        ids.append(Self.serviceAccountIdentity(try sa["name"]?.name() ?? "", namespace: try sa["namespace"]?.name() ?? ref.namespace ?? workload.namespace ?? ""))
                    }
                    guard !ids.isEmpty else { throw mtls.error("meshTLS authorizes no client: give identities, serviceAccounts or unauthenticatedTLS") }
                    authentication = .identities(ids)
                }
            } else {
                throw client.error("a client needs meshTLS or unauthenticated: true")
            }
            let nets = try Self.networks(client["networks"], ref: ref, skipped: &skipped) ?? .cluster
            let authorization = Authorization(source: ref.source, authentication: authentication, networks: nets)
            guard let server = spec["server"] else { throw spec.error("a ServerAuthorization needs server") }
            var selected = false
            for i in servers.indices {
                let picks: Bool
                if let name = try server["name"]?.name() {
                    picks = servers[i].ref.name == name
                } else {
                    picks = try LabelSelector(server["selector"] ?? server, expressions: true).selects(servers[i].labels, complete: true, pods: servers[i].ref.resource) == .yes
                }
                if picks {
                    servers[i].authorizations.append(authorization)
                    selected = true
                }
            }
            if !selected { notes.append("\(ref.file):\(ref.line): not checked: \(ref.resource): it selects none of the target's Servers") }
        }
        for (parent, route) in routes {
            guard let i = servers.firstIndex(where: { $0.ref.name == parent }) else {
                notes.append("\(route.ref.file):\(route.ref.line): not checked: \(route.ref.resource): Server \(parent) is not one of the target's")
                continue
            }
            if route.ref.kind == "GRPCRoute" { servers[i].grpcRoutes.append(route.ref.name) } else { servers[i].routes.append(route) }
        }
        // The default policy: the pods' annotation, else the namespace's, else the cluster's (assumed).
        let pod = workload.podAnnotation(Self.defaultPolicyAnnotation)
        defaultUnknown = pod.unknown
        if let value = pod.value {
            defaultPolicy = (value, "\(pod.source ?? "the pods") \(Self.defaultPolicyAnnotation): \(value)")
        } else if let value = workload.namespaceAnnotations[Self.defaultPolicyAnnotation] {
            defaultPolicy = (value, "\(workload.namespaceSource ?? "the namespace") \(Self.defaultPolicyAnnotation): \(value)")
        } else {
            defaultPolicy = ("all-unauthenticated", "Linkerd's cluster default all-unauthenticated (assumed: the install's proxy.defaultInboundPolicy is not in the manifests)")
        }
        requireIdentityPorts = workload.podAnnotation(Self.requireIdentityAnnotation).value
    }

    static func serviceAccountIdentity(_ name: String, namespace: String) -> String {
        "\(name).\(namespace).serviceaccount.identity.linkerd.cluster.local"
    }

    /// A default policy's authorization (Linkerd's DefaultPolicy: linkerd2 policy-controller/k8s/index/src/defaults.rs);
    /// nil for `deny`; an error for a name Linkerd does not know (when `at` is given).
    static func defaultAuthorization(_ name: String, source: String, at: YAMLValue?) throws(YAMLInputError) -> Authorization? {
        switch name {
        case "all-unauthenticated", "audit": return Authorization(source: source, authentication: .unauthenticated, networks: .all)
        case "cluster-unauthenticated": return Authorization(source: source, authentication: .unauthenticated, networks: .cluster)
        case "all-authenticated": return Authorization(source: source, authentication: .identities(["*"]), networks: .all)
        case "cluster-authenticated": return Authorization(source: source, authentication: .identities(["*"]), networks: .cluster)
        case "deny": return nil
        default:
            if let at { throw at.error("'\(name)': expected all-unauthenticated, all-authenticated, cluster-unauthenticated, cluster-authenticated, deny or audit") }
            return nil
        }
    }

    /// `networks: [{cidr, except}]`; nil when absent.
    static func networks(_ value: YAMLValue?, ref: ManifestName, skipped: inout [String]) throws(YAMLInputError) -> Networks? {
        guard let value else { return nil }
        var cidrs: [String] = []
        for n in try value.list() {
            guard let cidr = try n["cidr"]?.string() else { throw n.error("a network needs cidr") }
            cidrs.append(try stringList(n["except"]).isEmpty ? cidr : "\(cidr) except \(try stringList(n["except"]).joined(separator: ", "))")
        }
        if !cidrs.contains("0.0.0.0/0") {
            skipped.append("\(ref.source): networks \(cidrs.joined(separator: ", ")): the prober's address is not known here; cells they decide are not checked")
        }
        return cidrs.contains("0.0.0.0/0") ? .all : .cidrs(cidrs, at: ref.source)
    }

    static func route(_ spec: YAMLValue, ref: ManifestName, skipped: inout [String]) throws(YAMLInputError) -> Route {
        var rules: [[Match]] = []
        for rule in try spec["rules"]?.list() ?? [] {
            if rule["filters"] != nil { skipped.append("\(rule.file):\(rule.line): \(ref.resource): filters are not checked (they do not decide access)") }
            var matches: [Match] = []
            for m in try rule["matches"]?.list() ?? [] {
                var match = Match()
                if let path = m["path"] {
                    match.path = (try path["type"]?.string() ?? "PathPrefix", try path["value"]?.string() ?? "/")
                }
                for h in try m["headers"]?.list() ?? [] {
                    guard let name = try h["name"]?.string(), let value = try h["value"]?.string() else { throw h.error("a header match needs name and value") }
                    match.headers.append((try h["type"]?.string() ?? "Exact", name.lowercased(), value))
                }
                for q in try m["queryParams"]?.list() ?? [] {
                    guard let name = try q["name"]?.string(), let value = try q["value"]?.string() else { throw q.error("a query match needs name and value") }
                    match.query.append((try q["type"]?.string() ?? "Exact", name, value))
                }
                match.method = try m["method"]?.string()
                matches.append(match)
            }
            rules.append(matches)
        }
        return Route(ref: ref, hostnames: try stringList(spec["hostnames"]), rules: rules)
    }

    // MARK: - Deciding a cell

    /// Who the proxy sees: no TLS, TLS without a client certificate, or TLS with an identity.
    enum Client {
        case plaintext
        case tls(id: String?)
    }

    struct Facts {
        var method: String
        var path: String
        var query: [(String, String)]
        var headers: [String: String]
        var port: Int?
        var portUnknown: String
        var dialed: Int?
        var authority: String?
    }

    func decide(_ caller: AccessCaller, _ facts: Facts) -> AccessVerdict {
        switch caller {
        case .foreign:
            return .decided(.deny, source: "the Linkerd proxy trusts its trust anchor only: another trust domain's SVID is refused at TLS (no federation assumed)")
        case .plaintext:
            return decide(Client.plaintext, facts)
        case .anonymous:
            return decide(Client.tls(id: nil), facts)
        case .spiffe(let id):
            let asSPIFFE = decide(Client.tls(id: id), facts)
            guard case .decided(.deny, _) = asSPIFFE, let dns = Self.dnsIdentity(id) else { return asSPIFFE }
            let asDNS = decide(Client.tls(id: dns), facts)
            if case .decided(.deny, _) = asDNS { return asSPIFFE }
            return .open("Linkerd names a client by its certificate's first SAN: as \(id) it is denied (\(Self.source(asSPIFFE))), as \(dns) it is not (\(Self.source(asDNS))); which comes first is not known here")
        }
    }

    static func source(_ verdict: AccessVerdict) -> String {
        switch verdict {
        case .decided(let d, let source): "\(d.rawValue): \(source)"
        case .open(let why): why
        }
    }

    /// `spiffe://TD/ns/NS/sa/SA` as Linkerd names the same service account: `SA.NS.serviceaccount.identity.linkerd.TD`.
    static func dnsIdentity(_ id: String) -> String? {
        guard id.hasPrefix("spiffe://") else { return nil }
        let parts = id.dropFirst("spiffe://".count).split(separator: "/").map(String.init)
        guard parts.count == 5, parts[1] == "ns", parts[3] == "sa" else { return nil }
        return "\(parts[4]).\(parts[2]).serviceaccount.identity.linkerd.\(parts[0])"
    }

    func decide(_ client: Client, _ facts: Facts) -> AccessVerdict {
        var outcomes: [(label: String, verdict: AccessVerdict)] = []
        var sure = false
        for server in servers {
            let port: Truth
            switch server.port {
            case .number(let n): port = facts.port.map { Truth($0 == n) } ?? .unknown(facts.portUnknown)
            case .name(let name): port = workload.port(named: name, is: facts.port, dialed: facts.dialed)
            }
            let selected = Truth.all([server.selects, port])
            if selected == .no { continue }
            if selected == .yes { sure = true }
            outcomes.append((server.ref.source, decide(client, facts, server: server)))
        }
        if !sure {
            let label = "no Server (\(defaultPolicy.source))"
            if let defaultUnknown { return .open(defaultUnknown) }
            outcomes.append((label, decideDefault(client, facts)))
        }
        return AccessVerdict.agreed(outcomes)
    }

    func decideDefault(_ client: Client, _ facts: Facts) -> AccessVerdict {
        var authorization = try? Self.defaultAuthorization(defaultPolicy.name, source: "default policy: \(defaultPolicy.source)", at: nil)
        if let ports = requireIdentityPorts, let port = facts.port, Self.portList(ports).contains(port),
           case .unauthenticated = authorization?.authentication {
            authorization?.authentication = .identities(["*"])
            authorization?.source += " with \(Self.requireIdentityAnnotation): \(ports)"
        }
        guard let authorization else {
            guard defaultPolicy.name == "deny" else { return .open("\(defaultPolicy.source): not a Linkerd default policy") }
            return .decided(.deny, source: "default policy: \(defaultPolicy.source)")
        }
        return authorize(client, [authorization], denied: "default policy: \(defaultPolicy.source)")
    }

    /// `4191,9000-9010`: the ports listed.
    static func portList(_ text: String) -> Set<Int> {
        var ports: Set<Int> = []
        for part in text.split(separator: ",") {
            let bounds = part.split(separator: "-").compactMap { Int($0.filter { $0 != " " }) }
            if bounds.count == 1 { ports.insert(bounds[0]) } else if bounds.count == 2, bounds[0] <= bounds[1] { ports.formUnion(bounds[0]...bounds[1]) }
        }
        return ports
    }

    func decide(_ client: Client, _ facts: Facts, server: Server) -> AccessVerdict {
        let http = ["unknown", "HTTP/1", "HTTP/2"].contains(server.proxyProtocol)
        if server.proxyProtocol == "gRPC" && !server.grpcRoutes.isEmpty {
            return .open("\(server.ref.source): gRPC routes \(server.grpcRoutes.joined(separator: ", ")) are not checked")
        }
        guard http, !server.routes.isEmpty else {
            return authorize(client, server.authorizations, denied: "\(server.ref.source): no authorization admits the caller")
        }
        let best = Self.bestRoutes(server.routes, facts)
        guard !best.isEmpty else {
            return .decided(.deny, source: "\(server.ref.source): no HTTPRoute matches \(facts.method) \(facts.path) (the proxy answers 404)")
        }
        return AccessVerdict.agreed(best.map { route in
            (route.ref.source, authorize(client, route.authorizations + server.authorizations,
                                         denied: "\(route.ref.source): no authorization of the route or of Server \(server.ref.name) admits the caller"))
        })
    }

    func authorize(_ client: Client, _ authorizations: [Authorization], denied: String) -> AccessVerdict {
        guard !authorizations.isEmpty else {
            return .decided(.deny, source: denied.replacingOccurrences(of: "no authorization admits the caller", with: "no authorization, so all its traffic is denied"))
        }
        let each = authorizations.map { ($0, Truth.all([Self.inNetworks($0.networks), Self.admits($0.authentication, client)])) }
        if let yes = each.first(where: { $0.1 == .yes }) { return .decided(.allow, source: yes.0.source) }
        if let unknown = each.first(where: { $0.1.reason != nil }), let why = unknown.1.reason { return .open(why) }
        return .decided(.deny, source: denied)
    }

    static func inNetworks(_ networks: Networks) -> Truth {
        switch networks {
        case .all, .cluster: .yes
        case .cidrs(let cidrs, let at): .unknown("\(at): networks \(cidrs.joined(separator: ", ")): the prober's address is not known here")
        }
    }

    static func admits(_ authentication: Authentication, _ client: Client) -> Truth {
        switch (authentication, client) {
        case (.unauthenticated, _): return .yes
        case (.tls, .tls): return .yes
        case (.tls, .plaintext): return .no
        case (.identities, .plaintext), (.identities, .tls(id: nil)): return .no
        case (.identities(let ids), .tls(id: let id?)):
            if id.hasPrefix("spiffe://") { return Truth(ids.contains(id)) }
            return Truth(ids.contains { pattern in
                if pattern == "*" { return true }
                if pattern.hasPrefix("*.") { return id.hasSuffix(pattern.dropFirst()) }
                return pattern == id
            })
        }
    }

    /// The routes whose best match ranks highest for the request (the proxy takes the first of equals, in an order of
    /// creation time the manifests do not show, so every equal is a possibility).
    static func bestRoutes(_ routes: [Route], _ facts: Facts) -> [Route] {
        var best: [(rank: [Int], route: Route)] = []
        for route in routes {
            var host = 0
            if !route.hostnames.isEmpty {
                let h = facts.authority.map { String($0.split(separator: ":").first ?? "") }?.lowercased() ?? ""
                let ranks = route.hostnames.map { name -> Int in
                    let n = name.lowercased()
                    if n == h { return 2 }
                    if n.hasPrefix("*."), h.hasSuffix(n.dropFirst()) { return 1 }
                    return 0
                }
                host = ranks.max() ?? 0
                if host == 0 { continue }
            }
            let ranks = route.rules.compactMap { matches -> [Int]? in
                if matches.isEmpty { return [1, 0, 0, 0] }
                return matches.compactMap { rank($0, facts) }.max { $0.lexicographicallyPrecedes($1) }
            }
            guard let rank = ranks.max(by: { $0.lexicographicallyPrecedes($1) }) else { continue }
            let full = [host] + rank
            if let top = best.first?.rank {
                if full.lexicographicallyPrecedes(top) { continue }
                if top.lexicographicallyPrecedes(full) { best = [] }
            }
            best.append((full, route))
        }
        return best.map(\.route)
    }

    /// A match's rank for the request (path characters matched, headers, query parameters, method), nil when it does not
    /// match (linkerd2-proxy linkerd/http/route/src/http/match.rs).
    static func rank(_ m: Match, _ facts: Facts) -> [Int]? {
        if let method = m.method, method != facts.method { return nil }
        var length = 1
        if let (type, value) = m.path {
            switch type {
            case "Exact":
                guard value == facts.path else { return nil }
                length = value.count
            case "RegularExpression":
                guard (try? LinearRegex(value))?.wholeMatch(facts.path) == true else { return nil }
                length = facts.path.count
            default:
                if value != "/" {
                    var prefix = value
                    while prefix.hasSuffix("/") { prefix.removeLast() }
                    var path = facts.path
                    while path.hasSuffix("/") { path.removeLast() }
                    guard path.hasPrefix(prefix) else { return nil }
                    let rest = path.dropFirst(prefix.count)
                    guard rest.isEmpty || rest.hasPrefix("/") else { return nil }
                    length = prefix.count
                }
            }
        }
        for h in m.headers {
            guard let have = facts.headers[h.name] else { return nil }
            let ok = h.type == "RegularExpression" ? (try? LinearRegex(h.value))?.wholeMatch(have) == true : have == h.value
            guard ok else { return nil }
        }
        for q in m.query {
            let ok = facts.query.contains { name, value in
                name == q.name && (q.type == "RegularExpression" ? (try? LinearRegex(q.value))?.wholeMatch(value) == true : value == q.value)
            }
            guard ok else { return nil }
        }
        return [length, m.headers.count, m.query.count, m.method == nil ? 0 : 1]
    }
}
