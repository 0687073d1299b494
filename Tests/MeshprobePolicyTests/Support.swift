import Foundation
import MeshprobePolicy
import MeshprobeYAML

/// Writes YAML to a fresh temporary file and returns its path (remove it with `removeTemporary`).
func writeTemporaryYAML(_ text: String) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-policy-test-\(UUID().uuidString).yaml").path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

func removeTemporary(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

/// Imports `yaml` (mesh manifests) from a temporary file, for `service` when given.
func importManifests(_ yaml: String, service: String? = nil) throws -> ImportedRoutes {
    let path = try writeTemporaryYAML(yaml)
    defer { removeTemporary(path) }
    return try ManifestImporter.importRoutes(files: [path], recognizer: .version, statistics: .init(), service: service.map { ServiceHost($0) })
}

/// The located error that reading `yaml` gives: as a policy file, or as manifests; nil when it reads.
func inputError(policy yaml: String) throws -> YAMLInputError? {
    let path = try writeTemporaryYAML(yaml)
    defer { removeTemporary(path) }
    do { _ = try Policy.load(path: path, environment: [:]) } catch { return error }
    return nil
}

func inputError(manifests yaml: String) throws -> YAMLInputError? {
    do { _ = try importManifests(yaml) } catch let error as YAMLInputError { return error }
    return nil
}
