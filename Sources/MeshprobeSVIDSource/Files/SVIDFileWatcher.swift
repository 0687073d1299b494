import Foundation
import MeshprobeTLS
import NIOConcurrencyHelpers

/// Polls SVID files once a `interval` and swaps a run's TLS context when they change (cert-manager and
/// spiffe-helper rewrite them in place or by renaming a new file over the old one).
///
/// `rebuild` reads the files and builds the context; a failure keeps the current one and goes to `onRejected`.
/// The poll loop runs until `stop` or the task it runs in is cancelled.
public final class SVIDFileWatcher: Sendable {
    public let paths: [String]
    private let source: TLSContextSource
    private let rebuild: @Sendable () throws -> TLSContext
    private let onEvent: @Sendable (String) -> Void
    private let interval: Duration
    private let task = NIOLockedValueBox<Task<Void, Never>?>(nil)

    public init(paths: [String], source: TLSContextSource, interval: Duration = .seconds(1),
                rebuild: @escaping @Sendable () throws -> TLSContext, onEvent: @escaping @Sendable (String) -> Void = { _ in }) {
        self.paths = paths
        self.source = source
        self.rebuild = rebuild
        self.onEvent = onEvent
        self.interval = interval
    }

    /// What `stat` says of `path` now.
    public static func fingerprint(_ path: String) -> SVIDFileWatchStateMachine.Fingerprint? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        let modified = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        return .init(inode: UInt64(info.st_ino), modified: modified, size: Int64(info.st_size))
    }

    /// Starts polling, from the files as they are now (the run's first identity was just read from them).
    public func start() {
        let paths = paths
        let initial = paths.map(Self.fingerprint)
        let poller = Task { [self] in
            var machine = SVIDFileWatchStateMachine(initial: initial)
            while !Task.isCancelled {
                do { try await Task.sleep(for: interval) } catch { return }
                guard case .reload = machine.polled(paths.map(Self.fingerprint)) else { continue }
                let action: SVIDFileWatchStateMachine.Action
                do {
                    let context = try rebuild()
                    source.rotate(to: context)
                    action = machine.reloaded()
                } catch {
                    action = machine.reloadFailed("\(error)")
                }
                if case .report(let reason) = action {
                    source.rejected(reason)
                    onEvent("SVID files changed but do not load (the old identity stays): \(reason)")
                }
            }
        }
        task.withLockedValue { $0 = poller }
    }

    public func stop() { task.withLockedValue { $0?.cancel() } }
}
