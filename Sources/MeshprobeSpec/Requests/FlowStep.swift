import Foundation

/// One request of a multi-step flow (a k6/Locust-style user journey): its templates and what to take from its
/// response for the steps after it.
public struct FlowStep: Sendable, Equatable {
    public var name: String
    public var method: String
    /// Path and query; templates may use `{{var:NAME}}` for values extracted by earlier steps or setup.
    public var path: String
    public var headers: [HTTP2HeaderPair]
    public var body: String?
    public var extract: [Extraction]

    public init(name: String, method: String = "GET", path: String, headers: [HTTP2HeaderPair] = [], body: String? = nil,
                extract: [Extraction] = []) {
        self.name = name
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.extract = extract
    }
}

/// A header name and value template (a plain pair, so that the load module's public API stays free of NIO types).
public struct HTTP2HeaderPair: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name.lowercased()
        self.value = value
    }
}

/// Takes a value out of a response into a flow variable.
public struct Extraction: Sendable, Equatable {
    public enum Source: Sendable, Equatable, CustomStringConvertible {
        /// A response header (case-insensitive), its first value.
        case header(String)
        /// A field of a JSON body: `a.b[0].c`.
        case json(String)

        public var description: String {
            switch self {
            case .header(let name): return "header \(name)"
            case .json(let path): return "JSON field \(path)"
            }
        }
    }

    public var variable: String
    public var source: Source

    public init(variable: String, source: Source) {
        self.variable = variable
        self.source = source
    }

    /// The extracted value, or nil when the response does not have it.
    public func value(headers: [(name: String, value: String)], body: Data?) -> String? {
        switch source {
        case .header(let name):
            let lower = name.lowercased()
            return headers.first { $0.name.lowercased() == lower }?.value
        case .json(let path):
            guard let body, let object = try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]) else { return nil }
            return Self.lookup(path, in: object)
        }
    }

    /// Follows `a.b[0].c` through dictionaries and arrays; scalars become strings.
    static func lookup(_ path: String, in object: Any) -> String? {
        var current: Any = object
        for component in Self.components(path) {
            switch component {
            case .key(let key):
                guard let dict = current as? [String: Any], let next = dict[key] else { return nil }
                current = next
            case .index(let i):
                guard let array = current as? [Any], i >= 0, i < array.count else { return nil }
                current = array[i]
            }
        }
        switch current {
        case let s as String: return s
        case let n as NSNumber:
            // JSONSerialization gives booleans as NSNumber too; their Objective-C type code is 'c'.
            if String(cString: n.objCType) == "c" { return n.boolValue ? "true" : "false" }
            return n.stringValue
        case is NSNull: return nil
        default:
            guard let data = try? JSONSerialization.data(withJSONObject: current, options: [.sortedKeys]) else { return nil }
            return String(decoding: data, as: UTF8.self)
        }
    }

    enum Component: Equatable {
        case key(String)
        case index(Int)
    }

    static func components(_ path: String) -> [Component] {
        var out: [Component] = []
        for part in path.split(separator: ".", omittingEmptySubsequences: true) {
            var name = Substring(part)
            var indices: [Int] = []
            while let open = name.lastIndex(of: "["), name.hasSuffix("]"),
                  let index = Int(name[name.index(after: open)..<name.index(before: name.endIndex)]) {
                indices.insert(index, at: 0)
                name = name[..<open]
            }
            if !name.isEmpty { out.append(.key(String(name))) }
            out += indices.map(Component.index)
        }
        return out
    }

    /// Checks that a JSON path is well formed; returns a reason when it is not.
    public static func checkJSONPath(_ path: String) -> String? {
        if path.isEmpty { return "the JSON path is empty" }
        if path.contains("..") || path.hasPrefix(".") || path.hasSuffix(".") { return "'\(path)' has an empty component" }
        var brackets = 0
        for c in path {
            if c == "[" { brackets += 1 }
            if c == "]" { brackets -= 1 }
            if brackets < 0 || brackets > 1 { return "'\(path)' has unbalanced brackets" }
        }
        return brackets == 0 ? nil : "'\(path)' has unbalanced brackets"
    }
}
