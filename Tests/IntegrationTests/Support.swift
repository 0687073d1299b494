import Foundation
import MeshprobeLab
import MeshprobePolicy
import MeshprobeEcho
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeTLS
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// A temporary directory with a lab CA and SVIDs, removed at deinit.
final class LabPKIFixture: @unchecked Sendable {  // @unchecked: immutable after init; tests only read it.
    let directory: URL
    let trustDomain: String
    let ca: IssuedCertificate

    init(trustDomain: String = "lab.meshprobe.test") throws {
        self.trustDomain = trustDomain
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        ca = try LabPKI.makeCA(trustDomain: trustDomain)
        try write("ca.pem", ca.certificatePEM)
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    func id(_ sa: String, ns: String = "lab") -> String { "spiffe://\(trustDomain)/ns/\(ns)/sa/\(sa)" }

    var caFile: String { directory.appendingPathComponent("ca.pem").path }

    @discardableResult
    func write(_ name: String, _ contents: String) throws -> String {
        let url = directory.appendingPathComponent(name)
        try contents.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    /// Issues an SVID and writes `name.pem` and `name-key.pem`; returns (cert, key) paths.
    func svid(_ name: String, uris: [String], dns: [String] = [], notBefore: Date = Date() - 300,
              notAfter: Date = Date() + 3600, isCA: Bool = false, keyUsage: String? = nil,
              by issuer: IssuedCertificate? = nil) throws -> (cert: String, key: String) {
        let cert = try LabPKI.issue(by: issuer ?? ca, uriSANs: uris, dnsNames: dns, notBefore: notBefore, notAfter: notAfter,
                                    isCA: isCA, keyUsage: keyUsage)
        return (try write("\(name).pem", cert.certificatePEM), try write("\(name)-key.pem", cert.privateKeyPEM))
    }

    func serverTLS(_ svid: (cert: String, key: String), requireClientCert: Bool = true,
                   alpn: [String] = ["h2", "http/1.1"], loosening: TLSLoosening = TLSLoosening()) throws -> TLSContext {
        var configuration = TLSConfiguration(role: .server)
        configuration.loosening = loosening
        configuration.certificateChainFile = svid.cert
        configuration.privateKeyFile = svid.key
        configuration.applicationProtocols = alpn
        configuration.requireClientCertificate = requireClientCert
        configuration.verifyPeer = requireClientCert
        if requireClientCert { try configuration.trustBundles.add(pemFile: caFile, trustDomain: trustDomain) }
        return try TLSContext(configuration: configuration)
    }

    func clientTLS(_ svid: (cert: String, key: String)?, expect: PeerExpectation?, alpn: [String] = ["h2", "http/1.1"],
                   bundle: String? = nil, trustDomain: String? = nil, loosening: TLSLoosening = TLSLoosening()) throws -> TLSContext {
        var configuration = TLSConfiguration(role: .client)
        configuration.loosening = loosening
        configuration.certificateChainFile = svid?.cert
        configuration.privateKeyFile = svid?.key
        configuration.applicationProtocols = alpn
        configuration.expectedPeer = expect
        try configuration.trustBundles.add(pemFile: bundle ?? caFile, trustDomain: trustDomain)
        return try TLSContext(configuration: configuration)
    }
}

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
    configuration.requests = requests
    configuration.connections = connections
    configuration.streamsPerConnection = streams
    configuration.httpVersion = http
    configuration.requestTimeout = 5
    configuration.connectTimeout = 2
    configure(&configuration)
    return try await LoadGenerator(configuration: configuration, group: MultiThreadedEventLoopGroup.singleton).run()
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests that start a peer right away).
func freePort() throws -> Int {
    let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .bind(host: "127.0.0.1", port: 0).wait()
    let port = channel.localAddress?.port ?? 0
    try channel.close().wait()
    return port
}

/// Output of a finished process.
struct ProcessOutput {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a program to completion, killing it after `timeout` seconds.
/// Runs a process to its end off Swift's cooperative pool: the waiting happens on a Dispatch thread, so tests that run
/// processes do not tie up the two-thread test pool that other tests' loads, timers and coordinators need (with
/// blocking waits, a check's coordinator was measured starting 11 s late in the full suite).
func run(_ executable: String, _ arguments: [String], timeout: Double = 60, environment: [String: String]? = nil) async throws -> ProcessOutput {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            continuation.resume(with: Result { try runBlocking(executable, arguments, timeout: timeout, environment: environment) })
        }
    }
}

/// Runs a process to its end, blocking the calling thread.
func runBlocking(_ executable: String, _ arguments: [String], timeout: Double = 60, environment: [String: String]? = nil) throws -> ProcessOutput {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let killer = DispatchWorkItem { if process.isRunning { process.terminate() } }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
    // Read before waiting so a chatty child cannot block on a full pipe.
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    killer.cancel()
    return ProcessOutput(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
}

/// A long-running peer (nghttpd, nginx, an echo process) stopped at deinit.
final class BackgroundProcess: @unchecked Sendable {  // @unchecked: Process is used from the test's task only.
    let process = Process()
    let log: URL

    init(_ executable: String, _ arguments: [String], waitForPort port: Int, timeout: Double = 10,
         environment: [String: String]? = nil) throws {
        log = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-peer-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date() + timeout
        while Date() < deadline {
            if !process.isRunning { break }
            if (try? ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port).wait())
                .map({ try? $0.close().wait(); return true }) == true {
                return
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        stop()
        throw PeerError(message: "\(executable) did not start listening on \(port): \(output)")
    }

    /// SIGTERM, then SIGKILL after 2 s: a child may inherit a signal mask that blocks SIGTERM (nginx does).
    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        for _ in 0..<40 where process.isRunning { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        for _ in 0..<100 where process.isRunning { Thread.sleep(forTimeInterval: 0.02) }
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: log)
    }
}

struct PeerError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// The meshprobe binary built next to the tests.
var meshprobeBinary: String {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    for config in ["debug", "release"] {
        let path = root.appendingPathComponent(".build/\(config)/meshprobe").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return root.appendingPathComponent(".build/debug/meshprobe").path
}

func which(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"]?.split(separator: ":").map(String.init) ?? []
    for dir in path + ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin", "/sbin"] {
        let path = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return nil
}

/// Starts HAProxy on a free port with an h2c frontend and weighted random(1) balancing over `servers`.
func startHAProxy(_ servers: [(name: String, port: Int, weight: Int)], headerRoute: (header: String, match: ValueMatch, port: Int)? = nil,
                  adminSocket: Bool = false, configure: (inout HAProxyConfig) -> Void = { _ in }) throws -> (BackgroundProcess, Int, URL) {
    let haproxy = try #require(which("haproxy"), "haproxy is installed by scripts/install-deps")
    let port = try freePort()
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-haproxy-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let config = dir.appendingPathComponent("haproxy.cfg")
    var haproxyConfig = HAProxyConfig(frontendPort: port, servers: servers.map { .init($0.name, port: $0.port, weight: $0.weight) },
                                      headerRoute: headerRoute, adminSocket: adminSocket ? dir.appendingPathComponent("admin.sock").path : nil)
    configure(&haproxyConfig)
    try haproxyConfig.text.write(to: config, atomically: true, encoding: .utf8)
    let process = try BackgroundProcess(haproxy, ["-f", config.path, "-db"], waitForPort: port)
    return (process, port, dir)
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
    let (haproxy, port, dir) = try startHAProxy(servers, configure: proxy)
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

/// A child process that the test signals; output goes to files so a chatty child never blocks, and its exit time is
/// noted.
final class SignalledProcess: @unchecked Sendable {  // @unchecked: the Process is used from the test's task only.
    private let process = Process()
    private let out: URL
    private let err: URL
    private let exitedAt = NIOLockedValueBox<Date?>(nil)

    init(_ executable: String, _ arguments: [String]) throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-signalled-\(UUID().uuidString)")
        out = base.appendingPathExtension("out")
        err = base.appendingPathExtension("err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        process.standardInput = FileHandle.nullDevice
        process.terminationHandler = { [exitedAt] _ in exitedAt.withLockedValue { $0 = Date() } }
        try process.run()
    }

    /// Polls `condition` every 10 ms while the process runs, for at most `timeout` seconds; whether it held.
    func wait(upTo timeout: Double = 20, until condition: () throws -> Bool) async throws -> Bool {
        let deadline = Date() + timeout
        while try !condition() && process.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(10)) }
        return try condition()
    }

    /// What it has written to stderr so far.
    var stderr: String { (try? String(contentsOf: err, encoding: .utf8)) ?? "" }

    /// Sends `sig`, then waits up to `timeout` seconds for the exit (SIGKILL after that): the seconds from the signal
    /// to the exit, and the output.
    func signal(_ sig: Int32, timeout: Double = 15) async throws -> (seconds: Double, output: ProcessOutput) {
        let signalled = Date()
        kill(process.processIdentifier, sig)
        while process.isRunning && Date().timeIntervalSince(signalled) < timeout { try await Task.sleep(for: .milliseconds(5)) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        let seconds = (exitedAt.withLockedValue { $0 } ?? Date()).timeIntervalSince(signalled)
        defer {
            try? FileManager.default.removeItem(at: out)
            try? FileManager.default.removeItem(at: err)
        }
        return (seconds, ProcessOutput(status: process.terminationStatus, stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
                                       stderr: stderr))
    }

    /// SIGTERM, then waits up to `timeout` seconds for the exit; SIGKILL after that.
    func terminate(timeout: Double = 15) async throws -> ProcessOutput { try await signal(SIGTERM, timeout: timeout).output }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}
