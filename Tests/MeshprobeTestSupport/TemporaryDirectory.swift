import Foundation

/// A fresh directory under the system's temporary directory, named `prefix-UUID`; the caller removes it
/// (`defer { removeTemporaryDirectory(dir) }`).
public func makeTemporaryDirectory(_ prefix: String) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Removes what `makeTemporaryDirectory` made, and everything in it.
public func removeTemporaryDirectory(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}
