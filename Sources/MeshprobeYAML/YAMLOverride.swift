import MeshprobeIdentity
import Yams

/// A change to a YAML document made before it is read (`--set load.connections=20`, `--target URL`): the typed
/// reading then sees the changed tree, so a value it refuses is reported as a file's error is, at the field's place
/// in the file (or its section's, for a field the file does not give), and `explain` adds where the value came from.
public struct YAMLOverride: Sendable, Equatable {
    /// What is put at the path.
    public enum Change: Sendable, Equatable {
        /// A scalar; only a scalar or a missing field may be replaced (a mapping or a list is refused).
        case scalar(String)
        /// A list of scalars, replacing whatever is there.
        case scalars([String])
        /// The field is taken out (nothing happens when the file does not give it).
        case remove
    }

    /// One step of a path: a mapping's key or a list's index.
    public enum Component: Sendable, Equatable {
        case key(String)
        case index(Int)
    }

    /// The path as errors name fields: `load.connections`, `gameday.steps[0].rate`.
    public var path: String
    public var components: [Component]
    public var change: Change
    /// What the value came from, for messages: `--set load.connections=20`, `--target`.
    public var source: String

    public init(path: String, change: Change, source: String) throws(InputValueError) {
        self.path = path
        self.components = try Self.components(of: path)
        self.change = change
        self.source = source
    }

    /// A change at a path of plain keys (a command's own flag: `--target` changes `targets`).
    public init(keys: [String], change: Change, source: String) {
        self.path = keys.joined(separator: ".")
        self.components = keys.map(Component.key)
        self.change = change
        self.source = source
    }

    /// Reads `--set PATH=VALUE`: the value is a scalar as the file would write it (`20`, `0.03`, `30s`; a relative
    /// path in it is relative to the file's directory, as the file's own are).
    public init(assignment text: String) throws(InputValueError) {
        guard let eq = text.firstIndex(of: "="), eq != text.startIndex else {
            throw InputValueError("'\(text)': expected FIELD=VALUE, such as load.connections=20")
        }
        try self.init(path: String(text[..<eq]), change: .scalar(String(text[text.index(after: eq)...])), source: "--set \(text)")
    }

    /// Splits a dotted path, with `[N]` after a key for a list's item. A key cannot hold `.`, `[`, `]` or `=`.
    static func components(of path: String) throws(InputValueError) -> [Component] {
        var out: [Component] = []
        for part in path.split(separator: ".", omittingEmptySubsequences: false) {
            var rest = Substring(part)
            let key = rest.prefix { $0 != "[" }
            guard !key.isEmpty, !key.contains("]") else {
                throw InputValueError("'\(path)': expected a dotted path of field names such as load.connections or gameday.steps[0].rate")
            }
            out.append(.key(String(key)))
            rest = rest.dropFirst(key.count)
            while !rest.isEmpty {
                guard rest.first == "[", let close = rest.firstIndex(of: "]"),
                      let index = Int(rest[rest.index(after: rest.startIndex)..<close]), index >= 0 else {
                    throw InputValueError("'\(path)': a list item is written [N], N from 0, as in gameday.steps[0].rate")
                }
                out.append(.index(index))
                rest = rest[rest.index(after: close)...]
            }
        }
        return out
    }

    /// Adds where the value came from to each error (of `error` and its `others`) about a changed field (or a field
    /// inside it): `(the value comes from --set load.connections=0)`. An error about a section or mapping that holds
    /// changed fields (a check of the whole: `expect.split: the weights sum to 90`) names each change made inside it:
    /// `(with --set expect.split.v1=40)`.
    public static func explain(_ error: YAMLInputError, by overrides: [YAMLOverride]) -> YAMLInputError {
        func explainOne(_ error: YAMLInputError) -> YAMLInputError {
            var explained = error
            if let override = overrides.last(where: { $0.change != .remove && $0.covers(error.field) }) {
                explained.message += " (the value comes from \(override.source))"
                return explained
            }
            var inside: [String] = []
            for override in overrides where override.change != .remove && override.isInside(error.field) && !inside.contains(override.source) {
                inside.append(override.source)
            }
            guard !inside.isEmpty else { return error }
            explained.message += " (with \(inside.joined(separator: ", ")))"
            return explained
        }
        var explained = explainOne(error)
        explained.others = error.others.map(explainOne)
        return explained
    }

    /// Whether `field` is this path or inside it.
    func covers(_ field: String) -> Bool {
        field == path || field.hasPrefix(path + ".") || field.hasPrefix(path + "[")
    }

    /// Whether this path is inside `field` (a section or mapping of the file); nothing is inside the empty field.
    func isInside(_ field: String) -> Bool {
        !field.isEmpty && (path.hasPrefix(field + ".") || path.hasPrefix(field + "["))
    }
}

extension YAMLValue {
    /// The document with `overrides` applied in order. A path that goes through a scalar or past a list's end is an
    /// error at that place naming the override's source; missing mappings on the way are created.
    public func overriding(_ overrides: [YAMLOverride]) throws(YAMLInputError) -> YAMLValue {
        var root = node
        for override in overrides {
            root = try apply(override, at: override.components[...], to: root, mark: root.mark, walked: "") ?? root
        }
        return YAMLValue(node: root, file: file, path: path)
    }

    /// The node at the end of `components` under `node` (nil: absent) changed; nil when the result is absent.
    private func apply(_ override: YAMLOverride, at components: ArraySlice<YAMLOverride.Component>, to node: Node?,
                       mark: Mark?, walked: String) throws(YAMLInputError) -> Node? {
        func refuse(_ what: String) -> YAMLInputError {
            YAMLInputError(file: file, line: node?.mark?.line ?? mark?.line ?? 1, column: node?.mark?.column ?? mark?.column ?? 1,
                           field: walked, message: "\(override.source): \(what)")
        }
        guard let first = components.first else {
            switch override.change {
            case .remove:
                return nil
            case .scalar(let text):
                if let node, node.scalar == nil {
                    throw refuse("replaces a single value, and the file has \(node.mapping != nil ? "a mapping" : "a list") here")
                }
                return .scalar(Node.Scalar(text, .implicit, .any, node?.mark ?? mark))
            case .scalars(let texts):
                let at = node?.mark ?? mark
                return .sequence(Node.Sequence(texts.map { .scalar(Node.Scalar($0, .implicit, .any, at)) }, .implicit, .any, at))
            }
        }
        let rest = components.dropFirst()
        switch first {
        case .key(let key):
            let here = walked.isEmpty ? key : "\(walked).\(key)"
            guard let node else {
                if override.change == .remove { return nil }
                let child = try apply(override, at: rest, to: nil, mark: mark, walked: here)
                return .mapping(Node.Mapping(child.map { [(.scalar(Node.Scalar(key, .implicit, .any, mark)), $0)] } ?? [],
                                             .implicit, .any, mark))
            }
            guard var mapping = node.mapping else {
                throw refuse("\(walked.isEmpty ? "the document" : walked) is not a mapping, so it has no field \(key)")
            }
            let index = mapping.firstIndex { $0.key.string == key }
            if index == nil && override.change == .remove { return node }
            let child = try apply(override, at: rest, to: index.map { mapping[$0].value }, mark: node.mark, walked: here)
            var pairs = mapping.map { ($0.key, $0.value) }
            switch (index, child) {
            case let (i?, value?): pairs[i - mapping.startIndex].1 = value
            case let (i?, nil): pairs.remove(at: i - mapping.startIndex)
            case let (nil, value?): pairs.append((.scalar(Node.Scalar(key, .implicit, .any, node.mark)), value))
            case (nil, nil): break
            }
            mapping = Node.Mapping(pairs, mapping.tag, mapping.style, mapping.mark)
            return .mapping(mapping)
        case .index(let i):
            let here = "\(walked)[\(i)]"
            guard let node else {
                if override.change == .remove { return nil }
                throw refuse("the file has no \(walked) list")
            }
            guard let sequence = node.sequence else { throw refuse("\(walked) is not a list") }
            var items = Array(sequence)
            guard i < items.count else {
                if override.change == .remove { return node }
                throw refuse("\(walked) has \(items.count) item\(items.count == 1 ? "" : "s"), so no [\(i)]")
            }
            if let child = try apply(override, at: rest, to: items[i], mark: node.mark, walked: here) {
                items[i] = child
            } else {
                items.remove(at: i)
            }
            return .sequence(Node.Sequence(items, sequence.tag, sequence.style, sequence.mark))
        }
    }
}
