import Foundation
import MeshprobeLoad
import NIOConcurrencyHelpers

/// SIGINT and SIGTERM for the whole process, from its first millisecond: installed before the command line is
/// parsed, so that a signal is never lost and never kills the process by the default action (which would skip the
/// clean-up and exit 143). A signal goes to every active `SignalStopper`; with none (the command has not started its
/// work, or has nothing to stop) the process ends at once with exit code 3.
///
/// The process-level part (the handler, unblocking what `CMeshprobeSignals` blocked at load) is the executable's
/// `SignalHub.install`, which calls `deliver`.
package enum SignalHub {
    private static let handlers = NIOLockedValueBox<[Int: @Sendable () -> Void]>([:])
    private static let nextID = NIOLockedValueBox(0)

    /// After a signal, a command's last network steps (clearing faults, the Pushgateway push) end within this, so
    /// that the process exits within 2 s of the signal.
    package static let networkBudget = Duration.milliseconds(1500)
    package static var networkBudgetText: String {
        let c = networkBudget.components
        return "\(Double(c.seconds) + Double(c.attoseconds) / 1e18) s"
    }
    /// Set by the first signal: its time plus `networkBudget`.
    package static let stopDeadline = StopDeadline()

    /// A signal arrived: every active stopper is called; with none, the process ends at once with exit code 3.
    package static func deliver(_ sig: Int32) {
        stopDeadline.set(.now + networkBudget)
        let active = handlers.withLockedValue { Array($0.values) }
        guard !active.isEmpty else {
            printError("meshprobe: aborted by \(sig == SIGINT ? "SIGINT" : "SIGTERM") before the command started its work")
            // `_exit`, not `exit`: the command is starting on another thread, and exit's handlers (OpenSSL's among
            // them) would tear down what it is using. Results held for the log (a signal after the command's work,
            // during the sidecar's stop) are written first.
            _ = ResultLogOutput.flush()
            fflush(nil)
            _exit(3)
        }
        for handler in active { handler() }
    }

    package static func add(_ handler: @escaping @Sendable () -> Void) -> Int {
        let id = nextID.withLockedValue { id in
            defer { id += 1 }
            return id
        }
        handlers.withLockedValue { $0[id] = handler }
        return id
    }

    package static func remove(_ id: Int) {
        _ = handlers.withLockedValue { $0.removeValue(forKey: id) }
    }
}

/// Calls `onSignal` on SIGINT or SIGTERM instead of dying, so a run can stop cleanly and report, until cancelled.
/// Stoppers nest (the sidecar session's around a command's own): every active one is called.
package final class SignalStopper: Sendable {
    private let id: Int

    package init(_ onSignal: @escaping @Sendable () -> Void) {
        id = SignalHub.add(onSignal)
    }

    package func cancel() {
        SignalHub.remove(id)
    }
}
