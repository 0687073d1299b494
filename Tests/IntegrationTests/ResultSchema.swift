import Foundation
import MeshprobeTestSupport

/// A published JSON Schema of a result (docs/schema), checked with Python's `jsonschema`, a real validator.
///
/// Every schema in docs/schema is registered by its `$id` (a `referencing.Registry`), so the references between them
/// resolve offline: verify and game day results embed load results (load-result.schema.json) and game day steps
/// reuse the verify verdict. A reference that does not resolve fails the check rather than being skipped.
enum ResultSchema: String {
    case load = "load-result"
    case verify = "verify-result"
    case gameday = "gameday-result"

    struct ValidatorFailed: Error, CustomStringConvertible {
        var description: String
    }

    static var folder: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/schema").path
    }

    private static let script = """
        import glob, json, os, sys
        import jsonschema
        from jsonschema.exceptions import best_match
        from referencing import Registry, Resource
        folder, name, path = sys.argv[1:4]
        schemas = {}
        for file in glob.glob(os.path.join(folder, '*.schema.json')):
            with open(file) as f:
                schemas[os.path.basename(file)] = json.load(f)
        registry = Registry().with_resources([(s['$id'], Resource.from_contents(s)) for s in schemas.values()])
        schema = schemas[name + '.schema.json']
        jsonschema.Draft202012Validator.check_schema(schema)
        with open(path) as f:
            instance = json.load(f)
        error = best_match(jsonschema.Draft202012Validator(schema, registry=registry).iter_errors(instance))
        if error is None:
            print('valid')
        else:
            print('invalid at /' + '/'.join(str(p) for p in error.absolute_path) + ': ' + error.message[:300])
        """

    /// Nil when the JSON file at `path` is valid; else where and why not. Throws when the validator itself fails (no
    /// python3 or jsonschema, a schema that is not valid draft 2020-12, a `$ref` that does not resolve).
    func violation(in path: String) async throws -> String? {
        let out = try await python(Self.script, [Self.folder, rawValue, path])
        let answer = out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard out.status == 0, answer == "valid" || answer.hasPrefix("invalid at ") else {
            throw ValidatorFailed(description: "validating \(path) against \(rawValue).schema.json: exit \(out.status): \(out.stdout)\(out.stderr)")
        }
        return answer == "valid" ? nil : answer
    }

    /// Writes `object` changed by `change` next to `path` and returns what the schema says of it.
    func violation(in path: String, changed change: (inout [String: Any]) -> Void) async throws -> String? {
        guard var object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any] else {
            throw ValidatorFailed(description: "\(path) is not a JSON object")
        }
        change(&object)
        let changed = path + ".changed-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: changed) }
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: changed))
        return try await violation(in: changed)
    }
}
