import CMeshprobeSignals
import Dispatch
import Foundation
import MeshprobeLoad
import NIOConcurrencyHelpers

/// SIGINT and SIGTERM for the whole process, from its first millisecond: installed before the command line is
/// parsed, so that a signal is never lost and never kills the process by the default action (which would skip the
/// clean-up and exit 143). A signal goes to every active `SignalStopper`; with none (the command has not started its
/// work, or has nothing to stop) the process ends at once with exit code 3.
///
/// On Linux, Dispatch installs its own handler for a signal source; a `signal(SIG_IGN)` after it would replace that
/// handler and silence the sources.
enum SignalHub {
    private static let handlers = NIOLockedValueBox<[Int: @Sendable () -> Void]>([:])
    private static let nextID = NIOLockedValueBox(0)
    // Kept for the life of the process. Unsafe only in name: `install` writes it once, on the main thread, before
    // the command (or any other thread that could touch it) starts; nothing reads it.
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []

    /// After a signal, a command's last network steps (clearing faults, the Pushgateway push) end within this, so
    /// that the process exits within 2 s of the signal.
    static let networkBudget = Duration.milliseconds(1500)
    static var networkBudgetText: String {
        let c = networkBudget.components
        return "\(Double(c.seconds) + Double(c.attoseconds) / 1e18) s"
    }
    /// Set by the first signal: its time plus `networkBudget`.
    static let stopDeadline = StopDeadline()

    /// Call first thing in `main`. The signals have been blocked since the binary was loaded (CMeshprobeSignals): they
    /// are unblocked once Dispatch's handler is in place, and one that came meanwhile is delivered then.
    static func install() {
        for sig in [SIGINT, SIGTERM] {
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { deliver(sig) }
            source.resume()
            sources.append(source)
        }
        // Dispatch installs its handler from its own thread: wait for it (a few milliseconds at most), so that an
        // unblocked signal never meets the default action.
        let deadline = DispatchTime.now() + .milliseconds(500)
        while !(mp_signals_has_handler(SIGINT) != 0 && mp_signals_has_handler(SIGTERM) != 0) && DispatchTime.now() < deadline {
            usleep(200)
        }
        if mp_signals_has_handler(SIGINT) == 0 || mp_signals_has_handler(SIGTERM) == 0 {
            // Not Dispatch's way on this platform: ignore the default action instead (a signal is then handled by the
            // sources alone).
            signal(SIGINT, SIG_IGN)
            signal(SIGTERM, SIG_IGN)
        }
        mp_signals_unblock()
    }

    private static func deliver(_ sig: Int32) {
        stopDeadline.set(.now + networkBudget)
        let active = handlers.withLockedValue { Array($0.values) }
        guard !active.isEmpty else {
            printError("meshprobe: aborted by \(sig == SIGINT ? "SIGINT" : "SIGTERM") before the command started its work")
            // `_exit`, not `exit`: the command is starting on another thread, and exit's handlers (OpenSSL's among
            // them) would tear down what it is using (it crashed in libcrypto, or failed its TLS setup with exit 2).
            fflush(nil)
            _exit(3)
        }
        for handler in active { handler() }
    }

    static func add(_ handler: @escaping @Sendable () -> Void) -> Int {
        let id = nextID.withLockedValue { id in
            defer { id += 1 }
            return id
        }
        handlers.withLockedValue { $0[id] = handler }
        return id
    }

    static func remove(_ id: Int) {
        _ = handlers.withLockedValue { $0.removeValue(forKey: id) }
    }
}

/// Calls `onSignal` on SIGINT or SIGTERM instead of dying, so a run can stop cleanly and report, until cancelled.
/// Stoppers nest (the sidecar session's around a command's own): every active one is called.
final class SignalStopper: Sendable {
    private let id: Int

    init(_ onSignal: @escaping @Sendable () -> Void) {
        id = SignalHub.add(onSignal)
    }

    func cancel() {
        SignalHub.remove(id)
    }
}
