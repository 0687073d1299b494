import Foundation

/// Why a report file cannot be written, in words a user can act on.
public struct ReportFileError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// Writing result and report files (`--json`, `--junit`, `--html`, `--prometheus`, ...): checked before a run starts,
/// written whole or not at all. Where a path leads decides how (`Destination`): one of this process's descriptors
/// (`-`, `/dev/stdout`, `/dev/fd/N`) is written to as it is; a special file (a terminal, a FIFO) in place; a regular
/// file is replaced atomically, at the end of its symbolic links, which stay.
public enum ReportFile {
    /// The path that means standard output.
    public static let standardOutput = "-"

    /// Where a path's bytes go.
    enum Destination: Equatable {
        /// An open descriptor of this process: `-` (1), `/dev/stdout`, `/dev/stderr`, `/dev/fd/N`, `/proc/self/fd/N`,
        /// or a link to one. Opening it anew would start at offset 0 of what it names (over the lines already written),
        /// and replacing it would replace the device's link.
        case descriptor(Int32)
        /// A character device, FIFO or socket that exists: opened and written.
        case inPlace(String)
        /// A regular file (or none yet): a temporary file beside it, renamed over it.
        case replace(String)
    }

    /// Follows `path`'s symbolic links (at most 40) to what it names.
    static func destination(_ path: String) -> Destination {
        if path == standardOutput { return .descriptor(STDOUT_FILENO) }
        var current = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        for _ in 0..<40 {
            if let fd = descriptorNamed(current) { return .descriptor(fd) }
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let count = readlink(current, &buffer, buffer.count - 1)
            guard count > 0 else { break }
            let target = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            current = target.hasPrefix("/") ? target : (current as NSString).deletingLastPathComponent + "/" + target
        }
        return isSpecial(current) ? .inPlace(current) : .replace(current)
    }

    /// The descriptor a path names by its spelling: `/dev/stdout`, `/dev/stderr`, `/dev/fd/N`, `/proc/self/fd/N`,
    /// `/proc/PID/fd/N` with this process's PID.
    static func descriptorNamed(_ path: String) -> Int32? {
        if path == "/dev/stdout" { return STDOUT_FILENO }
        if path == "/dev/stderr" { return STDERR_FILENO }
        for prefix in ["/dev/fd/", "/proc/self/fd/", "/proc/\(getpid())/fd/"] where path.hasPrefix(prefix) {
            return Int32(path.dropFirst(prefix.count))
        }
        return nil
    }

    /// The path writes to this process's standard output.
    public static func writesStandardOutput(_ path: String) -> Bool {
        destination(path) == .descriptor(STDOUT_FILENO)
    }

    /// Refuses a path whose file could not be written, before any traffic is sent: a missing or unwritable directory,
    /// a directory in the file's place, an existing file that is not writable, a descriptor that is not open for
    /// writing.
    public static func checkWritable(_ path: String, flag: String) throws {
        guard !path.isEmpty else { throw ReportFileError(description: "\(flag): empty path") }
        let fm = FileManager.default
        switch destination(path) {
        case .descriptor(let fd):
            let mode = fcntl(fd, F_GETFL)
            guard mode >= 0, mode & O_ACCMODE != O_RDONLY else {
                throw ReportFileError(description: "\(flag) '\(path)': descriptor \(fd) is not open for writing")
            }
        case .inPlace(let target):
            guard fm.isWritableFile(atPath: target) else {
                throw ReportFileError(description: "\(flag) '\(path)': \(target == path ? "the file" : "'\(target)'") is not writable")
            }
        case .replace(let target):
            let directory = (target as NSString).deletingLastPathComponent
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ReportFileError(description: "\(flag) '\(path)': the directory '\(directory)' does not exist")
            }
            if fm.fileExists(atPath: target, isDirectory: &isDirectory) {
                if isDirectory.boolValue { throw ReportFileError(description: "\(flag) '\(path)': is a directory") }
                guard fm.isWritableFile(atPath: target) else {
                    throw ReportFileError(description: "\(flag) '\(path)': the file is not writable")
                }
            }
            // The atomic write creates a temporary file beside the target and renames it: the directory must be writable.
            guard fm.isWritableFile(atPath: directory) else {
                throw ReportFileError(description: "\(flag) '\(path)': the directory '\(directory)' is not writable")
            }
        }
    }

    /// Writes `text` as `write(_:to:flag:)` does.
    public static func write(_ text: String, to path: String, flag: String) throws {
        try write(Data(text.utf8), to: path, flag: flag)
    }

    /// Writes `data` where `path` leads (`Destination`): a regular file atomically, so that a reader never sees half a
    /// report and a failed write leaves what was there before.
    public static func write(_ data: Data, to path: String, flag: String) throws {
        do {
            switch destination(path) {
            case .descriptor(let fd):
                let bytes = data.last == UInt8(ascii: "\n") ? data : data + [UInt8(ascii: "\n")]
                try FileHandle(fileDescriptor: fd, closeOnDealloc: false).write(contentsOf: bytes)
            case .inPlace(let target):
                let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: target))
                defer { try? handle.close() }
                try handle.write(contentsOf: data)
            case .replace(let target):
                try data.write(to: URL(fileURLWithPath: target), options: .atomic)
            }
        } catch {
            throw ReportFileError(description: "cannot write \(flag) '\(path)': \(error.localizedDescription)")
        }
    }

    /// The path names something other than a regular file or a directory (after symbolic links): a character device
    /// such as a terminal, a FIFO, a socket.
    static func isSpecial(_ path: String) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        let type = info.st_mode & S_IFMT
        return type != S_IFREG && type != S_IFDIR
    }
}
