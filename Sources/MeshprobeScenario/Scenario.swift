import Foundation
import MeshprobeIdentity
import MeshprobeSpec
import MeshprobeYAML

/// A scenario's `identity` section: where its TLS identity comes from and what it expects of the server; turned into
/// a TLS context by the command line.
public struct ScenarioIdentity: Sendable, Equatable {
    /// The SVID and trust bundles (`tlsSecurityLevel` and `allowNonSVIDPeer` below 2 or true are reported as loosened).
    public var tls = TLSIdentitySpec()
    public var expectPeer: PeerExpectation?
    public var sni: String?
    public var insecure = false
    /// Where the section is in its file (`FILE:LINE:COLUMN: identity`), for errors found when its files are read.
    public var location: String?
    /// Where the section and each field it gives are, for `check`'s errors.
    var section: YAMLInputError?
    var places: [TLSIdentitySpec.Field: YAMLInputError] = [:]
    /// The command line's changes to the file, named in the errors of the fields they set.
    var overrides: [YAMLOverride] = []

    public init() {}

    /// A field as messages name it: its path in the file.
    static func fieldName(_ field: TLSIdentitySpec.Field) -> String {
        switch field {
        case .cert: return "identity.cert"
        case .key: return "identity.key"
        case .ca: return "identity.ca"
        case .svidDir: return "identity.svidDir"
        case .trustBundles: return "identity.trustBundles"
        case .expectPeer: return "identity.expectPeer"
        case .insecure: return "identity.insecure: true"
        case .sni: return "identity.sni"
        }
    }

    /// Checks what needs no TLS library before the context is built: the SVID files are there, and a client of
    /// `https` targets can verify its server (a plaintext one has no peer to expect or name to send). Errors name the
    /// file, line and field (`identity.svidDir`), at the field when the file gives it.
    ///
    /// Without `readFiles` (`--check`), nothing on disk is looked at: the identity's files may be secrets mounted only
    /// where the run happens, so an SVID directory counts as giving its trust bundle (root-cert.pem) unseen.
    public func check(https: Bool, file: String, readFiles: Bool = true) throws(YAMLInputError) {
        do {
            if https && readFiles { try tls.checkSources(naming: Self.fieldName) }
            try tls.checkClient(https: https, insecure: insecure, expectsPeer: expectPeer != nil, sni: sni != nil,
                                readFiles: readFiles, naming: Self.fieldName)
        } catch {
            if var at = places[error.field] {
                at.message = error.reason
                throw YAMLOverride.explain(at, by: overrides)
            }
            var at = section ?? YAMLInputError(file: file, line: 1, column: 1, field: "", message: "")
            at.message = error.message
            throw at
        }
    }
}

/// A load run as a reviewed YAML file (`meshprobe run FILE.yaml`); see `docs/schema/scenario.schema.json`.
public struct Scenario {
    public static let version = "meshprobe.scenario/v1"

    public var name: String?
    public var file: String
    /// The load as the file declares it; the caller builds the TLS context from `identity`.
    public var plan: LoadPlan
    public var identity: ScenarioIdentity
    public var jsonOutput: String?
    /// Run once before the load; what they extract is `{{var:NAME}}` in every iteration.
    public var setup: [FlowStep] = []
    /// Run once after the load (also after a failed or aborted one), with the setup's values.
    public var teardown: [FlowStep] = []
    /// Top-level sections a caller asked to read itself (a policy file's `expect`).
    public var extras: [String: YAMLValue] = [:]
    /// The command line's changes to the file (`--target`, `--svid-dir`, `--set`), as they were applied.
    public var overrides: [YAMLOverride] = []

    /// `error`, about this file, saying which of its fields' values came from the command line.
    public func explain(_ error: YAMLInputError) -> YAMLInputError {
        YAMLOverride.explain(error, by: overrides)
    }

    /// Reads and checks a scenario file, changed first by `overrides`. Relative paths in it are relative to the file's
    /// directory.
    /// - Parameter thresholdsRefusal: why the file may not hold `thresholds` (a policy, a game day), nil when it may.
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment,
                            extraKeys: [String] = [], defaultRequests: Int? = nil,
                            defaultChurn: ConnectionChurn? = nil, overrides: FileOverrides = FileOverrides(),
                            thresholdsRefusal: String? = nil) throws(YAMLInputError) -> Scenario {
        let data: [UInt8]
        do { data = try InputFile.read(path, limit: .yaml) } catch {
            throw YAMLInputError(file: path, line: 1, column: 1, field: "", message: "the file \(error.reason)")
        }
        guard let text = String(bytes: data, encoding: .utf8) else {
            throw YAMLInputError(file: path, line: 1, column: 1, field: "", message: "the file is not UTF-8 text")
        }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        return try parse(text, file: path, baseDirectory: base, environment: environment, extraKeys: extraKeys,
                         defaultRequests: defaultRequests, defaultChurn: defaultChurn, overrides: overrides,
                         thresholdsRefusal: thresholdsRefusal)
    }

    /// - Parameters:
    ///   - extraKeys: top-level keys the caller reads itself (returned in `extras`).
    ///   - defaultRequests: the request count when the file gives no end (a policy's sample cap).
    ///   - defaultChurn: the connection churn when the file gives none (a policy spreads over fresh connections).
    ///   - overrides: the command line's changes, made to the tree before it is read; an error in a value they set
    ///     says so.
    ///   - thresholdsRefusal: why the file may not hold `thresholds` (a policy, a game day), nil when it may.
    public static func parse(_ text: String, file: String, baseDirectory: URL, environment: [String: String] = [:],
                             extraKeys: [String] = [], defaultRequests: Int? = nil,
                             defaultChurn: ConnectionChurn? = nil, overrides: FileOverrides = FileOverrides(),
                             thresholdsRefusal: String? = nil) throws(YAMLInputError) -> Scenario {
        let changes = overrides.changes
        do {
            let root = try YAMLValue.parse(text, file: file).overriding(changes)
            var scenario = try read(root, file: file, baseDirectory: baseDirectory, environment: environment, extraKeys: extraKeys,
                                    defaultRequests: defaultRequests, defaultChurn: defaultChurn, thresholdsRefusal: thresholdsRefusal)
            scenario.overrides = changes
            scenario.identity.overrides = changes
            return scenario
        } catch {
            throw YAMLOverride.explain(error, by: changes)
        }
    }

    static func read(_ root: YAMLValue, file: String, baseDirectory: URL, environment: [String: String],
                     extraKeys: [String], defaultRequests: Int?, defaultChurn: ConnectionChurn?,
                     thresholdsRefusal: String?) throws(YAMLInputError) -> Scenario {
        let top = try root.mapping(allowed: ["scenario", "name", "target", "targets", "identity", "http", "load", "request",
                                             "identityHeader", "signatures", "guards", "thresholds", "steps", "setup", "teardown", "output"] + extraKeys)
        if let version = top["scenario"] {
            guard try version.string() == Self.version else { throw version.error("this meshprobe reads '\(Self.version)'") }
        }
        func resolve(_ value: YAMLValue) throws(YAMLInputError) -> String {
            let p = try value.string()
            return p.hasPrefix("/") ? p : baseDirectory.appendingPathComponent(p).path
        }

        // Targets.
        var targetValues: [YAMLValue] = []
        switch (top["target"], top["targets"]) {
        case let (one?, nil): targetValues = [one]
        case let (nil, many?): targetValues = try many.list()
        case (_?, _?): throw root.error("give either target or targets, not both")
        case (nil, nil): throw root.error("a scenario needs a target URL (target: https://host:port/path)")
        }
        if targetValues.isEmpty { throw root.error("targets is empty") }
        var targets: [LoadTarget] = []
        // Fields that may hold {{...}} placeholders, compiled at the end (after the CSV file is known).
        var templated: [(value: YAMLValue, text: String)] = []
        for item in targetValues {
            // A URL, or {url: URL, sni: NAME} for a target behind a gateway that routes by SNI (one per cluster).
            var value = item
            var serverName: String?
            if case .mapping = item.node {
                let m = try item.mapping(allowed: ["url", "sni"])
                guard let url = m["url"] else { throw item.error("a target needs url (and optionally sni)") }
                value = url
                if let sni = m["sni"] {
                    serverName = try sni.string()
                    guard let name = serverName, !name.isEmpty, !name.contains(where: { $0 == " " || $0 == "/" }) else {
                        throw sni.error("expected a host name such as outbound_.9080_._.reviews.bookinfo.svc.cluster.local")
                    }
                }
            }
            let url = try value.string()
            do { targets.append(try LoadTarget(parsing: url)) } catch {
                throw value.error(error.reason)
            }
            targets[targets.count - 1].serverName = serverName
            if serverName != nil, targets[targets.count - 1].scheme != .https {
                throw value.error("sni needs an https:// target")
            }
            templated.append((value, targets[targets.count - 1].path))
        }
        var plan = LoadPlan(targets: targets)
        plan.environment = environment
        var scenario = Scenario(file: file, plan: plan, identity: ScenarioIdentity())
        if let defaultChurn { scenario.plan.churn = defaultChurn }
        scenario.name = try top["name"]?.name()
        // The load as the file declares it (`load`, `http`, `guards`), applied once every section is read.
        var spec = LoadSpec()
        if let http = top["http"] { spec.httpVersion = try http.parsed(HTTPVersionPreference.init(parsing:)) }
        scenario.plan.identityHeader = try top["identityHeader"]?.string().lowercased()
        if let list = top["signatures"] {
            scenario.plan.signatures = SignatureTable(extra: try parseSignatures(list))
        }

        if let identity = top["identity"] {
            let f = try identity.mapping(allowed: ["cert", "key", "ca", "svidDir", "trustBundles", "expectPeer", "sni", "insecure",
                                                         "tlsSecurityLevel", "allowNonSVIDPeer"])
            var id = ScenarioIdentity()
            let at = identity.error("")
            id.location = "\(at.file):\(at.line):\(at.column): \(at.field)"
            id.section = at
            let keys: [(String, TLSIdentitySpec.Field)] = [("cert", .cert), ("key", .key), ("ca", .ca), ("svidDir", .svidDir),
                                                          ("trustBundles", .trustBundles), ("expectPeer", .expectPeer),
                                                          ("insecure", .insecure), ("sni", .sni)]
            for (key, field) in keys { if let value = f[key] { id.places[field] = value.error("") } }
            id.tls.cert = try f["cert"].map(resolve)
            id.tls.key = try f["key"].map(resolve)
            id.tls.ca = try f["ca"].map(resolve)
            id.tls.svidDir = try f["svidDir"].map(resolve)
            if (id.tls.cert == nil) != (id.tls.key == nil) { throw identity.error("cert and key go together") }
            if let bundles = f["trustBundles"] {
                for (domain, _, at) in try bundles.stringMap() {
                    do { try TrustBundleSource.checkTrustDomain(domain) } catch { throw at.error(error.message) }
                    id.tls.trustBundles.append(TrustBundleSource(trustDomain: domain, file: try resolve(at)))
                }
            }
            if let expect = f["expectPeer"] {
                let text = try expect.string()
                do { id.expectPeer = try PeerExpectation(parsing: text) } catch {
                    throw expect.error(error.description)
                }
            }
            id.sni = try f["sni"]?.string()
            id.insecure = try f["insecure"]?.bool() ?? false
            if id.insecure, let expect = f["expectPeer"] {
                throw expect.error("checks the server's certificate, which insecure: true skips: give one or the other")
            }
            if let level = f["tlsSecurityLevel"] {
                id.tls.tlsSecurityLevel = try level.int(minimum: 0)
                if id.tls.tlsSecurityLevel! > 5 { throw level.error("OpenSSL's security levels are 0 to 5 (default 2)") }
            }
            id.tls.allowNonSVIDPeer = try f["allowNonSVIDPeer"]?.bool() ?? false
            if id.tls.allowNonSVIDPeer, let expect = f["expectPeer"] {
                throw expect.error("requires a SPIFFE ID, which allowNonSVIDPeer: true does not: give one or the other")
            }
            scenario.identity = id
        }

        let loadFields = try top["load"].map { load throws(YAMLInputError) in try parseLoad(load, into: &spec) } ?? [:]

        if let request = top["request"] {
            let f = try request.mapping(allowed: ["method", "path", "headers", "body", "csv"])
            if let method = f["method"] { scenario.plan.method = try method.parsed(HTTPMethod.parse) }
            if let path = f["path"] {
                let p = try path.string()
                guard p.hasPrefix("/") else { throw path.error("must start with '/'") }
                for i in scenario.plan.targets.indices { scenario.plan.targets[i].path = p }
                templated.append((path, p))
            }
            if let headers = f["headers"] {
                for (name, value, at) in try headers.stringMap() {
                    let header = try readHeader(name: name, value: value, at: at, http1Only: spec.httpVersion == .http1)
                    scenario.plan.headers.append(HTTP2HeaderPair(header.name, header.value))
                    templated.append((at, value))
                }
            }
            if let body = f["body"] {
                let text = try body.string()
                scenario.plan.body = Array(text.utf8)
                templated.append((body, text))
            }
            if let csv = f["csv"] {
                let csvPath = try resolve(csv)
                let data: [UInt8]
                do { data = try InputFile.read(csvPath, limit: .data) } catch { throw csv.error(error.description) }
                do {
                    scenario.plan.csv = try CSVTable(parsing: String(decoding: data, as: UTF8.self), source: csvPath)
                } catch {
                    throw csv.error(error.description)
                }
            }
        }

        if let guards = top["guards"] {
            let f = try guards.mapping(allowed: ["maxErrorRate", "maxP99", "action"])
            if let a = f["action"] { spec.guardAction = try a.parsed(GuardAction.init(parsing:)) }
            if let v = f["maxErrorRate"] { spec.guards.append(try v.parsed(LoadGuard.errorRate(parsing:))) }
            if let v = f["maxP99"] { spec.guards.append(try v.parsed(LoadGuard.p99(parsing:))) }
        }
        if let thresholds = top["thresholds"] {
            if let thresholdsRefusal { throw thresholds.error(thresholdsRefusal) }
            for item in try thresholds.list() { spec.thresholds.append(try item.parsed(LoadThreshold.init(parsing:))) }
        }
        do { try scenario.plan.apply(spec) } catch {
            throw (loadFields[Self.loadKey(error.field)] ?? top["load"] ?? root).error(error.message(naming: Self.loadKey))
        }

        // Multi-step flows.
        if top["steps"] != nil, top["request"] != nil {
            throw top["steps"]!.error("give either request (one request per iteration) or steps (a flow), not both")
        }
        let csvHeader = scenario.plan.csv?.header
        let http1Only = spec.httpVersion == .http1
        var known = Set<String>()
        if let setup = top["setup"] {
            scenario.setup = try parseSteps(setup, known: &known, csvHeader: csvHeader, environment: environment, http1Only: http1Only)
        }
        let afterSetup = known
        if let steps = top["steps"] {
            scenario.plan.flow = try parseSteps(steps, known: &known, csvHeader: csvHeader, environment: environment,
                                                         http1Only: http1Only)
        }
        if let teardown = top["teardown"] {
            var teardownKnown = afterSetup
            scenario.teardown = try parseSteps(teardown, known: &teardownKnown, csvHeader: csvHeader, environment: environment,
                                               http1Only: http1Only)
        }
        // Setup values are known before the load starts: placeholders for them.
        for name in afterSetup { scenario.plan.flowVariables[name] = "" }

        if let output = top["output"] {
            let f = try output.mapping(allowed: ["json"])
            scenario.jsonOutput = try f["json"].map(resolve)
        }

        for (value, text) in templated {
            do {
                _ = try TemplateString(text, field: value.path, csvHeader: scenario.plan.csv?.header, environment: environment)
            } catch {
                throw value.error(error.reason)
            }
        }

        for key in extraKeys { if let value = top[key] { scenario.extras[key] = value } }
        if let defaultRequests, scenario.plan.requests == nil, scenario.plan.plannedDuration == nil {
            scenario.plan.requests = defaultRequests
        }

        // What only the whole can tell (a warm-up as long as the run, a run with no end, templates that do not
        // compile): at the field when the file gives it, else on its section or the document.
        do {
            try scenario.plan.validate(naming: Self.fieldName)
        } catch {
            if let key = error.setting.flatMap(Self.loadKey), let value = loadFields[key] {
                throw value.error(error.value.isEmpty ? error.reason : "'\(error.value)': \(error.reason)")
            }
            throw (top["load"] ?? top["request"] ?? root).error(error.value.isEmpty ? error.reason : error.description)
        }
        return scenario
    }

    /// Reads a list of steps; `known` holds the variables earlier steps extract and gains this list's.
    static func parseSteps(_ list: YAMLValue, known: inout Set<String>, csvHeader: [String]?,
                           environment: [String: String], http1Only: Bool) throws(YAMLInputError) -> [FlowStep] {
        var steps: [FlowStep] = []
        var names = Set<String>()
        let items = try list.list()
        if items.isEmpty { throw list.error("needs at least one step") }
        for item in items {
            let f = try item.mapping(allowed: ["name", "method", "path", "headers", "body", "extract"])
            guard let nameValue = f["name"] else { throw item.error("a step needs a name") }
            let name = try nameValue.name()
            guard !name.isEmpty, names.insert(name).inserted else { throw nameValue.error("step names must be unique and not empty") }
            guard let pathValue = f["path"] else { throw item.error("a step needs a path (starting with '/')") }
            let path = try pathValue.string()
            guard path.hasPrefix("/") else { throw pathValue.error("must start with '/'") }
            func check(_ value: YAMLValue, _ text: String) throws(YAMLInputError) {
                do {
                    _ = try TemplateString(text, field: value.path, csvHeader: csvHeader, environment: environment, variables: known)
                } catch {
                    throw value.error(error.reason)
                }
            }
            try check(pathValue, path)
            var step = FlowStep(name: name, path: path)
            if let method = f["method"] { step.method = try method.parsed(HTTPMethod.parse) }
            if let headers = f["headers"] {
                for (headerName, value, at) in try headers.stringMap() {
                    _ = try readHeader(name: headerName, value: value, at: at, http1Only: http1Only)
                    try check(at, value)
                    step.headers.append(HTTP2HeaderPair(headerName, value))
                }
            }
            if let body = f["body"] {
                let text = try body.string()
                try check(body, text)
                step.body = text
            }
            if let extract = f["extract"] {
                guard case .mapping = extract.node else { throw extract.error("expected a mapping of variable: {header: NAME} or {json: PATH}") }
                for (variable, _, spec) in try extract.stringMapKeys() {
                    let source = try spec.mapping(allowed: ["header", "json"])
                    switch (source["header"], source["json"]) {
                    case let (header?, nil):
                        step.extract.append(Extraction(variable: variable, source: .header(try header.string())))
                    case let (nil, json?):
                        let path = try json.string()
                        if let problem = Extraction.checkJSONPath(path) { throw json.error(problem) }
                        step.extract.append(Extraction(variable: variable, source: .json(path)))
                    default:
                        throw spec.error("give exactly one of header: NAME or json: PATH")
                    }
                    known.insert(variable)
                }
            }
            steps.append(step)
        }
        return steps
    }

    /// A header of a `headers` mapping, refused at its value with the reason it cannot be sent.
    static func readHeader(name: String, value: String, at: YAMLValue, http1Only: Bool) throws(YAMLInputError) -> HeaderField {
        let header: HeaderField
        do { header = try HeaderField(name: name, value: value) } catch { throw at.error(error.message) }
        if let problem = LoadPlan.headerProblem(name: name, value: value, http1Only: http1Only) {
            throw at.error("'\(name)' \(problem)")
        }
        return header
    }

    /// Proxy signatures the file adds to the built-in table (checked first): `{proxy, reason, flag, status, header,
    /// contains, body}`; every condition given must hold, and at least one of status, header, body is needed.
    static func parseSignatures(_ list: YAMLValue) throws(YAMLInputError) -> [ProxySignature] {
        var signatures: [ProxySignature] = []
        for item in try list.list() {
            let f = try item.mapping(allowed: ["proxy", "reason", "flag", "status", "header", "contains", "body"])
            guard let proxy = f["proxy"], let reason = f["reason"] else { throw item.error("a signature needs proxy and reason") }
            var signature = ProxySignature(proxy: try proxy.string(), reason: try reason.string(), flag: try f["flag"]?.string())
            if let v = f["status"] {
                let status = try v.int(minimum: 100)
                guard status <= 599 else { throw v.error("an HTTP status is 100 to 599") }
                signature.status = status
            }
            signature.header = try f["header"]?.string().lowercased()
            if let v = f["contains"] {
                guard signature.header != nil else { throw v.error("contains applies to a header: give header too") }
                signature.headerContains = try v.string()
            }
            signature.bodyContains = try f["body"]?.string()
            guard signature.status != nil || signature.header != nil || signature.bodyContains != nil else {
                throw item.error("a signature needs at least one of status, header, body")
            }
            signatures.append(signature)
        }
        return signatures
    }

    /// A load's durations: at most a year (a run, stage, warm-up, timeout or think time).
    static func loadDuration(_ value: YAMLValue, allowZero: Bool = false) throws(YAMLInputError) -> Double {
        let seconds = try value.duration(allowZero: allowZero)
        guard seconds <= LoadPlan.maximumDuration else { throw value.error("must be at most \(LoadPlan.maximumDurationText)") }
        return seconds
    }

    /// The key in `load` that sets `setting`; nil for a setting of another section.
    static func loadKey(_ setting: LoadPlan.Setting) -> String? {
        switch setting {
        case .connections: return "connections"
        case .streams: return "streams"
        case .requests: return "requests"
        case .duration: return "duration"
        case .warmup: return "warmup"
        case .requestTimeout: return "timeout"
        case .connectTimeout: return "connectTimeout"
        case .sendTick: return "sendTick"
        case .think: return "think"
        case .thinkJitter: return "thinkJitter"
        case .rate: return "rate"
        case .concurrency: return "stages"
        case .churn: return "churn"
        case .targets, .errorRateGuard, .p99Guard, .method, .header: return nil
        }
    }

    /// The field of the file that sets `setting`, as messages name it (`load.warmup`, `guards.maxP99`).
    static func fieldName(_ setting: LoadPlan.Setting) -> String {
        if let key = loadKey(setting) { return "load.\(key)" }
        switch setting {
        case .errorRateGuard: return "guards.maxErrorRate"
        case .p99Guard: return "guards.maxP99"
        case .method: return "request.method"
        case .header(let name): return "request.headers.\(name)"
        default: return "target"
        }
    }

    /// The key in `load` that sets `field`.
    static func loadKey(_ field: LoadSpec.Field) -> String {
        switch field {
        case .connections: return "connections"
        case .streams: return "streams"
        case .rate: return "rate"
        case .stages: return "stages"
        case .arrivals: return "arrivals"
        case .think: return "think"
        case .thinkJitter: return "thinkJitter"
        case .sendTick: return "sendTick"
        }
    }

    /// Reads the `load` section into `spec`; returns its fields, where a combination's problem is shown.
    static func parseLoad(_ load: YAMLValue, into spec: inout LoadSpec) throws(YAMLInputError) -> [String: YAMLValue] {
        let f = try load.mapping(allowed: ["connections", "streams", "requests", "duration", "warmup", "timeout", "connectTimeout",
                                           "churn", "rate", "arrivals", "stages", "think", "thinkJitter", "seed",
                                           "sendTick", "coalesceWindow"])
        if let v = f["connections"] {
            spec.connections = try v.int(minimum: 1)
            guard spec.connections! <= 100_000 else { throw v.error("at most 100000") }
        }
        if let v = f["streams"] {
            spec.streams = try v.int(minimum: 1)
            guard spec.streams! <= 10_000 else { throw v.error("at most 10000") }
        }
        if let v = f["requests"] { spec.requests = try v.int(minimum: 1) }
        if let v = f["duration"] { spec.duration = try loadDuration(v) }
        if let v = f["warmup"] { spec.warmup = try loadDuration(v, allowZero: true) }
        if let v = f["timeout"] { spec.requestTimeout = try loadDuration(v) }
        if let v = f["connectTimeout"] { spec.connectTimeout = try loadDuration(v) }
        if let v = f["seed"] { spec.seed = UInt64(try v.int(minimum: 0)) }
        if let v = f["sendTick"] { spec.sendTick = try loadDuration(v) }
        if let v = f["coalesceWindow"] { spec.coalesceWindow = try v.parsed(CoalesceWindow.seconds(parsing:)) }
        if let v = f["churn"] { spec.churn = try v.parsed(ConnectionChurn.init(parsing:)) }
        if let list = f["stages"] {
            for item in try list.list() {
                let s = try item.mapping(allowed: ["duration", "target", "ramp"])
                guard let d = s["duration"] else { throw item.error("a stage needs a duration") }
                guard let t = s["target"] else { throw item.error("a stage needs a target (a rate with load.rate, else a concurrency)") }
                let ramp = try s["ramp"]?.parsed(LoadStage.ramp(parsing:)) ?? true
                let target = f["rate"] != nil ? try t.parsed(Rate.init(parsing:)).perSecond
                    : try t.double(minimum: 0, maximum: Double(LoadPlan.maximumConcurrency))
                spec.stages.append(LoadStage(duration: try loadDuration(d), target: target, ramp: ramp))
            }
            if spec.stages.isEmpty { throw list.error("stages is empty") }
        }
        spec.arrivals = try f["arrivals"]?.parsed(ArrivalProcess.init(parsing:))
        spec.rate = try f["rate"]?.parsed(Rate.init(parsing:)).perSecond
        spec.think = try f["think"].map { v throws(YAMLInputError) in try loadDuration(v, allowZero: true) }
        spec.thinkJitter = try f["thinkJitter"].map { v throws(YAMLInputError) in try loadDuration(v, allowZero: true) }
        return f
    }
}
