import Foundation

/// Writes YAML to a fresh temporary file and returns its path (remove it with `removeTemporary`).
func writeTemporaryYAML(_ text: String) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-policy-test-\(UUID().uuidString).yaml").path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

func removeTemporary(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}
