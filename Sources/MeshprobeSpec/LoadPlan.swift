import MeshprobeIdentity

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
    package var profile: LoadProfile? {
        switch self {
        case .closed(let concurrency, _): return concurrency
        case .open(let rate, _): return rate
        }
    }
}

/// A load run as its user asked for it: what the `load` flags or a scenario or policy file declare, as values (no TLS
/// context, no closures). The command line and the files build it; the engine runs it inside a `LoadConfiguration`,
/// which adds what only a run has (the TLS context, the sinks and observers, the run's internal knobs).
public struct LoadPlan: Sendable, Equatable {
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
    /// Names lower-cased.
    public var headers: [HTTP2HeaderPair] = []
    public var body: [UInt8]?
    /// gRPC: every request is this unary call (POST to its method's path over HTTP/2; `body` unused); nil for HTTP.
    public var grpc: GRPCCall?
    public var httpVersion: HTTPVersionPreference = .auto
    /// A request without a response after this many seconds counts as `request_timeout`.
    public var requestTimeout: Double = 10
    public var connectTimeout: Double = 5
    /// A response header that names the workload that served it (for servers other than the echo, or a proxy's own
    /// header in front of it): when set, the workload is this header's value, never the echo's workload stamp.
    public var identityHeader: String?
    /// How failed responses are told apart: application, or which proxy and why (built-in signatures first
    /// extended by the scenario's own).
    public var signatures = SignatureTable()
    public var model: LoadModel = .closedAsFastAsPossible
    /// Seconds at the start whose requests are sent but left out of the results.
    public var warmup: Double = 0
    public var churn: ConnectionChurn = .reuse
    /// Open model: the generator's timer fires at most this often; arrivals that fall due in between leave together
    /// on its next tick (at most this much after their intended time, which the latency includes). Batching
    /// sends per tick keeps the CPU per request close to the closed model's: every batch costs a TLS record, a
    /// write and the wake-ups for its responses. nil: adaptive (the engine's `AdaptiveSendTick`).
    public var sendTick: Double?
    /// HTTP/2 write coalescing, seconds: while the generator's event loop is the bottleneck (the engine's coalescing
    /// policy), a connection keeps the requests a read burst frees for a later burst and sends them together, this
    /// long after the first hold at the latest. A held request is timed from its write. 0 turns it off: every burst
    /// sends at once. nil (the default): `defaultCoalesceWindow` in the closed model, off in the open model (whose
    /// send tick batches its writes already, and whose latency counts from the intended time, so a hold would add
    /// to it).
    public var coalesceWindow: Double?
    /// The CSV file for `{{csv:COLUMN}}` placeholders.
    public var csv: CSVTable?
    /// The environment `{{env:NAME}}` reads.
    public var environment: [String: String] = [:]
    /// Multi-step iterations: when not empty, each iteration sends these steps in order on one connection, values
    /// extracted from a response feeding the later steps' `{{var:NAME}}`; `requests` then counts iterations.
    public var flow: [FlowStep] = []
    /// Values every iteration starts with (from setup steps).
    public var flowVariables: [String: String] = [:]
    /// Closed model: each think time is drawn uniformly from think - jitter ... think + jitter.
    public var thinkJitter: Double = 0
    public var guards: [LoadGuard] = []
    public var guardAction: GuardAction = .stop
    /// Gates on the finished run (`--threshold`, a scenario's `thresholds`): the run fails when one does not hold.
    public var thresholds: [LoadThreshold] = []
    /// Seed for arrival schedules and per-request randomness (reproducible runs).
    public var seed: UInt64 = 0x6D65_7368_7072_6F62

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

    /// A setting `validate` can refuse; each reader names it its way (`--warmup`, `load.warmup`).
    public enum Setting: Sendable, Equatable {
        case targets, connections, streams, requests, duration, warmup, requestTimeout, connectTimeout, sendTick
        case think, thinkJitter, rate, concurrency, errorRateGuard, p99Guard, churn, method
        case header(String)

        /// How the command line names it, the default naming: its flag (`URL` for the targets, `concurrency` for the
        /// closed model's `--stage` targets). `connectTimeout` has no flag (only files set it), so it is named as the
        /// files name it, `load.connectTimeout`.
        public var commandLineName: String {
            switch self {
            case .targets: return "URL"
            case .connections: return "--connections"
            case .streams: return "--streams"
            case .requests: return "--requests"
            case .duration: return "--duration"
            case .warmup: return "--warmup"
            case .requestTimeout: return "--timeout"
            case .connectTimeout: return "load.connectTimeout"
            case .sendTick: return "--send-tick"
            case .think: return "--think"
            case .thinkJitter: return "--think-jitter"
            case .rate: return "--rate"
            case .concurrency: return "concurrency"
            case .errorRateGuard: return "--abort-on-error-rate"
            case .p99Guard: return "--abort-on-p99"
            case .churn: return "--churn"
            case .method: return "--method"
            case .header(let name): return "--header \(name)"
            }
        }
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

    /// Checks a request's method and headers; `field` is empty for the run's own request (named by `name`), else
    /// the flow step's prefix (`steps[0] (login).`).
    static func checkRequest(method: String, headers: [HTTP2HeaderPair], field: String, http1Only: Bool,
                             naming name: (Setting) -> String) throws(LoadPlanError) {
        if let problem = methodProblem(method) {
            throw field.isEmpty ? LoadPlanError(.method, naming: name, value: method, reason: problem)
                : LoadPlanError(field: field + "method", value: method, reason: problem)
        }
        for header in headers {
            if let problem = headerProblem(name: header.name, value: header.value, http1Only: http1Only) {
                throw field.isEmpty ? LoadPlanError(.header(header.name), naming: name, value: header.value.debugDescription, reason: problem)
                    : LoadPlanError(field: "\(field)headers \(header.name)", value: header.value.debugDescription, reason: problem)
            }
        }
    }

    /// Checks values that cannot work, and the whole (a run with an end, templates that compile); errors name the
    /// setting with `name` (the command line's by default) and carry it (`LoadPlanError.setting`), so that a file can
    /// point at its line.
    public func validate(naming name: (Setting) -> String = \.commandLineName) throws(LoadPlanError) {
        func fail(_ setting: Setting, _ value: String, _ reason: String) -> LoadPlanError {
            LoadPlanError(setting, naming: name, value: value, reason: reason)
        }
        let text = DurationText.text(seconds:)
        if targets.isEmpty { throw fail(.targets, "", "at least one target URL is needed") }
        if connections < 1 { throw fail(.connections, "\(connections)", "must be at least 1") }
        if connections > 100_000 { throw fail(.connections, "\(connections)", "must be at most 100000") }
        if streamsPerConnection < 1 || streamsPerConnection > 10_000 { throw fail(.streams, "\(streamsPerConnection)", "must be 1-10000") }
        if let requests, requests < 1 { throw fail(.requests, "\(requests)", "must be at least 1") }
        if let duration, !(duration > 0) || !duration.isFinite { throw fail(.duration, text(duration), "must be a positive duration") }
        let durations: [(Setting, Double?)] = [(.duration, duration), (.warmup, warmup), (.requestTimeout, requestTimeout),
                                               (.connectTimeout, connectTimeout), (.sendTick, sendTick), (.thinkJitter, thinkJitter)]
        for case let (setting, value?) in durations where value > Self.maximumDuration {
            throw fail(setting, text(value), "must be at most \(Self.maximumDurationText)")
        }
        switch model {
        case .closed(let concurrency, let think):
            do { try concurrency?.validate(what: name(.concurrency), largest: Double(Self.maximumConcurrency)) } catch {
                throw error.about(.concurrency)
            }
            if !(think >= 0) || !think.isFinite { throw fail(.think, text(think), "must be zero or more") }
            if think > Self.maximumDuration { throw fail(.think, text(think), "must be at most \(Self.maximumDurationText)") }
        case .open(let rate, _):
            do { try rate.validate(what: name(.rate), smallest: Self.minimumRate, largest: Self.maximumRate) } catch {
                throw error.about(.rate)
            }
            if rate.stages.isEmpty && !(rate.start > 0) { throw fail(.rate, "\(rate.start)", "must be more than 0 requests per second") }
        }
        if requests == nil && plannedDuration == nil {
            throw LoadPlanError(field: "\(name(.requests))/\(name(.duration))", value: "",
                                reason: "give \(name(.requests)), \(name(.duration)) or stages, so that the run ends on its own",
                                setting: .requests)
        }
        if !(thinkJitter >= 0) || !thinkJitter.isFinite { throw fail(.thinkJitter, text(thinkJitter), "must be zero or more") }
        if case .closed(_, let think) = model, thinkJitter > think {
            throw fail(.thinkJitter, text(thinkJitter), "must not be more than \(name(.think)) (\(text(think)))")
        }
        for g in guards {
            switch g {
            case .errorRate(let r) where !(r > 0 && r < 1):
                throw fail(.errorRateGuard, "\(r)", "must be between 0 and 1 (a fraction)")
            case .p99(let d) where !(d > 0) || !d.isFinite:
                throw fail(.p99Guard, text(d), "must be a positive duration")
            default: break
            }
        }
        if !(warmup >= 0) || !warmup.isFinite { throw fail(.warmup, text(warmup), "must be zero or more") }
        if let planned = plannedDuration, warmup >= planned {
            throw fail(.warmup, text(warmup), "must be shorter than the run (\(text(planned)))")
        }
        try Self.checkRequest(method: method, headers: headers, field: "", http1Only: httpVersion == .http1, naming: name)
        try checkGRPC(naming: name)
        for (i, step) in flow.enumerated() {
            try Self.checkRequest(method: step.method, headers: step.headers, field: "steps[\(i)] (\(step.name)).",
                                  http1Only: httpVersion == .http1, naming: name)
        }
        _ = try compileTemplates()
        _ = try compileFlow()
        if case .every(let n) = churn, n < 1 { throw fail(.churn, "\(n)", "must be at least 1 request per connection") }
        if !(requestTimeout > 0) { throw fail(.requestTimeout, "\(requestTimeout)", "must be positive") }
    }
}

extension LoadPlan {
    /// gRPC's rules: every target is gRPC and calls the run's method, over HTTP/2, one call a request (no flow steps,
    /// no HTTP body); an HTTP target is not mixed in.
    func checkGRPC(naming name: (Setting) -> String) throws(LoadPlanError) {
        guard let grpc else {
            if let target = targets.first(where: \.grpc) {
                throw LoadPlanError(field: "URL", value: target.description, reason: "a gRPC target needs the call to make (its method and message)")
            }
            return
        }
        if let target = targets.first(where: { !$0.grpc }) {
            throw LoadPlanError(field: "URL", value: target.description,
                                reason: "is not a gRPC target, and this run makes gRPC calls (write grpc:// or grpcs://, or give every URL with --grpc)")
        }
        if let target = targets.first(where: { $0.path != grpc.path }) {
            throw LoadPlanError(field: "URL", value: target.description,
                                reason: "calls \(target.path), and the run calls \(grpc.path): one method a run")
        }
        if httpVersion == .http1 {
            throw LoadPlanError(field: "--http", value: "1.1", reason: "gRPC runs over HTTP/2 only")
        }
        if method != "POST" {
            throw LoadPlanError(.method, naming: name, value: method, reason: "a gRPC call is a POST (leave the method out)")
        }
        if body != nil {
            throw LoadPlanError(field: "body", value: "", reason: "a gRPC run sends its request message, not an HTTP body")
        }
        if !flow.isEmpty {
            throw LoadPlanError(field: "steps", value: "", reason: "flow steps are HTTP requests; a gRPC run makes one call a request")
        }
        if let reserved = headers.first(where: { GRPCCall.reservedHeaders.contains($0.name) || $0.name.hasPrefix("grpc-") }) {
            throw LoadPlanError(.header(reserved.name), naming: name, value: reserved.value,
                                reason: "is gRPC's own header, which the call sets (use --timeout for grpc-timeout)")
        }
    }
}

/// The request's per-request parts, compiled once; nil when nothing in the request varies.
package struct CompiledRequestTemplates: Sendable {
    package var paths: [TemplateString]
    package var headers: [(name: String, value: TemplateString)]
    package var body: TemplateString?
}

/// A flow step with its templates compiled.
package struct CompiledFlowStep: Sendable {
    package var name: String
    package var method: String
    package var path: TemplateString
    package var headers: [(name: String, value: TemplateString)]
    package var body: TemplateString?
    package var extract: [Extraction]
}

extension LoadPlan {
    /// Compiles the flow's steps; `{{var:NAME}}` may name setup values and what earlier steps extract.
    package func compileFlow() throws(LoadPlanError) -> [CompiledFlowStep] {
        var known = Set(flowVariables.keys)
        var compiled: [CompiledFlowStep] = []
        let header = csv?.header
        for (i, step) in flow.enumerated() {
            let field = "steps[\(i)] (\(step.name))"
            guard step.path.hasPrefix("/") else {
                throw LoadPlanError(field: "\(field).path", value: step.path, reason: "must start with '/'")
            }
            let path = try TemplateString(step.path, field: "\(field).path", csvHeader: header, environment: environment, variables: known)
            var headers: [(name: String, value: TemplateString)] = []
            for pair in step.headers {
                headers.append((pair.name, try TemplateString(pair.value, field: "\(field).headers.\(pair.name)", csvHeader: header,
                                                              environment: environment, variables: known)))
            }
            let body = try step.body.map { text throws(LoadPlanError) in
                try TemplateString(text, field: "\(field).body", csvHeader: header, environment: environment, variables: known)
            }
            for e in step.extract {
                if case .json(let p) = e.source, let problem = Extraction.checkJSONPath(p) {
                    throw LoadPlanError(field: "\(field).extract.\(e.variable)", value: p, reason: problem)
                }
                known.insert(e.variable)
            }
            compiled.append(CompiledFlowStep(name: step.name, method: step.method, path: path, headers: headers, body: body,
                                             extract: step.extract))
        }
        return compiled
    }

    /// Compiles `{{...}}` placeholders in the targets' paths, the headers and the body; nil when there are none.
    package func compileTemplates() throws(LoadPlanError) -> CompiledRequestTemplates? {
        let bodyText = body.map { String(decoding: $0, as: UTF8.self) }
        let candidates = targets.map(\.path) + headers.map(\.value) + (bodyText.map { [$0] } ?? [])
        guard candidates.contains(where: { $0.contains("{{") }) else { return nil }
        let header = csv?.header
        var paths: [TemplateString] = []
        for target in targets {
            paths.append(try TemplateString(target.path, field: "URL path", csvHeader: header, environment: environment))
        }
        var compiledHeaders: [(name: String, value: TemplateString)] = []
        for pair in headers {
            compiledHeaders.append((pair.name, try TemplateString(pair.value, field: "header \(pair.name)", csvHeader: header,
                                                                  environment: environment)))
        }
        let compiledBody = try bodyText.map { text throws(LoadPlanError) in
            try TemplateString(text, field: "body", csvHeader: header, environment: environment)
        }
        return CompiledRequestTemplates(paths: paths, headers: compiledHeaders, body: compiledBody)
    }
}
