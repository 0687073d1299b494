import Foundation

/// Why a report file cannot be written, in words a user can act on.
public struct ReportFileError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// Writing result and report files (`--json`, `--junit`, `--html`, `--prometheus`, ...): checked before a run starts,
/// written whole or not at all. A special file (`/dev/stdout`, a terminal, a FIFO) is written in place: replacing it
/// by a rename would swap the device or pipe for a regular file.
public enum ReportFile {
    /// The path that means standard output.
    public static let standardOutput = "-"

    /// Refuses a path whose file could not be written, before any traffic is sent: a missing or unwritable directory,
    /// a directory in the file's place, an existing file that is not writable.
    public static func checkWritable(_ path: String, flag: String) throws {
        guard !path.isEmpty else { throw ReportFileError(description: "\(flag): empty path") }
        if path == standardOutput { return }
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        let fm = FileManager.default
        guard fm.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ReportFileError(description: "\(flag) '\(path)': the directory '\(directory)' does not exist")
        }
        if fm.fileExists(atPath: url.path, isDirectory: &isDirectory) {
            if isDirectory.boolValue { throw ReportFileError(description: "\(flag) '\(path)': is a directory") }
            guard fm.isWritableFile(atPath: url.path) else {
                throw ReportFileError(description: "\(flag) '\(path)': the file is not writable")
            }
            if isSpecial(path) { return }
        }
        // The atomic write creates a temporary file beside the target and renames it: the directory must be writable.
        guard fm.isWritableFile(atPath: directory) else {
            throw ReportFileError(description: "\(flag) '\(path)': the directory '\(directory)' is not writable")
        }
    }

    /// Writes `text` as `write(_:to:flag:)` does.
    public static func write(_ text: String, to path: String, flag: String) throws {
        try write(Data(text.utf8), to: path, flag: flag)
    }

    /// Writes `data` atomically (a temporary file beside `path`, then a rename): a reader never sees half a report,
    /// and a failed write leaves what was there before. A special file that exists is written in place; `-` is
    /// standard output.
    public static func write(_ data: Data, to path: String, flag: String) throws {
        do {
            if path == standardOutput {
                try FileHandle.standardOutput.write(contentsOf: data.last == UInt8(ascii: "\n") ? data : data + [UInt8(ascii: "\n")])
            } else if isSpecial(path) {
                let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
                defer { try? handle.close() }
                try handle.write(contentsOf: data)
            } else {
                try data.write(to: URL(fileURLWithPath: path), options: .atomic)
            }
        } catch {
            throw ReportFileError(description: "cannot write \(flag) '\(path)': \(error.localizedDescription)")
        }
    }

    /// The path names something other than a regular file or a directory (after symbolic links): a character device
    /// such as `/dev/stdout` or a terminal, a FIFO, a socket.
    static func isSpecial(_ path: String) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        let type = info.st_mode & S_IFMT
        return type != S_IFREG && type != S_IFDIR
    }
}
