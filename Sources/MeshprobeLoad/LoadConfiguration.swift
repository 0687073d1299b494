import MeshprobeIdentity
import MeshprobeHTTP2
// A configuration is made of the inputs' types: whoever builds or reads one has them.
@_exported import MeshprobeSpec
import MeshprobeTLS

/// How requests are generated.
public enum LoadModel: Sendable, Equatable {
    /// Connections x streams in flight, each slot sending its next request as soon as (plus `thinkTime` after)
    /// its last one completed. With a `concurrency` profile, the total number in flight follows it instead.
    case closed(concurrency: LoadProfile?, thinkTime: Double)
    /// Requests arrive at times fixed in advance by the `rate` profile (requests per second, all connections
    /// together), whether or not earlier ones have completed; latency counts from the intended time.
    case open(rate: LoadProfile, arrivals: ArrivalProcess)

    public static let closedAsFastAsPossible = LoadModel.closed(concurrency: nil, thinkTime: 0)

    public var isOpen: Bool {
        if case .open = self { return true }
        return false
    }

    /// The profile that bounds the run's length, if any.
    var profile: LoadProfile? {
        switch self {
        case .closed(let concurrency, _): return concurrency
        case .open(let rate, _): return rate
        }
    }
}

/// A guard that fired: which, when, and what it saw.
public struct GuardEvent: Sendable, Equatable {
    public var action: GuardAction
    public var guardDescription: String
    /// The second of the run it saw the breach in.
    public var second: Int
    public var observed: String
}

/// Everything a load run needs.
public struct LoadConfiguration: Sendable {
    /// Connections are spread round-robin over the targets.
    public var targets: [LoadTarget]
    public var connections: Int = 1
    /// Concurrent streams per connection (HTTP/2); HTTP/1.1 always uses one.
    public var streamsPerConnection: Int = 1
    /// Stop after this many requests (all connections together).
    public var requests: Int?
    /// Stop issuing requests after this many seconds.
    public var duration: Double?
    public var method: String = "GET"
    public var headers: [(name: String, value: String)] = []
    public var body: [UInt8]?
    public var httpVersion: HTTPVersionPreference = .auto
    /// Client TLS context for https targets.
    public var tls: TLSContext?
    /// What the TLS context accepts beyond the defaults, one phrase each, for the reports.
    public var tlsLoosened: [String] { tls?.configuration.loosening.loosened ?? [] }
    /// A request without a response after this many seconds counts as `request_timeout`.
    public var requestTimeout: Double = 10
    public var connectTimeout: Double = 5
    /// A response header that names the workload that served it (for servers other than the echo, or a proxy's own
    /// header in front of it): when set, the workload is this header's value, never the echo's workload stamp.
    public var identityHeader: String?
    /// The `source_workload` label of the per-identity metrics (Istio's name for the caller's workload).
    public var sourceWorkload = "meshprobe"
    /// The `route` label of the per-identity metrics: a verify route's name (flow steps add their own).
    public var route = ""
    /// Receives the run's per-identity metrics once a second and at the end (a live `/metrics` endpoint), with an id
    /// that is unique per run; nil (the default) costs nothing.
    public var metricsSink: (@Sendable (_ run: Int, _ metrics: IdentityMetrics) -> Void)?
    /// How failed responses are told apart: application, or which proxy and why (built-in signatures first
    /// extended by the scenario's own).
    public var signatures = SignatureTable()
    /// A connection that fails this many times in a row without carrying a request is given up.
    public var maxConsecutiveConnectFailures: Int = 3
    /// Number of event loops to spread connections over (default: one per core).
    public var eventLoops: Int?
    public var model: LoadModel = .closedAsFastAsPossible
    /// Seconds at the start whose requests are sent but left out of the results.
    public var warmup: Double = 0
    public var churn: ConnectionChurn = .reuse
    /// A request is late when it is sent more than this many seconds after its intended time (open model).
    public var lateThreshold: Double = 0.001
    /// Open model: the generator's timer fires at most this often; arrivals that fall due in between leave together
    /// on its next tick (at most this much after their intended time, which the latency includes). Batching
    /// sends per tick keeps the CPU per request close to the closed model's: every batch costs a TLS record, a
    /// write and the wake-ups for its responses. nil: adaptive (see `AdaptiveSendTick`).
    public var sendTick: Double?
    /// HTTP/2 write coalescing (see `HTTP2WriteCoalescer`), seconds: while the generator's event loop is the
    /// bottleneck (see `coalescePolicy`), a connection keeps the requests a read burst frees for a later burst and
    /// sends them together, this long after the first hold at the latest. A held request is timed from its write.
    /// 0 turns it off: every burst sends at once. nil (the default): `defaultCoalesceWindow` in the closed model, off
    /// in the open model (whose send tick batches its writes already, and whose latency counts from the intended
    /// time, so a hold would add to it).
    public var coalesceWindow: Double?
    /// The closed model's write-coalescing window when none is set: 500 us (A/Bs at `-c 10 -m 10` against nginx:
    /// CPU per request 0.91-0.92x of not coalescing; 1 ms saved about as much, 200 us less).
    public static let defaultCoalesceWindow = 0.0005
    /// The longest window a flag or file may set: it delays requests by up to this much.
    public static let maximumCoalesceWindow = CoalesceWindow.maximum
    /// The longest run, stage, warm-up, timeout or think time a load takes (seconds): 366 days.
    public static let maximumDuration: Double = 366 * 86400
    public static let maximumDurationText = "8784h (366 days)"
    /// The open model's rate bounds (requests per second; 0 is allowed in stages).
    public static let maximumRate = Rate.maximum
    public static let minimumRate = Rate.minimum
    /// The largest concurrency a closed model's stages may name.
    public static let maximumConcurrency = 1_000_000
    /// The write-coalescing window this run uses (0: off).
    public var effectiveCoalesceWindow: Double { coalesceWindow ?? (model.isOpen ? 0 : Self.defaultCoalesceWindow) }
    /// When a connection may hold (with coalescing on): by default only while the event loop is busy, shared
    /// by two or more connections, and the connection has four other requests in flight.
    public var coalescePolicy: HTTP2WriteCoalescer.Policy = .default
    /// The CSV file for `{{csv:COLUMN}}` placeholders.
    public var csv: CSVTable?
    /// The environment `{{env:NAME}}` reads.
    public var environment: [String: String] = [:]
    /// Multi-step iterations: when not empty, each iteration sends these steps in order on one connection, values
    /// extracted from a response feeding the later steps' `{{var:NAME}}`; `requests` then counts iterations.
    public var flow: [FlowStep] = []
    /// Values every iteration starts with (from setup steps).
    public var flowVariables: [String: String] = [:]
    /// Keep the last flow step's response (status and body, any status) in `LoadResult.lastStepResponse`; for
    /// one-shot requests, whose body is the point.
    public var keepLastStepResponse = false
    /// Closed model: each think time is drawn uniformly from think - jitter ... think + jitter.
    public var thinkJitter: Double = 0
    public var guards: [LoadGuard] = []
    /// Sees every recorded response (after the warm-up), on the event loop of the worker that got it, so from
    /// several threads at once. Returning true ends the run early, as decided rather than aborted: a sequential
    /// test has its verdict.
    public var responseObserver: (@Sendable (_ identity: WorkloadIdentity, _ status: Int) -> Bool)?
    /// Sees the run connection by connection (a split test whose sample is a connection); nil (the default) costs
    /// nothing.
    public var connectionObserver: (any ConnectionObserver)?
    public var guardAction: GuardAction = .stop
    /// Seed for arrival schedules and per-request randomness (reproducible runs).
    public var seed: UInt64 = 0x6D65_7368_7072_6F62

    /// When the run ends on time: the earliest of --duration and the end of the load profile.
    public var plannedDuration: Double? {
        switch (duration, model.profile?.totalDuration) {
        case let (d?, p?): return min(d, p)
        case let (d?, nil): return d
        case let (nil, p?): return p
        case (nil, nil): return nil
        }
    }

    public init(targets: [LoadTarget]) {
        self.targets = targets
    }

    /// Why `method` cannot be sent, or nil: it must be an HTTP token.
    public static func methodProblem(_ method: String) -> String? {
        HTTPToken.isToken(method) ? nil : HTTPMethod.rule
    }

    /// Why a header cannot be sent, or nil: its name must be a token (not a pseudo-header), its value free of CR,
    /// LF and NUL (which would end the header early on HTTP/1.1, and which HTTP/2 forbids); `content-length` comes
    /// from the body, and connection-specific headers (`connection: close`) are for HTTP/1.1 runs only.
    public static func headerProblem(name: String, value: String, http1Only: Bool) -> String? {
        guard HTTPToken.isToken(name) else { return "a header name must be a token (letters, digits, - and the like; no spaces, colons or pseudo-headers)" }
        let lower = name.lowercased()
        if lower == "content-length" { return "is set from the body; leave it out" }
        if !http1Only, ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"].contains(lower) {
            return "is a connection-specific header, which HTTP/2 forbids (RFC 9113, 8.2.2); it needs --http 1.1"
        }
        if value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) { return "a header value must not contain CR, LF or NUL" }
        return nil
    }

    static func checkRequest(method: String, headers: [(name: String, value: String)], field: String,
                             http1Only: Bool) throws(LoadConfigurationError) {
        if let problem = methodProblem(method) {
            throw LoadConfigurationError(field: field.isEmpty ? "--method" : field + "method", value: method, reason: problem)
        }
        for (name, value) in headers {
            if let problem = headerProblem(name: name, value: value, http1Only: http1Only) {
                throw LoadConfigurationError(field: "\(field.isEmpty ? "--header" : field + "headers") \(name)", value: value.debugDescription,
                                             reason: problem)
            }
        }
    }

    /// Checks values that cannot work; errors name the flag.
    public func validate(ignoringTLS: Bool = false) throws(LoadConfigurationError) {
        if targets.isEmpty { throw LoadConfigurationError(field: "URL", value: "", reason: "at least one target URL is needed") }
        if connections < 1 { throw LoadConfigurationError(field: "--connections", value: "\(connections)", reason: "must be at least 1") }
        if connections > 100_000 { throw LoadConfigurationError(field: "--connections", value: "\(connections)", reason: "must be at most 100000") }
        if streamsPerConnection < 1 || streamsPerConnection > 10_000 {
            throw LoadConfigurationError(field: "--streams", value: "\(streamsPerConnection)", reason: "must be 1-10000")
        }
        if let requests, requests < 1 { throw LoadConfigurationError(field: "--requests", value: "\(requests)", reason: "must be at least 1") }
        if let duration, !(duration > 0) || !duration.isFinite {
            throw LoadConfigurationError(field: "--duration", value: DurationText.text(seconds: duration), reason: "must be a positive duration")
        }
        let durations: [(String, Double?)] = [("--duration", duration), ("--warmup", warmup), ("--timeout", requestTimeout),
                                              ("connectTimeout", connectTimeout), ("--send-tick", sendTick),
                                              ("--think-jitter", thinkJitter)]
        for case let (flag, value?) in durations where value > Self.maximumDuration {
            throw LoadConfigurationError(field: flag, value: DurationText.text(seconds: value), reason: "must be at most \(Self.maximumDurationText)")
        }
        switch model {
        case .closed(let concurrency, let think):
            try concurrency?.validate(what: "concurrency", largest: Double(Self.maximumConcurrency))
            if !(think >= 0) || !think.isFinite { throw LoadConfigurationError(field: "--think", value: DurationText.text(seconds: think), reason: "must be zero or more") }
            if think > Self.maximumDuration {
                throw LoadConfigurationError(field: "--think", value: DurationText.text(seconds: think), reason: "must be at most \(Self.maximumDurationText)")
            }
        case .open(let rate, _):
            try rate.validate(what: "--rate", smallest: Self.minimumRate, largest: Self.maximumRate)
            if rate.stages.isEmpty && !(rate.start > 0) {
                throw LoadConfigurationError(field: "--rate", value: "\(rate.start)", reason: "must be more than 0 requests per second")
            }
        }
        if requests == nil && plannedDuration == nil {
            throw LoadConfigurationError(field: "--requests/--duration", value: "", reason: "give -n, -d or stages, so that the run ends on its own")
        }
        if !(thinkJitter >= 0) || !thinkJitter.isFinite {
            throw LoadConfigurationError(field: "--think-jitter", value: DurationText.text(seconds: thinkJitter), reason: "must be zero or more")
        }
        if case .closed(_, let think) = model, thinkJitter > think {
            throw LoadConfigurationError(field: "--think-jitter", value: DurationText.text(seconds: thinkJitter), reason: "must not be more than --think (\(DurationText.text(seconds: think)))")
        }
        for g in guards {
            switch g {
            case .errorRate(let r) where !(r > 0 && r < 1):
                throw LoadConfigurationError(field: "--abort-on-error-rate", value: "\(r)", reason: "must be between 0 and 1 (a fraction)")
            case .p99(let d) where !(d > 0) || !d.isFinite:
                throw LoadConfigurationError(field: "--abort-on-p99", value: DurationText.text(seconds: d), reason: "must be a positive duration")
            default: break
            }
        }
        if !(warmup >= 0) || !warmup.isFinite { throw LoadConfigurationError(field: "--warmup", value: DurationText.text(seconds: warmup), reason: "must be zero or more") }
        if let planned = plannedDuration, warmup >= planned {
            throw LoadConfigurationError(field: "--warmup", value: DurationText.text(seconds: warmup), reason: "must be shorter than the run (\(DurationText.text(seconds: planned)))")
        }
        try Self.checkRequest(method: method, headers: headers, field: "", http1Only: httpVersion == .http1)
        for (i, step) in flow.enumerated() {
            try Self.checkRequest(method: step.method, headers: step.headers.map { ($0.name, $0.value) }, field: "steps[\(i)] (\(step.name)).",
                                  http1Only: httpVersion == .http1)
        }
        _ = try compileTemplates()
        _ = try compileFlow()
        if case .every(let n) = churn, n < 1 { throw LoadConfigurationError(field: "--churn", value: "\(n)", reason: "must be at least 1 request per connection") }
        if !(requestTimeout > 0) { throw LoadConfigurationError(field: "--timeout", value: "\(requestTimeout)", reason: "must be positive") }
        if !ignoringTLS && targets.contains(where: { $0.scheme == .https }) && tls == nil {
            throw LoadConfigurationError(field: "URL", value: targets.map(\.description).joined(separator: " "), reason: "https needs a TLS configuration")
        }
    }
}

/// The request's per-request parts, compiled once; nil when nothing in the request varies.
struct CompiledRequestTemplates: Sendable {
    var paths: [TemplateString]
    var headers: [(name: String, value: TemplateString)]
    var body: TemplateString?
}

/// A flow step with its templates compiled.
struct CompiledFlowStep: Sendable {
    var name: String
    var method: String
    var path: TemplateString
    var headers: [(name: String, value: TemplateString)]
    var body: TemplateString?
    var extract: [Extraction]
}

extension LoadConfiguration {
    /// Compiles the flow's steps; `{{var:NAME}}` may name setup values and what earlier steps extract.
    func compileFlow() throws(LoadConfigurationError) -> [CompiledFlowStep] {
        var known = Set(flowVariables.keys)
        var compiled: [CompiledFlowStep] = []
        let header = csv?.header
        for (i, step) in flow.enumerated() {
            let field = "steps[\(i)] (\(step.name))"
            guard step.path.hasPrefix("/") else {
                throw LoadConfigurationError(field: "\(field).path", value: step.path, reason: "must start with '/'")
            }
            let path = try TemplateString(step.path, field: "\(field).path", csvHeader: header, environment: environment, variables: known)
            var headers: [(name: String, value: TemplateString)] = []
            for pair in step.headers {
                headers.append((pair.name, try TemplateString(pair.value, field: "\(field).headers.\(pair.name)", csvHeader: header,
                                                              environment: environment, variables: known)))
            }
            let body = try step.body.map { text throws(LoadConfigurationError) in
                try TemplateString(text, field: "\(field).body", csvHeader: header, environment: environment, variables: known)
            }
            for e in step.extract {
                if case .json(let p) = e.source, let problem = Extraction.checkJSONPath(p) {
                    throw LoadConfigurationError(field: "\(field).extract.\(e.variable)", value: p, reason: problem)
                }
                known.insert(e.variable)
            }
            compiled.append(CompiledFlowStep(name: step.name, method: step.method, path: path, headers: headers, body: body,
                                             extract: step.extract))
        }
        return compiled
    }

    /// Compiles `{{...}}` placeholders in the targets' paths, the headers and the body; nil when there are none.
    func compileTemplates() throws(LoadConfigurationError) -> CompiledRequestTemplates? {
        let bodyText = body.map { String(decoding: $0, as: UTF8.self) }
        let candidates = targets.map(\.path) + headers.map(\.value) + (bodyText.map { [$0] } ?? [])
        guard candidates.contains(where: { $0.contains("{{") }) else { return nil }
        let header = csv?.header
        var paths: [TemplateString] = []
        for target in targets {
            paths.append(try TemplateString(target.path, field: "URL path", csvHeader: header, environment: environment))
        }
        var compiledHeaders: [(name: String, value: TemplateString)] = []
        for (name, value) in headers {
            compiledHeaders.append((name.lowercased(), try TemplateString(value, field: "header \(name)", csvHeader: header, environment: environment)))
        }
        let compiledBody = try bodyText.map { text throws(LoadConfigurationError) in
            try TemplateString(text, field: "body", csvHeader: header, environment: environment)
        }
        return CompiledRequestTemplates(paths: paths, headers: compiledHeaders, body: compiledBody)
    }
}

/// The open model's default send tick: long enough that a tick carries about `arrivalsPerTick` arrivals of one
/// event loop, within `minimum...maximum`.
///
/// At 30000 requests/s a fixed 200 us tick sends batches of 6, and each batch costs a timer wake-up, a TLS record,
/// a write and the reads of its responses; a 500 us tick sends 15 for the same costs. The maximum keeps every
/// arrival's wait for its tick (counted in the latency from the intended time) at half the 1 ms late threshold.
public enum AdaptiveSendTick {
    public static let minimum = 0.0002
    public static let maximum = 0.0005
    public static let arrivalsPerTick = 16.0

    /// The tick, in seconds, for an event loop whose arrivals come at `rate` per second.
    public static func tick(forRate rate: Double) -> Double {
        guard rate > 0 else { return maximum }
        return min(maximum, max(minimum, arrivalsPerTick / rate))
    }
}

/// Sees a run connection by connection: each connection attempt as it starts, each recorded response (after the
/// warm-up) with its latency and the connection that carried it, each request that failed without a response, and
/// each connection's end (closed, failed to connect, or stopped with the run), exactly once per attempt and after all
/// of its responses and failures. Called on the workers' event loops, so from several threads at once. Returning true
/// ends the run early, as decided.
public protocol ConnectionObserver: AnyObject, Sendable {
    /// A connection attempt starts; returns the number the other calls name it by.
    func opened() -> Int
    func response(_ identity: WorkloadIdentity, status: Int, latencyMicros: UInt64, connection: Int) -> Bool
    func failed(connection: Int)
    func ended(connection: Int) -> Bool
}
