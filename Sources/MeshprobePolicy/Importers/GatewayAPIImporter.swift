import Foundation
import MeshprobeVerify
import MeshprobeYAML

/// Turns Gateway API HTTPRoutes into split expectations.
///
/// Each rule becomes a route: its backendRefs' weights (relative, default 1, 0 allowed: that backend must get
/// nothing) over the backends' names, checked with requests matching its first match (`path` of type `Exact` or
/// `PathPrefix`, `headers` of type `Exact`). Rules with matches are checked before a rule without, like Gateway
/// API's precedence for these cases; other match kinds, filters and extra matches are reported as notes.
public enum GatewayAPIImporter {
    public static func importRoutes(documents: [YAMLValue], recognizer: DestinationRecognizer, statistics: SplitTestConfiguration)
        throws(YAMLInputError) -> ImportedRoutes {
        var out = ImportedRoutes()
        var withMatches: [SplitExpectation] = []
        var catchAll: [SplitExpectation] = []
        for document in documents {
            let name = try document["metadata"]?["name"]?.string() ?? "(unnamed)"
            guard let spec = document["spec"] else { throw document.error("an HTTPRoute needs a spec") }
            for (index, rule) in (try spec["rules"]?.list() ?? []).enumerated() {
                let ruleName = try rule["name"]?.string() ?? "\(name) rules[\(index)]"
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
                    if let path = first["path"] {
                        let type = try path["type"]?.string() ?? "PathPrefix"
                        let value = try path["value"]?.string() ?? "/"
                        guard type == "Exact" || type == "PathPrefix" else {
                            throw path.error("only Exact and PathPrefix path matches can be exercised, not \(type)")
                        }
                        expectation.matchPath = value
                    }
                    for header in try first["headers"]?.list() ?? [] {
                        let type = try header["type"]?.string() ?? "Exact"
                        guard type == "Exact" else { throw header.error("only Exact header matches can be exercised, not \(type)") }
                        guard let headerName = try header["name"]?.string(), let value = try header["value"]?.string() else {
                            throw header.error("a header match needs name and value")
                        }
                        expectation.matchHeaders.append((headerName.lowercased(), value))
                    }
                    for other in ["method", "queryParams"] where first[other] != nil {
                        out.notes.append("\(first.file):\(first.line): \(ruleName): the \(other) match is not exercised")
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
                let hasMatch = !expectation.matchHeaders.isEmpty || (expectation.matchPath.map { $0 != "/" } ?? false)
                if hasMatch { withMatches.append(expectation) } else { catchAll.append(expectation) }
            }
        }
        if catchAll.count > 1 {
            out.notes.append("\(catchAll.count) rules match every request; only the first is checked")
        }
        out.routes = withMatches + catchAll.prefix(1)
        return out
    }
}
