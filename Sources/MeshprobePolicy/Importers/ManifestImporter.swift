import Foundation
import MeshprobeIdentity
import MeshprobeStatistics
import MeshprobeYAML

/// What an importer made of a set of manifests: the routes to check, and notes on what it ignored or cannot check.
public struct ImportedRoutes: Sendable {
    package init() {}

    public var routes: [SplitExpectation] = []
    /// Linkerd retry/timeout annotations by resource, kept for the resilience checks.
    public var linkerdResilience: [(resource: String, annotations: [String])] = []
    /// DestinationRule connection-pool limits (`trafficPolicy.connectionPool`) to verify.
    public var circuitBreakers: [CircuitBreakerExpectation] = []
    /// DestinationRule `connectionPool.http.maxRetries` limits (with where each is declared), checked on a route that
    /// retries.
    public var maxRetries: [(limit: Int, source: String)] = []
    /// DestinationRule `connectionPool.http.maxRequestsPerConnection` limits to verify.
    public var connectionReuse: [ConnectionReuseExpectation] = []
    /// Outlier detection (DestinationRule `trafficPolicy.outlierDetection`, Linkerd consecutive failure accrual) to
    /// verify; the workloads to make fail come from the policy.
    public var outlierDetections: [OutlierExpectation] = []
    /// Retry and timeout policies to verify: VirtualService http routes' `retries` and `timeout`, Linkerd's
    /// annotations on Services.
    public var retries: [RetryExpectation] = []
    /// Plain-words notes: unrelated kinds ignored, features not checked (never silently dropped).
    public var notes: [String] = []
    /// The service the manifests were matched to (the target's); nil when nothing named one.
    public var service: ServiceHost?
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
    ///
    /// Only manifests for `service` are checked (VirtualService `hosts`, DestinationRule `host`, a Linkerd Service's
    /// name, an HTTPRoute's Service parents or hostnames); the others are listed in the notes as not checked. Without a
    /// service (the target is an address), the one service the VirtualServices, DestinationRules and mesh HTTPRoutes name
    /// is taken; several are an error that says to choose.
    public static func importRoutes(files: [String], recognizer: DestinationRecognizer, statistics: SplitTestConfiguration,
                                    service given: ServiceHost? = nil) throws(YAMLInputError) -> ImportedRoutes {
        try importRoutes(documents: try documents(files: files), files: files, recognizer: recognizer, statistics: statistics, service: given)
    }

    /// Every document of `files` (multi-document YAML), in order.
    public static func documents(files: [String]) throws(YAMLInputError) -> [YAMLValue] {
        var documents: [YAMLValue] = []
        for file in files {
            let data: [UInt8]
            do { data = try InputFile.read(file, limit: .yaml) } catch {
                throw YAMLInputError(file: file, line: 1, column: 1, field: "", message: "the file \(error.reason)")
            }
            guard let text = String(bytes: data, encoding: .utf8) else {
                throw YAMLInputError(file: file, line: 1, column: 1, field: "", message: "the file is not UTF-8 text")
            }
            documents += try YAMLValue.parseAll(text, file: file)
        }
        return documents
    }

    /// `importRoutes(files:...)` on documents already read from `files`. Authorization manifests are
    /// `AccessImporter`'s and are passed over here; with `forAccess` (the policy has `expect.access`), so are the
    /// inbound routes of Linkerd Servers and the Services, Namespaces and workloads it reads, and no note says that no
    /// route was found.
    public static func importRoutes(documents all: [YAMLValue], files: [String], recognizer: DestinationRecognizer, statistics: SplitTestConfiguration,
                                    service given: ServiceHost? = nil, forAccess: Bool = false) throws(YAMLInputError) -> ImportedRoutes {
        var virtualServices: [YAMLValue] = []
        var httpRoutes: [YAMLValue] = []
        var subsetVersions: [String: [String: String]] = [:]  // host -> subset -> version label
        var out = ImportedRoutes()
        var documents: [(file: String, document: YAMLValue)] = []
        for document in all where try !AccessImporter.isAuthorization(document) {
            if forAccess, try AccessImporter.isInboundRoute(document) { continue }
            documents.append((document.file, document))
        }
        var service = given
        if service == nil { service = try onlyService(in: documents.map(\.document)) }
        out.service = service
        // True when a manifest is for the target's service; else notes why it is not checked.
        func inScope(_ document: YAMLValue, kind: String, hosts: [String]) throws(YAMLInputError) -> Bool {
            guard let service else { return true }
            let namespace = try document["metadata"]?["namespace"]?.string()
            if hosts.contains(where: { service.isNamed(by: $0, in: namespace) }) { return true }
            let name = try document["metadata"]?["name"]?.name() ?? "(unnamed)"
            out.notes.append(notForTarget(document, kind: kind, name: name, what: "host \(hosts.joined(separator: ", "))", service: service))
            return false
        }
        for (file, document) in documents {
            let kind = try document["kind"]?.string() ?? ""
            let apiVersion = try document["apiVersion"]?.string() ?? ""
            switch kind {
            case "VirtualService" where apiVersion.hasPrefix("networking.istio.io/"):
                virtualServices.append(document)
            case "DestinationRule" where apiVersion.hasPrefix("networking.istio.io/"):
                if let spec = document["spec"], case .mapping = spec.node {} else if let spec = document["spec"] {
                    throw spec.error("expected a mapping (host, trafficPolicy, ...)")
                }
                guard let spec = document["spec"], let host = try spec["host"]?.string() else {
                    throw document.error("a DestinationRule needs spec.host")
                }
                for subset in try spec["subsets"]?.list() ?? [] {
                    guard let name = try subset["name"]?.name() else { throw subset.error("a subset needs a name") }
                    let version = try subset["labels"]?["version"]?.string() ?? name
                    subsetVersions[host, default: [:]][name] = version
                }
                guard try inScope(document, kind: "DestinationRule", hosts: [host]) else { continue }
                let ruleName = try document["metadata"]?["name"]?.name() ?? host
                out.notes += try uncheckedTrafficPolicy(spec, rule: ruleName)
                if let pool = spec["trafficPolicy"]?["connectionPool"] {
                    let name = try document["metadata"]?["name"]?.name() ?? host
                    if let breaker = try circuitBreaker(pool, rule: name) { out.circuitBreakers.append(breaker) }
                    if let v = pool["http"]?["maxRequestsPerConnection"] {
                        let n = try v.int(minimum: 0)
                        guard n <= 10_000 else { throw v.error("\(n) is too large to verify here (at most 10000)") }
                        // 0 means unlimited (Istio): nothing to check.
                        if n > 0 {
                            out.connectionReuse.append(ConnectionReuseExpectation(maxRequestsPerConnection: n,
                                                                                  source: "\(v.file):\(v.line) DestinationRule \(name)"))
                        }
                    }
                    if let v = pool["http"]?["maxRetries"] {
                        let n = try v.int(minimum: 1)
                        guard n <= 250 else { throw v.error("\(n) is too large to verify here (at most 250)") }
                        out.maxRetries.append((n, "\(v.file):\(v.line) DestinationRule \(name)"))
                    }
                }
                if let od = spec["trafficPolicy"]?["outlierDetection"] {
                    let name = try document["metadata"]?["name"]?.name() ?? host
                    let (expectation, notes) = try outlierDetection(od, rule: name)
                    if let expectation { out.outlierDetections.append(expectation) }
                    out.notes += notes
                }
            case "HTTPRoute" where apiVersion.hasPrefix("gateway.networking.k8s.io/") || apiVersion.hasPrefix("policy.linkerd.io/"),
                 "GRPCRoute" where apiVersion.hasPrefix("gateway.networking.k8s.io/"):
                httpRoutes.append(document)
            default:
                let name = try document["metadata"]?["name"]?.name() ?? "(unnamed)"
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
                if kind == "Service", !linkerd.isEmpty || document["metadata"]?["annotations"]?["balancer.linkerd.io/failure-accrual"] != nil,
                   try !inScope(document, kind: kind, hosts: [name]) {
                    continue
                }
                if let annotations = document["metadata"]?["annotations"], kind == "Service",
                   let accrual = try linkerdFailureAccrual(annotations, service: name) {
                    out.outlierDetections.append(accrual)
                    linkerd = linkerd.filter { !$0.hasPrefix("balancer.linkerd.io/") }
                    if linkerd.isEmpty { continue }
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
                } else if !(forAccess && AccessImporter.contextKinds.contains(kind)) {
                    out.notes.append("\(file): ignored \(kind.isEmpty ? "a document without kind" : "\(kind) \(name)") (not a VirtualService, DestinationRule or HTTPRoute)")
                }
            }
        }
        for vs in virtualServices {
            let vsName = try vs["metadata"]?["name"]?.name() ?? "(unnamed)"
            guard let spec = vs["spec"] else { throw vs.error("a VirtualService needs a spec") }
            guard case .mapping = spec.node else { throw spec.error("expected a mapping (hosts, http, ...)") }
            let hosts = try spec["hosts"]?.list().map { h throws(YAMLInputError) in try h.string() } ?? []
            if hosts.isEmpty {
                out.notes.append("\(vs.file):\(vs.line): VirtualService \(vsName) names no hosts: its routes are checked against the target")
            } else if try !inScope(vs, kind: "VirtualService", hosts: hosts) {
                continue
            }
            for feature in ["tcp", "tls"] where spec[feature] != nil {
                out.notes.append("\(vs.file): VirtualService \(vsName): \(feature) routes are not checked (only http)")
            }
            let httpRoutes = try spec["http"]?.list() ?? []
            for (index, route) in httpRoutes.enumerated() {
                let routeName = try route["name"]?.name() ?? "\(vsName) http[\(index)]"
                for feature in ["fault", "mirror", "rewrite", "redirect", "corsPolicy", "headers"] where route[feature] != nil {
                    out.notes.append("\(route.file):\(route.line): \(routeName): \(feature) is not checked by the split test")
                }
                var retries = try istioRetries(route, name: "VirtualService \(vsName) \(routeName)")
                out.notes += retries.notes
                var expectation = SplitExpectation(name: routeName, weights: [:], recognizer: recognizer, mapping: [:], statistics: statistics)
                expectation.source = "\(route.file):\(route.line) VirtualService \(vsName)"
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
            let gateway = try GatewayAPIImporter.importRoutes(documents: httpRoutes, recognizer: recognizer, statistics: statistics, service: service)
            out.routes += gateway.routes
            out.retries += gateway.retries
            out.notes += gateway.notes
        }
        if virtualServices.isEmpty && httpRoutes.isEmpty && !forAccess {
            out.notes.append("no VirtualService, HTTPRoute or GRPCRoute found in \(files.joined(separator: ", "))")
        }
        return out
    }

    /// The note for a manifest that is not for the target's service: `what` is what names another (`host ratings`).
    static func notForTarget(_ document: YAMLValue, kind: String, name: String, what: String, service: ServiceHost) -> String {
        "\(document.file):\(document.line): not checked: \(kind) \(name): \(what) does not match the target \(service) (set service: in the policy to check another)"
    }

    /// The one service the VirtualServices (`hosts`), DestinationRules (`host`) and mesh HTTPRoutes (Service
    /// `parentRefs`) name, for a target given by address; nil when they name none; an error when they name several (the
    /// policy's `service` must then say which).
    static func onlyService(in documents: [YAMLValue]) throws(YAMLInputError) -> ServiceHost? {
        var named: [(host: ServiceHost, at: YAMLValue)] = []
        for document in documents {
            let kind = try document["kind"]?.string() ?? ""
            let apiVersion = try document["apiVersion"]?.string() ?? ""
            var services: [ServiceHost] = []
            if ["HTTPRoute", "GRPCRoute"].contains(kind), apiVersion.hasPrefix("gateway.networking.k8s.io/") || apiVersion.hasPrefix("policy.linkerd.io/") {
                for ref in try GatewayAPIImporter.parentRefs(of: document) {
                    if case .service(let host) = ref.parent { services.append(host) }
                }
            }
            if apiVersion.hasPrefix("networking.istio.io/"), ["VirtualService", "DestinationRule"].contains(kind),
               let spec = document["spec"], case .mapping = spec.node {
                let namespace = try document["metadata"]?["namespace"]?.string()
                let hosts = kind == "VirtualService" ? try spec["hosts"]?.list().map { h throws(YAMLInputError) in try h.string() } ?? []
                    : [try spec["host"]?.string()].compactMap { $0 }
                services += hosts.filter { !$0.hasPrefix("*") }.map { ServiceHost($0, namespace: namespace) }
            }
            for service in services where !named.contains(where: { $0.host.isNamed(by: service.description, in: nil)
                                                                   || service.isNamed(by: $0.host.description, in: nil) }) {
                named.append((service, document))
            }
        }
        guard named.count <= 1 else {
            throw named[1].at.error("the manifests are for several services (\(named.map(\.host.description).joined(separator: ", "))): say which one the target is with service: in the policy")
        }
        return named.first?.host
    }

    /// What a DestinationRule declares that no check exercises: `loadBalancer`, `portLevelSettings`, `tls` and the
    /// rest of `trafficPolicy`, connection-pool settings other than the limits, and each subset's own
    /// `trafficPolicy`: one note each, never dropped silently.
    static func uncheckedTrafficPolicy(_ spec: YAMLValue, rule: String) throws(YAMLInputError) -> [String] {
        var notes: [String] = []
        func note(_ value: YAMLValue, _ what: String) {
            notes.append("\(value.file):\(value.line): not checked: DestinationRule \(rule): \(what)")
        }
        if let policy = spec["trafficPolicy"], case .mapping = policy.node {
            for (key, _, at) in try policy.stringMapKeys() where !["connectionPool", "outlierDetection"].contains(key) {
                note(at, "trafficPolicy.\(key) (no check exercises it)")
            }
            let checked: [String: Set<String>] = [
                "tcp": ["maxConnections"],
                "http": ["http2MaxRequests", "http1MaxPendingRequests", "maxRequestsPerConnection", "maxRetries"],
            ]
            if let pool = policy["connectionPool"], case .mapping = pool.node {
                for (group, _, settings) in try pool.stringMapKeys() {
                    guard case .mapping = settings.node else { continue }
                    for (key, _, at) in try settings.stringMapKeys() where !(checked[group]?.contains(key) ?? false) {
                        note(at, "trafficPolicy.connectionPool.\(group).\(key)")
                    }
                }
            }
        }
        for subset in try spec["subsets"]?.list() ?? [] {
            if let policy = subset["trafficPolicy"] {
                note(policy, "subset \(try subset["name"]?.name() ?? "(unnamed)")'s own trafficPolicy (only the rule's trafficPolicy is checked)")
            }
        }
        return notes
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

    /// A DestinationRule's `outlierDetection`, with Istio's defaults (5 consecutive 5xx, 10s interval, 30s base
    /// ejection, 10% maximum); nil when both error counts are 0 (disabled). Notes say what is not verified.
    static func outlierDetection(_ od: YAMLValue, rule: String) throws(YAMLInputError) -> (OutlierExpectation?, [String]) {
        let m = try od.mapping(allowed: ["consecutive5xxErrors", "consecutiveGatewayErrors", "consecutiveErrors", "interval", "baseEjectionTime",
                                         "maxEjectionPercent", "minHealthPercent", "splitExternalLocalOriginErrors", "consecutiveLocalOriginFailures"])
        var notes: [String] = []
        func count(_ key: String, default d: Int) throws(YAMLInputError) -> Int {
            guard let v = m[key] else { return d }
            let n = try v.int(minimum: 0)
            guard n <= 1000 else { throw v.error("\(n) consecutive errors is too many to verify here (at most 1000)") }
            return n
        }
        // `consecutiveErrors` is the deprecated name of consecutive5xxErrors.
        let fiveXX = try count(m["consecutive5xxErrors"] != nil ? "consecutive5xxErrors" : "consecutiveErrors", default: 5)
        let gateway = try count("consecutiveGatewayErrors", default: 0)
        let enabled = [fiveXX, gateway].filter { $0 > 0 }
        guard let n = enabled.min() else {
            return (nil, ["\(od.file):\(od.line): DestinationRule \(rule): outlierDetection counts no errors (both are 0): nothing to verify"])
        }
        var e = OutlierExpectation(consecutiveErrors: n, source: "\(od.file):\(od.line) DestinationRule \(rule)")
        e.counted = (gateway > 0 && gateway < fiveXX) || fiveXX == 0 ? .gatewayErrors : .serverErrors
        e.interval = try m["interval"]?.duration() ?? 10
        e.baseEjectionTime = try m["baseEjectionTime"]?.duration() ?? 30
        guard e.baseEjectionTime <= 600 else {
            throw (m["baseEjectionTime"] ?? od).error("an ejection longer than 600s is too long to wait for here")
        }
        if let v = m["maxEjectionPercent"] {
            e.maxEjectionPercent = try v.double(minimum: 0)
            guard e.maxEjectionPercent <= 100 else { throw v.error("a percentage, at most 100") }
        }
        if let v = m["minHealthPercent"], try v.double(minimum: 0) > 0 {
            notes.append("\(v.file):\(v.line): DestinationRule \(rule): minHealthPercent turns outlier detection off below that share of healthy hosts (Envoy's panic mode): the maximum-percent check assumes it is not reached")
        }
        for key in ["splitExternalLocalOriginErrors", "consecutiveLocalOriginFailures"] where m[key] != nil {
            notes.append("\(m[key]!.file):\(m[key]!.line): DestinationRule \(rule): \(key) is not verified (the check injects HTTP 503 replies, not local-origin errors)")
        }
        return (e, notes)
    }

    /// Linkerd's consecutive failure accrual from a Service's `balancer.linkerd.io/failure-accrual*` annotations
    /// (defaults: 7 failures, 1s first penalty, jitter ratio 0.5); nil when the Service does not turn it on.
    static func linkerdFailureAccrual(_ annotations: YAMLValue, service: String) throws(YAMLInputError) -> OutlierExpectation? {
        guard case .mapping = annotations.node else { return nil }
        let prefix = "balancer.linkerd.io/failure-accrual"
        var values: [String: (String, YAMLValue)] = [:]
        for (key, value, at) in try annotations.stringMap() where key.hasPrefix(prefix) { values[key] = (value, at) }
        guard let (mode, at) = values[prefix] else { return nil }
        guard mode == "consecutive" else { throw at.error("'\(mode)': the consecutive failure accrual is the one verified here") }
        var e = OutlierExpectation(consecutiveErrors: 7, source: "\(annotations.file):\(annotations.line) Service \(service) (Linkerd failure accrual)")
        if let (text, at) = values["\(prefix)-consecutive-max-failures"] {
            guard let n = Int(text), (1...1000).contains(n) else { throw at.error("expected a count of failures 1-1000, got '\(text)'") }
            e.consecutiveErrors = n
        }
        e.baseEjectionTime = 1
        if let (text, at) = values["\(prefix)-consecutive-min-penalty"] {
            let d: Double
            do { d = try DurationText.seconds(text) } catch { throw at.error(error.description) }
            guard d > 0, d <= 600 else { throw at.error("expected a duration up to 600s such as 1s, got '\(text)'") }
            e.baseEjectionTime = d
        }
        e.jitter = 0.5
        if let (text, at) = values["\(prefix)-consecutive-jitter-ratio"] {
            guard let r = Double(text), (0...1).contains(r) else { throw at.error("expected a ratio 0-1, got '\(text)'") }
            e.jitter = r
        }
        // Linkerd has no sweep interval and no maximum: every endpoint may be unavailable at once.
        e.interval = 0
        e.maxEjectionPercent = 100
        return e
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
