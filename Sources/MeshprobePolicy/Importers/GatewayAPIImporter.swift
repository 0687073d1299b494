import Foundation
import MeshprobeVerify
import MeshprobeYAML

/// Turns Gateway API HTTPRoutes into split expectations.
///
/// Each rule becomes a route: its backendRefs' weights (relative, default 1, 0 allowed: that backend must get
/// nothing) over the backends' names, checked with requests matching its first match (`path` of type `Exact`,
/// `PathPrefix` or a `RegularExpression` that spells a literal, `headers` likewise, `method`). Rules with matches are checked before a rule without, like Gateway
/// API's precedence for these cases; other match kinds, filters and extra matches are reported as notes.
public enum GatewayAPIImporter {
    public static func importRoutes(documents: [YAMLValue], recognizer: DestinationRecognizer, statistics: SplitTestConfiguration)
        throws(YAMLInputError) -> ImportedRoutes {
        var out = ImportedRoutes()
        var withMatches: [SplitExpectation] = []
        var catchAll: [SplitExpectation] = []
        for document in documents {
            let name = try document["metadata"]?["name"]?.name() ?? "(unnamed)"
            guard let spec = document["spec"] else { throw document.error("an HTTPRoute needs a spec") }
            guard case .mapping = spec.node else { throw spec.error("expected a mapping (parentRefs, rules, ...)") }
            for (index, rule) in (try spec["rules"]?.list() ?? []).enumerated() {
                let ruleName = try rule["name"]?.name() ?? "\(name) rules[\(index)]"
                if rule["filters"] != nil {
                    out.notes.append("\(rule.file):\(rule.line): \(ruleName): filters are not checked by the split test")
                }
                if rule["timeouts"] != nil || rule["retry"] != nil {
                    out.notes.append("\(rule.file):\(rule.line): \(ruleName): timeouts and retries are not checked by the split test (issue 5)")
                }
                var expectation = SplitExpectation(name: ruleName, weights: [:], recognizer: recognizer, mapping: [:], statistics: statistics)
                let matches = try rule["matches"]?.list() ?? []
                if let first = matches.first {
                    if matches.count > 1 {
                        out.notes.append("\(rule.file):\(rule.line): \(ruleName): only the first of \(matches.count) matches is exercised")
                    }
                    var unexercisable: String?
                    if let path = first["path"] {
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
                    if let method = first["method"] {
                        expectation.conditions.append(try MatchCondition.parse(method, subject: .method))
                    }
                    if first["queryParams"] != nil {
                        out.notes.append("\(first.file):\(first.line): \(ruleName): the queryParams match is not exercised")
                    }
                    if let unexercisable {
                        out.notes.append(MatchCondition.regexNote(at: first, route: ruleName, what: unexercisable))
                        continue
                    }
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
        }
        if catchAll.count > 1 {
            out.notes.append("\(catchAll.count) rules match every request; only the first is checked")
        }
        out.routes = withMatches + catchAll.prefix(1)
        return out
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
