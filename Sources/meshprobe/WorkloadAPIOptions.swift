import ArgumentParser
import Foundation
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeSVIDSource
import MeshprobeScenario
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

    /// How the client checks its server, from flags or a file's identity section.
    struct PeerCheck {
        var expectPeer: PeerExpectation?
        var insecure: Bool
        var sni: String?
    }

    /// The client TLS of an https run from the Workload API: waits for the first SVID, then rotates. `name` is the
    /// flag or the file's field, for errors. With plaintext targets it is refused unless `controlAPIs` (the run reaches
    /// workloads' control APIs over mTLS with it).
    static func startWorkloadAPI(_ endpoint: WorkloadAPIEndpoint, svidID: String?, timeout: Double, name: String, identity: TLSIdentitySpec,
                                 configuration: inout LoadConfiguration, peer: PeerCheck, controlAPIs: Bool = false) async throws -> IdentityRotation? {
        guard controlAPIs || configuration.plan.targets.contains(where: { $0.scheme == .https }) else {
            throw CLIError.badInput("\(name) gives a client SVID for TLS: the targets are plaintext (http://, grpc://)")
        }
        try identity.validateFlags()
        if peer.insecure, peer.expectPeer != nil {
            throw CLIError.badInput("--expect-peer checks the server's certificate, which -k (insecure) skips: give one or the other")
        }
        let base = try identity.baseConfiguration(role: .client, alpn: clientALPN(configuration), expectedPeer: peer.expectPeer,
                                                  verifyPeer: !peer.insecure, serverName: peer.sni)
        let svidSource: WorkloadAPISVIDSource
        do {
            svidSource = try await WorkloadAPISVIDSource.start(endpoint: endpoint, timeout: timeout, build: { update in
                let tls = try update.apply(spiffeID: svidID, to: base)
                do throws(TLSError) { return try TLSContext(configuration: tls) } catch { throw WorkloadAPIError.unusableSVID(error.message) }
            }, onEvent: note)
        } catch let error as WorkloadAPIError {
            throw CLIError.badInput("\(name) \(endpoint): \(error)")
        }
        configuration.tls = svidSource.source.current
        configuration.tlsSource = svidSource.source
        return .workloadAPI(svidSource)
    }

    /// What keeps a file's identity section current (`run`, `verify`, `gameday`): the Workload API's stream when it
    /// names `workloadApi` (waiting for the first SVID), else a watch of its SVID files. `controlAPIs`: the run sets
    /// faults through workloads' control APIs, which take the SVID even when the targets are plaintext.
    static func start(scenarioIdentity id: ScenarioIdentity, file: String, configuration: inout LoadConfiguration,
                      controlAPIs: Bool = false) async throws -> IdentityRotation? {
        let peer = PeerCheck(expectPeer: id.expectPeer, insecure: id.insecure, sni: id.sni)
        guard let endpoint = id.workloadAPI else {
            return watchFiles(identity: id.tls, configuration: &configuration, peer: peer)
        }
        let rotation = try await startWorkloadAPI(endpoint, svidID: id.workloadAPISVID?.description, timeout: 30,
                                                  name: "\(id.location ?? "\(file): identity").workloadApi",
                                                  identity: id.tls, configuration: &configuration, peer: peer, controlAPIs: controlAPIs)
        do { try configuration.validate() } catch {
            await rotation?.stop()
            throw CLIError.badInput("\(file): \(error.description)")
        }
        return rotation
    }

    /// What happened to a whole run's identity (`verify`, `gameday`, whose loads each report their own), for stderr:
    /// nil when its files never changed.
    static func summary(_ source: TLSContextSource?) -> String? {
        guard let r = source?.rotations, r.source != "files" || r.count + r.rejected > 0 else { return nil }
        return PrintableText.replacingControls("identity: \(r.source == "workload-api" ? "Workload API" : "SVID files"): \(r.count) rotation\(r.count == 1 ? "" : "s") during the run"
            + (r.rejected > 0 ? ", \(r.rejected) update\(r.rejected == 1 ? "" : "s") rejected (old identity kept; last: \(r.lastRejection ?? ""))" : "")
            + (r.interruptions > 0 ? "; the stream was lost \(r.interruptions) time\(r.interruptions == 1 ? "" : "s") (identity kept; last: \(r.lastInterruption ?? ""))" : "")
            + (source.flatMap { s in s.current.localNotAfter.flatMap { $0 < Date() ? "; WARNING: the SVID in use expired at \($0.ISO8601Format()) and nothing replaced it (servers that resume TLS sessions kept accepting it; a full handshake, such as a control API's call, is refused)" : nil } } ?? ""))
    }

    /// Runs `body` with the identity kept current by `rotation`, and stops it however `body` ends.
    static func around<T>(_ rotation: IdentityRotation?, _ body: () async throws -> T) async throws -> T {
        do {
            let value = try await body()
            await rotation?.stop()
            return value
        } catch {
            await rotation?.stop()
            throw error
        }
    }

    /// Watches the SVID files of an https run that reads them, and rotates when they change.
    static func watchFiles(identity: TLSIdentitySpec, configuration: inout LoadConfiguration, peer: PeerCheck) -> IdentityRotation? {
        guard let initial = configuration.tls, identity.cert != nil || identity.svidDir != nil else { return nil }
        let source = TLSContextSource(initial: initial, source: "files")
        let alpn = configuration.tls?.configuration.applicationProtocols ?? []
        let watcher = SVIDFileWatcher(paths: identity.watchedFiles, source: source, rebuild: {
            try identity.makeContext(role: .client, alpn: alpn, expectedPeer: peer.expectPeer,
                                     verifyPeer: !peer.insecure, serverName: peer.sni)
        }, onEvent: note)
        configuration.tlsSource = source
        watcher.start()
        return .files(watcher)
    }
}

extension TLSContext {
    /// This context's SVID and trust bundles as a client of any server those bundles trust (a workload's control API,
    /// reached by address, each with its own SPIFFE ID) or as the shards' result channel: the peer checks and the ALPN
    /// are the caller's, the rest (SVID, bundles, loosening) this context's.
    func reshaped(role: TLSConfiguration.Role, alpn: [String], expectedPeer: PeerExpectation?, verifyPeer: Bool,
                  requireClientCertificate: Bool = false) throws -> TLSContext {
        var c = configuration
        c.role = role
        c.verifyPeer = verifyPeer
        c.applicationProtocols = alpn
        c.expectedPeer = expectedPeer
        c.serverName = nil
        c.verifyHostname = nil
        c.requireClientCertificate = requireClientCertificate
        do { return try TLSContext(configuration: c) } catch { throw CLIError.badInput(error.message) }
    }
}
