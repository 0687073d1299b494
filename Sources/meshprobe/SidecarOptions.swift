import ArgumentParser
import Foundation
import MeshprobeIdentity
import MeshprobeKubernetes
import MeshprobeRunner

/// `--sidecar` and its settings, shared by the commands that send traffic (load, run, verify, gameday): wait for the
/// pod's proxy before sending, stop it on the way out (success, failure, bad input or a signal), so a Job completes.
struct SidecarOptions: ParsableArguments {
    static let environmentMode = "MESHPROBE_SIDECAR"
    static let environmentNative = "MESHPROBE_NATIVE_SIDECAR"

    @Option(name: .customLong("sidecar"), help: ArgumentHelp("The pod's sidecar proxy: auto, istio, linkerd or none. Waits for it to be ready before sending and tells it to stop on exit, so a Job completes. Default: $MESHPROBE_SIDECAR, else none; nothing is done when $MESHPROBE_NATIVE_SIDECAR is true (Kubernetes native sidecar).", valueName: "mode"),
            completion: .list(SidecarMode.allCases.map(\.rawValue)))
    var sidecar: String?

    @Option(name: .customLong("sidecar-timeout"), help: .defaulted("Longest wait for the sidecar to be ready; then nothing is sent and the exit code is 3.", Self.defaultTimeout),
            transform: InputArgument.duration)
    var sidecarTimeout: TimeSpan = Self.defaultTimeout
    static let defaultTimeout = TimeSpan("60s")

    @Option(name: .customLong("sidecar-istio-ready-port"), help: "Istio's readiness port (GET /healthz/ready).")
    var istioReadyPort: Int = 15021

    @Option(name: .customLong("sidecar-istio-quit-port"), help: "Istio's pilot-agent port (POST /quitquitquit).")
    var istioQuitPort: Int = 15020

    @Option(name: .customLong("sidecar-linkerd-port"), help: "Linkerd's admin port (GET /ready, POST /shutdown).")
    var linkerdPort: Int = 4191

    func validate() throws {
        if let sidecar, SidecarMode(rawValue: sidecar) == nil {
            throw ValidationError("--sidecar '\(sidecar)': expected auto, istio, linkerd or none")
        }
        for (flag, port) in [("--sidecar-istio-ready-port", istioReadyPort), ("--sidecar-istio-quit-port", istioQuitPort),
                             ("--sidecar-linkerd-port", linkerdPort)] where !(1...65535).contains(port) {
            throw ValidationError("\(flag) \(port): expected a port from 1 to 65535")
        }
    }

    /// The lifecycle these flags and the environment ask for, and a note to print when the environment decided.
    func lifecycle(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> (SidecarLifecycle, note: String?) {
        var endpoints = SidecarEndpoints()
        endpoints.istioReadyPort = istioReadyPort
        endpoints.istioQuitPort = istioQuitPort
        endpoints.linkerdAdminPort = linkerdPort
        let timeout = sidecarTimeout.seconds
        if Self.isTrue(environment[Self.environmentNative]) {
            return (SidecarLifecycle(mode: .none, endpoints: endpoints, timeout: timeout),
                    "\(Self.environmentNative) is set: the proxy is a Kubernetes native sidecar, started before and stopped after meshprobe by Kubernetes; not waiting for it, not stopping it")
        }
        let text = sidecar ?? environment[Self.environmentMode].flatMap { $0.isEmpty ? nil : $0 } ?? "none"
        guard let mode = SidecarMode(rawValue: text) else {
            throw CLIError.badInput("\(Self.environmentMode)='\(text)': expected auto, istio, linkerd or none")
        }
        return (SidecarLifecycle(mode: mode, endpoints: endpoints, timeout: timeout), nil)
    }

    static func isTrue(_ value: String?) -> Bool {
        guard let value = value?.lowercased() else { return false }
        return ["1", "true", "yes", "on"].contains(value)
    }

    /// Runs a command's `body` in a sidecar session: `SidecarSession.ready()` inside it waits for the proxy (once),
    /// and the proxy is told to stop when `body` ends, however it ends.
    func around(_ command: String, _ body: () async throws -> Void) async throws {
        let (lifecycle, note) = try self.lifecycle()
        if let note { printError("meshprobe \(command): sidecar: \(note)") }
        try await SidecarSession.around(lifecycle, command: command, body)
    }

    /// Bad flags end meshprobe before any command runs; the proxy that `--sidecar` (with its port flags) or else
    /// $MESHPROBE_SIDECAR names is still stopped then, so the Job fails instead of hanging.
    static func stopProxyNamedBeforeParsing(arguments: [String],
                                            environment: [String: String] = ProcessInfo.processInfo.environment) async {
        guard let command = arguments.first, ["load", "run", "verify", "gameday"].contains(command),
              !isTrue(environment[environmentNative]) else { return }
        let flags = lastValues(of: ["--sidecar", "--sidecar-istio-quit-port", "--sidecar-linkerd-port"], in: arguments.dropFirst())
        guard let text = flags["--sidecar"] ?? environment[environmentMode], let mode = SidecarMode(rawValue: text),
              mode == .istio || mode == .linkerd else { return }
        var endpoints = SidecarEndpoints()
        func port(_ flag: String) -> Int? { flags[flag].flatMap { Int($0) }.flatMap { (1...65535).contains($0) ? $0 : nil } }
        endpoints.istioQuitPort = port("--sidecar-istio-quit-port") ?? endpoints.istioQuitPort
        endpoints.linkerdAdminPort = port("--sidecar-linkerd-port") ?? endpoints.linkerdAdminPort
        let session = SidecarSession(lifecycle: SidecarLifecycle(mode: mode, endpoints: endpoints, timeout: 1), command: command)
        await session.finish()
    }

    /// The value each of `names` was last given (`--name VALUE` or `--name=VALUE`) before a `--`.
    static func lastValues(of names: Set<String>, in arguments: some Collection<String>) -> [String: String] {
        var values: [String: String] = [:]
        var pending: String?
        for argument in arguments.prefix(while: { $0 != "--" }) {
            if let name = pending {
                values[name] = argument
                pending = nil
            } else if names.contains(argument) {
                pending = argument
            } else if let eq = argument.firstIndex(of: "="), names.contains(String(argument[..<eq])) {
                values[String(argument[..<eq])] = String(argument[argument.index(after: eq)...])
            }
        }
        return values
    }
}
