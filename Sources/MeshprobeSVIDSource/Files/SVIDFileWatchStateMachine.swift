/// Decides when watched SVID files (`--svid-dir`, `--cert/--key/--ca`) are read again: whenever what a poll sees of
/// them (inode, modification time, size) differs from what was last read, successfully or not.
///
/// A value: polls and reload outcomes in, actions out. A reload that fails (a half-written file, a certificate
/// whose key has not been written yet) keeps the old identity and is reported once; the next change is tried again.
public struct SVIDFileWatchStateMachine: Sendable, Hashable {
    /// What `stat` says of one file; nil when it is missing.
    public struct Fingerprint: Sendable, Hashable {
        public var inode: UInt64
        public var modified: Int64
        public var size: Int64

        public init(inode: UInt64, modified: Int64, size: Int64) {
            self.inode = inode
            self.modified = modified
            self.size = size
        }
    }

    public enum Action: Sendable, Hashable {
        case none
        /// Read the files and build a new identity; report the outcome with `reloaded` or `reloadFailed`.
        case reload
        /// The new identity is in use.
        case rotated
        /// Keep the old identity; say why.
        case report(String)
    }

    /// The files as last read (the identity in use, or a failed attempt).
    public private(set) var lastRead: [Fingerprint?]
    /// The fingerprints a reload is reading, until it reports.
    private var reading: [Fingerprint?]?

    /// `initial`: the files as the run's first identity read them.
    public init(initial: [Fingerprint?]) {
        lastRead = initial
    }

    public mutating func polled(_ seen: [Fingerprint?]) -> Action {
        guard reading == nil, seen != lastRead else { return .none }
        reading = seen
        return .reload
    }

    public mutating func reloaded() -> Action {
        guard let reading else { return .none }
        lastRead = reading
        self.reading = nil
        return .rotated
    }

    public mutating func reloadFailed(_ reason: String) -> Action {
        guard let reading else { return .none }
        lastRead = reading
        self.reading = nil
        return .report(reason)
    }
}
