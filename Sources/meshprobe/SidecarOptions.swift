import ArgumentParser
import Foundation
import MeshprobeIdentity
import MeshprobeKubernetes
import NIOConcurrencyHelpers
import NIOPosix

/// `--sidecar` and its settings, shared by the commands that send traffic (load, run, verify, gameday): wait for the
/// pod's proxy before sending, stop it on the way out (success, failure, bad input or a signal), so a Job completes.
struct SidecarOptions: ParsableArguments {
    static let environmentMode = "MESHPROBE_SIDECAR"
    static let environmentNative = "MESHPROBE_NATIVE_SIDECAR"

    @Option(name: .customLong("sidecar"), help: ArgumentHelp("The pod's sidecar proxy: auto, istio, linkerd or none. Waits for it to be ready before sending and tells it to stop on exit, so a Job completes. Default: $MESHPROBE_SIDECAR, else none; nothing is done when $MESHPROBE_NATIVE_SIDECAR is true (Kubernetes native sidecar).", valueName: "mode"))
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
        guard lifecycle.mode != .none else {
            try await body()
            return
        }
        let session = SidecarSession(lifecycle: lifecycle, command: command)
        // The commands install their own handlers when they start sending; this one covers the wait before that.
        let signals = SignalStopper { session.interrupt() }
        defer { signals.cancel() }
        let outcome: Result<Void, any Error>
        do {
            try await SidecarSession.$current.withValue(session) { try await body() }
            outcome = .success(())
        } catch {
            outcome = .failure(error)
        }
        await session.finish()
        try outcome.get()
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

/// One command's sidecar: waits for the proxy once, before the first request, and stops it at the end.
final class SidecarSession: Sendable {
    @TaskLocal static var current: SidecarSession?

    private struct State {
        var waited = false
        var mesh: Mesh?
        var interrupted = false
        var wait: Task<SidecarLifecycle.Readiness, any Error>?
    }

    let lifecycle: SidecarLifecycle
    let command: String
    private let state = NIOLockedValueBox(State())

    init(lifecycle: SidecarLifecycle, command: String) {
        self.lifecycle = lifecycle
        self.command = command
        switch lifecycle.mode {
        case .istio: state.withLockedValue { $0.mesh = .istio }
        case .linkerd: state.withLockedValue { $0.mesh = .linkerd }
        case .auto, .none: break
        }
    }

    /// Waits for the proxy of the current session, if any (a no-op after the first call and outside a session).
    static func ready() async throws {
        try await current?.ready()
    }

    /// A signal: cancels the wait, if one is running; a later `ready()` refuses to start sending.
    func interrupt() {
        let wait = state.withLockedValue { state -> Task<SidecarLifecycle.Readiness, any Error>? in
            state.interrupted = true
            return state.wait
        }
        wait?.cancel()
    }

    func ready() async throws {
        let lifecycle = self.lifecycle
        let wait: Task<SidecarLifecycle.Readiness, any Error>? = state.withLockedValue { state in
            if state.waited { return nil }
            state.waited = true
            let task = Task { try await lifecycle.waitUntilReady(group: MultiThreadedEventLoopGroup.singleton) }
            state.wait = task
            if state.interrupted { task.cancel() }
            return task
        }
        guard let wait else { return }
        let readiness: SidecarLifecycle.Readiness
        do {
            readiness = try await withTaskCancellationHandler { try await wait.value } onCancel: { wait.cancel() }
        } catch {
            throw CLIError(message: "aborted by a signal while waiting for the sidecar; nothing was sent", exitCode: 3)
        }
        let endpoints = lifecycle.endpoints
        switch readiness {
        case .notWaited:
            break
        case .ready(let mesh, let probes, let seconds):
            state.withLockedValue { $0.mesh = mesh }
            printError(String(format: "meshprobe %@: sidecar: the %@ proxy is ready (%@ answered 200 after %d probe%@, %.1f s)",
                              command, mesh.rawValue, endpoints.describe(endpoints.readiness(mesh)), probes, probes == 1 ? "" : "s", seconds))
        case .noSidecar(let seconds):
            printError(String(format: "meshprobe %@: sidecar: none found (neither %@ nor %@ answered within %.1f s); sending without one",
                              command, endpoints.describe(endpoints.readiness(.istio)), endpoints.describe(endpoints.readiness(.linkerd)), seconds))
        case .timedOut(let mesh, let lastSeen, let seconds):
            if let mesh { state.withLockedValue { $0.mesh = mesh } }
            let what = mesh.map { "the \($0.rawValue) proxy was not ready: \(endpoints.describe(endpoints.readiness($0))) last said \(lastSeen)" }
                ?? "no sidecar answered: \(lastSeen)"
            throw CLIError(message: String(format: "%@ after %.1f s (--sidecar-timeout); nothing was sent", what, seconds), exitCode: 3)
        }
    }

    /// Tells the proxy to stop: the mesh named or found; with `auto` and no wait yet (the command failed before
    /// sending), one round of readiness probes decides which proxy, if any, answers.
    func finish() async {
        let group = MultiThreadedEventLoopGroup.singleton
        var mesh = state.withLockedValue { $0.mesh }
        let waited = state.withLockedValue { $0.waited }
        if mesh == nil, lifecycle.mode == .auto, !waited {
            var probe = lifecycle
            probe.detectWindow = 0
            probe.timeout = 0
            switch try? await probe.waitUntilReady(group: group) {
            case .ready(let found, _, _)?, .timedOut(let found?, _, _)?: mesh = found
            default: break
            }
        }
        guard let mesh else { return }
        let endpoint = lifecycle.endpoints.describe(lifecycle.endpoints.shutdown(mesh))
        switch await lifecycle.shutdown(mesh, group: group) {
        case .stopped(_, let status):
            printError("meshprobe \(command): sidecar: asked the \(mesh.rawValue) proxy to stop (POST \(endpoint): \(status))")
        case .refused(_, let status, let hint):
            printError("meshprobe \(command): warning: the \(mesh.rawValue) proxy refused to stop (POST \(endpoint): \(status)); the Job may not complete: \(hint)")
        case .unreachable(_, let reason):
            printError("meshprobe \(command): warning: could not ask the \(mesh.rawValue) proxy to stop (POST \(endpoint): \(reason)); the Job may not complete if it still runs")
        }
    }
}
