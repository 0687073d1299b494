import Foundation

/// Why a report file cannot be written, in words a user can act on.
public struct ReportFileError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// Writing report files (`--junit`, `--html`): checked before a run starts, written whole or not at all.
public enum ReportFile {
    /// Refuses a path whose file could not be written, before any traffic is sent: a missing or unwritable directory,
    /// a directory in the file's place, an existing file that is not writable.
    public static func checkWritable(_ path: String, flag: String) throws {
        guard !path.isEmpty else { throw ReportFileError(description: "\(flag): empty path") }
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
        }
        // The atomic write creates a temporary file beside the target and renames it: the directory must be writable.
        guard fm.isWritableFile(atPath: directory) else {
            throw ReportFileError(description: "\(flag) '\(path)': the directory '\(directory)' is not writable")
        }
    }

    /// Writes `text` atomically (a temporary file beside `path`, then a rename): a reader never sees half a report,
    /// and a failed write leaves what was there before.
    public static func write(_ text: String, to path: String, flag: String) throws {
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw ReportFileError(description: "cannot write \(flag) '\(path)': \(error.localizedDescription)")
        }
    }
}
