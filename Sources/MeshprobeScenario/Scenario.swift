import Foundation
import MeshprobeGRPC
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
    /// `workloadApi`: the SVID and bundles from the SPIFFE Workload API instead of files.
    public var workloadAPI: WorkloadAPIEndpoint?
    /// `workloadApiSvid`: the SPIFFE ID of the SVID to present when the agent offers several.
    public var workloadAPISVID: SPIFFEID?
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
        if workloadAPI != nil {
            // The SVID and the trust bundles come from the agent: no file to look at, a bundle to come.
            guard https else {
                var at = section ?? YAMLInputError(file: file, line: 1, column: 1, field: "", message: "")
                at.message = "workloadApi gives a client SVID for TLS: the targets are plaintext (http://, grpc://)"
                throw at
            }
            return
        }
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
    /// A top-level key is none of the file's sections (a misspelt one, maybe): a section missing is then not reported
    /// on top of it.
    var hasUnknownKeys = false

    /// `error`, about this file, saying which of its fields' values came from the command line.
    public func explain(_ error: YAMLInputError) -> YAMLInputError {
        YAMLOverride.explain(error, by: overrides)
    }

    /// Reads and checks a scenario file, changed first by `overrides`. Relative paths in it are relative to the file's
    /// directory. Every section is read: the error holds each section's (`YAMLInputError.others`).
    /// - Parameter thresholdsRefusal: why the file may not hold `thresholds` (a policy, a game day), nil when it may.
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment,
                            extraKeys: [String] = [], defaultRequests: Int? = nil,
                            defaultChurn: ConnectionChurn? = nil, overrides: FileOverrides = FileOverrides(),
                            thresholdsRefusal: String? = nil) throws(YAMLInputError) -> Scenario {
        var errors = YAMLErrors()
        let scenario = try load(path: path, environment: environment, extraKeys: extraKeys, defaultRequests: defaultRequests,
                                defaultChurn: defaultChurn, overrides: overrides, thresholdsRefusal: thresholdsRefusal, errors: &errors)
        try scenario.report(errors)
        return scenario
    }

    /// `load` for a caller that reads sections of its own (`extras`): the sections' errors are recorded in `errors`, and
    /// the scenario is then incomplete, good only for reading those. Throws what ends the read: a file that cannot be
    /// read, is not YAML or is not a mapping.
    package static func load(path: String, environment: [String: String], extraKeys: [String], defaultRequests: Int?,
                             defaultChurn: ConnectionChurn?, overrides: FileOverrides, thresholdsRefusal: String?,
                             errors: inout YAMLErrors) throws(YAMLInputError) -> Scenario {
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
                         thresholdsRefusal: thresholdsRefusal, errors: &errors)
    }

    /// The top-level section `key` that the caller reads itself (one of `extras`), a mapping of the `allowed` keys, with
    /// every other key of it recorded in `errors`. `misspelt` is true when there was one: a key missing from the section
    /// is then not reported on top of it. Nil when the section is not a mapping (recorded) or missing (recorded as
    /// `missing` says, unless a top-level key is unknown).
    package func section(_ key: String, allowed: [String], missing: String,
                         errors: inout YAMLErrors) -> (value: YAMLValue, keys: [String: YAMLValue], misspelt: Bool)? {
        guard let value = extras[key] else {
            if !hasUnknownKeys { errors.record(YAMLInputError(file: file, line: 1, column: 1, field: key, message: missing)) }
            return nil
        }
        let before = errors.count
        do {
            let keys = try value.mapping(allowed: allowed, recording: &errors)
            return (value, keys, errors.count > before)
        } catch {
            errors.record(error)
            return nil
        }
    }

    /// Throws the errors recorded while this file was read, each saying which of its values came from the command
    /// line; nothing when there were none.
    package func report(_ errors: YAMLErrors) throws(YAMLInputError) {
        do { try errors.check() } catch { throw explain(error) }
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
        var errors = YAMLErrors()
        let scenario = try parse(text, file: file, baseDirectory: baseDirectory, environment: environment, extraKeys: extraKeys,
                                 defaultRequests: defaultRequests, defaultChurn: defaultChurn, overrides: overrides,
                                 thresholdsRefusal: thresholdsRefusal, errors: &errors)
        try scenario.report(errors)
        return scenario
    }

    /// `parse`, with the sections' errors recorded in `errors` (see `load(path:...errors:)`).
    package static func parse(_ text: String, file: String, baseDirectory: URL, environment: [String: String],
                              extraKeys: [String], defaultRequests: Int?, defaultChurn: ConnectionChurn?,
                              overrides: FileOverrides, thresholdsRefusal: String?,
                              errors: inout YAMLErrors) throws(YAMLInputError) -> Scenario {
        let changes = overrides.changes
        var scenario: Scenario
        do {
            let root = try YAMLValue.parse(text, file: file).overriding(changes)
            scenario = try read(root, file: file, baseDirectory: baseDirectory, environment: environment, extraKeys: extraKeys,
                                defaultRequests: defaultRequests, defaultChurn: defaultChurn, thresholdsRefusal: thresholdsRefusal,
                                errors: &errors)
        } catch {
            throw YAMLOverride.explain(error, by: changes)
        }
        scenario.overrides = changes
        scenario.identity.overrides = changes
        if let mesh = overrides.meshALPN {
            for i in scenario.plan.targets.indices {
                guard scenario.plan.targets[i].scheme == .https else {
                    throw YAMLInputError(file: file, line: 1, column: 1, field: "target",
                                         message: "--mesh-alpn \(mesh.rawValue) needs https:// targets (it is offered in the TLS handshake), not \(scenario.plan.targets[i])")
                }
                scenario.plan.targets[i].meshALPN = mesh
            }
        }
        return scenario
    }

    /// Reads every section, recording each one's error in `errors`; what needs a section that has an error is left
    /// out, so that no mistake is reported twice.
    static func read(_ root: YAMLValue, file: String, baseDirectory: URL, environment: [String: String],
                     extraKeys: [String], defaultRequests: Int?, defaultChurn: ConnectionChurn?,
                     thresholdsRefusal: String?, errors: inout YAMLErrors) throws(YAMLInputError) -> Scenario {
        let before = errors.count
        let top = try root.mapping(allowed: ["scenario", "name", "target", "targets", "identity", "http", "grpc", "load", "request",
                                             "identityHeader", "signatures", "guards", "thresholds", "steps", "setup", "teardown", "output"] + extraKeys,
                                   recording: &errors)
        let misspelt = errors.count > before
        func resolve(_ value: YAMLValue) throws(YAMLInputError) -> String {
            let p = try value.string()
            return p.hasPrefix("/") ? p : baseDirectory.appendingPathComponent(p).path
        }
        var scenario = Scenario(file: file, plan: LoadPlan(targets: []), identity: ScenarioIdentity())
        scenario.hasUnknownKeys = misspelt
        scenario.plan.environment = environment
        if let defaultChurn { scenario.plan.churn = defaultChurn }

        // The sections outside the plan's checks.
        errors.attempt { () throws(YAMLInputError) in
            if let version = top["scenario"], try version.string() != Self.version { throw version.error("this meshprobe reads '\(Self.version)'") }
        }
        scenario.name = errors.attempt { () throws(YAMLInputError) in try top["name"]?.name() } ?? nil
        errors.attempt { () throws(YAMLInputError) in scenario.plan.identityHeader = try top["identityHeader"]?.string().lowercased() }
        errors.attempt { () throws(YAMLInputError) in
            if let list = top["signatures"] { scenario.plan.signatures = SignatureTable(extra: try parseSignatures(list)) }
        }
        if let identity = top["identity"], let read = errors.attempt({ () throws(YAMLInputError) in try parseIdentity(identity, resolve: resolve) }) {
            scenario.identity = read
        }
        errors.attempt { () throws(YAMLInputError) in
            if let output = top["output"] { scenario.jsonOutput = try output.mapping(allowed: ["json"])["json"].map(resolve) }
        }
        for key in extraKeys { if let value = top[key] { scenario.extras[key] = value } }

        // The sections the plan is built from. What only the whole can tell (a run with no end, a warm-up as long as the
        // run) is checked when every one of them read: with one missing, it would report that section's error again.
        let beforePlan = errors.count
        // Fields that may hold {{...}} placeholders, compiled once the CSV file is known.
        var templated: [(value: YAMLValue, text: String)] = []
        // A misspelt key may be the target: then it is not reported missing too.
        if top["target"] != nil || top["targets"] != nil || !misspelt,
           let targets = errors.attempt({ () throws(YAMLInputError) in try parseTargets(top, in: root) }) {
            scenario.plan.targets = targets.map(\.target)
            templated += targets.map { ($0.value, $0.target.path) }
        }
        // The load as the file declares it (`http`, `load`, `guards`, `thresholds`), applied once they are read.
        var spec = LoadSpec()
        errors.attempt { () throws(YAMLInputError) in
            if let http = top["http"] { spec.httpVersion = try http.parsed(HTTPVersionPreference.init(parsing:)) }
        }
        let loadFields = errors.attempt { () throws(YAMLInputError) -> [String: YAMLValue] in
            guard let load = top["load"] else { return [:] }
            return try parseLoad(load, into: &spec)
        }
        errors.attempt { () throws(YAMLInputError) in
            guard let guards = top["guards"] else { return }
            let f = try guards.mapping(allowed: ["maxErrorRate", "maxP99", "action"])
            if let a = f["action"] { spec.guardAction = try a.parsed(GuardAction.init(parsing:)) }
            if let v = f["maxErrorRate"] { spec.guards.append(try v.parsed(LoadGuard.errorRate(parsing:))) }
            if let v = f["maxP99"] { spec.guards.append(try v.parsed(LoadGuard.p99(parsing:))) }
        }
        errors.attempt { () throws(YAMLInputError) in
            guard let thresholds = top["thresholds"] else { return }
            if let thresholdsRefusal { throw thresholds.error(thresholdsRefusal) }
            for item in try thresholds.list() { spec.thresholds.append(try item.parsed(LoadThreshold.init(parsing:))) }
        }
        if let loadFields {
            do { try scenario.plan.apply(spec) } catch {
                errors.record((loadFields[Self.loadKey(error.field)] ?? top["load"] ?? root).error(error.message(naming: Self.loadKey)))
            }
        }
        let http1Only = spec.httpVersion == .http1
        let requestRead = errors.attempt { () throws(YAMLInputError) -> Void in
            if let request = top["request"] {
                templated += try parseRequest(request, into: &scenario.plan, http1Only: http1Only, resolve: resolve)
            }
        } != nil
        // gRPC calls, once the targets and the request (whose path names the method) are read.
        if requestRead, !scenario.plan.targets.isEmpty {
            errors.attempt { () throws(YAMLInputError) in
                try parseGRPC(top["grpc"], into: &scenario.plan, top: top, baseDirectory: baseDirectory)
            }
        }

        // Multi-step flows. Their templates may name the request's CSV columns, and the steps and teardown use what the
        // setup extracts: each list is read when what it needs was.
        if let steps = top["steps"], top["request"] != nil {
            errors.record(steps.error("give either request (one request per iteration) or steps (a flow), not both"))
        }
        if requestRead {
            let csvHeader = scenario.plan.csv?.header
            func readSteps(_ key: String, known: inout Set<String>) throws(YAMLInputError) -> [FlowStep] {
                guard let list = top[key] else { return [] }
                return try parseSteps(list, known: &known, csvHeader: csvHeader, environment: environment, http1Only: http1Only)
            }
            var known = Set<String>()
            if let setup = errors.attempt({ () throws(YAMLInputError) in try readSteps("setup", known: &known) }) {
                scenario.setup = setup
                let afterSetup = known
                scenario.plan.flow = errors.attempt { () throws(YAMLInputError) in try readSteps("steps", known: &known) } ?? []
                var teardownKnown = afterSetup
                scenario.teardown = errors.attempt { () throws(YAMLInputError) in try readSteps("teardown", known: &teardownKnown) } ?? []
                // Setup values are known before the load starts: placeholders for them.
                for name in afterSetup { scenario.plan.flowVariables[name] = "" }
            }
            for (value, text) in templated {
                do {
                    _ = try TemplateString(text, field: value.path, csvHeader: csvHeader, environment: environment)
                } catch {
                    errors.record(value.error(error.reason))
                }
            }
        }
        if let defaultRequests, scenario.plan.requests == nil, scenario.plan.plannedDuration == nil {
            scenario.plan.requests = defaultRequests
        }

        // What only the whole can tell (a warm-up as long as the run, a run with no end, templates that do not
        // compile): at the field when the file gives it, else on its section or the document.
        guard !misspelt, errors.count == beforePlan else { return scenario }
        do {
            try scenario.plan.validate(naming: Self.fieldName)
        } catch {
            if let key = error.setting.flatMap(Self.loadKey), let value = loadFields?[key] {
                errors.record(value.error(error.value.isEmpty ? error.reason : "'\(error.value)': \(error.reason)"))
            } else {
                errors.record((top["load"] ?? top["request"] ?? root).error(error.value.isEmpty ? error.reason : error.description))
            }
        }
        return scenario
    }

    /// `target: URL` or `targets: [URL, {url: URL, sni: NAME, meshAlpn: istio}, ...]`, each with the value it was read
    /// from.
    static func parseTargets(_ top: [String: YAMLValue], in root: YAMLValue) throws(YAMLInputError) -> [(target: LoadTarget, value: YAMLValue)] {
        var targetValues: [YAMLValue] = []
        switch (top["target"], top["targets"]) {
        case let (one?, nil): targetValues = [one]
        case let (nil, many?): targetValues = try many.list()
        case (_?, _?): throw root.error("give either target or targets, not both")
        case (nil, nil): throw root.error("a scenario needs a target URL (target: https://host:port/path)")
        }
        if targetValues.isEmpty { throw root.error("targets is empty") }
        var targets: [(target: LoadTarget, value: YAMLValue)] = []
        for item in targetValues {
            // A URL, or {url: URL, sni: NAME} for a target behind a gateway that routes by SNI (one per cluster).
            var value = item
            var serverName: String?
            var meshALPN: MeshALPN?
            if case .mapping = item.node {
                let m = try item.mapping(allowed: ["url", "sni", "meshAlpn"])
                guard let url = m["url"] else { throw item.error("a target needs url (and optionally sni, meshAlpn)") }
                if let v = m["meshAlpn"] { meshALPN = try v.parsed(MeshALPN.init(parsing:)) }
                value = url
                if let sni = m["sni"] {
                    serverName = try sni.string()
                    guard let name = serverName, !name.isEmpty, !name.contains(where: { $0 == " " || $0 == "/" }) else {
                        throw sni.error("expected a host name such as outbound_.9080_._.reviews.bookinfo.svc.cluster.local")
                    }
                }
            }
            let url = try value.string()
            var target: LoadTarget
            do { target = try LoadTarget(parsing: url) } catch {
                throw value.error(error.reason)
            }
            target.serverName = serverName
            target.meshALPN = meshALPN
            if serverName != nil, target.scheme != .https {
                throw value.error("sni needs an https:// target")
            }
            if meshALPN != nil, target.scheme != .https {
                throw value.error("meshAlpn needs an https:// target (it is offered in the TLS handshake)")
            }
            if let first = targets.first, first.target.meshALPN != meshALPN {
                throw item.error("every target of a run offers one ALPN: give meshAlpn to all of them or none")
            }
            targets.append((target, value))
        }
        return targets
    }

    /// The `identity` section; `resolve` makes a path relative to the file's directory.
    static func parseIdentity(_ identity: YAMLValue,
                              resolve: (YAMLValue) throws(YAMLInputError) -> String) throws(YAMLInputError) -> ScenarioIdentity {
        let f = try identity.mapping(allowed: ["cert", "key", "ca", "svidDir", "trustBundles", "expectPeer", "sni", "insecure",
                                               "tlsSecurityLevel", "allowNonSVIDPeer", "workloadApi", "workloadApiSvid"])
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
        if let endpoint = f["workloadApi"] {
            let text = try endpoint.string()
            do { id.workloadAPI = try WorkloadAPIEndpoint(parsing: text) } catch { throw endpoint.error(error.message) }
            if let file = ["cert", "key", "ca", "svidDir"].first(where: { f[$0] != nil }) {
                throw endpoint.error("is the SVID's source: give it or \(file), not both (trustBundles may add trust domains)")
            }
        }
        if let svid = f["workloadApiSvid"] {
            guard id.workloadAPI != nil else { throw svid.error("picks an SVID of the Workload API: give workloadApi") }
            let text = try svid.string()
            do { id.workloadAPISVID = try SPIFFEID(parsing: text) } catch { throw svid.error("is not a SPIFFE ID: \(error.reason)") }
        }
        return id
    }

    /// The `grpc` section (`protoset`, `data`, `health`, `compression`: the flags' values, paths relative to the file)
    /// and `grpc://` targets into the plan's call; an error points at the field it is about.
    static func parseGRPC(_ section: YAMLValue?, into plan: inout LoadPlan, top: [String: YAMLValue],
                          baseDirectory: URL) throws(YAMLInputError) {
        func resolve(_ path: String) -> String { path.hasPrefix("/") ? path : baseDirectory.appendingPathComponent(path).path }
        var input = GRPCCallInput()
        var fields: [String: YAMLValue] = [:]
        if let section {
            fields = try section.mapping(allowed: ["protoset", "data", "health", "compression"])
            input.everyTarget = true
            input.protoset = try fields["protoset"].map { v throws(YAMLInputError) in resolve(try v.string()) }
            if let data = fields["data"] {
                let text = try data.string()
                input.data = text.hasPrefix("@") ? "@" + resolve(String(text.dropFirst())) : text
            }
            input.health = try fields["health"]?.string()
            if let compression = fields["compression"] {
                guard let value = GRPCCompression(rawValue: try compression.string()) else {
                    throw compression.error("the compression must be identity or gzip")
                }
                input.gzip = value == .gzip
            }
        }
        do { try input.apply(to: &plan) } catch {
            let at: YAMLValue? = switch error.field {
            case .target: top["request"] ?? top["target"] ?? top["targets"]
            case .data: fields["data"]
            case .protoset: fields["protoset"]
            case .health: fields["health"]
            case .compression: fields["compression"]
            case .method: top["request"]?["method"]
            case .body: top["request"]?["body"]
            }
            throw (at ?? section ?? top["target"] ?? top["targets"]!).error(error.value.isEmpty || error.field != .target ? error.reason : "'\(error.value)': \(error.reason)")
        }
    }

    /// The `request` section into `plan` (after its targets: a path replaces theirs); returns the fields that may hold
    /// placeholders.
    static func parseRequest(_ request: YAMLValue, into plan: inout LoadPlan, http1Only: Bool,
                             resolve: (YAMLValue) throws(YAMLInputError) -> String) throws(YAMLInputError) -> [(value: YAMLValue, text: String)] {
        var templated: [(value: YAMLValue, text: String)] = []
        let f = try request.mapping(allowed: ["method", "path", "headers", "body", "csv"])
        if let method = f["method"] { plan.method = try method.parsed(HTTPMethod.parse) }
        if let path = f["path"] {
            let p = try path.string()
            guard p.hasPrefix("/") else { throw path.error("must start with '/'") }
            for i in plan.targets.indices { plan.targets[i].path = p }
            templated.append((path, p))
        }
        if let headers = f["headers"] {
            for (name, value, at) in try headers.stringMap() {
                let header = try readHeader(name: name, value: value, at: at, http1Only: http1Only)
                plan.headers.append(HTTP2HeaderPair(header.name, header.value))
                templated.append((at, value))
            }
        }
        if let body = f["body"] {
            let text = try body.string()
            plan.body = Array(text.utf8)
            templated.append((body, text))
        }
        if let csv = f["csv"] {
            let csvPath = try resolve(csv)
            let data: [UInt8]
            do { data = try InputFile.read(csvPath, limit: .data) } catch { throw csv.error(error.description) }
            do {
                plan.csv = try CSVTable(parsing: String(decoding: data, as: UTF8.self), source: csvPath)
            } catch {
                throw csv.error(error.description)
            }
        }
        return templated
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
