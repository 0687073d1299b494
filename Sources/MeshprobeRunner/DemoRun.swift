import Foundation
import MeshprobeChecks
import MeshprobeEcho
import MeshprobeEchoAPI
import MeshprobeIdentity
import MeshprobeLab
import MeshprobeLoad
import MeshprobePolicy
import MeshprobeReport
import MeshprobeSpec
import MeshprobeTLS
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// What a demo (`demo`) is asked for.
package struct DemoRunOptions: Sendable {
    /// Requests of the mTLS load (step 3).
    package var requests: Int
    /// Connections of the mTLS load, spread over both workloads (at least 2 are used).
    package var connections: Int
    package var streams: Int
    /// Where the certificates and the proxies' configurations are written. The caller chooses it and removes it (or
    /// keeps it), and a signal handler may remove it while the demo runs.
    package var directory: String
    /// The load's JSON result, written as soon as the load has ended.
    package var json: String?
    /// Skips the steps behind HAProxy (the canaries and the circuit breaker).
    package var noCanary: Bool

    package init(requests: Int, connections: Int, streams: Int, directory: String, json: String? = nil, noCanary: Bool) {
        self.requests = requests
        self.connections = connections
        self.streams = streams
        self.directory = directory
        self.json = json
        self.noCanary = noCanary
    }
}

/// How a demo ended: its verdict's checks in order, the mTLS load's result, and the sections of its run report.
package struct DemoOutcome: Sendable {
    /// One line of the verdict.
    package struct Check: Equatable, Sendable {
        package var text: String
        package var passed: Bool
        /// False when the check could not decide (a machine too busy to time a circuit breaker): never shown as a FAIL.
        package var decided = true

        /// PASS, FAIL or UNDECIDED.
        package var word: String { passed ? "PASS" : decided ? "FAIL" : "UNDECIDED" }
    }

    package var checks: [Check]
    /// The mTLS load of step 3 (what `--json` holds).
    package var load: LoadReport
    package var sections: [RunReport.Section]

    /// The demo passes when every check holds.
    package var passed: Bool { checks.allSatisfy(\.passed) }
    /// A check failed (exit 1); else, when one could not decide, the demo has no verdict (exit 3).
    package var failed: Bool { checks.contains { $0.decided && !$0.passed } }
}

package enum Demo {
    package static let trustDomain = "demo.meshprobe.local"

    /// The proxies the demo started, by process id: a signal handler kills them before the process exits, so that
    /// nothing is left behind.
    package static let children = NIOLockedValueBox<Set<Int32>>([])
}

/// Runs the demo's steps on 127.0.0.1, printing each as it starts and the verdict at the end (through `print`): a
/// throwaway CA and SVIDs (1), two mTLS echo workloads (2), an mTLS load over HTTP/2 verifying the servers' SPIFFE IDs
/// (3), a 90/10 canary behind HAProxy in `mode http` (4) and in `mode tcp` (4b), a circuit breaker behind HAProxy (5),
/// who may call whom against an echo with an allow list (6), the verdict (7). The steps behind HAProxy run only when it is installed and `noCanary` is false. Writing the
/// reports and the exit code are the caller's; what cannot be set up is thrown (`ExitError`, exit 2).
package func executeDemo(_ options: DemoRunOptions,
                         print: @escaping @Sendable (TerminalText) -> Void = { printLine($0) }) async throws -> DemoOutcome {
    try await DemoSteps(options: options, group: MultiThreadedEventLoopGroup.singleton, print: print).run()
}

/// The demo's steps, sharing its options, event loops and output.
private struct DemoSteps {
    let options: DemoRunOptions
    let group: any EventLoopGroup
    let print: @Sendable (TerminalText) -> Void

    typealias Step = (text: String, passed: Bool, decided: Bool, section: RunReport.Section?)

    var dir: String { options.directory }

    func say(_ text: String) { print(TerminalText(text)) }

    /// The installed HAProxy (Debian's), if any.
    static var haproxy: String? { HAProxyLauncher.executable }

    /// A free port on 127.0.0.1 for a proxy's frontend (bound and released).
    func freePort() async throws -> Int {
        let probe = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let port = probe.localAddress?.port ?? 0
        try await probe.close()
        return port
    }

    /// Starts a proxy whose process id is in `Demo.children` from the moment it exists.
    func startHAProxy(_ haproxy: String, config: String, port: Int) async throws -> Process? {
        try await HAProxyLauncher.start(haproxy, config: config, port: port, group: group) { pid in
            _ = Demo.children.withLockedValue { $0.insert(pid) }
        }
    }

    func run() async throws -> DemoOutcome {
        let trustDomain = Demo.trustDomain
        // 1. A throwaway CA and SVIDs.
        let ca: IssuedCertificate
        var svids: [String: IssuedCertificate] = [:]
        do {
            ca = try LabPKI.makeCA(trustDomain: trustDomain, validFor: 86400)
            for sa in ["reviews", "productpage", "ratings"] {
                svids[sa] = try LabPKI.issue(by: ca, uriSANs: ["spiffe://\(trustDomain)/ns/bookinfo/sa/\(sa)"],
                                             dnsNames: ["\(sa).bookinfo.svc.cluster.local"])
            }
        } catch {
            throw ExitError(message: "could not create the demo PKI: \(error.message)", exitCode: 2)
        }
        for (sa, svid) in svids {
            try writeFiles("\(dir)/\(sa)", [("cert-chain.pem", svid.certificatePEM, false), ("key.pem", svid.privateKeyPEM, true),
                                           ("root-cert.pem", ca.certificatePEM, false)])
        }
        say("1. CA for spiffe://\(trustDomain) and SVIDs in \(dir)")

        // 2. Two echo workloads, mTLS required.
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
                try tls.trustBundles.add(pemFile: "\(dir)/reviews/root-cert.pem", trustDomain: trustDomain)
                echo.tls = try TLSContext(configuration: tls)
                servers.append(try await EchoServer.start(echo, group: group))
            } catch {
                throw ExitError(message: "could not start the echo workload reviews-\(version): \(error)", exitCode: 2)
            }
            say("2. echo workload reviews \(version) on https://\(servers.last!.localAddress.text) (mTLS)")
        }
        defer { for server in servers { Task { await server.close() } } }

        // 3. mTLS load over HTTP/2 against both, verifying the servers' SPIFFE IDs.
        let urls = servers.map { "https://127.0.0.1:\($0.localAddress.port ?? 0)/reviews" }
        var load = LoadConfiguration(targets: try urls.map { try LoadTarget(parsing: $0) })
        load.plan.connections = max(options.connections, 2)
        load.plan.streamsPerConnection = options.streams
        load.plan.requests = options.requests
        load.plan.httpVersion = .http2
        var client = TLSConfiguration(role: .client)
        client.certificateChainFile = "\(dir)/productpage/cert-chain.pem"
        client.privateKeyFile = "\(dir)/productpage/key.pem"
        client.applicationProtocols = ["h2"]
        let expectedServer = try SPIFFEID(parsing: "spiffe://\(trustDomain)/ns/bookinfo/sa/reviews")
        let prober = "spiffe://\(trustDomain)/ns/bookinfo/sa/productpage"
        client.expectedPeer = .spiffeID(expectedServer)
        do {
            try client.trustBundles.add(pemFile: "\(dir)/productpage/root-cert.pem", trustDomain: trustDomain)
            load.tls = try TLSContext(configuration: client)
        } catch {
            throw ExitError(message: "could not set up the prober's TLS: \(error)", exitCode: 2)
        }
        say("3. load: \(load.plan.requests ?? 0) requests, c=\(load.plan.connections) m=\(options.streams), HTTP/2 over mTLS as \(prober), expecting \(expectedServer)\n")
        let started = Date()
        let generator = LoadGenerator(configuration: load, group: group)
        let result = try await generator.run()
        let report = LoadReport(result: result, configuration: load, commandLine: CommandLine.arguments, startedAt: started,
                                version: meshprobeVersion)
        print(TerminalSummary(style: stdoutStyle()).render(report))
        if let json = options.json { try writeResult(report.jsonData(), to: json) }

        // 4. A canary behind a real proxy: HAProxy splits 90/10 over two more echo workloads; verify the split.
        var canaryCheck: Step?
        if options.noCanary {
            say("4. canary: skipped (--no-canary)")
        } else if let canary = try await runCanary() {
            canaryCheck = canary
        } else {
            say("4. canary: skipped: haproxy is not installed (scripts/install-deps installs it)")
        }
        // 4b. The same canary behind an L4 balancer (per-connection routing), with the mTLS workloads of step 2.
        var l4Check: Step?
        if !options.noCanary, let canary = try await runCanary(l4: servers, tls: load.tls) { l4Check = canary }

        // 5. A circuit breaker behind a real proxy.
        var breakerCheck: Step?
        if !options.noCanary, let haproxy = Self.haproxy {
            breakerCheck = try await runCircuitBreaker(haproxy: haproxy)
        }

        // 6. Who may call whom: an echo with an allow list, tried as three callers.
        let accessCheck = try await runAccess()

        // 7. The verdict.
        let requests = options.requests
        var checks: [DemoOutcome.Check] = []
        checks.append(.init(text: "every request succeeded (\(result.succeeded)/\(requests))", passed: result.succeeded == requests))
        let versions = Set(result.identities.keys.map(\.version).filter { !$0.isEmpty })
        checks.append(.init(text: "both workloads answered (\(versions.sorted().joined(separator: ", ")))", passed: versions == ["v1", "v2"]))
        let peersOK = result.peerIdentities.keys.allSatisfy { $0 == expectedServer.description } && !result.peerIdentities.isEmpty
        checks.append(.init(text: "every server presented \(expectedServer)", passed: peersOK))
        let callerCount = result.callersSeen[prober, default: 0]
        checks.append(.init(text: "mTLS in effect: the workloads saw caller \(prober) on \(callerCount)/\(result.responses) responses",
                            passed: callerCount == result.responses && callerCount > 0))
        let loadChecks = checks.map { RunReport.Check(kind: "demo", name: $0.text, status: $0.passed ? .passed : .failed,
                                                      summary: $0.passed ? "held" : "did not hold",
                                                      seconds: result.elapsedSeconds) }
        let steps = [canaryCheck, l4Check, breakerCheck, accessCheck].compactMap { $0 }
        checks += steps.map { .init(text: $0.text, passed: $0.passed, decided: $0.decided) }
        say("verdict")
        for check in checks { say("  \(check.word)  \(check.text)") }
        let outcome = DemoOutcome(
            checks: checks, load: report,
            sections: [RunReport.Section(name: "mTLS load over HTTP/2", seconds: result.elapsedSeconds, checks: loadChecks,
                                         loads: [RunReport.Load(name: "reviews v1 and v2 over mTLS", report: report,
                                                                distribution: RunReport.Load.distribution(result.latency))])]
                + steps.compactMap(\.section))
        say(outcome.passed ? "PASS: the demo mesh behaves as declared"
            : outcome.failed ? "FAIL: see the checks above" : "UNDECIDED: a check could not decide (see above)")
        for server in servers { await server.close() }
        servers.removeAll()
        return outcome
    }

    /// The access step: an echo workload that lets only productpage GET `/reviews*` (`--authorize`, answering others
    /// as Envoy's RBAC filter), tried as productpage (allowed), ratings (denied at L7) and in plaintext (refused at
    /// TLS), three tries each on fresh connections.
    func runAccess() async throws -> Step {
        let productpage = "spiffe://\(Demo.trustDomain)/ns/bookinfo/sa/productpage"
        let ratings = "spiffe://\(Demo.trustDomain)/ns/bookinfo/sa/ratings"
        var echo = EchoConfiguration(identity: EchoIdentity(workload: "reviews", version: "v1", cluster: "demo", namespace: "bookinfo",
                                                             pod: "reviews-v1-authz"))
        echo.port = 0
        echo.authorization = EchoAuthorization(rules: [.init(principals: [productpage], methods: ["GET"], paths: ["/reviews*"])])
        func context(_ role: TLSConfiguration.Role, _ sa: String) throws -> TLSContext {
            var tls = TLSConfiguration(role: role)
            tls.certificateChainFile = "\(dir)/\(sa)/cert-chain.pem"
            tls.privateKeyFile = "\(dir)/\(sa)/key.pem"
            tls.applicationProtocols = role == .server ? ["h2", "http/1.1"] : ["h2"]
            tls.requireClientCertificate = role == .server
            if role == .client { tls.expectedPeer = .spiffeID(try SPIFFEID(parsing: "spiffe://\(Demo.trustDomain)/ns/bookinfo/sa/reviews")) }
            try tls.trustBundles.add(pemFile: "\(dir)/\(sa)/root-cert.pem", trustDomain: Demo.trustDomain)
            return try TLSContext(configuration: tls)
        }
        let server: EchoServer
        let callers: [AccessCaller: TLSContext]
        do {
            echo.tls = try context(.server, "reviews")
            server = try await EchoServer.start(echo, group: group)
            callers = [.spiffe(productpage): try context(.client, "productpage"), .spiffe(ratings): try context(.client, "ratings")]
        } catch {
            throw ExitError(message: "could not start the access step's workload: \(error)", exitCode: 2)
        }
        defer { Task { await server.close() } }
        say("6. access: reviews on https://\(server.localAddress.text) lets only productpage GET /reviews*; trying productpage, ratings and plaintext")
        let request = AccessRequest(path: "/reviews/1")
        let expectation = AccessExpectation(cells: [
            AccessCell(caller: .spiffe(productpage), request: request, expected: .allow, source: "demo"),
            AccessCell(caller: .spiffe(ratings), request: request, expected: .deny, source: "demo"),
            AccessCell(caller: .plaintext, request: request, expected: .deny, source: "demo"),
        ], source: "demo")
        let started = Date()
        var load = LoadConfiguration(targets: [try LoadTarget(parsing: "https://127.0.0.1:\(server.localAddress.port ?? 0)/")])
        load.plan.requestTimeout = 5
        let outcome = try await AccessCheck.run(expectation, configuration: load, callers: callers, group: group)
        var report = VerifyReport(file: "demo")
        report.add(outcome)
        say(report.verdictText.split(separator: "\n").map { "   " + $0 }.joined(separator: "\n") + "\n")
        let seconds = Date().timeIntervalSince(started)
        let section = RunReport.Section(name: "access (echo --authorize, Envoy RBAC's answers)", seconds: seconds,
                                        checks: report.checks(seconds: Array(repeating: seconds, count: report.verdicts.count)))
        let contradicted = outcome.cells.filter { $0.decided && !$0.passed }.count
        return ("access as declared: productpage allowed, ratings denied at L7, plaintext refused"
                    + (contradicted > 0 ? " (\(contradicted) of 3 cells contradicted)" : ""),
                outcome.cells.allSatisfy(\.passed), outcome.cells.allSatisfy { $0.passed || $0.decided }, section)
    }

    /// A short circuit-breaker step: HAProxy admits 10 requests at once to an echo workload (per-server maxconn,
    /// 20 ms queue timeout); the connection-pool procedure checks a declared limit of 10.
    func runCircuitBreaker(haproxy: String) async throws -> Step {
        var echoConfiguration = EchoConfiguration(identity: EchoIdentity(workload: "ratings", version: "v1", cluster: "demo",
                                                                         namespace: "bookinfo", pod: "ratings-v1-0"))
        echoConfiguration.port = 0
        let echo = try await EchoServer.start(echoConfiguration, group: group)
        defer { Task { await echo.close() } }
        let port = try await freePort()
        var config = HAProxyConfig(frontendPort: port, servers: [.init("ratings", port: echo.localAddress.port ?? 0, weight: 100)])
        config.serverMaxConn = 10
        config.queueTimeout = 0.02
        try writeFiles("\(dir)/breaker", [("haproxy.cfg", config.text, false)])
        guard let process = try await startHAProxy(haproxy, config: "\(dir)/breaker/haproxy.cfg", port: port) else {
            return ("the circuit-breaker proxy (HAProxy) started", false, true, nil)
        }
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        say("5. circuit breaker: HAProxy on 127.0.0.1:\(port) admits 10 requests at once to ratings; checking a declared limit of 10")
        let started = Date()
        var expectation = CircuitBreakerExpectation(maxRequests: 10, maxPending: 1, source: "demo")
        expectation.requestsPerPhase = 150
        var load = LoadConfiguration(targets: [try LoadTarget(parsing: "http://127.0.0.1:\(port)/ratings")])
        load.plan.requestTimeout = 5
        let outcome = try await CircuitBreakerCheck.run(expectation, configuration: load, group: group)
        for check in outcome.checks {
            say("   \(check.passed ? "PASS" : check.decided ? "FAIL" : "UNDECIDED")  \(check.name)" + (check.reason.map { ": \($0)" } ?? ""))
        }
        let overflow = outcome.above.overflow
        var report = VerifyReport(file: "demo")
        report.add(outcome)
        let seconds = Date().timeIntervalSince(started)
        let section = RunReport.Section(name: "circuit breaker (HAProxy maxconn 10)", seconds: seconds,
                                        checks: report.checks(seconds: Array(repeating: seconds, count: report.verdicts.count)))
        return ("circuit breaker at 10 as declared (\(overflow) overflow replies above the limit, upstream peak \(outcome.below.result.upstreamPeakInFlight)/10 in flight)",
                outcome.checks.allSatisfy(\.passed), outcome.checks.allSatisfy { $0.passed || $0.decided }, section)
    }

    /// Verifies a declared 90/10 split behind HAProxy weighted 90/10: in `mode http` (per-request routing) over two
    /// h2c echo workloads it starts, or (`l4`: the mTLS workloads to balance) in `mode tcp`, an L4 balancer that
    /// routes per connection, with TLS end to end. nil when HAProxy is not installed.
    func runCanary(l4 tlsWorkloads: [EchoServer]? = nil, tls: TLSContext? = nil) async throws -> Step? {
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
        let port = try await freePort()
        var config = HAProxyConfig(frontendPort: port, servers: [
            .init("v1", port: workloads[0].localAddress.port ?? 0, weight: 90),
            .init("v2", port: workloads[1].localAddress.port ?? 0, weight: 10),
        ])
        config.layer4 = layer4
        let name = layer4 ? "canary-l4" : "canary"
        let target = layer4 ? "https://127.0.0.1:\(port)/reviews" : "http://127.0.0.1:\(port)/reviews"
        let identity = layer4
            ? "identity: {cert: \(dir)/productpage/cert-chain.pem, key: \(dir)/productpage/key.pem, ca: \(dir)/productpage/root-cert.pem, "
                + "expectPeer: \"spiffe://\(Demo.trustDomain)/ns/bookinfo/sa/reviews\"}"
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
        guard let process = try await startHAProxy(haproxy, config: "\(dir)/\(name)/haproxy.cfg", port: port) else {
            return ("the canary proxy (HAProxy) started", false, true, nil)
        }
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        if layer4 {
            say("4b. canary behind an L4 balancer: HAProxy mode tcp on 127.0.0.1:\(port) sends each connection to reviews v1 or v2 "
                + "(90/10, mTLS end to end); verifying a declared 90/10 split by connection")
        } else {
            say("4. canary: HAProxy on 127.0.0.1:\(port) splits requests 90/10 over reviews v1 and v2; verifying a declared 90/10 split")
        }
        let policy: Policy
        do { policy = try Policy.load(path: "\(dir)/\(name)/policy.yaml", environment: [:]) } catch {
            return ("the canary policy was read (\(error))", false, true, nil)
        }
        let started = Date()
        // The policy's identity names the files; the context built from them for step 3 is the same.
        var configuration = LoadConfiguration(plan: policy.scenario.plan)
        configuration.tls = tls
        let outcomes = try await PolicyVerification.run(policy, configuration: configuration, group: group)
        let report = VerifyReport(policy: policy, outcomes: outcomes)
        say(report.verdictText.split(separator: "\n").map { "   " + $0 }.joined(separator: "\n") + "\n")
        let evidence = report.verdicts[0].evidence
        let title = layer4 ? "canary 90/10 behind an L4 balancer (HAProxy mode tcp)" : "canary 90/10 behind HAProxy"
        let view = report.runReport(outcomes: outcomes, configuration: LoadConfiguration(plan: policy.scenario.plan), inputs: [], title: title,
                                    seconds: outcomes.map { $0.result.elapsedSeconds }, startedAt: started)
        let connections = evidence.sampling?.connections ?? 0
        let mixed = evidence.sampling.map { "\($0.mixedConnections) of \($0.pairedConnections)" } ?? "?"
        return (layer4
                ? "canary split 90/10 as declared behind an L4 balancer (\(evidence.requests) responses on \(connections) connections; \(mixed) connections saw both versions: routed per connection)"
                : "canary split 90/10 as declared (\(evidence.requests) responses on \(connections) connections; \(mixed) connections saw both versions: routed per request; false-fail <= 0.001, miss <= 0.01)",
                report.passed, report.decided, view.sections.first)
    }
}
