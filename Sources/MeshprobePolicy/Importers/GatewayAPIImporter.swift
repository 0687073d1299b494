import Foundation
import MeshprobeStatistics
import MeshprobeYAML

/// Turns Gateway API HTTPRoutes and GRPCRoutes into split expectations.
///
/// Each rule becomes a route: its backendRefs' weights (relative, default 1, 0 allowed: that backend must get
/// nothing) over the backends' names, checked with requests matching its first match (`path` of type `Exact`,
/// `PathPrefix` or a `RegularExpression` that spells a literal, `headers` likewise, `method`). Rules with matches are checked before a rule without, like Gateway
/// API's precedence for these cases; other match kinds, filters and extra matches are reported as notes.
///
/// A GRPCRoute's rules read the same way, its `method` match (`service` and `method`, type `Exact`) as the path gRPC
/// sends: both given is the exact path `/service/method`, the service alone the prefix `/service/`; the method alone,
/// or a `RegularExpression`, needs an example (`/service/method` spelled literally) and is otherwise a note.
///
/// Only the routes for the target's service are checked (see `scope`); the others are listed as not checked.
public enum GatewayAPIImporter {
    public static func importRoutes(documents: [YAMLValue], recognizer: DestinationRecognizer, statistics: SplitTestConfiguration,
                                    service: ServiceHost? = nil) throws(YAMLInputError) -> ImportedRoutes {
        var out = ImportedRoutes()
        var withMatches: [SplitExpectation] = []
        var catchAll: [SplitExpectation] = []
        for document in documents {
            let name = try document["metadata"]?["name"]?.name() ?? "(unnamed)"
            let kind = try document["kind"]?.string() ?? "HTTPRoute"
            guard let spec = document["spec"] else { throw document.error("an \(kind) needs a spec") }
            guard case .mapping = spec.node else { throw spec.error("expected a mapping (parentRefs, rules, ...)") }
            let (applies, scopeNotes) = try scope(of: document, name: name, service: service)
            out.notes += scopeNotes
            guard applies else { continue }
            // Linkerd's retry and timeout annotations on the route apply to each of its rules: checked with the
            // requests of its first rule that a request can be made to match.
            var routeRetry: RetryExpectation?
            if let annotations = document["metadata"]?["annotations"], case .mapping = annotations.node {
                let (expectation, notes) = try LinkerdRetryAnnotations.expectation(annotations, resource: "\(kind) \(name)")
                routeRetry = expectation
                out.notes += notes
            }
            for (index, rule) in (try spec["rules"]?.list() ?? []).enumerated() {
                let ruleName = try rule["name"]?.name() ?? "\(name) rules[\(index)]"
                if rule["filters"] != nil {
                    out.notes.append("\(rule.file):\(rule.line): \(ruleName): filters are not checked by the split test")
                }
                let label = "\(kind) \(name) " + (try rule["name"]?.name() ?? "rules[\(index)]")
                var (ruleRetry, retryNotes) = try GatewayAPIRetries.expectation(rule: rule, kind: kind, label: label)
                out.notes += retryNotes
                if ruleRetry != nil, let route = routeRetry {
                    out.notes.append("\(rule.file):\(rule.line): \(label): the rule's own timeouts and retry are checked, not the route's Linkerd annotations (\(route.source))")
                }
                var expectation = SplitExpectation(name: ruleName, weights: [:], recognizer: recognizer, mapping: [:], statistics: statistics)
                expectation.source = "\(rule.file):\(rule.line) \(kind) \(name)"
                let matches = try rule["matches"]?.list() ?? []
                if let first = matches.first {
                    if matches.count > 1 {
                        out.notes.append("\(rule.file):\(rule.line): \(ruleName): only the first of \(matches.count) matches is exercised")
                    }
                    var unexercisable: String?
                    if kind == "GRPCRoute", let method = first["method"] {
                        switch try grpcMethodCondition(method) {
                        case .some(let c): expectation.conditions.append(c)
                        case .none: unexercisable = "gRPC method"
                        }
                    }
                    if kind == "HTTPRoute", let path = first["path"] {
                        let type = try path["type"]?.string() ?? "PathPrefix"
                        let value = try path["value"]?.string() ?? "/"
                        switch try condition(type: type, value: value, subject: .path, at: path) {
                        case .some(let c): expectation.conditions.append(c)
                        case .none: unexercisable = "path"
                        }
                    }
                    for header in try first["headers"]?.list() ?? [] {
                        let type = try header["type"]?.string() ?? "Exact"
                        guard let headerName = try header["name"]?.name(), let value = try header["value"]?.string() else {
                            throw header.error("a header match needs name and value")
                        }
                        switch try condition(type: type, value: value, subject: .header(headerName.lowercased()), at: header) {
                        case .some(let c): expectation.conditions.append(c)
                        case .none: unexercisable = "header \(headerName)"
                        }
                    }
                    if kind == "HTTPRoute", let method = first["method"] {
                        expectation.conditions.append(try MatchCondition.parse(method, subject: .method))
                    }
                    if first["queryParams"] != nil {
                        out.notes.append("\(first.file):\(first.line): \(ruleName): the queryParams match is not exercised")
                    }
                    if let unexercisable {
                        out.notes.append(MatchCondition.regexNote(at: first, route: ruleName, what: unexercisable))
                        if ruleRetry != nil {
                            out.notes.append("\(rule.file):\(rule.line): \(ruleName): timeouts and retry not checked either (no request can be made to match)")
                        }
                        continue
                    }
                }
                if ruleRetry == nil, let route = routeRetry {
                    ruleRetry = route
                    routeRetry = nil
                }
                if var retry = ruleRetry {
                    retry.conditions = expectation.conditions
                    out.retries.append(retry)
                }
                let backends = try rule["backendRefs"]?.list() ?? []
                if backends.isEmpty { throw rule.error("a rule needs backendRefs to check a split") }
                for backend in backends {
                    guard let backendName = try backend["name"]?.string() else { throw backend.error("a backendRef needs a name") }
                    let weight = try backend["weight"]?.double(minimum: 0) ?? 1
                    expectation.weights[backendName, default: 0] += weight
                }
                let total = expectation.weights.values.reduce(0, +)
                guard total > 0 else { throw rule.error("every backendRef has weight 0: no backend can get traffic") }
                // Gateway API weights are relative: make them percentages.
                expectation.weights = expectation.weights.mapValues { $0 / total * 100 }
                let hasMatch = expectation.conditions.contains { $0.subject != .path || $0.match != .prefix("/") }
                if hasMatch { withMatches.append(expectation) } else { catchAll.append(expectation) }
            }
            if let route = routeRetry {
                out.notes.append("\(route.source): not checked: no rule of the route can be made to match a request")
            }
        }
        if catchAll.count > 1 {
            out.notes.append("\(catchAll.count) rules match every request; only the first is checked")
        }
        out.routes = withMatches + catchAll.prefix(1)
        return out
    }

    /// One `parentRefs` entry of an HTTPRoute, as scoping reads it.
    struct ParentRef {
        enum Parent {
            /// A Service (`kind: Service`, group "" or Linkerd's "core"): a GAMMA mesh route for it.
            case service(ServiceHost)
            /// A Gateway (the default kind, group gateway.networking.k8s.io): a north-south route.
            case gateway
            /// Any other kind, as `group/Kind`: nothing tells whether it routes the target.
            case other(String)
        }
        var parent: Parent
        var name: String
        var at: YAMLValue
    }

    /// The `parentRefs` of an HTTPRoute. Group defaults to gateway.networking.k8s.io and kind to Gateway, so a Service
    /// must say group "" (Linkerd writes "core"); namespace defaults to the route's own.
    static func parentRefs(of route: YAMLValue) throws(YAMLInputError) -> [ParentRef] {
        let routeNamespace = try route["metadata"]?["namespace"]?.string()
        return try (route["spec"]?["parentRefs"]?.list() ?? []).map { ref throws(YAMLInputError) in
            guard let name = try ref["name"]?.name() else { throw ref.error("a parentRef needs a name") }
            let group = try ref["group"]?.string() ?? "gateway.networking.k8s.io"
            let kind = try ref["kind"]?.string() ?? "Gateway"
            switch (group, kind) {
            case ("", "Service"), ("core", "Service"):
                let namespace = try ref["namespace"]?.string() ?? routeNamespace
                return ParentRef(parent: .service(ServiceHost(name, namespace: namespace)), name: name, at: ref)
            case ("gateway.networking.k8s.io", "Gateway"):
                return ParentRef(parent: .gateway, name: name, at: ref)
            default:
                return ParentRef(parent: .other("\(group)/\(kind)"), name: name, at: ref)
            }
        }
    }

    /// Whether an HTTPRoute is for `service`, with notes on what is not checked.
    ///
    /// A route applies when one of its parents does: a Service parent that names the target (a GAMMA route; its
    /// `hostnames` are not used), or a Gateway parent when the route has no `hostnames` or one of them matches the
    /// target's host (exactly, or `*.example.com` as a suffix of one or more labels). A route without parentRefs is
    /// checked against the target; without a service everything is checked.
    static func scope(of route: YAMLValue, name: String, service: ServiceHost?) throws(YAMLInputError) -> (applies: Bool, notes: [String]) {
        let kind = try route["kind"]?.string() ?? "HTTPRoute"
        let parents = try parentRefs(of: route)
        if parents.isEmpty {
            return (true, ["\(route.file):\(route.line): \(kind) \(name) names no parentRefs: its rules are checked against the target"])
        }
        guard let service else { return (true, []) }
        let hostnames = try route["spec"]?["hostnames"]?.list().map { h throws(YAMLInputError) in try h.string() } ?? []
        var mismatches: [String] = []
        var gateways: [String] = []
        var undecided: [String] = []
        for ref in parents {
            switch ref.parent {
            case .service(let host):
                guard service.isNamed(by: host.name, in: host.namespace) else {
                    mismatches.append("parent Service \(host)")
                    continue
                }
                var notes: [String] = []
                for key in ["port", "sectionName"] {
                    guard let value = try ref.at[key]?.string() else { continue }
                    notes.append("\(ref.at.file):\(ref.at.line): \(kind) \(name): the parentRef's \(key) \(value) is not compared with the target's (the rules are checked on any port)")
                }
                return (true, notes)
            case .gateway:
                if hostnames.isEmpty || hostnames.contains(where: { service.isNamed(by: $0, in: nil) }) { return (true, []) }
                gateways.append(ref.name)
            case .other(let parentKind):
                undecided.append("\(ref.at.file):\(ref.at.line): not checked: \(kind) \(name): parent \(parentKind) \(ref.name): cannot tell whether it routes the target (only Gateway and Service parents are understood)")
            }
        }
        if !gateways.isEmpty {
            mismatches.append("hostname \(hostnames.joined(separator: ", ")) (Gateway \(gateways.joined(separator: ", ")))")
        }
        guard !mismatches.isEmpty else { return (false, undecided) }
        let note = ManifestImporter.notForTarget(route, kind: kind, name: name, what: mismatches.joined(separator: ", "), service: service)
        return (false, undecided + [note])
    }

    /// A GRPCRoute's `method` match as a condition on the path; nil when no request can be named for it.
    static func grpcMethodCondition(_ match: YAMLValue) throws(YAMLInputError) -> MatchCondition? {
        let type = try match["type"]?.string() ?? "Exact"
        let service = try match["service"]?.string()
        let method = try match["method"]?.string()
        guard service != nil || method != nil else { throw match.error("a gRPC method match needs service, method or both") }
        switch (type, service, method) {
        case ("Exact", let service?, let method?): return MatchCondition(subject: .path, match: .exact("/\(service)/\(method)"), sent: "/\(service)/\(method)")
        case ("Exact", let service?, nil): return MatchCondition(subject: .path, match: .prefix("/\(service)/"), sent: "/\(service)/")
        case ("Exact", nil, _): return nil
        case ("RegularExpression", _, _):
            return MatchCondition(subject: .path, match: .regex("/\(service ?? "[^/]+")/\(method ?? "[^/]+")"))
        default: throw match.error("unknown match type \(type)")
        }
    }

    /// A Gateway API match (`Exact`, `PathPrefix`, `RegularExpression`) as a condition; nil for a regular
    /// expression no example value is known for.
    static func condition(type: String, value: String, subject: MatchCondition.Subject, at: YAMLValue) throws(YAMLInputError) -> MatchCondition? {
        let match: ValueMatch
        switch type {
        case "Exact": match = .exact(value)
        case "PathPrefix" where subject == .path: match = .prefix(value)
        case "RegularExpression": match = .regex(value)
        default: throw at.error("unknown match type \(type)")
        }
        return MatchCondition(subject: subject, match: match)
    }
}
