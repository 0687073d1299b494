import ArgumentParser
import Foundation
import MeshprobeSpec
import NIOConcurrencyHelpers
import MeshprobeChecks
import MeshprobeEcho
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeLab
import MeshprobePolicy
import MeshprobeReport
import MeshprobeRunner
import MeshprobeTLS
import NIOCore
import NIOPosix

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Runs the main job on an embedded default: a throwaway CA, two echo workloads, an mTLS load, a verdict.",
        discussion: """
            Everything runs in this process on 127.0.0.1: a CA for trust domain demo.meshprobe.local, SVIDs for \
            reviews v1 and v2 and for the prober (productpage), two mTLS echo workloads, then a load over HTTP/2 \
            that verifies every server's SPIFFE ID. Exit 0 when every check holds.
            """
    )

    @Option(name: [.customShort("n"), .customLong("requests")], help: "Requests to send.")
    var requests: Int = 4000

    @Option(name: [.short, .customLong("connections")], help: "Connections (spread over both workloads).")
    var connections: Int = 4

    @Option(name: [.customShort("m"), .customLong("streams")], help: "Streams per connection.")
    var streams: Int = 10

    @Option(help: "Write the JSON result to this file.")
    var json: String?

    @Option(help: "Keep the demo's certificates in this directory (default: a temporary directory, removed).")
    var keep: String?

    @Flag(name: .customLong("no-canary"), help: "Skip the canary split behind HAProxy.")
    var noCanary = false

    @OptionGroup var reports: ReportOptions

    static let trustDomain = "demo.meshprobe.local"

    /// The installed HAProxy (Debian's), if any.
    static var haproxy: String? { HAProxyLauncher.executable }

    /// A free port on 127.0.0.1 for a proxy's frontend (bound and released).
    static func freePort(group: any EventLoopGroup) async throws -> Int {
        let probe = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let port = probe.localAddress?.port ?? 0
        try await probe.close()
        return port
    }

    /// The proxies the demo started: a signal kills them before the demo exits (nothing left behind).
    static let children = NIOLockedValueBox<Set<Int32>>([])

    static func startHAProxy(_ haproxy: String, config: String, port: Int, group: any EventLoopGroup) async throws -> Process? {
        try await HAProxyLauncher.start(haproxy, config: config, port: port, group: group) { pid in
            _ = Self.children.withLockedValue { $0.insert(pid) }
        }
    }

    /// A short circuit-breaker step: HAProxy admits 10 requests at once to an echo workload (per-server maxconn,
    /// 20 ms queue timeout); the connection-pool procedure checks a declared limit of 10.
    func runCircuitBreaker(dir: String, haproxy: String, group: any EventLoopGroup) async throws -> (String, Bool, RunReport.Section?) {
        var echoConfiguration = EchoConfiguration(identity: EchoIdentity(workload: "ratings", version: "v1", cluster: "demo",
                                                                         namespace: "bookinfo", pod: "ratings-v1-0"))
        echoConfiguration.port = 0
        let echo = try await EchoServer.start(echoConfiguration, group: group)
        defer { Task { await echo.close() } }
        let port = try await Self.freePort(group: group)
        var config = HAProxyConfig(frontendPort: port, servers: [.init("ratings", port: echo.localAddress.port ?? 0, weight: 100)])
        config.serverMaxConn = 10
        config.queueTimeout = 0.02
        try writeFiles("\(dir)/breaker", [("haproxy.cfg", config.text, false)])
        guard let process = try await Self.startHAProxy(haproxy, config: "\(dir)/breaker/haproxy.cfg", port: port, group: group) else {
            return ("the circuit-breaker proxy (HAProxy) started", false, nil)
        }
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        printLine("5. circuit breaker: HAProxy on 127.0.0.1:\(port) admits 10 requests at once to ratings; checking a declared limit of 10")
        let started = Date()
        var expectation = CircuitBreakerExpectation(maxRequests: 10, maxPending: 1, source: "demo")
        expectation.requestsPerPhase = 150
        var load = LoadConfiguration(targets: [try LoadTarget(parsing: "http://127.0.0.1:\(port)/ratings")])
        load.plan.requestTimeout = 5
        let outcome = try await CircuitBreakerCheck.run(expectation, configuration: load, group: group)
        for check in outcome.checks {
            printLine("   \(check.passed ? "PASS" : "FAIL")  \(check.name)" + (check.reason.map { ": \($0)" } ?? ""))
        }
        let overflow = outcome.above.overflow
        var report = VerifyReport(file: "demo")
        report.add(outcome)
        let seconds = Date().timeIntervalSince(started)
        let section = RunReport.Section(name: "circuit breaker (HAProxy maxconn 10)", seconds: seconds,
                                        checks: report.checks(seconds: Array(repeating: seconds, count: report.verdicts.count)))
        return ("circuit breaker at 10 as declared (\(overflow) overflow replies above the limit, upstream peak \(outcome.below.result.upstreamPeakInFlight)/10 in flight)",
                outcome.checks.allSatisfy(\.passed), section)
    }

    /// Verifies a declared 90/10 split behind HAProxy weighted 90/10: in `mode http` (per-request routing) over two
    /// h2c echo workloads it starts, or (`l4`: the mTLS workloads to balance) in `mode tcp`, an L4 balancer that
    /// routes per connection, with TLS end to end. nil when HAProxy is not installed.
    func runCanary(dir: String, group: any EventLoopGroup, l4 tlsWorkloads: [EchoServer]? = nil,
                   tls: TLSContext? = nil) async throws -> (String, Bool, RunReport.Section?)? {
        guard let haproxy = Self.haproxy else { return nil }
        var echoes: [EchoServer] = []
        if tlsWorkloads == nil {
            for version in ["v1", "v2"] {
                var echo = EchoConfiguration(identity: EchoIdentity(workload: "reviews", version: version, cluster: "demo",
                                                                     namespace: "bookinfo", pod: "reviews-\(version)-canary"))
                echo.port = 0
                echoes.append(try await EchoServer.start(echo, group: group))
            }
        }
        defer { for e in echoes { Task { await e.close() } } }
        let workloads = tlsWorkloads ?? echoes
        let layer4 = tlsWorkloads != nil
        let port = try await Self.freePort(group: group)
        var config = HAProxyConfig(frontendPort: port, servers: [
            .init("v1", port: workloads[0].localAddress.port ?? 0, weight: 90),
            .init("v2", port: workloads[1].localAddress.port ?? 0, weight: 10),
        ])
        config.layer4 = layer4
        let name = layer4 ? "canary-l4" : "canary"
        let target = layer4 ? "https://127.0.0.1:\(port)/reviews" : "http://127.0.0.1:\(port)/reviews"
        let identity = layer4
            ? "identity: {cert: \(dir)/productpage/cert-chain.pem, key: \(dir)/productpage/key.pem, ca: \(dir)/productpage/root-cert.pem, "
                + "expectPeer: \"spiffe://\(Self.trustDomain)/ns/bookinfo/sa/reviews\"}"
            : ""
        try writeFiles("\(dir)/\(name)", [("haproxy.cfg", config.text, false), ("policy.yaml", """
            policy: meshprobe.policy/v1
            name: reviews canary 90/10
            target: \(target)
            \(identity)
            load: {connections: 4, streams: 10}
            expect:
              recognise: version
              split: {v1: 90, v2: 10}
              tolerance: 0.05
              falseFailRate: 0.001
              missRate: 0.01
              maxRequests: 20000

            """, false)])
        guard let process = try await Self.startHAProxy(haproxy, config: "\(dir)/\(name)/haproxy.cfg", port: port, group: group) else {
            return ("the canary proxy (HAProxy) started", false, nil)
        }
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        if layer4 {
            printLine("4b. canary behind an L4 balancer: HAProxy mode tcp on 127.0.0.1:\(port) sends each connection to reviews v1 or v2 "
                + "(90/10, mTLS end to end); verifying a declared 90/10 split by connection")
        } else {
            printLine("4. canary: HAProxy on 127.0.0.1:\(port) splits requests 90/10 over reviews v1 and v2; verifying a declared 90/10 split")
        }
        let policy: Policy
        do { policy = try Policy.load(path: "\(dir)/\(name)/policy.yaml", environment: [:]) } catch {
            return ("the canary policy was read (\(error))", false, nil)
        }
        let started = Date()
        // The policy's identity names the files; the context built from them for step 3 is the same.
        var configuration = LoadConfiguration(plan: policy.scenario.plan)
        configuration.tls = tls
        let outcomes = try await PolicyVerification.run(policy, configuration: configuration, group: group)
        let report = VerifyReport(policy: policy, outcomes: outcomes)
        printLine(report.verdictText.split(separator: "\n").map { "   " + $0 }.joined(separator: "\n") + "\n")
        let evidence = report.verdicts[0].evidence
        let title = layer4 ? "canary 90/10 behind an L4 balancer (HAProxy mode tcp)" : "canary 90/10 behind HAProxy"
        let view = report.runReport(outcomes: outcomes, configuration: LoadConfiguration(plan: policy.scenario.plan), inputs: [], title: title,
                                    seconds: outcomes.map { $0.result.elapsedSeconds }, startedAt: started)
        let connections = evidence.sampling?.connections ?? 0
        let mixed = evidence.sampling.map { "\($0.mixedConnections) of \($0.pairedConnections)" } ?? "?"
        return (layer4
                ? "canary split 90/10 as declared behind an L4 balancer (\(evidence.requests) responses on \(connections) connections; \(mixed) connections saw both versions: routed per connection)"
                : "canary split 90/10 as declared (\(evidence.requests) responses on \(connections) connections; \(mixed) connections saw both versions: routed per request; false-fail <= 0.001, miss <= 0.01)",
                report.passed, view.sections.first)
    }

    func run() async throws {
        for (flag, value) in [("--requests", requests), ("--connections", connections), ("--streams", streams)] where value < 1 {
            throw CLIError.badInput("\(FlagSpelling.typed(flag)) \(value): must be at least 1")
        }
        try reports.check(json: json)
        let demoStarted = Date()
        let fm = FileManager.default
        let dir = keep ?? (NSTemporaryDirectory() + "meshprobe-demo-\(ProcessInfo.processInfo.processIdentifier)")
        defer { if keep == nil { try? fm.removeItem(atPath: dir) } }
        // A signal leaves nothing behind: the proxies the demo started and its throwaway keys go with it.
        let temporary = keep == nil ? dir : nil
        let signals = SignalStopper {
            for pid in Self.children.withLockedValue({ $0 }) { kill(pid, SIGKILL) }
            if let temporary { try? FileManager.default.removeItem(atPath: temporary) }
            printError("meshprobe demo: aborted by a signal")
            // `_exit`: the demo's work goes on on other threads; exit's handlers would tear down what it is using.
            fflush(nil)
            _exit(3)
        }
        defer { signals.cancel() }

        // 1. A throwaway CA and SVIDs.
        let ca: IssuedCertificate
        var svids: [String: IssuedCertificate] = [:]
        do {
            ca = try LabPKI.makeCA(trustDomain: Self.trustDomain, validFor: 86400)
            for sa in ["reviews", "productpage"] {
                svids[sa] = try LabPKI.issue(by: ca, uriSANs: ["spiffe://\(Self.trustDomain)/ns/bookinfo/sa/\(sa)"],
                                             dnsNames: ["\(sa).bookinfo.svc.cluster.local"])
            }
        } catch {
            throw CLIError(message: "could not create the demo PKI: \(error.message)", exitCode: 2)
        }
        for (sa, svid) in svids {
            try writeFiles("\(dir)/\(sa)", [("cert-chain.pem", svid.certificatePEM, false), ("key.pem", svid.privateKeyPEM, true),
                                           ("root-cert.pem", ca.certificatePEM, false)])
        }
        printLine("1. CA for spiffe://\(Self.trustDomain) and SVIDs in \(dir)")

        // 2. Two echo workloads, mTLS required.
        let group = MultiThreadedEventLoopGroup.singleton
        var servers: [EchoServer] = []
        for version in ["v1", "v2"] {
            var tls = TLSConfiguration(role: .server)
            tls.certificateChainFile = "\(dir)/reviews/cert-chain.pem"
            tls.privateKeyFile = "\(dir)/reviews/key.pem"
            tls.requireClientCertificate = true
            tls.applicationProtocols = ["h2", "http/1.1"]
            var echo = EchoConfiguration(identity: EchoIdentity(workload: "reviews", version: version, cluster: "demo",
                                                                 namespace: "bookinfo", pod: "reviews-\(version)-demo"))
            echo.host = "127.0.0.1"
            echo.port = 0
            do {
                try tls.trustBundles.add(pemFile: "\(dir)/reviews/root-cert.pem", trustDomain: Self.trustDomain)
                echo.tls = try TLSContext(configuration: tls)
                servers.append(try await EchoServer.start(echo, group: group))
            } catch {
                throw CLIError(message: "could not start the echo workload reviews-\(version): \(error)", exitCode: 2)
            }
            printLine("2. echo workload reviews \(version) on https://\(servers.last!.localAddress.text) (mTLS)")
        }
        defer { for server in servers { Task { await server.close() } } }

        // 3. mTLS load over HTTP/2 against both, verifying the servers' SPIFFE IDs.
        let urls = servers.map { "https://127.0.0.1:\($0.localAddress.port ?? 0)/reviews" }
        var load = LoadConfiguration(targets: try urls.map { try LoadTarget(parsing: $0) })
        load.plan.connections = max(connections, 2)
        load.plan.streamsPerConnection = streams
        load.plan.requests = requests
        load.plan.httpVersion = .http2
        var client = TLSConfiguration(role: .client)
        client.certificateChainFile = "\(dir)/productpage/cert-chain.pem"
        client.privateKeyFile = "\(dir)/productpage/key.pem"
        client.applicationProtocols = ["h2"]
        let expectedServer = try SPIFFEID(parsing: "spiffe://\(Self.trustDomain)/ns/bookinfo/sa/reviews")
        let prober = "spiffe://\(Self.trustDomain)/ns/bookinfo/sa/productpage"
        client.expectedPeer = .spiffeID(expectedServer)
        do {
            try client.trustBundles.add(pemFile: "\(dir)/productpage/root-cert.pem", trustDomain: Self.trustDomain)
            load.tls = try TLSContext(configuration: client)
        } catch {
            throw CLIError(message: "could not set up the prober's TLS: \(error)", exitCode: 2)
        }
        printLine("3. load: \(load.plan.requests ?? 0) requests, c=\(load.plan.connections) m=\(streams), HTTP/2 over mTLS as \(prober), expecting \(expectedServer)\n")
        let started = Date()
        let generator = LoadGenerator(configuration: load, group: group)
        let result = try await generator.run()
        let report = LoadReport(result: result, configuration: load, commandLine: CommandLine.arguments, startedAt: started,
                                version: Meshprobe.version)
        printLine(TerminalSummary(style: stdoutStyle()).render(report))
        if let json { try writeResult(report.jsonData(), to: json) }

        // 4. A canary behind a real proxy: HAProxy splits 90/10 over two more echo workloads; verify the split.
        var canaryCheck: (String, Bool, RunReport.Section?)?
        if noCanary {
            printLine("4. canary: skipped (--no-canary)")
        } else if let canary = try await runCanary(dir: dir, group: group) {
            canaryCheck = canary
        } else {
            printLine("4. canary: skipped: haproxy is not installed (scripts/install-deps installs it)")
        }
        // 4b. The same canary behind an L4 balancer (per-connection routing), with the mTLS workloads of step 2.
        var l4Check: (String, Bool, RunReport.Section?)?
        if !noCanary, let canary = try await runCanary(dir: dir, group: group, l4: servers, tls: load.tls) { l4Check = canary }

        // 5. A circuit breaker behind a real proxy.
        var breakerCheck: (String, Bool, RunReport.Section?)?
        if !noCanary, let haproxy = Self.haproxy {
            breakerCheck = try await runCircuitBreaker(dir: dir, haproxy: haproxy, group: group)
        }

        // 6. The verdict.
        var checks: [(String, Bool)] = []
        checks.append(("every request succeeded (\(result.succeeded)/\(requests))", result.succeeded == requests))
        let versions = Set(result.identities.keys.map(\.version).filter { !$0.isEmpty })
        checks.append(("both workloads answered (\(versions.sorted().joined(separator: ", ")))", versions == ["v1", "v2"]))
        let peersOK = result.peerIdentities.keys.allSatisfy { $0 == expectedServer.description } && !result.peerIdentities.isEmpty
        checks.append(("every server presented \(expectedServer)", peersOK))
        let callerCount = result.callersSeen[prober, default: 0]
        checks.append(("mTLS in effect: the workloads saw caller \(prober) on \(callerCount)/\(result.responses) responses",
                       callerCount == result.responses && callerCount > 0))
        let loadChecks = checks.map { RunReport.Check(kind: "demo", name: $0.0, status: $0.1 ? .passed : .failed,
                                                      summary: $0.1 ? "held" : "did not hold",
                                                      seconds: result.elapsedSeconds) }
        if let canaryCheck { checks.append((canaryCheck.0, canaryCheck.1)) }
        if let l4Check { checks.append((l4Check.0, l4Check.1)) }
        if let breakerCheck { checks.append((breakerCheck.0, breakerCheck.1)) }
        printLine("verdict")
        for (text, ok) in checks { printLine("  \(ok ? "PASS" : "FAIL")  \(text)") }
        let passed = checks.allSatisfy(\.1)
        printLine(passed ? "PASS: the demo mesh behaves as declared" : "FAIL: see the checks above")
        var sections = [RunReport.Section(name: "mTLS load over HTTP/2", seconds: result.elapsedSeconds, checks: loadChecks,
                                          loads: [RunReport.Load(name: "reviews v1 and v2 over mTLS", report: report,
                                                                 distribution: RunReport.Load.distribution(result.latency))])]
        sections += [canaryCheck?.2, l4Check?.2, breakerCheck?.2].compactMap { $0 }
        try reports.write(RunReport(command: "demo", title: "an mTLS mesh on 127.0.0.1", inputs: [],
                                    version: Meshprobe.version, commandLine: CommandLine.arguments, startedAt: demoStarted,
                                    seconds: Date().timeIntervalSince(demoStarted), sections: sections))
        for server in servers { await server.close() }
        servers.removeAll()
        if !passed { throw CLIError(message: "demo verdict: FAIL", exitCode: 1) }
    }
}
