import ArgumentParser
import Foundation
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeRunner
import MeshprobeScenario
import MeshprobeSpec
import MeshprobeTLS

struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "HTTP/2 (or HTTP/1.1) load over mTLS, broken down by the workload identity that answered.",
        discussion: """
            Closed model: --connections x --streams requests in flight, as fast as responses come back, until \
            --requests or --duration is used up. Several URLs spread the connections round-robin.
            Example: meshprobe load https://127.0.0.1:8443/ --svid-dir ./svid -c 10 -m 10 -n 10000 \
            --expect-peer spiffe://example.org/ns/default/sa/reviews
            """
    )

    @Argument(help: "Target URLs: https:// (TLS, ALPN h2 then http/1.1) or http:// (h2c prior knowledge); grpcs:// and grpc:// for gRPC calls (the path names the method: /package.Service/Method).")
    var urls: [String]

    @Option(name: [.short, .customLong("connections")], parsing: .unconditional, help: "Connections in total.")
    var connections: Int = 1

    @Option(name: [.customShort("m"), .customLong("streams")], parsing: .unconditional, help: "Concurrent streams per connection (HTTP/2).")
    var streams: Int = 1

    @Option(name: [.customShort("n"), .customLong("requests")], parsing: .unconditional, help: "Stop after this many requests.")
    var requests: Int?

    @Option(name: [.short, .customLong("duration")], help: "Stop after this long (30s, 500ms, 2m).", transform: InputArgument.duration)
    var duration: TimeSpan?

    @Option(parsing: .unconditional, help: "Open model: requests per second in total (arrivals fixed in advance; latency from the intended time).",
            transform: InputArgument.rate)
    var rate: Rate?

    /// nil when not given: uniform, with --rate.
    @Option(help: .defaulted("Open model arrivals: uniform or poisson.", ArrivalProcess.uniform.rawValue),
            completion: .list(ArrivalProcess.allCases.map(\.rawValue)), transform: InputArgument.arrivals)
    var arrivals: ArrivalProcess?

    @Option(name: .customLong("stage"), parsing: .unconditionalSingleValue, help: ArgumentHelp("A load stage DURATION:TARGET[:step], repeatable: a ramp (or a step) to TARGET over DURATION. Targets are rates with --rate (which sets the starting rate), else total concurrency.", valueName: "duration:target"),
            transform: InputArgument.stage)
    var stages: [LoadStage] = []

    @Option(help: "Leave the first DURATION out of the results (requests are still sent; with -n, on top of the N measured).", transform: InputArgument.durationOrZero)
    var warmup: TimeSpan?

    @Option(help: "Closed model: pause this long after each response before the slot sends again.", transform: InputArgument.durationOrZero)
    var think: TimeSpan?

    @Option(name: .customLong("think-jitter"), help: "Closed model: spread each think time uniformly by up to this much either way.",
            transform: InputArgument.durationOrZero)
    var thinkJitter: TimeSpan?

    @Option(name: .customLong("abort-on-error-rate"), parsing: .unconditional, help: "Guard: fail and stop (exit 1) when more than this fraction of a second's requests fail, e.g. 0.2.",
            transform: InputArgument.errorRateGuard)
    var abortOnErrorRate: LoadGuard?

    @Option(name: .customLong("abort-on-p99"), help: "Guard: fail and stop (exit 1) when a second's p99 latency exceeds this, e.g. 500ms.",
            transform: InputArgument.p99Guard)
    var abortOnP99: LoadGuard?

    @Option(name: .customLong("threshold"), help: ArgumentHelp(LoadCommand.thresholdHelp, valueName: "threshold"),
            transform: InputArgument.threshold)
    var thresholds: [LoadThreshold] = []

    @Option(name: .customLong("guard-action"), help: .defaulted("What a guard does when it fires (the run fails, exit 1): stop the load, or hold the rate/concurrency where it is.", GuardAction.stop.rawValue),
            completion: .list(GuardAction.allCases.map(\.rawValue)), transform: InputArgument.guardAction)
    var guardAction: GuardAction = .stop

    @Option(parsing: .unconditional, help: .defaulted("Connection churn: reuse, request (a new connection per request), or N (a new one every N requests).", ConnectionChurn.reuse.spelling),
            transform: InputArgument.churn)
    var churn: ConnectionChurn = .reuse

    @Option(name: .customLong("send-tick"), help: "Open model: the send timer's period; arrivals due within one tick leave together (default: adaptive, 200us to 500us, about 16 arrivals a tick per event loop).",
            transform: InputArgument.duration)
    var sendTick: TimeSpan?

    @Option(name: .customLong("coalesce-window"), help: "HTTP/2 write coalescing: while an event loop of the generator is busy (70% or more, two or more connections, four or more other requests in flight on the connection), a connection sends the requests its read bursts free together (fewer, larger writes), holding them at most this long; held requests are timed from their write. Default 500us in the closed model, off in the open model; 0 turns it off.",
            transform: InputArgument.coalesceWindow)
    var coalesceWindow: Double?

    @Option(help: "Seed for Poisson arrivals (reproducible runs).")
    var seed: UInt64?

    @Option(name: [.customShort("H"), .customLong("header")], help: "Request header 'name: value'; repeatable.", transform: InputArgument.header)
    var headers: [HeaderField] = []

    @Option(help: "CSV file (header row first) for {{csv:COLUMN}} placeholders; rows are used in turn.", completion: .file(extensions: ["csv"]))
    var csv: String?

    @Option(help: .defaulted("Request method.", "GET"), transform: InputArgument.method)
    var method: String?

    @Option(help: "Request body; @FILE reads a file.")
    var data: String?

    @Option(help: .defaulted("HTTP version: auto (ALPN; h2c for http://), 2, or 1.1.", HTTPVersionPreference.auto.spelling),
            completion: .list(HTTPVersionPreference.allCases.map(\.spelling)), transform: InputArgument.httpVersion)
    var http: HTTPVersionPreference = .auto

    @OptionGroup(title: "gRPC")
    var grpc: GRPCOptions

    @OptionGroup(title: "Identity")
    var identity: IdentityOptions

    @OptionGroup(title: "SPIFFE Workload API")
    var workloadAPI: WorkloadAPIOptions

    @OptionGroup var serverCheck: ServerCheckOptions

    @Option(help: .defaulted("Per-request timeout.", Self.defaultTimeout), transform: InputArgument.duration)
    var timeout: TimeSpan = Self.defaultTimeout
    static let defaultTimeout = TimeSpan("10s")

    @Option(name: .customLong("identity-header"), help: "Response header naming the workload that served it (e.g. x-served-by).")
    var identityHeader: String?

    @Option(name: .customLong("json"), help: "Write the JSON result to this file.", completion: .file(extensions: ["json"]))
    var jsonFile: String?

    /// Where the JSON result goes: `--json`, or standard output with `-o json`.
    var json: String? { reports.json(jsonFile) }

    @OptionGroup var logs: ResultLogOptions

    @Flag(help: "Print only the summary.")
    var quiet = false

    @OptionGroup(title: "Reports")
    var reports: ReportOptions

    @OptionGroup(title: "Exports of the result")
    var exports: ExportOptions

    @OptionGroup(title: "Sidecar")
    var sidecar: SidecarOptions

    @OptionGroup(title: "Shards (Indexed Job)")
    var shard: ShardOptions

    func validate() throws {
        if urls.isEmpty { throw ValidationError("give at least one target URL") }
        try reports.validate(json: jsonFile)
        if connections < 1 { throw ValidationError("\(FlagSpelling.typed("--connections")) must be at least 1") }
        if streams < 1 { throw ValidationError("\(FlagSpelling.typed("--streams")) must be at least 1") }
        if let requests, requests < 1 { throw ValidationError("\(FlagSpelling.typed("--requests")) must be at least 1") }
        if requests == nil && duration == nil && stages.isEmpty {
            throw ValidationError("give --requests (-n), --duration (-d) or --stage, so the run ends on its own")
        }
    }

    /// With `workloadAPI` the client TLS is left for the Workload API's first SVID (`IdentityRotation`).
    func makeConfiguration(workloadAPI: Bool = false) throws -> LoadConfiguration {
        var targets: [LoadTarget] = []
        for url in urls {
            do { targets.append(try LoadTarget(parsing: url)) } catch { throw CLIError.badInput(error.description) }
        }
        var plan = LoadPlan(targets: targets)
        do { try plan.apply(spec) } catch {
            throw CLIError.badInput("\(Self.flag(error.field)): \(error.message(naming: Self.flag))")
        }
        plan.environment = ProcessInfo.processInfo.environment
        if let csv {
            let data = try readInputFile(csv, limit: .data, flag: "--csv")
            do {
                plan.csv = try CSVTable(parsing: String(decoding: data, as: UTF8.self), source: csv)
            } catch {
                throw CLIError.badInput(error.description)
            }
        }
        plan.method = method ?? "GET"
        plan.identityHeader = identityHeader?.lowercased()
        plan.headers = headers.map { HTTP2HeaderPair($0.name, $0.value) }
        try grpc.apply(to: &plan, data: data, method: method)
        if plan.grpc == nil, let data {
            if data.hasPrefix("@") {
                let path = String(data.dropFirst())
                do { plan.body = try InputFile.read(path, limit: .data) } catch {
                    throw CLIError.badInput("--data '\(data)': \(error.reason)")
                }
            } else {
                plan.body = Array(data.utf8)
            }
        }
        var configuration = LoadConfiguration(plan: plan)
        if workloadAPI {
            try serverCheck.applyMeshALPN(to: &configuration)
            return configuration
        }
        try serverCheck.attachClientTLS(to: &configuration, identity: identity)
        do { try configuration.validate() } catch { throw CLIError.badInput(error.typedDescription) }
        return configuration
    }

    /// The load the flags declare, as a file's `load`, `http` and `guards` sections declare it too.
    var spec: LoadSpec {
        var spec = LoadSpec()
        spec.connections = connections
        spec.streams = streams
        spec.requests = requests
        spec.duration = duration?.seconds
        spec.warmup = warmup?.seconds
        spec.requestTimeout = timeout.seconds
        spec.churn = churn
        spec.rate = rate?.perSecond
        spec.stages = stages
        spec.arrivals = arrivals
        spec.think = think?.seconds
        spec.thinkJitter = thinkJitter?.seconds
        spec.seed = seed
        spec.sendTick = sendTick?.seconds
        spec.coalesceWindow = coalesceWindow
        spec.httpVersion = http
        spec.guards = [abortOnErrorRate, abortOnP99].compactMap { $0 }
        spec.guardAction = guardAction
        spec.thresholds = thresholds
        return spec
    }

    static let thresholdHelp = "Pass/fail gate on the finished run (exit 1 when it does not hold); repeatable: 'p95<250ms', 'p99.9<1s', 'mean<80ms', 'error_rate<0.01' (or 1%), 'rps>=900', and for one identity 'version=v2:p99<300ms' (also workload=, cluster=, identity=). A percentile needs 10 responses beyond it (1000 for p99), else it is undecided (exit 3)."

    /// The flag that sets `field`, as typed.
    static func flag(_ field: LoadSpec.Field) -> String {
        switch field {
        case .connections: return FlagSpelling.typed("--connections")
        case .streams: return FlagSpelling.typed("--streams")
        case .rate: return "--rate"
        case .stages: return "--stage"
        case .arrivals: return "--arrivals"
        case .think: return "--think"
        case .thinkJitter: return "--think-jitter"
        case .sendTick: return "--send-tick"
        }
    }

    func run() async throws {
        try await sidecar.around("load") {
            try reports.check(json: json, logs: logs, exports: exports)
            let endpoint = try workloadAPI.endpoint(identity: identity)
            var configuration = try makeConfiguration(workloadAPI: endpoint != nil)
            let rotation: IdentityRotation?
            if let endpoint {
                try workloadAPI.validateSVIDID()
                rotation = try await IdentityRotation.startWorkloadAPI(endpoint, svidID: workloadAPI.svidID, timeout: workloadAPI.timeout.seconds,
                                                                      name: "--workload-api", identity: identity.spec,
                                                                      configuration: &configuration, peer: serverCheck.peerCheck)
                do throws(LoadPlanError) { try configuration.validate() } catch { throw CLIError.badInput(error.typedDescription) }
            } else {
                rotation = IdentityRotation.watchFiles(identity: identity.spec, configuration: &configuration, peer: serverCheck.peerCheck)
            }
            do { try await resolveGRPCReflection(&configuration, field: "--data") } catch {
                await rotation?.stop()
                throw error
            }
            var plan = try shard.plan()
            if plan != nil {
                plan?.tls = try ShardTLS.make(identity: identity.spec, source: configuration.tlsSource)
                try plan?.split(&configuration, requestsFlag: FlagSpelling.typed("--requests"))
                do throws(LoadPlanError) { try configuration.validate() } catch { throw CLIError.badInput(error.typedDescription) }
            }
            do {
                try await runLoad(configuration, LoadRunOptions(json: json, quiet: quiet, reports: try reports.outputs(exports, logs: logs), command: "load",
                                                                title: urls.joined(separator: " "), viewInputs: urls, shard: plan))
            } catch {
                await rotation?.stop()
                throw error
            }
            await rotation?.stop()
        }
    }
}

/// How a client checks the server it talks to: shared by `load` and `fault`.
struct ServerCheckOptions: ParsableArguments {
    @Option(name: .customLong("expect-peer"), help: "The server's SPIFFE ID (spiffe://td/path) or trust domain (td).",
            transform: InputArgument.peerExpectation)
    var expectPeer: PeerExpectation?

    @Option(help: "TLS server name (SNI) to send instead of the URL host (east-west gateways).")
    var sni: String?

    @Option(name: .customLong("mesh-alpn"), help: ArgumentHelp(
        "Offer this mesh's ALPN: istio (a direct mTLS connection to an Istio sidecar's inbound port needs it).", valueName: "mesh"),
            transform: InputArgument.meshALPN)
    var meshALPN: MeshALPN?

    @Flag(name: [.customShort("k"), .customLong("insecure")], help: "Do not verify the server certificate.")
    var insecure = false

    var peerCheck: IdentityRotation.PeerCheck { .init(expectPeer: expectPeer, insecure: insecure, sni: sni) }

    /// Builds the client TLS context an https run needs with these checks and `identity`.
    func attachClientTLS(to configuration: inout LoadConfiguration, identity: IdentityOptions) throws {
        try applyMeshALPN(to: &configuration)
        try meshprobe.attachClientTLS(to: &configuration, identity: identity.spec, expected: expectPeer, insecure: insecure, sni: sni)
    }

    /// Marks the targets with `--mesh-alpn`.
    func applyMeshALPN(to configuration: inout LoadConfiguration) throws {
        if let meshALPN {
            guard configuration.plan.targets.allSatisfy({ $0.scheme == .https }) else {
                throw CLIError.badInput("--mesh-alpn \(meshALPN.rawValue) needs https:// URLs: it is offered in the TLS handshake")
            }
            for i in configuration.plan.targets.indices { configuration.plan.targets[i].meshALPN = meshALPN }
        }
    }
}

/// Builds the client TLS context an https run needs (ALPN from the HTTP version), or refuses what cannot work.
func attachClientTLS(to configuration: inout LoadConfiguration, identity: TLSIdentitySpec, expected: PeerExpectation?,
                     insecure: Bool, sni: String?) throws {
    if insecure, expected != nil {
        // Without chain verification any server can present any SPIFFE ID: the check would mean nothing.
        throw CLIError.badInput("--expect-peer checks the server's certificate, which -k (insecure) skips: give one or the other")
    }
    let https = configuration.plan.targets.contains(where: { $0.scheme == .https })
    if https { try identity.validateFlags() }
    do {
        try identity.checkClient(https: https, insecure: insecure, expectsPeer: expected != nil, sni: sni != nil)
    } catch {
        throw CLIError.badInput(error.message)
    }
    if https {
        configuration.tls = try identity.makeContext(role: .client, alpn: clientALPN(configuration), expectedPeer: expected,
                                                     verifyPeer: !insecure, serverName: sni)
    }
}

/// The ALPN an https run offers: from the HTTP version, or the mesh's (`--mesh-alpn`).
func clientALPN(_ configuration: LoadConfiguration) -> [String] {
    // One TLS context for the run: every target offers one ALPN (the scenario reader refuses a mix).
    if let mesh = configuration.plan.targets.first(where: { $0.scheme == .https })?.meshALPN {
        return mesh.protocols(for: configuration.plan.httpVersion)
    }
    switch configuration.plan.httpVersion {
    case .auto: return ["h2", "http/1.1"]
    case .http2: return ["h2"]
    case .http1: return ["http/1.1"]
    }
}

/// The TLS context a scenario or policy file's `identity` section describes, checked with the whole configuration;
/// errors name the file.
///
/// Without `readFiles` (`--check`) no file of the identity is read or looked for, and no context is built: they may
/// be secrets mounted only where the run happens. What needs no file is still checked (an https target's trust
/// bundle is named, a plaintext target has no peer to expect).
///
/// With `identity.workloadApi` nothing is built here: the caller waits for the Workload API's first SVID
/// (`IdentityRotation.start`); `controlAPIs` (the run sets faults through workloads' control APIs, over mTLS) lets it
/// serve a plaintext target's run.
func attachClientTLS(to configuration: inout LoadConfiguration, scenarioIdentity id: ScenarioIdentity, file: String,
                     readFiles: Bool = true, controlAPIs: Bool = false) throws {
    let https = configuration.plan.targets.contains { $0.scheme == .https } || (controlAPIs && id.workloadAPI != nil)
    do { try id.check(https: https, file: file, readFiles: readFiles) } catch {
        throw CLIError.badInput(error.description)
    }
    guard readFiles, id.workloadAPI == nil else { return }
    do {
        try attachClientTLS(to: &configuration, identity: id.tls, expected: id.expectPeer,
                            insecure: id.insecure, sni: id.sni)
    } catch let error as CLIError {
        throw CLIError.badInput("\(id.location ?? "\(file): identity"): \(error.message)")
    }
    do { try configuration.validate() } catch { throw CLIError.badInput("\(file): \(error.description)") }
}

/// The client TLS for workloads' control APIs (game days, outlier detection): the file's identity, any server of its
/// trust bundles (the workloads are reached by address, each with its own SPIFFE ID); made from the run's `rotating`
/// source when it has one (the Workload API's, watched SVID files), so that it follows its rotations. Without
/// `readFiles` (`--check`), only what needs no file is checked, and there is no source (nil).
func controlTLS(scenarioIdentity id: ScenarioIdentity, file: String, readFiles: Bool = true,
                rotating: TLSContextSource? = nil) throws -> TLSContextSource? {
    let identity = id.tls
    if identity.cert == nil && identity.svidDir == nil && id.workloadAPI == nil {
        throw CLIError.badInput("\(file): identity: changing faults needs a client SVID that the workloads allow (--control-allow): give identity cert and key, svidDir, or workloadApi")
    }
    do { try id.check(https: true, file: file, readFiles: readFiles) } catch { throw CLIError.badInput(error.description) }
    guard readFiles else { return nil }
    // The control APIs speak HTTP/1.1 (`FaultClient`).
    let alpn = ["http/1.1"]
    if let rotating {
        do {
            return try rotating.derived(source: "control") { try $0.reshaped(role: .client, alpn: alpn, expectedPeer: nil, verifyPeer: !id.insecure) }
        } catch let error as CLIError {
            throw CLIError.badInput("\(file): identity: \(error.message)")
        }
    }
    guard id.workloadAPI == nil else {
        throw CLIError.badInput("\(id.location ?? "\(file): identity").workloadApi: the control APIs are reached with the Workload API's SVID over TLS: give an https target")
    }
    do {
        var configuration = LoadConfiguration(targets: [try LoadTarget(parsing: "https://127.0.0.1/")])
        try attachClientTLS(to: &configuration, identity: identity, expected: nil, insecure: id.insecure, sni: nil)
        guard let tls = configuration.tls else { throw CLIError.badInput("no TLS context") }
        return TLSContextSource(initial: tls, source: "files")
    } catch let error as CLIError {
        throw CLIError.badInput("\(file): identity: \(error.message)")
    }
}

/// Runs a load (`executeLoad`) and ends the command as its outcome says (exit 0, 1 or 3); the engine's refusal of the
/// configuration is bad input naming the flag as typed.
func runLoad(_ configuration: LoadConfiguration, _ options: LoadRunOptions) async throws {
    let outcome: LoadRunOutcome
    do { outcome = try await executeLoad(configuration, options: options) } catch let error as LoadPlanError {
        throw CLIError.badInput(error.typedDescription)
    }
    if let exit = outcome.exit { throw CLIError(message: exit.message, exitCode: exit.code) }
}
