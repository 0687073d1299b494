import Foundation
import MeshprobeKubernetes
import NIOConcurrencyHelpers
import NIOPosix

/// One command's sidecar: waits for the proxy once, before the first request, and stops it at the end.
package final class SidecarSession: Sendable {
    @TaskLocal package static var current: SidecarSession?

    private struct State {
        var waited = false
        var mesh: Mesh?
        var interrupted = false
        var wait: Task<SidecarLifecycle.Readiness, any Error>?
    }

    package let lifecycle: SidecarLifecycle
    package let command: String
    private let state = NIOLockedValueBox(State())

    package init(lifecycle: SidecarLifecycle, command: String) {
        self.lifecycle = lifecycle
        self.command = command
        switch lifecycle.mode {
        case .istio: state.withLockedValue { $0.mesh = .istio }
        case .linkerd: state.withLockedValue { $0.mesh = .linkerd }
        case .auto, .none: break
        }
    }

    /// Runs `body` in a session of `lifecycle` (nothing around it when the mode is `none`): `SidecarSession.ready()`
    /// inside it waits for the proxy (once), and the proxy is told to stop when `body` ends, however it ends.
    package static func around(_ lifecycle: SidecarLifecycle, command: String, _ body: () async throws -> Void) async throws {
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

    /// Waits for the proxy of the current session, if any (a no-op after the first call and outside a session).
    package static func ready() async throws {
        try await current?.ready()
    }

    /// A signal: cancels the wait, if one is running; a later `ready()` refuses to start sending.
    package func interrupt() {
        let wait = state.withLockedValue { state -> Task<SidecarLifecycle.Readiness, any Error>? in
            state.interrupted = true
            return state.wait
        }
        wait?.cancel()
    }

    package func ready() async throws {
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
            throw ExitError(message: "aborted by a signal while waiting for the sidecar; nothing was sent", exitCode: 3)
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
            throw ExitError(message: String(format: "%@ after %.1f s (--sidecar-timeout); nothing was sent", what, seconds), exitCode: 3)
        }
    }

    /// Tells the proxy to stop: the mesh named or found; with `auto` and no wait yet (the command failed before
    /// sending), one round of readiness probes decides which proxy, if any, answers.
    package func finish() async {
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
