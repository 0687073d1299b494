#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The one way meshprobe reads a file it was given (a policy, scenario, game day or manifest, a result to merge, a
/// certificate, key or trust bundle, a CSV or request body): a regular file, at most its kind's limit.
///
/// Anything else is refused with what it is: a character device (`/dev/null`, `/dev/zero`), a FIFO or socket, a
/// directory. The file is opened without blocking (a FIFO with no writer cannot hold the command) and checked with
/// `fstat` on the open descriptor (what was checked is what is read), then read up to its limit and never further,
/// however long it grows meanwhile.
public enum InputFile {
    /// How much of one kind of file meshprobe reads, and what the kind is called in errors.
    public struct Limit: Sendable, Equatable {
        public var bytes: Int
        /// `a result file`, `a YAML file`, ...
        public var name: String

        /// A load, verify or game day result (`merge`; a shard's result is held to the same limit).
        public static let result = Limit(bytes: 256 << 20, name: "a result file")
        /// A policy, scenario, game day or mesh manifest file.
        public static let yaml = Limit(bytes: 32 << 20, name: "a YAML file")
        /// A certificate chain, private key, trust bundle or CA file.
        public static let pem = Limit(bytes: 4 << 20, name: "a PEM file")
        /// A CSV file or a request body (`--data @FILE`).
        public static let data = Limit(bytes: 256 << 20, name: "a data file")
        /// A credentials file (`--pushgateway-auth-file`).
        public static let secret = Limit(bytes: 64 << 10, name: "a credentials file")

        /// `256 MiB`, `64 KiB`, or bytes.
        public var text: String { Self.size(bytes) }

        static func size(_ bytes: Int) -> String {
            if bytes >= 1 << 20, bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
            if bytes >= 1 << 10, bytes % (1 << 10) == 0 { return "\(bytes >> 10) KiB" }
            return "\(bytes) bytes"
        }
    }

    /// Why a file cannot be read; `reason` reads after the path (`/dev/zero: is a character device, ...`).
    public struct ReadError: Error, Sendable, Equatable, CustomStringConvertible {
        public var path: String
        public var reason: String

        public var description: String { "\(path): \(reason)" }
    }

    /// The file's bytes. Throws when it is missing or unreadable, not a regular file, or larger than `limit`.
    public static func read(_ path: String, limit: Limit) throws(ReadError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw ReadError(path: path, reason: openProblem(errno)) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw ReadError(path: path, reason: "cannot be read: \(describe(errno))") }
        if let kind = notRegular(status.st_mode) {
            throw ReadError(path: path, reason: "is \(kind), not a regular file")
        }
        func tooLarge(_ size: String) -> ReadError {
            ReadError(path: path, reason: "is \(size): \(limit.name) is at most \(limit.text)")
        }
        if Int(status.st_size) > limit.bytes { throw tooLarge("\(status.st_size) bytes") }
        var bytes = [UInt8]()
        bytes.reserveCapacity(Int(status.st_size))
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            // One byte past the limit is enough to know the file is over it.
            let want = min(chunk.count, limit.bytes + 1 - bytes.count)
            let got = chunk.withUnsafeMutableBytes { Glue.read(fd, $0.baseAddress, want) }
            if got < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw ReadError(path: path, reason: "cannot be read: \(describe(errno))")
            }
            if got == 0 { break }
            bytes.append(contentsOf: chunk[0..<got])
            if bytes.count > limit.bytes { throw tooLarge("more than \(limit.text)") }
        }
        return bytes
    }

    /// What a file that is not a regular one is, with its article; nil for a regular file.
    static func notRegular(_ mode: mode_t) -> String? {
        switch mode & S_IFMT {
        case S_IFREG: return nil
        case S_IFDIR: return "a directory"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFIFO: return "a FIFO (named pipe)"
        case S_IFSOCK: return "a socket"
        default: return "not a file meshprobe can read"
        }
    }

    static func openProblem(_ code: Int32) -> String {
        switch code {
        case ENOENT: return "does not exist"
        case ENOTDIR: return "does not exist (a part of its path is not a directory)"
        case EACCES, EPERM: return "cannot be read: permission denied (check its permissions and its directory's)"
        default: return "cannot be opened: \(describe(code))"
        }
    }

    static func describe(_ code: Int32) -> String {
        String(cString: strerror(code))
    }

    /// The C calls under names that the methods above do not shadow.
    private enum Glue {
        static func read(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
            #if canImport(Glibc)
            Glibc.read(fd, buffer, count)
            #elseif canImport(Musl)
            Musl.read(fd, buffer, count)
            #else
            Darwin.read(fd, buffer, count)
            #endif
        }
    }
}
