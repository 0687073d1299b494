import MeshprobeYAML

/// Istio's authorization of the target's workload, from its `AuthorizationPolicy` and `PeerAuthentication`
/// resources (security.istio.io v1 and v1beta1), for a workload with a sidecar.
///
/// The rules, with their sources:
/// - Scope (Istio docs: reference/config/security/authorization-policy, "selector"; istio/istio
///   pilot/pkg/model/policyattachment.go): a policy applies to the workloads of its namespace that its
///   `selector.matchLabels` selects (all of them without a selector); one in the root namespace `istio-system` (the
///   default `meshConfig.rootNamespace`) to every namespace's. A policy with `targetRefs` is ignored by a sidecar; one
///   naming the target's Service applies at a waypoint only, so what it decides is not checked.
/// - Order (Istio docs: the same page's evaluation rules): CUSTOM policies first (an external authorizer: its answer
///   is not known here, so a cell whose request a CUSTOM rule matches is not checked unless the later stages deny it
///   anyway: a request passes only when every stage allows it), then DENY (any matching rule denies), then ALLOW (with
///   no ALLOW policy on the workload, allow; else the request must match one). AUDIT decides nothing. A policy without
///   `rules` matches nothing (ALLOW-nothing denies every request when it is the only ALLOW policy); `rules: [{}]`
///   matches everything.
/// - A rule matches when one `from` source, one `to` operation and every `when` condition match; the fields of a
///   source or operation must all match; `values` need one to match, `notValues` none (Istio docs: the same page,
///   "Rule", "Source", "Operation", "Condition"). Strings are exact, `prefix*`, `*suffix`, or `*` for any non-empty
///   value (istio/istio pilot/pkg/security/authz/matcher). Principals are `TRUST_DOMAIN/ns/NS/sa/SA`, the caller's
///   SPIFFE ID without `spiffe://`; `namespaces` match `/ns/NS/` in it; a caller without a client certificate has no
///   principal, so `principals` and `namespaces` never match it and `notPrincipals` and `notNamespaces` always do
///   (Istio docs: news/security/istio-security-2021-004). Paths are compared without the query; `{*}` (one path
///   segment) and `{**}` (the rest) are Envoy URI templates (istio/istio pilot/pkg/security/authz/matcher/template.go).
///   Ports are the workload's (the Service's `targetPort`).
/// - mTLS (Istio docs: reference/config/security/peer_authentication; istio/istio
///   pilot/pkg/security/authn/policy_applier.go, ComposePeerAuthentication): the workload's PeerAuthentication (by
///   selector) overrides the namespace's, which overrides the mesh's (root namespace); UNSET inherits; `portLevelMtls`
///   (workload ports) overrides per port; without any, PERMISSIVE. STRICT refuses plaintext and a TLS client without
///   a certificate (the inbound filter chains take TLS only and require a client certificate:
///   pilot/pkg/networking/core/filterchain_options.go). PERMISSIVE and DISABLE let plaintext through to
///   authorization without a principal; PERMISSIVE terminates mTLS only for a client offering Istio's ALPN
///   (`meshAlpn: istio`; without it the connection reaches the passthrough chain or is closed), DISABLE not at all, so
///   other TLS callers are not checked under them.
/// - Filter chains (`chains`): the request is judged as HTTP, or on the TCP chain as a connection (`authorize`), by
///   the Service port's declared protocol and the ALPN offered.
/// - `foreign` (an SVID of another trust domain) is refused at the TLS handshake wherever the sidecar terminates its
///   TLS: it trusts the mesh's CA only, unless trust-domain federation is configured, which no manifest here shows
///   (assumed absent).
struct IstioAccess {
    static let rootNamespace = "istio-system"
    static let kinds: Set<String> = ["AuthorizationPolicy", "PeerAuthentication", "RequestAuthentication"]

    enum Action: String { case ALLOW, DENY, AUDIT, CUSTOM }

    /// One attribute condition: a source's, an operation's or a `when` field, as Istio's model names it.
    struct Field {
        var key: String
        var values: [String]
        var notValues: [String]
        /// `FILE:LINE AuthorizationPolicy NS/NAME rules[0].from[1].source.principals`.
        var at: String
    }

    struct Rule {
        /// Each `from` entry's fields (empty: any source).
        var from: [[Field]]
        var to: [[Field]]
        var when: [Field]
    }

    struct AuthorizationPolicy {
        var ref: ManifestName
        var action: Action
        var provider: String?
        /// Nil: no `rules`, which matches nothing.
        var rules: [Rule]?
        var applies: Truth
    }

    struct PeerAuthentication {
        enum Mode: String { case UNSET, DISABLE, PERMISSIVE, STRICT }
        enum Level: Int { case mesh, namespace, workload }
        var ref: ManifestName
        var level: Level
        var applies: Truth
        var mode: Mode
        var ports: [Int: Mode]
    }

    var policies: [AuthorizationPolicy] = []
    var peers: [PeerAuthentication] = []
    let workload: TargetWorkload

    /// Reads the Istio documents; notes what is not for the target, and `skipped` what cannot be checked.
    init(documents: [YAMLValue], workload: TargetWorkload, notes: inout [String], skipped: inout [String]) throws(YAMLInputError) {
        self.workload = workload
        for document in documents {
            let kind = try document["kind"]?.string() ?? ""
            let ref = try ManifestName(document, kind: kind)
            let spec = document["spec"]
            if let spec, case .mapping = spec.node {} else if let spec { throw spec.error("expected a mapping") }
            let namespace = ref.namespace
            let mesh = namespace == Self.rootNamespace && workload.namespace != Self.rootNamespace
            guard mesh || workload.isTargetNamespace(namespace) else {
                notes.append("\(ref.file):\(ref.line): not checked: \(ref.resource): namespace \(namespace ?? "") is not the target's (\(workload.namespace ?? ""))")
                continue
            }
            switch kind {
            case "RequestAuthentication":
                skipped.append("\(ref.source): JWT validation is not checked: rules on requestPrincipals or request.auth claims are not checked")
            case "PeerAuthentication":
                if let peer = try Self.peerAuthentication(spec, ref: ref, mesh: mesh, workload: workload, notes: &notes) { peers.append(peer) }
            default:
                if let policy = try Self.authorizationPolicy(document, spec: spec, ref: ref, workload: workload, notes: &notes, skipped: &skipped) {
                    policies.append(policy)
                }
            }
        }
    }

    static func peerAuthentication(_ spec: YAMLValue?, ref: ManifestName, mesh: Bool, workload: TargetWorkload,
                                   notes: inout [String]) throws(YAMLInputError) -> PeerAuthentication? {
        func mode(_ value: YAMLValue?) throws(YAMLInputError) -> PeerAuthentication.Mode {
            guard let v = value?["mode"] else { return .UNSET }
            let text = try v.string()
            guard let m = PeerAuthentication.Mode(rawValue: text) else { throw v.error("'\(text)': expected UNSET, DISABLE, PERMISSIVE or STRICT") }
            return m
        }
        let selector = try spec?["selector"].map { s throws(YAMLInputError) in try LabelSelector(s, expressions: false) }
        var level: PeerAuthentication.Level = mesh ? .mesh : .namespace
        var applies = Truth.yes
        if let selector, !selector.isEmpty {
            if mesh {
                notes.append("\(ref.file):\(ref.line): not checked: \(ref.resource): a PeerAuthentication with a selector in the root namespace is ignored by Istio")
                return nil
            }
            level = .workload
            applies = workload.selects(selector)
            if applies == .no {
                notes.append("\(ref.file):\(ref.line): not checked: \(ref.resource): selector \(selector) does not select the target \(workload.service ?? "")")
                return nil
            }
        }
        var ports: [Int: PeerAuthentication.Mode] = [:]
        if let portLevel = spec?["portLevelMtls"] {
            for (key, _, value) in try portLevel.stringMapKeys() {
                guard let port = Int(key), (1...65535).contains(port) else { throw value.error("'\(key)' is not a port") }
                ports[port] = try mode(value)
            }
            if level != .workload { notes.append("\(ref.file):\(ref.line): \(ref.resource): portLevelMtls needs a selector: Istio ignores it here") }
        }
        return PeerAuthentication(ref: ref, level: level, applies: applies, mode: try mode(spec?["mtls"]),
                                  ports: level == .workload ? ports : [:])
    }

    static func authorizationPolicy(_ document: YAMLValue, spec: YAMLValue?, ref: ManifestName, workload: TargetWorkload,
                                    notes: inout [String], skipped: inout [String]) throws(YAMLInputError) -> AuthorizationPolicy? {
        let actionText = try spec?["action"]?.string() ?? "ALLOW"
        guard let action = Action(rawValue: actionText) else {
            throw (spec?["action"] ?? document).error("'\(actionText)': expected ALLOW, DENY, AUDIT or CUSTOM")
        }
        if try document["metadata"]?["annotations"]?["istio.io/dry-run"]?.string() == "true" {
            skipped.append("\(ref.source): istio.io/dry-run: true: not enforced, so it decides nothing here")
            return nil
        }
        if action == .AUDIT {
            skipped.append("\(ref.source): AUDIT marks requests for logging and decides nothing")
            return nil
        }
        var applies = Truth.yes
        let targetRefs = (try spec?["targetRefs"]?.list() ?? []) + [spec?["targetRef"]].compactMap { $0 }
        if !targetRefs.isEmpty {
            let names = try targetRefs.map { t throws(YAMLInputError) in "\(try t["kind"]?.string() ?? "?") \(try t["name"]?.string() ?? "?")" }
            var service = false
            for t in targetRefs {
                let kind = try t["kind"]?.string(), group = try t["group"]?.string() ?? "", name = try t["name"]?.string()
                if kind == "Service", group == "" || group == "core", name == workload.service { service = true }
            }
            guard service else {
                notes.append("\(ref.file):\(ref.line): not checked: \(ref.resource): targetRefs \(names.joined(separator: ", ")) is not the target's workload (a sidecar ignores policies with targetRefs)")
                return nil
            }
            applies = .unknown("\(ref.source) targets Service \(workload.service ?? ""): a waypoint enforces it, a sidecar ignores it, and which one serves the target is not known here")
            skipped.append("\(ref.source): targetRefs: enforced by a waypoint only (ambient); cells it would decide are not checked")
        } else if let selectorValue = spec?["selector"] {
            let selector = try LabelSelector(selectorValue, expressions: false)
            applies = workload.selects(selector)
            if applies == .no {
                notes.append("\(ref.file):\(ref.line): not checked: \(ref.resource): selector \(selector) does not select the target \(workload.service ?? "")")
                return nil
            }
        }
        var provider: String?
        if action == .CUSTOM {
            provider = try spec?["provider"]?["name"]?.string()
            skipped.append("\(ref.source): CUSTOM (provider \(provider ?? "unnamed")): the external authorizer's answer is not known here; cells its rules match are not checked unless DENY or ALLOW denies them")
        }
        var rules: [Rule]?
        if let list = spec?["rules"] {
            rules = []
            for (i, rule) in try list.list().enumerated() {
                rules?.append(try Self.rule(rule, index: i, ref: ref, skipped: &skipped))
            }
        }
        return AuthorizationPolicy(ref: ref, action: action, provider: provider, rules: rules, applies: applies)
    }

    /// Istio's model's attribute for each source and operation field (pilot/pkg/security/authz/model/model.go).
    static let sourceFields = [("principals", "source.principal"), ("requestPrincipals", "request.auth.principal"),
                               ("namespaces", "source.namespace"), ("serviceAccounts", "source.serviceAccount"),
                               ("trustDomains", "source.trustDomain"), ("ipBlocks", "source.ip"), ("remoteIpBlocks", "remote.ip")]
    static let operationFields = [("hosts", "host"), ("ports", "destination.port"), ("methods", "method"), ("paths", "path")]

    static func rule(_ rule: YAMLValue, index: Int, ref: ManifestName, skipped: inout [String]) throws(YAMLInputError) -> Rule {
        let here = "\(ref.source) rules[\(index)]"
        func fields(_ value: YAMLValue?, _ names: [(String, String)], at: String) throws(YAMLInputError) -> [Field] {
            guard let value else { return [] }
            var out: [Field] = []
            let known = Set(names.flatMap { [$0.0, "not" + $0.0.prefix(1).uppercased() + $0.0.dropFirst()] })
            for (key, _, entry) in try value.stringMapKeys() where !known.contains(key) {
                out.append(Field(key: "unknown:\(key)", values: ["*"], notValues: [], at: "\(here) \(entry.path)"))
                skipped.append("\(entry.file):\(entry.line): \(ref.resource): \(key) is not understood here: cells it decides are not checked")
            }
            for (name, key) in names {
                let notName = "not" + name.prefix(1).uppercased() + name.dropFirst()
                let values = try stringList(value[name]), notValues = try stringList(value[notName])
                guard !values.isEmpty || !notValues.isEmpty else { continue }
                out.append(Field(key: key, values: values, notValues: notValues, at: "\(at) \(name)"))
            }
            return out
        }
        var from: [[Field]] = []
        for (j, f) in try (rule["from"]?.list() ?? []).enumerated() {
            let source = try fields(f["source"], sourceFields, at: "\(here).from[\(j)].source")
            for field in source where Self.undecidable(field) {
                skipped.append("\(field.at): \(Self.why(field.key)); cells it decides are not checked")
            }
            from.append(source)
        }
        var to: [[Field]] = []
        for (j, t) in try (rule["to"]?.list() ?? []).enumerated() {
            to.append(try fields(t["operation"], operationFields, at: "\(here).to[\(j)].operation"))
        }
        var when: [Field] = []
        for (j, c) in try (rule["when"]?.list() ?? []).enumerated() {
            guard let key = try c["key"]?.string() else { throw c.error("a condition needs a key") }
            let field = Field(key: key, values: try stringList(c["values"]), notValues: try stringList(c["notValues"]),
                              at: "\(here).when[\(j)] \(key)")
            guard !field.values.isEmpty || !field.notValues.isEmpty else { throw c.error("a condition needs values or notValues") }
            if Self.undecidable(field) { skipped.append("\(field.at): \(Self.why(key)); cells it decides are not checked") }
            when.append(field)
        }
        return Rule(from: from, to: to, when: when)
    }

    /// True for a field no request here can decide: a JWT's, an address other than every IPv4 one, an attribute not
    /// checked here.
    static func undecidable(_ field: Field) -> Bool {
        switch field.key {
        case "source.principal", "source.namespace", "source.serviceAccount", "source.trustDomain", "destination.port":
            return false
        case "source.ip", "remote.ip":
            return (field.values + field.notValues).contains { $0 != "0.0.0.0/0" }
        case _ where field.key.hasPrefix("request.headers[") && field.key.hasSuffix("]"):
            return false
        case _ where field.key.hasPrefix("unknown:"):
            return false  // noted where it was read
        default:
            return true
        }
    }

    static func why(_ key: String) -> String {
        switch key {
        case _ where key.hasPrefix("request.auth."): "\(key) needs a validated JWT, which is not checked here"
        case "source.ip", "remote.ip": "\(key): the prober's address is not known here"
        case "destination.ip": "destination.ip: the workload's address is not known here"
        case "connection.sni": "connection.sni is not checked here"
        case _ where key.hasPrefix("unknown:"): "\(key.dropFirst("unknown:".count)) is not understood here"
        default: "\(key) is not a condition checked here"
        }
    }

    // MARK: - Deciding a cell

    /// What a request shows the sidecar, as far as it is known.
    struct Facts {
        /// The caller's SPIFFE ID when mTLS carries it.
        var spiffeID: String?
        var method: String
        /// The path without query.
        var path: String
        var headers: [String: String]
        var port: Int?
        var portUnknown: String
        var authority: String?
        /// The port's protocol as the Service declares it, and in words.
        var portProtocol: TargetWorkload.PortProtocol = .unknown
        var protocolWords = ""
        /// True when this prober offers Istio's ALPN (`meshAlpn: istio`, `--mesh-alpn istio`).
        var meshALPN = false
    }

    /// The inbound filter chain a connection reaches: HTTP (the RBAC filter sees each request) or TCP (it sees the
    /// connection only).
    enum Chain: Equatable { case http, tcp }

    /// The mTLS modes the workload's port may have, each with the resource that sets it.
    func modes(port: Int?, portUnknown: String) -> [(mode: PeerAuthentication.Mode, source: String)] {
        var results: [(PeerAuthentication.Mode, String)] = []
        // Each level's candidates: the one in force is the oldest (creation time not known here: each one that may
        // apply is a possibility), and a workload PeerAuthentication that may not apply leaves the level empty too.
        func candidates(_ level: PeerAuthentication.Level) -> [PeerAuthentication?] {
            let at = peers.filter { $0.level == level }
            let sure = at.filter { $0.applies == .yes }
            let maybe = at.filter { $0.applies != .yes }
            return (sure.isEmpty ? [nil] : sure.map { $0 }) + maybe.map { $0 }
        }
        for m in candidates(.mesh) {
            for n in candidates(.namespace) {
                for w in candidates(.workload) {
                    var mode = PeerAuthentication.Mode.PERMISSIVE
                    var source = "Istio's default PERMISSIVE (no PeerAuthentication applies)"
                    for p in [m, n, w].compactMap({ $0 }) where p.mode != .UNSET {
                        mode = p.mode
                        source = p.ref.source + " (\(p.mode.rawValue))"
                    }
                    if let w, !w.ports.isEmpty {
                        if let port {
                            if let portMode = w.ports[port], portMode != .UNSET {
                                mode = portMode
                                source = w.ref.source + " (portLevelMtls \(port): \(portMode.rawValue))"
                            }
                        } else {
                            for (p, portMode) in w.ports where portMode != .UNSET {
                                results.append((portMode, w.ref.source + " (portLevelMtls \(p): \(portMode.rawValue); \(portUnknown))"))
                            }
                        }
                    }
                    results.append((mode, source))
                }
            }
        }
        return results
    }

    func decide(_ caller: AccessCaller, _ facts: Facts) -> AccessVerdict {
        let outcomes = modes(port: facts.port, portUnknown: facts.portUnknown).map { mode, source in
            (label: source, verdict: decide(caller, facts, mode: mode, modeSource: source))
        }
        return AccessVerdict.agreed(outcomes)
    }

    private func decide(_ caller: AccessCaller, _ facts: Facts, mode: PeerAuthentication.Mode, modeSource: String) -> AccessVerdict {
        switch (caller, mode) {
        case (.plaintext, .STRICT):
            return .decided(.deny, source: "\(modeSource): STRICT refuses plaintext")
        case (.anonymous, .STRICT):
            return .decided(.deny, source: "\(modeSource): STRICT requires a client certificate")
        case (.foreign, .STRICT), (.foreign, .PERMISSIVE) where facts.meshALPN:
            return .decided(.deny, source: "\(modeSource): the sidecar trusts the mesh's CA only, so another trust domain's SVID is refused at TLS (no federation assumed)")
        case (.anonymous, .PERMISSIVE) where facts.meshALPN:
            return .decided(.deny, source: "\(modeSource): the mTLS filter chain Istio's ALPN reaches requires a client certificate")
        case (.plaintext, _):
            var plain = facts
            plain.spiffeID = nil
            return onChains(plain, chains(plaintext: true, facts))
        case (.spiffe, .STRICT), (.spiffe, .PERMISSIVE) where facts.meshALPN:
            return onChains(facts, chains(plaintext: false, facts))
        case (_, .DISABLE):
            return .open("\(modeSource): the sidecar does not terminate TLS, so a TLS caller's connection goes to the workload untouched or is closed")
        default:
            return .open("\(modeSource): PERMISSIVE terminates TLS only for clients offering Istio's ALPN: give the target meshAlpn: istio (without it this prober's TLS reaches the passthrough chain or is closed)")
        }
    }

    /// The filter chains a connection may reach on the port (istio/istio pilot/pkg/networking/core/filterchain_options.go):
    /// plaintext HTTP/1.1 reaches the HTTP chain unless the port is declared TCP; mTLS reaches it when the port is
    /// declared HTTP, or when it offers Istio's ALPN and the port is not declared TCP; else the TCP chain. A port no
    /// Service declares may be either.
    func chains(plaintext: Bool, _ facts: Facts) -> [(Chain, String)] {
        let http = plaintext || facts.meshALPN
        switch facts.portProtocol {
        case .http: return [(.http, "\(facts.protocolWords): HTTP")]
        case .tcp: return [(.tcp, "\(facts.protocolWords): TCP")]
        case .detected: return [(http ? .http : .tcp, "\(facts.protocolWords): detected")]
        case .unknown: return [(.http, "if the port is declared HTTP"), (http ? .http : .tcp, "if it is detected"), (.tcp, "if it is declared TCP")]
        }
    }

    /// The authorization on each chain the connection may reach, decided when they agree.
    func onChains(_ facts: Facts, _ chains: [(Chain, String)]) -> AccessVerdict {
        var seen: [Chain] = []
        var outcomes: [(label: String, verdict: AccessVerdict)] = []
        for (chain, why) in chains where !seen.contains(chain) {
            seen.append(chain)
            outcomes.append(("\(chain == .http ? "the HTTP filter chain" : "the TCP filter chain") (\(why))", authorize(facts, tcp: chain == .tcp)))
        }
        if outcomes.count > 1, case .open(let why) = AccessVerdict.agreed(outcomes) {
            return .open("\(facts.protocolWords.isEmpty ? "the port's protocol is not known" : facts.protocolWords); \(why)")
        }
        return AccessVerdict.agreed(outcomes)
    }

    /// CUSTOM, DENY and ALLOW in Istio's order, over the policies that apply (or may); on the TCP filter chain, as
    /// istiod builds it for TCP (pilot/pkg/security/authz/builder): an ALLOW rule with an HTTP field is left out, a
    /// DENY or CUSTOM rule's HTTP fields are (it then matches more), and a denial closes the connection.
    func authorize(_ facts: Facts, tcp: Bool = false) -> AccessVerdict {
        func applying(_ action: Action) -> [(policy: AuthorizationPolicy, applies: Truth, matches: Truth)] {
            policies.filter { $0.action == action }.map { p in
                let matched = Truth.any((p.rules ?? []).map { matches($0, facts, policy: p, tcp: tcp) })
                return (p, p.applies, Truth.all([p.applies, matched]))
            }
        }
        let denies = applying(.DENY), allows = applying(.ALLOW), customs = applying(.CUSTOM)
        var rest: AccessVerdict
        let allowExists = Truth.any(allows.map(\.applies))
        let allowMatch = Truth.any(allows.map(\.matches))
        let allowStage: AccessVerdict
        switch (allowExists, allowMatch) {
        case (.no, _):
            allowStage = .decided(.allow, source: "default allow (no ALLOW policy applies to \(workload.service ?? "the target"))")
        case (_, .yes):
            let p = allows.first { $0.matches == .yes }!.policy
            allowStage = .decided(.allow, source: "\(p.ref.source): an ALLOW rule matches")
        case (.yes, .no):
            let names = allows.filter { $0.applies == .yes }.map(\.policy.ref.source)
            allowStage = .decided(.deny, source: "\(names[0]): no ALLOW rule matches" + (names.count > 1 ? " (nor in \(names.dropFirst().joined(separator: ", ")))" : ""))
        default:
            allowStage = .open(allowMatch.reason ?? allowExists.reason ?? "an ALLOW policy may apply")
        }
        switch Truth.any(denies.map(\.matches)) {
        case .yes:
            let p = denies.first { $0.matches == .yes }!.policy
            rest = .decided(.deny, source: "\(p.ref.source): a DENY rule matches")
        case .no:
            rest = allowStage
        case .unknown(let why):
            if case .decided(.deny, _) = allowStage { rest = allowStage } else { rest = .open(why) }
        }
        let custom = Truth.any(customs.map(\.matches))
        if custom == .no { return rest }
        if case .decided(.deny, _) = rest { return rest }
        if custom == .yes, let p = customs.first(where: { $0.matches == .yes })?.policy {
            return .open("\(p.ref.source): CUSTOM: the provider \(p.provider ?? "(unnamed)") decides this request")
        }
        return .open(custom.reason ?? "a CUSTOM policy may decide this request")
    }

    func matches(_ rule: Rule, _ facts: Facts, policy: AuthorizationPolicy, tcp: Bool = false) -> Truth {
        func judged(_ f: Field) -> Truth {
            guard tcp, Self.httpOnly(f.key) else { return field(f, facts, policy: policy) }
            return .yes  // Left out of a DENY or CUSTOM rule on TCP; an ALLOW rule with it is left out whole (below).
        }
        if tcp, policy.action == .ALLOW, (Array(rule.from.joined()) + Array(rule.to.joined()) + rule.when).contains(where: { Self.httpOnly($0.key) }) {
            return .no
        }
        let from = rule.from.isEmpty ? Truth.yes : Truth.any(rule.from.map { Truth.all($0.map(judged)) })
        let to = rule.to.isEmpty ? Truth.yes : Truth.any(rule.to.map { Truth.all($0.map(judged)) })
        return Truth.all([from, to] + rule.when.map(judged))
    }

    /// Attributes only an HTTP request has (generator.go's "is HTTP only").
    static func httpOnly(_ key: String) -> Bool {
        ["method", "path", "host"].contains(key) || key.hasPrefix("request.headers[") || key.hasPrefix("request.auth.")
    }

    /// A field's `values` (one must match) and `notValues` (none may).
    func field(_ f: Field, _ facts: Facts, policy: AuthorizationPolicy) -> Truth {
        var parts: [Truth] = []
        if !f.values.isEmpty { parts.append(Truth.any(f.values.map { attribute(f, $0, facts, policy: policy) })) }
        if !f.notValues.isEmpty { parts.append(Truth.any(f.notValues.map { attribute(f, $0, facts, policy: policy) }).negated) }
        return Truth.all(parts)
    }

    /// Whether one value of an attribute matches, as Istio's generators build the Envoy matcher
    /// (pilot/pkg/security/authz/model/generator.go).
    func attribute(_ f: Field, _ value: String, _ facts: Facts, policy: AuthorizationPolicy) -> Truth {
        let principal = facts.spiffeID.map { String($0.dropFirst("spiffe://".count)) }
        func regex(_ pattern: String, _ subject: String?) -> Truth {
            guard let subject else { return .no }
            guard let re = try? LinearRegex(pattern) else { return .unknown("\(f.at): '\(value)' is not a pattern checked here") }
            return Truth(re.wholeMatch(subject))
        }
        switch f.key {
        case "source.principal":
            return Truth(principal.map { wildcardMatch(value, $0) } ?? false)
        case "source.namespace":
            let ns = value.split(separator: "*", omittingEmptySubsequences: false).map { quotedRE2(String($0)) }.joined(separator: ".*")
            return regex(".*/ns/\(ns)/.*", facts.spiffeID)
        case "source.serviceAccount":
            let parts = value.split(separator: "/", maxSplits: 1).map(String.init)
            let (ns, sa) = parts.count == 2 ? (parts[0], parts[1]) : (policy.ref.namespace ?? workload.namespace ?? "", parts[0])
            return regex("spiffe://.+/ns/\(quotedRE2(ns))/(.+/|)sa/\(quotedRE2(sa))(/.+)?", facts.spiffeID)
        case "source.trustDomain":
            guard let id = facts.spiffeID else { return .no }
            if value == "*" { return .yes }
            guard value.contains("*") else { return Truth(id.hasPrefix("spiffe://\(value)/")) }
            let halves = value.split(separator: "*", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            return regex("spiffe://\(quotedRE2(halves[0]))[^/]*\(quotedRE2(halves[1]))/.*", id)
        case "source.ip", "remote.ip":
            // Only a block covering every IPv4 address is decided: the prober's address is not known here.
            return value == "0.0.0.0/0" ? .yes : .unknown("\(f.at): \(Self.why(f.key))")
        case "destination.port":
            guard let port = Int(value) else { return .unknown("\(f.at): '\(value)' is not a port") }
            guard let have = facts.port else { return .unknown("\(f.at): \(facts.portUnknown)") }
            return Truth(have == port)
        case "method":
            return Truth(wildcardMatch(value, facts.method))
        case "host":
            guard let authority = facts.authority else { return .unknown("\(f.at): the request's authority is not known here") }
            return Truth(wildcardMatch(value, authority, ignoringCase: true))
        case "path":
            if let why = Self.unnormalized(facts.path) { return .unknown("\(f.at): \(why)") }
            if value.contains("{*}") || value.contains("{**}") {
                guard let pattern = Self.template(value) else {
                    return .unknown("\(f.at): '\(value)' is a path template not checked here")
                }
                return regex(pattern, facts.path)
            }
            return Truth(wildcardMatch(value, facts.path))
        case _ where f.key.hasPrefix("request.headers[") && f.key.hasSuffix("]"):
            let name = f.key.dropFirst("request.headers[".count).dropLast().lowercased()
            guard let have = facts.headers[name] else { return .no }
            if have.contains("{{") { return .unknown("\(f.at): the header \(name) is a template, so its value is not known here") }
            return Truth(wildcardMatch(value, have))
        default:
            return .unknown("\(f.at): \(Self.why(f.key))")
        }
    }

    /// Why Istio's path normalization may change a path, or nil when it leaves it as sent (Istio docs:
    /// reference/config/security/normalization: dot segments, percent-encoding, backslashes, merged slashes).
    static func unnormalized(_ path: String) -> String? {
        let suspicious = ["//", "/./", "/../", "%", "\\"]
        if suspicious.contains(where: { path.contains($0) }) || path.hasSuffix("/.") || path.hasSuffix("/..") {
            return "Istio normalizes the path \(path) before matching it, which is not reproduced here"
        }
        return nil
    }

    /// An Istio path template as an RE2 pattern: `{*}` one path segment, `{**}` the rest, as Envoy's URI template
    /// matcher reads them; nil for a template Istio refuses (an operator with other characters in its segment, `*`
    /// outside one) or one not checked here (`{**}` before the end).
    static func template(_ path: String) -> String? {
        let segment = "[a-zA-Z0-9\\-._~%!$&'()+,;:@=]"
        var out = ""
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        for (i, part) in parts.enumerated() {
            if i > 0 { out += "/" }
            switch part {
            case "{*}": out += segment + "+"
            case "{**}":
                guard i == parts.count - 1 else { return nil }
                out += "[a-zA-Z0-9\\-._~%!$&'()+,;:@=/]*"
            default:
                guard !part.contains("*"), !part.contains("{"), !part.contains("}") else { return nil }
                out += quotedRE2(part)
            }
        }
        return out
    }
}
