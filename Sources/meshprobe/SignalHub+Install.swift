import CMeshprobeSignals
import Dispatch
import Foundation
import MeshprobeRunner

/// The process's handling of SIGINT and SIGTERM, which the runner's `SignalHub` dispatches to the stoppers.
///
/// On Linux, Dispatch installs its own handler for a signal source; a `signal(SIG_IGN)` after it would replace that
/// handler and silence the sources.
extension SignalHub {
    // Kept for the life of the process. Unsafe only in name: `install` writes it once, on the main thread, before
    // the command (or any other thread that could touch it) starts; nothing reads it.
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []

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
}
