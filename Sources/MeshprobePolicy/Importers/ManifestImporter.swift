import Foundation
import MeshprobeVerify
import MeshprobeYAML

/// What an importer made of a set of manifests: the routes to check, and notes on what it ignored or cannot check.
public struct ImportedRoutes: Sendable {
    public var routes: [SplitExpectation] = []
    /// Linkerd retry/timeout annotations by resource, kept for the resilience checks.
    public var linkerdResilience: [(resource: String, annotations: [String])] = []
    /// DestinationRule connection-pool limits (`trafficPolicy.connectionPool`) to verify.
    public var circuitBreakers: [CircuitBreakerExpectation] = []
    /// Retry and timeout policies to verify: VirtualService http routes' `retries` and `timeout`, Linkerd's
    /// annotations on Services.
    public var retries: [RetryExpectation] = []
    /// Plain-words notes: unrelated kinds ignored, features not checked (never silently dropped).
    public var notes: [String] = []
}

/// Reads mesh manifests: Istio VirtualService http routes (with DestinationRule subsets) become split expectations
/// here; Gateway API (and Linkerd policy.linkerd.io) HTTPRoutes go to `GatewayAPIImporter`.
///
/// First match wins, as in Istio: each route is checked with requests that match it and not an earlier route
/// (header values, path and method are taken from the route's first match block). Supported matches: `headers`,
/// `uri` and `method` with `exact`, `prefix`, or a `regex` that spells a literal; a route whose regex needs an
/// example value, other match kinds, extra match blocks, and route features such as retries, timeouts, faults,
/// mirrors, rewrites and redirects are reported as not checked here.
public enum ManifestImporter {
    /// Reads the VirtualServices and DestinationRules in `files` (multi-document YAML); Gateway API HTTPRoutes in
    /// the same files go to `GatewayAPIImporter`.
    public static func importRoutes(files: [String], recognizer: DestinationRecognizer, statistics: SplitTestConfiguration)
        throws(YAMLInputError) -> ImportedRoutes {
        var virtualServices: [YAMLValue] = []
        var httpRoutes: [YAMLValue] = []
        var subsetVersions: [String: [String: String]] = [:]  // host -> subset -> version label
        var out = ImportedRoutes()
        for file in files {
            guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
                throw YAMLInputError(file: file, line: 1, column: 1, field: "", message: "cannot read the file")
            }
            for document in try YAMLValue.parseAll(text, file: file) {
                let kind = try document["kind"]?.string() ?? ""
                let apiVersion = try document["apiVersion"]?.string() ?? ""
                switch kind {
                case "VirtualService" where apiVersion.hasPrefix("networking.istio.io/"):
                    virtualServices.append(document)
                case "DestinationRule" where apiVersion.hasPrefix("networking.istio.io/"):
                    guard let spec = document["spec"], let host = try spec["host"]?.string() else {
                        throw document.error("a DestinationRule needs spec.host")
                    }
                    if let pool = spec["trafficPolicy"]?["connectionPool"] {
                        let name = try document["metadata"]?["name"]?.string() ?? host
                        if let breaker = try circuitBreaker(pool, rule: name) { out.circuitBreakers.append(breaker) }
                    }
                    if spec["trafficPolicy"]?["outlierDetection"] != nil {
                        out.notes.append("\(file): DestinationRule \(host): outlierDetection is not verified yet (issue 5)")
                    }
                    for subset in try spec["subsets"]?.list() ?? [] {
                        guard let name = try subset["name"]?.string() else { throw subset.error("a subset needs a name") }
                        let version = try subset["labels"]?["version"]?.string() ?? name
                        subsetVersions[host, default: [:]][name] = version
                    }
                case "HTTPRoute" where apiVersion.hasPrefix("gateway.networking.k8s.io/") || apiVersion.hasPrefix("policy.linkerd.io/"):
                    httpRoutes.append(document)
                default:
                    let name = try document["metadata"]?["name"]?.string() ?? "(unnamed)"
                    // Linkerd's retry and timeout annotations (on Services and workloads) are recorded for the
                    // resilience checks; the split test does not use them.
                    var linkerd: [String] = []
                    for annotations in [document["metadata"]?["annotations"], document["spec"]?["template"]?["metadata"]?["annotations"]] {
                        guard let annotations, case .mapping = annotations.node else { continue }
                        for (key, value, _) in try annotations.stringMap()
                        where key.hasPrefix("retry.linkerd.io/") || key.hasPrefix("timeout.linkerd.io/") {
                            linkerd.append("\(key)=\(value)")
                        }
                    }
                    if !linkerd.isEmpty {
                        out.linkerdResilience.append((resource: "\(kind) \(name)", annotations: linkerd))
                        out.notes.append("\(file): \(kind) \(name): Linkerd \(linkerd.joined(separator: ", ")) recorded for the resilience checks (not the split test)")
                        if kind == "Service", let annotations = document["metadata"]?["annotations"] {
                            let (expectation, notes) = try LinkerdRetryAnnotations.expectation(annotations, resource: "Service \(name)")
                            if let expectation { out.retries.append(expectation) }
                            out.notes += notes
                        } else {
                            out.notes.append("\(file): \(kind) \(name): Linkerd reads retry and timeout annotations on Services and routes only: not checked")
                        }
                    } else {
                        out.notes.append("\(file): ignored \(kind.isEmpty ? "a document without kind" : "\(kind) \(name)") (not a VirtualService, DestinationRule or HTTPRoute)")
                    }
                }
            }
        }
        for vs in virtualServices {
            let vsName = try vs["metadata"]?["name"]?.string() ?? "(unnamed)"
            guard let spec = vs["spec"] else { throw vs.error("a VirtualService needs a spec") }
            for feature in ["tcp", "tls"] where spec[feature] != nil {
                out.notes.append("\(vs.file): VirtualService \(vsName): \(feature) routes are not checked (only http)")
            }
            let httpRoutes = try spec["http"]?.list() ?? []
            for (index, route) in httpRoutes.enumerated() {
                let routeName = try route["name"]?.string() ?? "\(vsName) http[\(index)]"
                for feature in ["fault", "mirror", "rewrite", "redirect", "corsPolicy", "headers"] where route[feature] != nil {
                    out.notes.append("\(route.file):\(route.line): \(routeName): \(feature) is not checked by the split test")
                }
                var retries = try istioRetries(route, name: "VirtualService \(vsName) \(routeName)")
                out.notes += retries.notes
                var expectation = SplitExpectation(name: routeName, weights: [:], recognizer: recognizer, mapping: [:], statistics: statistics)
                let matches = try route["match"]?.list() ?? []
                if let first = matches.first {
                    if matches.count > 1 {
                        out.notes.append("\(route.file):\(route.line): \(routeName): only the first of \(matches.count) match blocks is exercised")
                    }
                    var unexercisable: String?
                    if let headers = first["headers"] {
                        for (name, _, condition) in try headers.stringMapKeys() {
                            switch try istioCondition(condition, subject: .header(name.lowercased())) {
                            case .some(let c): expectation.conditions.append(c)
                            case .none: unexercisable = "header \(name)"
                            }
                        }
                    }
                    for (key, subject) in [("uri", MatchCondition.Subject.path), ("method", .method)] {
                        guard let value = first[key] else { continue }
                        switch try istioCondition(value, subject: subject) {
                        case .some(let c): expectation.conditions.append(c)
                        case .none: unexercisable = key
                        }
                    }
                    if let unexercisable {
                        out.notes.append(MatchCondition.regexNote(at: first, route: routeName, what: unexercisable))
                        if retries.expectation != nil {
                            out.notes.append("\(route.file):\(route.line): \(routeName): retries and timeout not checked either (no request can be made to match)")
                        }
                        continue
                    }
                    for other in ["queryParams", "sourceLabels", "port", "gateways", "authority", "scheme"] where first[other] != nil {
                        out.notes.append("\(first.file):\(first.line): \(routeName): the \(other) match is not exercised")
                    }
                }
                let destinations = try route["route"]?.list() ?? []
                if destinations.isEmpty { throw route.error("an http route needs route destinations") }
                for destination in destinations {
                    guard let d = destination["destination"], let host = try d["host"]?.string() else {
                        throw destination.error("a route destination needs destination.host")
                    }
                    let name: String
                    if let subset = try d["subset"]?.string() {
                        guard let version = subsetVersions[host]?[subset] ?? subsetVersions.first(where: { host.hasPrefix($0.key + ".") || $0.key.hasPrefix(host + ".") })?.value[subset] else {
                            throw d.error("subset '\(subset)' of \(host) is not defined by any DestinationRule given")
                        }
                        name = version
                    } else {
                        name = host
                    }
                    let weight: Double
                    if let w = destination["weight"] {
                        weight = try w.double(minimum: 0)
                    } else {
                        weight = destinations.count == 1 ? 100 : 0
                    }
                    expectation.weights[name, default: 0] += weight
                }
                let sum = expectation.weights.values.reduce(0, +)
                guard abs(sum - 100) < 1e-9 else {
                    throw route.error("the route weights sum to \(YAMLValue.format(sum)), not 100 (Istio requires 100)")
                }
                out.routes.append(expectation)
                if var retry = retries.expectation {
                    retry.conditions = expectation.conditions
                    out.retries.append(retry)
                    retries.expectation = nil
                }
                if matches.isEmpty { break }  // A route without match catches everything: later ones are unreachable.
            }
        }
        if !httpRoutes.isEmpty {
            let gateway = try GatewayAPIImporter.importRoutes(documents: httpRoutes, recognizer: recognizer, statistics: statistics)
            out.routes += gateway.routes
            out.notes += gateway.notes
        }
        if virtualServices.isEmpty && httpRoutes.isEmpty {
            out.notes.append("no VirtualService or HTTPRoute found in \(files.joined(separator: ", "))")
        }
        return out
    }

    /// A DestinationRule's `connectionPool` as a limit to verify: in flight = the smaller of `http.http2MaxRequests`
    /// and `tcp.maxConnections` (an HTTP/1.1 upstream carries one request per connection), pending =
    /// `http.http1MaxPendingRequests`. Nil when neither limit is set.
    static func circuitBreaker(_ pool: YAMLValue, rule: String) throws(YAMLInputError) -> CircuitBreakerExpectation? {
        func limit(_ value: YAMLValue?) throws(YAMLInputError) -> Int? {
            guard let value else { return nil }
            let n = try value.int(minimum: 1)
            guard n <= 10_000 else {
                throw value.error("\(n) is too large to verify here: the check drives twice the limit in concurrent requests (at most 10000)")
            }
            return n
        }
        let limits = [try limit(pool["http"]?["http2MaxRequests"]), try limit(pool["tcp"]?["maxConnections"])].compactMap { $0 }
        guard let maxRequests = limits.min() else { return nil }
        return CircuitBreakerExpectation(maxRequests: maxRequests, maxPending: try limit(pool["http"]?["http1MaxPendingRequests"]),
                                         source: "\(pool.file):\(pool.line) DestinationRule \(rule)")
    }

    /// An http route's `retries` and `timeout` as a policy to verify, and notes on what is not checked. Istio's
    /// semantics: `attempts` is the number of retries (0, or a `retries` without it, disables them); a `retries`
    /// without `retryOn` takes Istio's default conditions (503 and connection failures); `timeout: 0s` means none.
    static func istioRetries(_ route: YAMLValue, name: String) throws(YAMLInputError) -> (expectation: RetryExpectation?, notes: [String]) {
        var notes: [String] = []
        var e = RetryExpectation(attempts: nil, source: "\(route.file):\(route.line) \(name)")
        if let timeout = route["timeout"] {
            let t = try timeout.duration(allowZero: true)
            if t > 0 { e.timeout = try RetryExpectation.checkable(t, at: timeout) }
        }
        if let retries = route["retries"] {
            e.attempts = try retries["attempts"].map { v throws(YAMLInputError) in try RetryExpectation.checkable(attempts: v) } ?? 0
            if let perTry = retries["perTryTimeout"] { e.perTryTimeout = try RetryExpectation.checkable(try perTry.duration(), at: perTry) }
            if let on = retries["retryOn"] { e.retryOn = try RetryExpectation.conditions(on) }
            for (key, _, _) in try retries.stringMapKeys() where !["attempts", "perTryTimeout", "retryOn"].contains(key) {
                notes.append("\(retries.file):\(retries.line): \(name): retries.\(key) is not checked")
            }
        }
        guard e.attempts != nil || e.timeout != nil else { return (nil, notes) }
        return (e, notes)
    }

    /// An Istio StringMatch (`exact`, `prefix`, `regex`) as a condition; nil for a regex no example value is known for.
    static func istioCondition(_ value: YAMLValue, subject: MatchCondition.Subject) throws(YAMLInputError) -> MatchCondition? {
        let match: ValueMatch
        if let exact = try value["exact"]?.string() {
            match = .exact(exact)
        } else if let prefix = try value["prefix"]?.string() {
            match = .prefix(prefix)
        } else if let regex = try value["regex"]?.string() {
            match = .regex(regex)
        } else {
            throw value.error("expected exact, prefix or regex")
        }
        return MatchCondition(subject: subject, match: match)
    }
}
