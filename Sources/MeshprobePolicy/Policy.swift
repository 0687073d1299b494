import Foundation
import MeshprobeIdentity
import MeshprobeScenario
import MeshprobeSpec
import MeshprobeStatistics
import MeshprobeYAML

/// How a response's destination is told (the name the split's weights use).
public enum DestinationRecognizer: Sendable, Equatable, CustomStringConvertible {
    /// An echo stamp: the workload's version, its workload name, or its SPIFFE identity.
    case version
    case workload
    case identity
    /// Any response header, e.g. `x-served-by`.
    case header(String)

    public var description: String {
        switch self {
        case .version: return "the echo's version stamp"
        case .workload: return "the echo's workload stamp"
        case .identity: return "the server's SPIFFE ID"
        case .header(let name): return "the \(name) header"
        }
    }

    /// What a response lacks when this recogniser cannot read it, without an article: `x-served-by header`,
    /// `version stamp (x-meshprobe-version)`.
    public var absence: String {
        switch self {
        case .version: return "version stamp (\(EchoStamp.version))"
        case .workload: return "workload stamp (\(EchoStamp.workload))"
        case .identity: return "server SPIFFE ID (TLS peer or \(EchoStamp.identity))"
        case .header(let name): return "\(name) header"
        }
    }

    /// The destination name of a response, before mapping; nil when the response does not say.
    public func destination(of identity: WorkloadIdentity) -> String? {
        let value: String
        switch self {
        case .version: value = identity.version
        case .workload: value = identity.workload
        case .identity: value = identity.identity
        // The load engine puts the configured identity header's value in `workload` when no echo stamp is there.
        case .header: value = identity.workload
        }
        return value.isEmpty ? nil : value
    }
}

/// A weighted split a route must show, and how to send requests that take that route.
public struct SplitExpectation: Sendable {
    public var name: String
    /// What makes a request take this route (header, path, method conditions); empty for the default route.
    public var conditions: [MatchCondition] = []
    public var weights: [String: Double]
    public var recognizer: DestinationRecognizer
    /// Maps what the recogniser reads to destination names (optional).
    public var mapping: [String: String]
    public var statistics: SplitTestConfiguration
    /// How the proxy is assumed to route (`expect.routing`): what one sample of the test is.
    public var routing: RoutingAssumption = .auto
    /// Where the route was declared (`FILE:LINE` of its rule or entry), for messages about it; nil when not known.
    public var source: String?

    public init(name: String, weights: [String: Double], recognizer: DestinationRecognizer, mapping: [String: String] = [:],
                statistics: SplitTestConfiguration) {
        self.name = name
        self.weights = weights
        self.recognizer = recognizer
        self.mapping = mapping
        self.statistics = statistics
    }

    /// Headers the route's requests carry (name lowercased, value meeting the condition).
    public var matchHeaders: [HTTP2HeaderPair] {
        conditions.compactMap { c in
            if case .header(let name) = c.subject { return HTTP2HeaderPair(name, c.sent) }
            return nil
        }
    }

    /// The path the route's requests use; nil keeps the target's.
    public var matchPath: String? { conditions.first { $0.subject == .path }?.sent }

    /// The destination a response counts for: what the recogniser reads, mapped.
    public func destinationName(of identity: WorkloadIdentity) -> String {
        guard let read = recognizer.destination(of: identity) else { return "(unrecognised: no \(recognizer.absence))" }
        return mapping[read] ?? read
    }

    /// The method the route's requests use; nil keeps the scenario's.
    public var matchMethod: String? { conditions.first { $0.subject == .method }?.sent }
}

/// Waiting for a new policy to reach every proxy before judging it: the route's requests are sent until the last
/// `stableWindows` windows show one split near the declared weights (`StabilityCheck`), at most `timeout`.
public struct PropagationWait: Sendable, Equatable {
    /// At most this long; then the split test runs anyway and the report says the split never settled.
    public var timeout: Double
    /// The length of one window of counts.
    public var window: Double = 1
    /// Settled when this many consecutive windows show one split.
    public var stableWindows: Int = 3

    public init(timeout: Double, window: Double = 1, stableWindows: Int = 3) {
        self.timeout = timeout
        self.window = window
        self.stableWindows = stableWindows
    }
}

/// A meshprobe policy file: a scenario (target, identity, load) plus what to expect.
public struct Policy {
    public static let version = "meshprobe.policy/v1"

    public var name: String
    public var file: String
    public var scenario: Scenario
    /// The routes to check, in order (one for a plain `split`).
    public var routes: [SplitExpectation]
    /// How destinations are told, and the test's settings (used for routes imported from manifests too).
    public var recognizer: DestinationRecognizer = .version
    public var statistics = SplitTestConfiguration()
    /// `expect.routing`, for every route (imported ones too).
    public var routing: RoutingAssumption = .auto
    public var mapping: [String: String] = [:]
    /// mTLS in effect: every response must report this caller (the echo's `x-meshprobe-caller`); `""` means the
    /// prober's own SPIFFE ID, whatever it is; nil checks nothing.
    public var expectedCaller: String?
    /// Service-level objectives over every request the verification sent (point estimates).
    public var minimumSuccessRate: Double?
    /// Latency ceilings in seconds, by percentile (50, 90, 99, 99.9).
    public var latencyCeilings: [(percentile: Double, seconds: Double)] = []
    /// Wait until the split settles before each route's test.
    public var propagation: PropagationWait?
    /// Clusters that must answer at least once, and clusters that must answer nothing (the echo's cluster stamp).
    public var clustersToReach: [String] = []
    public var clustersToAvoid: [String] = []
    /// Connection-pool limits to verify (from `expect.circuitBreaker` or a DestinationRule's `connectionPool`).
    public var circuitBreakers: [CircuitBreakerExpectation] = []
    /// Outlier detection to verify (`expect.outlierDetection` with thresholds).
    public var outlierDetections: [OutlierExpectation] = []
    /// How to exercise outlier detection declared in manifests: the workloads to make fail and the pace
    /// (`expect.outlierDetection` without thresholds).
    public var outlierProbe: (faultTargets: [String], rate: Double)?
    /// Concurrent-retry limits to verify (`expect.maxRetries`, or a DestinationRule's `connectionPool.http.maxRetries`),
    /// with where each was declared; checked on a route that retries.
    public var maxRetries: [(limit: Int, source: String)] = []
    /// Requests-per-connection limits to verify (`expect.maxRequestsPerConnection`, or a DestinationRule's).
    public var connectionReuse: [ConnectionReuseExpectation] = []
    /// Retry and timeout policies to verify (from `expect.retries`, VirtualService http routes or Linkerd annotations).
    public var retries: [RetryExpectation] = []
    /// Who may call whom (`expect.access`), tried as each caller.
    public var access: AccessExpectation?
    /// The SVIDs the policy holds besides its own identity (`identities:`), for access checks.
    public var identities: [CallerIdentity] = []
    /// The mesh service the target is (`service:`): manifests for other hosts are not checked. Nil: the target's host
    /// name (see `targetService`).
    public var service: ServiceHost?

    /// The service manifests are matched to: `service`, else the target's host name; nil for an address (then the one
    /// service the manifests name is taken).
    public var targetService: ServiceHost? {
        if let service { return service }
        guard let target = scenario.plan.targets.first, !target.hostIsIPLiteral, target.host.lowercased() != "localhost" else {
            return nil
        }
        return ServiceHost(target.host)
    }

    init(name: String, file: String, scenario: Scenario, routes: [SplitExpectation]) {
        self.name = name
        self.file = file
        self.scenario = scenario
        self.routes = routes
    }

    /// `slo: {successRate: 0.999, p50: 20ms, p95: 100ms, p99: 250ms, p99.9: 1s}`: the least success rate and latency
    /// ceilings in seconds by percentile, in the file's order (any percentile: `p95`, `p99.9`, `p999` is 99.9).
    static func slo(_ value: YAMLValue) throws(YAMLInputError) -> (Double?, [(percentile: Double, seconds: Double)]) {
        var minimum: Double?
        var ceilings: [(percentile: Double, seconds: Double)] = []
        for (key, _, v) in try value.stringMapKeys() {
            if key == "successRate" {
                let rate = try v.double(minimum: 0, exclusive: true)
                guard rate < 1 else { throw v.error("must be a fraction below 1, e.g. 0.999 (no number of requests shows that none will ever fail)") }
                minimum = rate
                continue
            }
            guard let percentile = LoadThreshold.percentile(key) else {
                throw v.error("'\(key)' is not an objective: expected successRate or a latency percentile such as p50, p95, p99 or p99.9")
            }
            if let same = ceilings.first(where: { $0.percentile == percentile }) {
                throw v.error("p\(YAMLValue.format(same.percentile)) is given twice")
            }
            ceilings.append((percentile, try v.duration()))
        }
        return (minimum, ceilings)
    }

    /// `circuitBreaker: {maxRequests: 10, maxPending: 1, hold: 100ms, requests: 400, scope: service}`.
    static func circuitBreaker(_ value: YAMLValue) throws(YAMLInputError) -> CircuitBreakerExpectation {
        let m = try value.mapping(allowed: ["maxRequests", "maxPending", "hold", "requests", "scope"])
        guard let max = m["maxRequests"] else { throw value.error("a circuit breaker needs maxRequests (the concurrent request limit)") }
        let limit = try max.int(minimum: 1)
        guard limit <= 10_000 else { throw max.error("at most 10000: the check drives twice the limit in concurrent requests") }
        var e = CircuitBreakerExpectation(maxRequests: limit, maxPending: nil, source: "\(value.file):\(value.line) \(value.path)")
        if let p = m["maxPending"] {
            let pending = try p.int(minimum: 0)
            guard pending <= 10_000 else { throw p.error("at most 10000") }
            e.maxPending = pending
        }
        if let h = m["hold"] {
            let hold = try h.duration(allowZero: true)
            guard hold <= 10 else { throw h.error("at most 10s: each request of the check is held this long") }
            e.hold = hold > 0 ? hold : nil
        }
        if let r = m["requests"] {
            let n = try r.int(minimum: 1)
            guard n <= 1_000_000 else { throw r.error("at most 1000000 requests per phase") }
            e.requestsPerPhase = n
        }
        if let v = m["scope"] {
            guard let scope = LimitScope(rawValue: try v.string()) else {
                throw v.error("expected service (all endpoints together, as Envoy and Istio apply connection-pool limits) or endpoint (each on its own)")
            }
            e.scope = scope
        }
        return e
    }

    /// `outlierDetection: {consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 50,
    /// faultTargets: [https://10.0.0.7:8443], rate: 200}`; without a threshold, only the workloads and pace for
    /// outlier detection that manifests declare.
    static func outlierDetection(_ value: YAMLValue) throws(YAMLInputError) -> (OutlierExpectation?, faultTargets: [String], rate: Double) {
        let m = try value.mapping(allowed: ["consecutive5xxErrors", "consecutiveGatewayErrors", "interval", "baseEjectionTime",
                                            "maxEjectionPercent", "faultTargets", "rate"])
        guard let targets = m["faultTargets"] else {
            throw value.error("outlier detection needs faultTargets: the workloads' own https addresses (their echo control API), the first of which is made to fail")
        }
        var faultTargets: [String] = []
        for item in try targets.list() {
            let url = try item.string()
            guard url.hasPrefix("https://") else {
                throw item.error("'\(url)': the control API needs mTLS, give the workload's https://HOST:PORT")
            }
            do {
                let target = try LoadTarget(parsing: url)
                guard target.path == "/" else { throw item.error("'\(url)': give the base URL, https://HOST:PORT") }
            } catch let error as YAMLInputError {
                throw error
            } catch {
                throw item.error("\(error)")
            }
            faultTargets.append(url)
        }
        if faultTargets.isEmpty { throw targets.error("faultTargets is empty") }
        if Set(faultTargets).count != faultTargets.count { throw targets.error("a workload is listed twice") }
        var rate = 200.0
        if let r = m["rate"] {
            rate = try r.double(minimum: 0, exclusive: true)
            guard rate <= 5000 else { throw r.error("at most 5000 requests per second (requests go one at a time)") }
        }
        let errors5xx = m["consecutive5xxErrors"], gateway = m["consecutiveGatewayErrors"]
        guard errors5xx != nil || gateway != nil else {
            for key in ["interval", "baseEjectionTime", "maxEjectionPercent"] where m[key] != nil {
                throw m[key]!.error("\(key) needs consecutive5xxErrors or consecutiveGatewayErrors beside it")
            }
            return (nil, faultTargets, rate)
        }
        func threshold(_ v: YAMLValue) throws(YAMLInputError) -> Int {
            let n = try v.int(minimum: 1)
            guard n <= 1000 else { throw v.error("at most 1000 consecutive errors") }
            return n
        }
        var e: OutlierExpectation
        switch (errors5xx, gateway) {
        case let (a?, b?):
            let (x, y) = (try threshold(a), try threshold(b))
            // An injected 503 counts toward both: the smaller ejects first.
            e = OutlierExpectation(consecutiveErrors: min(x, y), source: "\(value.file):\(value.line) \(value.path)")
            e.counted = y < x ? .gatewayErrors : .serverErrors
        case let (a?, nil):
            e = OutlierExpectation(consecutiveErrors: try threshold(a), source: "\(value.file):\(value.line) \(value.path)")
        case let (nil, b?):
            e = OutlierExpectation(consecutiveErrors: try threshold(b), source: "\(value.file):\(value.line) \(value.path)")
            e.counted = .gatewayErrors
        case (nil, nil):
            // Returned above (the targets and pace only); kept as an error rather than a crash.
            throw value.error("give consecutive5xxErrors or consecutiveGatewayErrors")
        }
        if let v = m["interval"] {
            e.interval = try v.duration()
            guard e.interval <= 300 else { throw v.error("at most 300s") }
        }
        if let v = m["baseEjectionTime"] {
            e.baseEjectionTime = try v.duration()
            guard e.baseEjectionTime <= 600 else { throw v.error("at most 600s: the check waits for the workload to come back") }
        }
        if let v = m["maxEjectionPercent"] {
            e.maxEjectionPercent = try v.double(minimum: 0)
            guard e.maxEjectionPercent <= 100 else { throw v.error("a percentage, at most 100") }
        }
        e.faultTargets = faultTargets
        e.rate = rate
        return (e, faultTargets, rate)
    }

    /// Reads a policy file; errors name the file, line and field, every section's in one error
    /// (`YAMLInputError.others`).
    /// - Parameter routesElsewhere: the routes come from mesh manifests, so `expect` may leave out split and routes.
    /// - Parameter overrides: the command line's changes to the file (`--target`, `--svid-dir`, `--set`).
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment,
                            routesElsewhere: Bool = false, overrides: FileOverrides = FileOverrides()) throws(YAMLInputError) -> Policy {
        // Fresh connections every 20 requests unless the file says otherwise: persistent connections bias weighted
        // routing (each connection sticks to one upstream in many proxies).
        var errors = YAMLErrors()
        let scenario = try Scenario.load(path: path, environment: environment, extraKeys: ["policy", "expect", "service", "identities"], defaultRequests: 20_000,
                                         defaultChurn: .every(20), overrides: overrides,
                                         thresholdsRefusal: "thresholds gate a load (meshprobe run); a policy's are expect.slo (successRate, p95: 250ms, ...)",
                                         errors: &errors)
        let policy = read(scenario, path: path, routesElsewhere: routesElsewhere, errors: &errors)
        try scenario.report(errors)
        return policy
    }

    /// Reads the policy's own sections of a scenario read with `expect`, `policy` and `service` left to it, each key of
    /// `expect` on its own: an error is recorded in `errors` (the policy is then incomplete), and what needs that key's
    /// value is left out.
    static func read(_ scenario: Scenario, path: String, routesElsewhere: Bool, errors: inout YAMLErrors) -> Policy {
        var policy = Policy(name: scenario.name ?? "split", file: path, scenario: scenario, routes: [])
        errors.attempt { () throws(YAMLInputError) in
            if let version = scenario.extras["policy"], try version.string() != Self.version {
                throw version.error("this meshprobe reads '\(Self.version)'")
            }
        }
        errors.attempt { () throws(YAMLInputError) in
            if let v = scenario.extras["service"] { policy.service = ServiceHost(try v.name()) }
        }
        let allowed = ["name", "recognise", "map", "split", "routes", "mtls", "slo", "tolerance", "falseFailRate", "missRate",
                       "maxRequests", "routing", "propagation", "clusters", "circuitBreaker", "outlierDetection", "retries",
                       "maxRequestsPerConnection", "maxRetries", "access"]
        guard let section = scenario.section("expect", allowed: allowed, missing: "a policy needs an expect section (split, tolerance, ...)",
                                             errors: &errors) else { return policy }
        let (expect, f, misspelt) = section
        errors.attempt { () throws(YAMLInputError) in
            guard let r = f["recognise"] else { return }
            let text = try r.string()
            switch text {
            case "version": policy.recognizer = .version
            case "workload": policy.recognizer = .workload
            case "identity", "peer": policy.recognizer = .identity
            default:
                guard text.hasPrefix("header:"), text.count > 7 else {
                    throw r.error("expected version, workload, identity, or header:NAME")
                }
                let name = String(text.dropFirst(7)).trimmingCharacters(in: .whitespaces).lowercased()
                policy.recognizer = .header(name)
                policy.scenario.plan.identityHeader = name
            }
        }
        // The split test's settings, checked together once each is read.
        let beforeStatistics = errors.count
        let fractions: [(String, WritableKeyPath<SplitTestConfiguration, Double>)] = [
            ("tolerance", \.tolerance), ("falseFailRate", \.falseFailRate), ("missRate", \.missRate)]
        for (key, setting) in fractions {
            errors.attempt { () throws(YAMLInputError) in
                guard let v = f[key] else { return }
                let x = try v.double(minimum: 0, exclusive: true)
                guard x < 0.5 else { throw v.error("must be below 0.5, got \(YAMLValue.format(x))") }
                policy.statistics[keyPath: setting] = x
            }
        }
        errors.attempt { () throws(YAMLInputError) in
            guard let v = f["maxRequests"] else { return }
            policy.statistics.maxSamples = try v.int(minimum: 1)
            if policy.scenario.plan.duration == nil { policy.scenario.plan.requests = policy.statistics.maxSamples }
        }
        if errors.count == beforeStatistics {
            do { try policy.statistics.validate() } catch { errors.record(expect.error(error.description)) }
        }
        errors.attempt { () throws(YAMLInputError) in
            guard let r = f["routing"] else { return }
            let text = try r.string()
            guard let value = RoutingAssumption(rawValue: text) else {
                throw r.error("expected auto, per-request or per-connection, got '\(text)'")
            }
            policy.routing = value
        }
        let defaultName = (errors.attempt { () throws(YAMLInputError) in try f["name"]?.name() } ?? nil) ?? scenario.name ?? "split"
        policy.name = scenario.name ?? defaultName

        // Either one split (the default route) or a list of routes, each read on its own.
        var routeValues: [(name: String, value: YAMLValue, split: YAMLValue, match: YAMLValue?)] = []
        var routesRead = true
        switch (f["split"], f["routes"]) {
        case let (split?, nil):
            routeValues = [(defaultName, split, split, nil)]
        case let (nil, routes?):
            guard let items = errors.attempt({ () throws(YAMLInputError) in try routes.list() }) else {
                routesRead = false
                break
            }
            for (index, item) in items.enumerated() {
                let route = errors.attempt { () throws(YAMLInputError) in
                    let r = try item.mapping(allowed: ["name", "match", "split"])
                    guard let split = r["split"] else { throw item.error("a route needs a split") }
                    return (try r["name"]?.name() ?? "route \(index + 1)", item, split, r["match"])
                }
                if let route { routeValues.append(route) } else { routesRead = false }
            }
            if items.isEmpty { errors.record(routes.error("routes is empty")) }
            // Routes are tried in order (Envoy, Istio, Gateway API): one without match takes every request.
            if let catchAll = routeValues.dropLast().first(where: { $0.match == nil }) {
                errors.record(catchAll.value.error("a route without match takes every request, so the routes after it are never reached: put it last"))
            }
        case (_?, _?):
            errors.record(expect.error("give either split (one route) or routes, not both"))
        case (nil, nil):
            // A misspelt key may be the check: then it is not reported missing too.
            if !routesElsewhere && !misspelt && f["circuitBreaker"] == nil && f["outlierDetection"] == nil && f["retries"] == nil
                && f["maxRequestsPerConnection"] == nil && f["slo"] == nil && f["access"] == nil {
                errors.record(expect.error("expect needs a split: {destination: weight, ...}, routes, slo, access, or a resilience check: circuitBreaker, outlierDetection, retries or maxRequestsPerConnection"))
            }
        }
        // A policy without a split of its own (SLOs, resilience, access) is named by its file, not "split".
        if routeValues.isEmpty && f["name"] == nil && scenario.name == nil {
            policy.name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        }
        var allDestinations = Set<String>()
        for route in routeValues {
            let expectation = errors.attempt { () throws(YAMLInputError) in
                try Self.route(route.name, split: route.split, match: route.match, of: policy)
            }
            if let expectation {
                allDestinations.formUnion(expectation.weights.keys)
                policy.routes.append(expectation)
            } else {
                routesRead = false
            }
        }
        errors.attempt { () throws(YAMLInputError) in
            if let slo = f["slo"] { (policy.minimumSuccessRate, policy.latencyCeilings) = try Self.slo(slo) }
        }
        errors.attempt { () throws(YAMLInputError) in
            if let mtls = f["mtls"] { policy.expectedCaller = try Self.caller(mtls) }
        }
        let identitiesRead = errors.attempt { () throws(YAMLInputError) -> Void in
            guard let v = scenario.extras["identities"] else { return }
            let base = URL(fileURLWithPath: path).deletingLastPathComponent()
            policy.identities = try Self.identities(v) { value throws(YAMLInputError) in
                let p = try value.string()
                return p.hasPrefix("/") ? p : base.appendingPathComponent(p).path
            }
        } != nil
        errors.attempt { () throws(YAMLInputError) in
            // Judged against identities when they read: else their error is the one to fix.
            guard let a = f["access"], identitiesRead else { return }
            let access = try Self.access(a, holders: Set(policy.identities.map(\.caller)))
            // With manifests, the matrix's open cells are theirs to decide (checked once they are imported).
            if !routesElsewhere { try access.checkDecided() }
            policy.access = access
        }
        errors.attempt { () throws(YAMLInputError) in
            if let p = f["propagation"] { policy.propagation = try Self.propagation(p) }
        }
        errors.attempt { () throws(YAMLInputError) in
            if let cb = f["circuitBreaker"] { policy.circuitBreakers.append(try Self.circuitBreaker(cb)) }
        }
        errors.attempt { () throws(YAMLInputError) in
            guard let od = f["outlierDetection"] else { return }
            let (expectation, targets, rate) = try Self.outlierDetection(od)
            if let expectation {
                policy.outlierDetections.append(expectation)
            } else if !routesElsewhere {
                throw od.error("give consecutive5xxErrors or consecutiveGatewayErrors (or a DestinationRule with outlierDetection as a manifest)")
            }
            policy.outlierProbe = (targets, rate)
        }
        let retriesRead = errors.attempt { () throws(YAMLInputError) -> Void in
            if let r = f["retries"] { policy.retries.append(try RetryExpectation(policy: r)) }
        } != nil
        errors.attempt { () throws(YAMLInputError) in
            guard let v = f["maxRetries"] else { return }
            let n = try v.int(minimum: 1)
            guard n <= 250 else { throw v.error("at most 250: the check drives four times the limit in concurrent failing requests") }
            // Judged against retries when they read: else their error is the one to fix.
            guard retriesRead else { return }
            // An HTTP status for HTTP requests, a gRPC condition for gRPC calls: which one applies is the run's target's.
            guard let retries = policy.retries.first, (retries.attempts ?? 0) > 0,
                  retries.retryOn.retryableStatus != nil || retries.retryOn.retryableGRPCStatus != nil else {
                throw v.error("maxRetries needs retries beside it with attempts and a retried status or gRPC condition: the limit shows only on a route that retries")
            }
            policy.maxRetries.append((n, "\(v.file):\(v.line) \(v.path)"))
        }
        errors.attempt { () throws(YAMLInputError) in
            guard let v = f["maxRequestsPerConnection"] else { return }
            let n = try v.int(minimum: 1)
            guard n <= 10_000 else { throw v.error("at most 10000: the check sends ten connections' worth") }
            policy.connectionReuse.append(ConnectionReuseExpectation(maxRequestsPerConnection: n, source: "\(v.file):\(v.line) \(v.path)"))
        }
        errors.attempt { () throws(YAMLInputError) in
            guard let c = f["clusters"] else { return }
            let m = try c.mapping(allowed: ["reach", "avoid"])
            policy.clustersToReach = try m["reach"]?.list().map { v throws(YAMLInputError) in try v.string() } ?? []
            policy.clustersToAvoid = try m["avoid"]?.list().map { v throws(YAMLInputError) in try v.string() } ?? []
            if policy.clustersToReach.isEmpty && policy.clustersToAvoid.isEmpty { throw c.error("give reach: [CLUSTER, ...] and/or avoid: [...]") }
            if let both = Set(policy.clustersToReach).intersection(policy.clustersToAvoid).first {
                throw c.error("cluster '\(both)' is both in reach and in avoid")
            }
        }
        errors.attempt { () throws(YAMLInputError) in
            guard let m = f["map"] else { return }
            var mapping: [String: String] = [:]
            for (value, destination, at) in try m.stringMap() {
                // Checked against the splits when every route read: else a destination of one that did not is unknown.
                guard routesElsewhere || !routesRead || allDestinations.contains(destination) else {
                    throw at.error("maps to '\(destination)', which no split names")
                }
                mapping[value] = destination
            }
            for i in policy.routes.indices { policy.routes[i].mapping = mapping }
            policy.mapping = mapping
        }
        return policy
    }

    /// One route: its split (weights summing to 100) and what makes a request take it, with the policy's recogniser,
    /// statistics and routing.
    static func route(_ name: String, split: YAMLValue, match: YAMLValue?, of policy: Policy) throws(YAMLInputError) -> SplitExpectation {
        var weights: [String: Double] = [:]
        for (destination, _, at) in try split.stringMapKeys() {
            weights[destination] = try at.double(minimum: 0)
        }
        if weights.isEmpty { throw split.error("the split names no destination") }
        let sum = weights.values.reduce(0, +)
        guard abs(sum - 100) < 1e-9 else {
            throw split.error("the weights sum to \(YAMLValue.format(sum)), not 100 (Istio's rule for route weights)")
        }
        var expectation = SplitExpectation(name: name, weights: weights, recognizer: policy.recognizer, mapping: [:],
                                           statistics: policy.statistics)
        expectation.routing = policy.routing
        expectation.source = "\(split.file):\(split.line)"
        if let match {
            let m = try match.mapping(allowed: ["headers", "path", "method"])
            if let headers = m["headers"] {
                for (name, _, at) in try headers.stringMapKeys() {
                    expectation.conditions.append(try MatchCondition.parse(at, subject: .header(name.lowercased())))
                }
            }
            if let path = m["path"] { expectation.conditions.append(try MatchCondition.parse(path, subject: .path)) }
            if let method = m["method"] { expectation.conditions.append(try MatchCondition.parse(method, subject: .method)) }
        }
        return expectation
    }

    /// `mtls: required` (the caller must be the prober's own SVID: `""`) or `mtls: {caller: spiffe://...}`.
    static func caller(_ mtls: YAMLValue) throws(YAMLInputError) -> String {
        if case .scalar = mtls.node {
            guard try mtls.string() == "required" else { throw mtls.error("expected required, or {caller: SPIFFE_ID}") }
            return ""
        }
        let m = try mtls.mapping(allowed: ["caller"])
        guard let caller = m["caller"] else { throw mtls.error("expected {caller: SPIFFE_ID}") }
        let text = try caller.string()
        do { _ = try SPIFFEID(parsing: text) } catch { throw caller.error(error.description) }
        return text
    }

    /// `propagation: 30s` or `propagation: {timeout: 30s, window: 1s, stable: 3}`.
    static func propagation(_ p: YAMLValue) throws(YAMLInputError) -> PropagationWait {
        if case .scalar = p.node { return PropagationWait(timeout: try p.duration()) }
        let m = try p.mapping(allowed: ["timeout", "window", "stable"])
        guard let timeout = m["timeout"] else { throw p.error("propagation needs a timeout (e.g. 30s)") }
        var wait = PropagationWait(timeout: try timeout.duration())
        if let w = m["window"] { wait.window = try w.duration() }
        if let s = m["stable"] { wait.stableWindows = try s.int(minimum: 2) }
        guard wait.window * Double(wait.stableWindows) <= wait.timeout else {
            throw p.error("\(wait.stableWindows) windows of \(YAMLValue.format(wait.window))s cannot fit in the timeout of \(YAMLValue.format(wait.timeout))s")
        }
        return wait
    }
}
