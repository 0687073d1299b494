import ArgumentParser
import Foundation
import MeshprobeEcho
import MeshprobeEchoAPI
import MeshprobeIdentity
import MeshprobeReport
import MeshprobeRunner
import MeshprobeSpec
import MeshprobeTLS
import NIOCore
import NIOPosix

struct EchoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo",
        abstract: "The target workload: stamps its identity on every response, reports its caller, injects faults.",
        discussion: """
            HTTP/2 and HTTP/1.1 over mTLS (--ca requires client certificates), TLS, or plaintext (--h2c: \
            prior-knowledge h2c and HTTP/1.1 on one port). Faults per request: ?status=503:50&delay=20ms:10&size=1024&close=5. \
            With --control-allow, mTLS callers with those SPIFFE IDs may set faults for a while (`meshprobe fault`). \
            gRPC on the same port: meshprobe.echo.v1.Echo/Call (the stamps as metadata and reply fields, faults as \
            CallRequest fields) and grpc.health.v1.Health/Check (docs/echo.md, gRPC).
            Example: meshprobe echo --listen 127.0.0.1:8443 --svid-dir ./svid-v1 --workload reviews --workload-version v1
            """
    )

    @Option(help: .defaulted("Address to listen on, HOST:PORT.", Self.defaultListen), transform: InputArgument.hostPort)
    var listen: HostPort = Self.defaultListen
    static let defaultListen = try! HostPort(parsing: "127.0.0.1:8443")

    @OptionGroup(title: "Identity")
    var identity: IdentityOptions

    @Flag(name: .customLong("h2c"), help: "Serve plaintext (h2c with prior knowledge and HTTP/1.1) instead of TLS.")
    var h2c = false

    @Flag(name: .customLong("no-client-cert"), help: "With TLS, do not require a client certificate even when a CA is given.")
    var noClientCert = false

    @Option(help: "Workload name to stamp (default: $MESHPROBE_WORKLOAD, else the pod name without its hash).")
    var workload: String?

    @Option(name: .customLong("workload-version"), help: "Workload version to stamp (default: $MESHPROBE_VERSION).")
    var workloadVersion: String?

    @Option(help: "Cluster name to stamp (default: $MESHPROBE_CLUSTER).")
    var cluster: String?

    @Option(help: "Namespace to stamp (default: $POD_NAMESPACE).")
    var namespace: String?

    @Option(name: .customLong("max-delay"), help: .defaulted("Largest delay a request may ask for.", Self.defaultMaxDelay), transform: InputArgument.duration)
    var maxDelay: TimeSpan = Self.defaultMaxDelay
    static let defaultMaxDelay = TimeSpan("10s")

    @Option(name: .customLong("max-size"), help: "Largest response body a request may ask for, bytes.")
    var maxSize: Int = 1 << 20

    @Option(name: .customLong("control-allow"), help: ArgumentHelp(
        "A caller SPIFFE ID (from its mTLS client certificate) allowed to use the control API at /.meshprobe/faults; repeatable. Without it the API is disabled.",
        valueName: "spiffe-id"), transform: InputArgument.spiffeID)
    var controlAllow: [SPIFFEID] = []

    @Option(name: .customLong("authorize"), help: ArgumentHelp(
        "Allow list of the workload's paths (YAML: rules of principals, methods, paths); other requests get Envoy RBAC's 403.",
        valueName: "file"))
    var authorize: String?

    func makeConfiguration() throws -> EchoConfiguration {
        let env = ProcessInfo.processInfo.environment
        let pod = env["POD_NAME"] ?? ProcessInfo.processInfo.hostName
        let defaultWorkload: String = {
            // A Deployment's pod is NAME-<replicaset hash>-<pod hash>.
            let parts = pod.split(separator: "-")
            return parts.count > 2 ? parts.dropLast(2).joined(separator: "-") : pod
        }()
        let echoIdentity = EchoIdentity(
            workload: workload ?? env["MESHPROBE_WORKLOAD"] ?? defaultWorkload,
            version: workloadVersion ?? env["MESHPROBE_VERSION"] ?? "",
            cluster: cluster ?? env["MESHPROBE_CLUSTER"] ?? "",
            namespace: namespace ?? env["POD_NAMESPACE"] ?? "",
            pod: pod)
        // The identity goes into response headers: a value with a control character would break every response.
        for (flag, value) in [("--workload", echoIdentity.workload), ("--workload-version", echoIdentity.version),
                              ("--cluster", echoIdentity.cluster), ("--namespace", echoIdentity.namespace)]
        where value.unicodeScalars.contains(where: { $0 == "\t" || $0 == "\n" || TerminalStyle.isDangerous($0) }) {
            throw CLIError.badInput("\(flag) \(value.debugDescription): must not contain control characters (it is sent in response headers)")
        }
        if h2c, identity.cert != nil || identity.key != nil || identity.svidDir != nil || identity.ca != nil || !identity.trustBundles.isEmpty {
            throw CLIError.badInput("--h2c serves plaintext: drop it to serve TLS with --cert/--key, --svid-dir, --ca or --trust-bundle")
        }
        var configuration = EchoConfiguration(identity: echoIdentity)
        (configuration.host, configuration.port) = (listen.host, listen.port)
        configuration.limits.maxDelayNanoseconds = UInt64(maxDelay.seconds * 1e9)
        guard maxSize >= 0 else { throw CLIError.badInput("--max-size must not be negative") }
        configuration.limits.maxBodySize = maxSize
        configuration.controlAllowList.formUnion(controlAllow)
        if let authorize {
            do { configuration.authorization = try EchoAuthorization.load(path: authorize) } catch {
                throw CLIError.badInput("--authorize: \(error.description)")
            }
        }
        if !h2c {
            let identity = identity.spec
            let files = identity.files()
            guard files.cert != nil else {
                throw CLIError.badInput("TLS needs a certificate: --cert/--key or --svid-dir (or --h2c for plaintext)")
            }
            let hasBundle = files.ca != nil || !identity.trustBundles.isEmpty
            configuration.tls = try identity.makeContext(
                role: .server, alpn: ["h2", "http/1.1"], expectedPeer: nil, verifyPeer: hasBundle && !noClientCert,
                serverName: nil, requireClientCertificate: hasBundle && !noClientCert)
        }
        // A log record is one line: a newline a client put into it (a certificate's URI, a path) cannot start a forged one.
        configuration.log = { line in printError("meshprobe echo: " + TerminalStyle.sanitize(line)) }
        return configuration
    }

    func run() async throws {
        let configuration = try makeConfiguration()
        let server: EchoServer
        do {
            server = try await EchoServer.start(configuration, group: MultiThreadedEventLoopGroup.singleton)
        } catch {
            throw CLIError.badInput("--listen: " + listenFailure(listen.description, error))
        }
        let mode = configuration.tls == nil ? "h2c+http/1.1" : (configuration.tls?.configuration.requireClientCertificate == true ? "mTLS" : "TLS")
        let id = configuration.tls?.localIdentity?.description ?? "no SPIFFE ID"
        printLine("meshprobe echo: listening on \(server.localAddress.text) (\(mode)), workload=\(configuration.identity.workload) version=\(configuration.identity.version) identity=\(id)")
        if let loosened = configuration.tls?.configuration.loosening.loosened, !loosened.isEmpty {
            printError("meshprobe echo: TLS loosened: \(loosened.joined(separator: "; "))")
        }
        if let authorization = configuration.authorization {
            printLine("meshprobe echo: authorizing by \(authorize ?? "--authorize") (\(authorization.rules.count) rule\(authorization.rules.count == 1 ? "" : "s")); other requests get 403 'RBAC: access denied'")
        }
        if !configuration.controlAllowList.isEmpty {
            let callers = configuration.controlAllowList.map(\.description).sorted().joined(separator: ", ")
            printLine("meshprobe echo: control API at /.meshprobe/faults for \(callers)")
            if configuration.tls?.configuration.verifyPeer != true {
                printError("meshprobe echo: warning: without client certificates (--h2c, --no-client-cert or no trust bundle) every control request is refused (403)")
            }
        }
        let stopped = AsyncStream<Void> { continuation in
            let stopper = SignalStopper { continuation.finish() }
            continuation.onTermination = { _ in stopper.cancel() }
        }
        for await _ in stopped {}
        await server.close()
        printLine("meshprobe echo: stopped after \(server.requestsServed) requests")
    }
}
