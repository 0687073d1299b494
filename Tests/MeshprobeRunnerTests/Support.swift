import Foundation
import MeshprobePolicy
import MeshprobeScenario

/// A policy file (meshprobe.policy/v1, targeting a loopback address) with `body` after its target, read as `verify`
/// reads it.
func loadPolicy(_ body: String, routesElsewhere: Bool = false, overrides: FileOverrides = FileOverrides()) throws -> Policy {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-runner-test-\(UUID().uuidString).yaml").path
    try """
        policy: meshprobe.policy/v1
        target: http://127.0.0.1:8080/reviews
        \(body)
        """.write(toFile: path, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try Policy.load(path: path, environment: [:], routesElsewhere: routesElsewhere, overrides: overrides)
}
