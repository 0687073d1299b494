import Foundation
import MeshprobeChecks
import MeshprobeLab
import MeshprobePolicy
import MeshprobeEcho
import MeshprobeEchoAPI
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeSpec
import MeshprobeTLS
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

// Every file of this target sees the shared test support (processes, ports, binaries, the PKI fixture, waiting).
@_exported import MeshprobeTestSupport

/// The parent of every suite of this target, which run one test at a time: each starts real peers (HAProxy, nginx,
/// nghttpd, curl, openssl, Chromium) or `meshprobe` processes, runs loads against them and judges what they did in
/// time (deadlines, paces, ejections, signals). All at once they would be a hundred processes on a 2-core machine,
/// and a test's own peers would not answer in the time it gives them; one at a time, each has the cores that the
/// unit tests (in parallel beside it, the simulations at the lowest priority) leave.
@Suite(.serialized, .tags(.endToEnd)) enum EndToEnd {}

/// Starts an echo workload on 127.0.0.1 with an ephemeral port.
func startEcho(version: String, tls: TLSContext?, workload: String = "reviews", cluster: String = "test") async throws -> EchoServer {
    var configuration = EchoConfiguration(identity: EchoIdentity(workload: workload, version: version, cluster: cluster,
                                                                 namespace: "lab", pod: "\(workload)-\(version)-0"))
    configuration.port = 0
    configuration.tls = tls
    return try await EchoServer.start(configuration, group: MultiThreadedEventLoopGroup.singleton)
}

extension EchoServer {
    var port: Int { localAddress.port ?? 0 }
}

/// Runs a bounded load and returns the merged result.
func runLoad(_ urls: [String], tls: TLSContext? = nil, requests: Int = 200, connections: Int = 2, streams: Int = 10,
             http: HTTPVersionPreference = .auto, configure: (inout LoadConfiguration) -> Void = { _ in }) async throws -> LoadResult {
    var configuration = LoadConfiguration(targets: try urls.map { try LoadTarget(parsing: $0) })
    configuration.tls = tls
    configuration.plan.requests = requests
    configuration.plan.connections = connections
    configuration.plan.streamsPerConnection = streams
    configuration.plan.httpVersion = http
    configuration.plan.requestTimeout = 5
    configuration.plan.connectTimeout = 2
    configure(&configuration)
    return try await LoadGenerator(configuration: configuration, group: MultiThreadedEventLoopGroup.singleton).run()
}

/// Starts HAProxy on a free port with an h2c frontend and weighted random(1) balancing over `servers`; the caller stops
/// it and removes its directory.
func startHAProxy(_ servers: [(name: String, port: Int, weight: Int)], headerRoute: (header: String, match: ValueMatch, port: Int)? = nil,
                  adminSocket: Bool = false, configure: (inout HAProxyConfig) -> Void = { _ in }) async throws -> (BackgroundProcess, Int, URL) {
    let dir = try haproxyDirectory()
    let (process, port) = try await BackgroundProcess.onFreePort { port in
        var haproxyConfig = HAProxyConfig(frontendPort: port, servers: servers.map { .init($0.name, port: $0.port, weight: $0.weight) },
                                          headerRoute: headerRoute, adminSocket: adminSocket ? dir.appendingPathComponent("admin.sock").path : nil)
        configure(&haproxyConfig)
        return try await startHAProxy(config: haproxyConfig.text, in: dir, waitForPort: port)
    }
    return (process, port, dir)
}

/// A fresh directory for a HAProxy's configuration and files.
func haproxyDirectory() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-haproxy-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

/// The tests' one HAProxy launcher: Debian's HAProxy on `config` (written to `haproxy.cfg` in `dir`), ready once it
/// accepts connections on `port`.
func startHAProxy(config: String, in dir: URL, waitForPort port: Int) async throws -> BackgroundProcess {
    let haproxy = try #require(which("haproxy"), "haproxy is installed by scripts/install-deps")
    let file = dir.appendingPathComponent("haproxy.cfg")
    try config.write(to: file, atomically: true, encoding: .utf8)
    return try await BackgroundProcess(haproxy, ["-f", file.path, "-db"], waitForPort: port)
}

/// Runs `meshprobe verify` with a policy whose `expect` is `expect` (YAML lines, indented under it) against HAProxy
/// configured by `proxy` in front of one echo workload; returns the output and the JSON verdicts.
func verifyThroughHAProxy(expect: String, proxy: (inout HAProxyConfig) -> Void) async throws -> (ProcessOutput, [[String: Any]]) {
    let echo = try await startEcho(version: "v1", tls: nil)
    defer { Task { await echo.close() } }
    return try await verifyThroughHAProxy(servers: [("v1", echo.port, 100)], expect: expect, proxy: proxy)
}

/// Runs `meshprobe verify` with a policy whose `expect` is `expect` against HAProxy configured by `proxy` in front of
/// `servers` (plaintext HTTP/1.1 upstreams), with `manifests` (file name -> YAML) and extra `arguments`; returns the
/// output and the JSON verdicts, checked against the schema.
func verifyThroughHAProxy(servers: [(name: String, port: Int, weight: Int)], policyLines: String = "", expect: String,
                          manifests: [String: String] = [:], arguments: [String] = [],
                          proxy: (inout HAProxyConfig) -> Void) async throws -> (ProcessOutput, [[String: Any]]) {
    let (haproxy, port, dir) = try await startHAProxy(servers, configure: proxy)
    defer { haproxy.stop(); try? FileManager.default.removeItem(at: dir) }
    let policy = dir.appendingPathComponent("policy.yaml")
    try """
        policy: meshprobe.policy/v1
        target: http://127.0.0.1:\(port)/reviews
        \(policyLines)
        expect:
        \(expect)
        """.write(to: policy, atomically: true, encoding: .utf8)
    var files: [String] = []
    for (name, text) in manifests.sorted(by: { $0.key < $1.key }) {
        let url = dir.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        files.append(url.path)
    }
    let json = dir.appendingPathComponent("verdict.json")
    let out = try await run(meshprobeBinary, ["verify", policy.path] + files + ["--json", json.path, "--quiet"] + arguments, timeout: 150)
    let object = FileManager.default.contents(atPath: json.path).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
    if object != nil { #expect(try await ResultSchema.verify.violation(in: json.path) == nil) }
    return (out, object?["verdicts"] as? [[String: Any]] ?? [])
}

/// Echo workloads that allow a prober on their control API, and HAProxy's client certificate to reach them over
/// mTLS, as a sidecar would: the lab of the outlier-detection and game-day tests.
struct ControlLab {
    let pki: LabPKIFixture
    let prober: String
    let proberSVID: (cert: String, key: String)
    let echoSVID: (cert: String, key: String)
    /// HAProxy's `crt`: its certificate and key in one file.
    let haproxyPEM: String

    init() throws {
        pki = try LabPKIFixture()
        prober = pki.id("gameday", ns: "ops")
        proberSVID = try pki.svid("prober", uris: [prober])
        echoSVID = try pki.svid("echo", uris: [pki.id("reviews")])
        let proxy = try pki.svid("haproxy", uris: [pki.id("haproxy")])
        haproxyPEM = try pki.write("haproxy-crt.pem", try String(contentsOfFile: proxy.cert, encoding: .utf8)
                                   + String(contentsOfFile: proxy.key, encoding: .utf8))
    }

    /// An mTLS echo (reviews VERSION) whose control API allows the prober; `log` gets its control log lines.
    func startEcho(version: String, log: @escaping @Sendable (String) -> Void = { _ in }) async throws -> EchoServer {
        var configuration = EchoConfiguration(identity: EchoIdentity(workload: "reviews", version: version, cluster: "test",
                                                                     namespace: "lab", pod: "reviews-\(version)-0"))
        configuration.port = 0
        configuration.tls = try pki.serverTLS(echoSVID)
        configuration.controlAllowList = [try SPIFFEID(parsing: prober)]
        configuration.log = log
        return try await EchoServer.start(configuration, group: MultiThreadedEventLoopGroup.singleton)
    }

    /// The prober's client TLS for control APIs.
    func controlTLS() throws -> TLSContext { try pki.clientTLS(proberSVID, expect: nil) }

    /// The faults active on these echoes.
    func faults(on echoes: [EchoServer]) async throws -> [FaultControlJSON.Fault] {
        var all: [FaultControlJSON.Fault] = []
        for echo in echoes {
            all += try await FaultClient(url: "https://127.0.0.1:\(echo.port)", tls: try controlTLS()).list(group: MultiThreadedEventLoopGroup.singleton)
        }
        return all
    }
}
