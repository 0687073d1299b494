import MeshprobeIdentity
import Yams

/// A YAML node with where it came from, read with typed accessors that fail with file, line and field.
public struct YAMLValue {
    public let node: Node
    public let file: String
    public let path: String

    public var line: Int { node.mark?.line ?? 1 }
    public var column: Int { node.mark?.column ?? 1 }

    /// Parses one YAML document.
    public static func parse(_ text: String, file: String) throws(YAMLInputError) -> YAMLValue {
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw YAMLInputError(file: file, line: 1, column: 1, field: "", message: "the file is empty")
            }
            return YAMLValue(node: node, file: file, path: "")
        } catch let error as YAMLInputError {
            throw error
        } catch let error as YamlError {
            throw Self.locate(error, file: file, text: text)
        } catch {
            throw YAMLInputError(file: file, line: 1, column: 1, field: "", message: "not valid YAML: \(error)")
        }
    }

    /// Parses every document of a multi-document YAML stream (`---` separated); empty documents are skipped.
    public static func parseAll(_ text: String, file: String) throws(YAMLInputError) -> [YAMLValue] {
        do {
            var documents: [YAMLValue] = []
            var sequence = try Yams.compose_all(yaml: text)
            while let node = sequence.next() { documents.append(YAMLValue(node: node, file: file, path: "")) }
            if let error = sequence.error { throw error }
            return documents
        } catch let error as YamlError {
            throw Self.locate(error, file: file, text: text)
        } catch {
            throw YAMLInputError(file: file, line: 1, column: 1, field: "", message: "not valid YAML: \(error)")
        }
    }

    /// An optional entry of a mapping, without checking for unknown keys (for foreign schemas such as Kubernetes').
    public subscript(key: String) -> YAMLValue? {
        guard case .mapping(let mapping) = node else { return nil }
        for (k, v) in mapping where k.string == key { return child(v, key) }
        return nil
    }

    static func locate(_ error: YamlError, file: String, text: String) -> YAMLInputError {
        switch error {
        case let .scanner(_, problem, mark, _), let .parser(_, problem, mark, _), let .composer(_, problem, mark, _):
            return YAMLInputError(file: file, line: mark.line, column: mark.column, field: "", message: "not valid YAML: \(problem)")
        case let .duplicatedKeysInMapping(duplicates, context):
            // Yams marks the first of the keys that repeat (where it is first written); the error points at the
            // second, found as the same key at the same column further down (block style), and names the first.
            let first = (line: max(1, context.mark.line), column: max(1, context.mark.column))
            let key = duplicates.first ?? ""
            let second = Self.repeated(key, after: first, in: text)
            let keys = duplicates.count == 1 ? "this key is" : "keys are"
            return YAMLInputError(file: file, line: second?.line ?? first.line, column: second?.column ?? first.column, field: key,
                                  message: "\(keys) given twice in one mapping: \(duplicates.joined(separator: ", "))"
                                      + (second == nil ? "" : " (first at line \(first.line))"))
        default:
            return YAMLInputError(file: file, line: 1, column: 1, field: "", message: "not valid YAML: \(error)")
        }
    }

    /// The next line after `first` that writes `key` at the same column (block style); nil when there is none.
    static func repeated(_ key: String, after first: (line: Int, column: Int), in text: String) -> (line: Int, column: Int)? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard first.line < lines.count else { return nil }
        for index in first.line..<lines.count {
            let line = lines[index]
            let indent = line.prefix { $0 == " " }.count
            guard indent + 1 == first.column else { continue }
            let rest = line.dropFirst(indent)
            for spelling in [key, "\"\(key)\"", "'\(key)'"] where rest.hasPrefix(spelling) {
                if rest.dropFirst(spelling.count).drop(while: { $0 == " " }).hasPrefix(":") { return (index + 1, first.column) }
            }
        }
        return nil
    }

    public func error(_ message: String) -> YAMLInputError {
        YAMLInputError(file: file, line: line, column: column, field: path, message: message)
    }

    private func child(_ node: Node, _ component: String) -> YAMLValue {
        YAMLValue(node: node, file: file, path: path.isEmpty ? component : (component.hasPrefix("[") ? path + component : "\(path).\(component)"))
    }

    private var kind: String {
        switch node {
        case .scalar(let s): return s.string.isEmpty ? "nothing" : "'\(s.string)'"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    /// The mapping's entries; every key not in `allowed` is an error that lists the allowed ones (all of them in one
    /// error, `YAMLInputError.others`).
    public func mapping(allowed: [String]) throws(YAMLInputError) -> [String: YAMLValue] {
        var errors = YAMLErrors()
        let entries = try mapping(allowed: allowed, recording: &errors)
        try errors.check()
        return entries
    }

    /// The mapping's allowed entries, with every other key recorded in `errors`, so that the rest of the mapping is
    /// still read; throws only when the value is not a mapping.
    public func mapping(allowed: [String], recording errors: inout YAMLErrors) throws(YAMLInputError) -> [String: YAMLValue] {
        guard case .mapping(let mapping) = node else { throw error("expected a mapping with keys \(allowed.joined(separator: ", ")), got \(kind)") }
        var out: [String: YAMLValue] = [:]
        for (key, value) in mapping {
            guard let name = key.string else {
                errors.record(error("keys must be strings"))
                continue
            }
            let entry = child(value, name)
            func refuse(_ message: String) {
                errors.record(YAMLInputError(file: file, line: key.mark?.line ?? line, column: key.mark?.column ?? column,
                                             field: entry.path, message: message))
            }
            if !allowed.contains(name) {
                refuse("unknown field; expected one of: \(allowed.joined(separator: ", "))")
            } else if out[name] != nil {
                refuse("appears twice")
            } else {
                out[name] = entry
            }
        }
        return out
    }

    /// A mapping from free-form string keys (headers, trust bundles) to string values.
    public func stringMap() throws(YAMLInputError) -> [(key: String, value: String, at: YAMLValue)] {
        guard case .mapping(let mapping) = node else { throw error("expected a mapping, got \(kind)") }
        var out: [(String, String, YAMLValue)] = []
        for (key, value) in mapping {
            guard let name = key.string else { throw error("keys must be strings") }
            let entry = child(value, name)
            out.append((name, try entry.string(), entry))
        }
        return out
    }

    /// The keys of a mapping, in order.
    public func keys() throws(YAMLInputError) -> [String] {
        guard case .mapping(let mapping) = node else { throw error("expected a mapping, got \(kind)") }
        var out: [String] = []
        for (key, _) in mapping {
            guard let name = key.string else { throw error("keys must be strings") }
            out.append(name)
        }
        return out
    }

    /// The keys of a mapping with their values, whatever their types.
    public func stringMapKeys() throws(YAMLInputError) -> [(key: String, value: Node, at: YAMLValue)] {
        guard case .mapping(let mapping) = node else { throw error("expected a mapping, got \(kind)") }
        var out: [(String, Node, YAMLValue)] = []
        for (key, value) in mapping {
            guard let name = key.string else { throw error("keys must be strings") }
            out.append((name, value, child(value, name)))
        }
        return out
    }

    public func list() throws(YAMLInputError) -> [YAMLValue] {
        guard case .sequence(let sequence) = node else { throw error("expected a list, got \(kind)") }
        return sequence.enumerated().map { child($0.element, "[\($0.offset)]") }
    }

    /// A scalar as text (numbers and booleans too, as written).
    public func string() throws(YAMLInputError) -> String {
        guard case .scalar(let scalar) = node else { throw error("expected a string, got \(kind)") }
        return scalar.string
    }

    /// A name (of a scenario, step, route, resource): a string on one line with no control characters, since names
    /// are printed, labelled in metrics and written into reports.
    public func name() throws(YAMLInputError) -> String {
        let text = try string()
        if let bad = text.unicodeScalars.first(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value)
                                                      || (0x202A...0x202E).contains($0.value) || (0x2066...0x2069).contains($0.value) }) {
            throw error("a name must not contain control characters (found U+\(String(bad.value, radix: 16, uppercase: true)))")
        }
        return text
    }

    public func int(minimum: Int? = nil) throws(YAMLInputError) -> Int {
        guard case .scalar(let scalar) = node, let value = Int(scalar.string) else { throw error("expected a whole number, got \(kind)") }
        if let minimum, value < minimum { throw error("must be at least \(minimum), got \(value)") }
        return value
    }

    public func double(minimum: Double? = nil, exclusive: Bool = false, maximum: Double? = nil) throws(YAMLInputError) -> Double {
        guard case .scalar(let scalar) = node, let value = Double(scalar.string), value.isFinite else {
            throw error("expected a number, got \(kind)")
        }
        if let minimum {
            if exclusive ? value <= minimum : value < minimum {
                throw error("must be \(exclusive ? "more than" : "at least") \(Self.format(minimum)), got \(Self.format(value))")
            }
        }
        if let maximum, value > maximum { throw error("must be at most \(Self.format(maximum)), got \(Self.format(value))") }
        return value
    }

    public func bool() throws(YAMLInputError) -> Bool {
        guard case .scalar(let scalar) = node else { throw error("expected true or false, got \(kind)") }
        switch scalar.string.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw error("expected true or false, got \(kind)")
        }
    }

    /// A scalar read by an input type's one parse function (`TimeSpan(parsing:)`, `ConnectionChurn(parsing:)`, ...):
    /// its message, located at this value.
    public func parsed<T>(_ parse: (String) throws(InputValueError) -> T) throws(YAMLInputError) -> T {
        let text = try string()
        do { return try parse(text) } catch { throw self.error(error.message) }
    }

    /// A duration such as `30s`, `500ms`, `2m`, `1h` (`TimeSpan`: a unit is required); must be positive unless
    /// `allowZero`.
    public func duration(allowZero: Bool = false) throws(YAMLInputError) -> Double {
        try parsed { text throws(InputValueError) in try TimeSpan(parsing: text, allowZero: allowZero) }.seconds
    }

    public static func format(_ v: Double) -> String { numberText(v) }
}
