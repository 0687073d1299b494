import ArgumentParser
import Foundation
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeSVIDSource
import MeshprobeSpec
import MeshprobeTLS

/// The SPIFFE Workload API as `load`'s identity, and the rotation of SVID files during a run.
struct WorkloadAPIOptions: ParsableArguments {
    @Option(name: .customLong("workload-api"), help: ArgumentHelp(
        "Take the client SVID and trust bundles from the SPIFFE Workload API at this socket (unix:///run/spire/sockets/agent.sock), kept up to date during the run. Without it, $SPIFFE_ENDPOINT_SOCKET is used when no other identity flag (--cert, --key, --ca, --svid-dir, --trust-bundle) is given; any of those flags wins over the variable.",
        valueName: "unix:///path"))
    var workloadAPI: String?

    @Option(name: .customLong("workload-api-svid"), help: ArgumentHelp(
        "With several SVIDs offered by the Workload API, present the one with this SPIFFE ID (default: the first, the agent's default SVID).",
        valueName: "spiffe-id"))
    var svidID: String?

    @Option(name: .customLong("workload-api-timeout"), help: .defaulted("How long to wait for the first SVID before the run starts.", TimeSpan("30s")),
            transform: InputArgument.duration)
    var timeout = TimeSpan("30s")

    /// The endpoint to use: the flag, else `$SPIFFE_ENDPOINT_SOCKET` when `identity` names no other source.
    func endpoint(identity: IdentityOptions, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> WorkloadAPIEndpoint? {
        let otherSources = identity.cert != nil || identity.key != nil || identity.ca != nil || identity.svidDir != nil
        if let workloadAPI {
            if otherSources {
                throw CLIError.badInput("--workload-api is the SVID's source: give it or --cert/--key/--ca/--svid-dir, not both (--trust-bundle TD=FILE may add trust domains)")
            }
            do { return try WorkloadAPIEndpoint(parsing: workloadAPI) } catch { throw CLIError.badInput("--workload-api \(error.message)") }
        }
        guard !otherSources, identity.trustBundles.isEmpty, let value = environment[WorkloadAPIEndpoint.environmentVariable], !value.isEmpty else {
            if svidID != nil { throw CLIError.badInput("--workload-api-svid picks an SVID of the Workload API: give --workload-api (or $SPIFFE_ENDPOINT_SOCKET)") }
            return nil
        }
        do { return try WorkloadAPIEndpoint(parsing: value) } catch {
            throw CLIError.badInput("$\(WorkloadAPIEndpoint.environmentVariable) \(error.message)")
        }
    }

    func validateSVIDID() throws {
        guard let svidID else { return }
        do { _ = try SPIFFEID(parsing: svidID) } catch {
            throw CLIError.badInput("--workload-api-svid '\(svidID)' is not a SPIFFE ID: \(error.reason)")
        }
    }
}

/// What keeps a run's identity current: stopped when the run ends.
enum IdentityRotation {
    case workloadAPI(WorkloadAPISVIDSource)
    case files(SVIDFileWatcher)

    func stop() async {
        switch self {
        case .workloadAPI(let source): await source.stop()
        case .files(let watcher): watcher.stop()
        }
    }

    /// Prints what happens to the identity during the run (never a key).
    static let note: @Sendable (String) -> Void = { message in
        FileHandle.standardError.write(Data("meshprobe: \(PrintableText.replacingControls(message))\n".utf8))
    }

    /// The client TLS of an https run from the Workload API: waits for the first SVID, then rotates.
    static func startWorkloadAPI(_ endpoint: WorkloadAPIEndpoint, options: WorkloadAPIOptions, identity: TLSIdentitySpec,
                                 configuration: inout LoadConfiguration, serverCheck: ServerCheckOptions) async throws -> IdentityRotation? {
        guard configuration.plan.targets.contains(where: { $0.scheme == .https }) else {
            throw CLIError.badInput("--workload-api gives a client SVID for TLS: the targets are plaintext (http://, grpc://)")
        }
        try options.validateSVIDID()
        try identity.validateFlags()
        if serverCheck.insecure, serverCheck.expectPeer != nil {
            throw CLIError.badInput("--expect-peer checks the server's certificate, which -k (insecure) skips: give one or the other")
        }
        let base = try identity.baseConfiguration(role: .client, alpn: clientALPN(configuration), expectedPeer: serverCheck.expectPeer,
                                                  verifyPeer: !serverCheck.insecure, serverName: serverCheck.sni)
        let svidID = options.svidID
        let svidSource: WorkloadAPISVIDSource
        do {
            svidSource = try await WorkloadAPISVIDSource.start(endpoint: endpoint, timeout: options.timeout.seconds, build: { update in
                let tls = try update.apply(spiffeID: svidID, to: base)
                do throws(TLSError) { return try TLSContext(configuration: tls) } catch { throw WorkloadAPIError.unusableSVID(error.message) }
            }, onEvent: note)
        } catch let error as WorkloadAPIError {
            throw CLIError.badInput("--workload-api \(endpoint): \(error)")
        }
        configuration.tls = svidSource.source.current
        configuration.tlsSource = svidSource.source
        return .workloadAPI(svidSource)
    }

    /// Watches the SVID files of an https run that reads them, and rotates when they change.
    static func watchFiles(identity: TLSIdentitySpec, configuration: inout LoadConfiguration,
                           serverCheck: ServerCheckOptions) -> IdentityRotation? {
        guard let initial = configuration.tls, identity.cert != nil || identity.svidDir != nil else { return nil }
        let source = TLSContextSource(initial: initial, source: "files")
        let alpn = configuration.tls?.configuration.applicationProtocols ?? []
        let watcher = SVIDFileWatcher(paths: identity.watchedFiles, source: source, rebuild: {
            try identity.makeContext(role: .client, alpn: alpn, expectedPeer: serverCheck.expectPeer,
                                     verifyPeer: !serverCheck.insecure, serverName: serverCheck.sni)
        }, onEvent: note)
        configuration.tlsSource = source
        watcher.start()
        return .files(watcher)
    }
}
