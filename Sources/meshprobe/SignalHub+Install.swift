import CMeshprobeSignals
import Foundation
import MeshprobeRunner
import UnixSignals

/// The process's handling of SIGINT and SIGTERM: swift-service-lifecycle's `UnixSignalsSequence` receives them, and
/// the runner's `SignalHub` dispatches each to the active stoppers.
///
/// The stoppers play the part of service-lifecycle's graceful-shutdown handlers; its `ServiceGroup` is not used: a
/// signal with no stopper must end the process at once with exit code 3 (a group would wait for the command), and the
/// group would add swift-log and swift-async-algorithms to the build for no other use.
extension SignalHub {
    /// Call first thing in `main`. Since the binary was loaded the signals have been blocked and only noted
    /// (CMeshprobeSignals); they are unblocked once the sequence's handlers are registered, and one that came meanwhile
    /// is delivered then.
    static func install() async {
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        if mp_signals_has_handler(SIGINT) == 0 || mp_signals_has_handler(SIGTERM) == 0 {
            // The sequence installed no handler of its own (a Dispatch that needs none): ignore the signals' default
            // action, so that the noting handler's removal never exposes it; the sequence still receives them.
            signal(SIGINT, SIG_IGN)
            signal(SIGTERM, SIG_IGN)
        }
        Task.detached {
            for await signal in signals { deliver(signal.rawValue) }
        }
        for signal in [SIGINT, SIGTERM] where mp_signals_take_recorded(signal) != 0 { deliver(signal) }
        mp_signals_unblock()
    }
}
