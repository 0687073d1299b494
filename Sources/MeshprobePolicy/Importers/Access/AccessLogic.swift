import MeshprobeYAML

/// A condition's value when part of what decides it is not known here (a JWT, the prober's address, a label the
/// manifests do not show): Kleene's three-valued logic, so that `yes` and `no` hold whatever the unknowns turn out to
/// be, and `unknown` carries why.
enum Truth: Equatable {
    case yes, no
    case unknown(String)

    init(_ holds: Bool) { self = holds ? .yes : .no }

    /// No when any is no; else unknown (the first's reason) when any is; else yes. An empty list holds.
    static func all(_ values: [Truth]) -> Truth {
        if values.contains(.no) { return .no }
        return values.first { if case .unknown = $0 { true } else { false } } ?? .yes
    }

    /// Yes when any is yes; else unknown (the first's reason) when any is; else no. An empty list does not hold.
    static func any(_ values: [Truth]) -> Truth {
        if values.contains(.yes) { return .yes }
        return values.first { if case .unknown = $0 { true } else { false } } ?? .no
    }

    var negated: Truth {
        switch self {
        case .yes: .no
        case .no: .yes
        case .unknown: self
        }
    }

    /// The reason of an unknown value.
    var reason: String? {
        if case .unknown(let why) = self { return why }
        return nil
    }
}

/// What the manifests decide for one cell: a decision and the resource that made it, or why they cannot say.
enum AccessVerdict: Equatable {
    case decided(AccessDecision, source: String)
    case open(String)

    /// One verdict from several possibilities the manifests leave open (which PeerAuthentication mode, which Server,
    /// which certificate name): decided when every possibility decides alike, else open, naming what each decides.
    static func agreed(_ outcomes: [(label: String, verdict: AccessVerdict)]) -> AccessVerdict {
        guard let first = outcomes.first else { return .open("nothing decides this cell") }
        if outcomes.count == 1 { return first.verdict }
        if case .decided(let decision, _) = first.verdict,
           outcomes.allSatisfy({ if case .decided(decision, _) = $0.verdict { true } else { false } }) {
            return first.verdict
        }
        if let open = outcomes.first(where: { if case .open = $0.verdict { true } else { false } }), case .open(let why) = open.verdict {
            return .open("\(open.label): \(why)")
        }
        let words = outcomes.map { outcome -> String in
            guard case .decided(let d, let source) = outcome.verdict else { return outcome.label }
            return "\(outcome.label): \(d.rawValue) (\(source))"
        }
        return .open("the manifests leave it open: " + words.joined(separator: "; "))
    }
}

/// A manifest's name as notes and sources write it: `FILE:LINE KIND NAMESPACE/NAME`.
struct ManifestName: Equatable {
    var kind: String
    var name: String
    var namespace: String?
    var file: String
    var line: Int

    init(_ document: YAMLValue, kind: String) throws(YAMLInputError) {
        self.kind = kind
        name = try document["metadata"]?["name"]?.name() ?? "(unnamed)"
        namespace = try document["metadata"]?["namespace"]?.name()
        file = document.file
        line = document.line
    }

    /// `KIND NAMESPACE/NAME`, or `KIND NAME` without a namespace.
    var resource: String { "\(kind) \(namespace.map { "\($0)/" } ?? "")\(name)" }
    var source: String { "\(file):\(line) \(resource)" }
}

/// A Kubernetes label selector (`matchLabels`, `matchExpressions` with In, NotIn, Exists, DoesNotExist).
struct LabelSelector: CustomStringConvertible {
    var matchLabels: [String: String] = [:]
    var expressions: [(key: String, op: String, values: [String])] = []

    init(matchLabels: [String: String] = [:]) { self.matchLabels = matchLabels }

    init(_ value: YAMLValue, expressions allowed: Bool) throws(YAMLInputError) {
        if let labels = value["matchLabels"] {
            for (key, v, _) in try labels.stringMap() { matchLabels[key] = v }
        }
        guard let list = value["matchExpressions"] else { return }
        guard allowed else { throw list.error("a workload selector takes matchLabels only") }
        for e in try list.list() {
            guard let key = try e["key"]?.string(), let op = try e["operator"]?.string() else {
                throw e.error("a match expression needs key and operator")
            }
            guard ["In", "NotIn", "Exists", "DoesNotExist"].contains(op) else {
                throw e.error("operator '\(op)': expected In, NotIn, Exists or DoesNotExist")
            }
            let values = try e["values"]?.list().map { v throws(YAMLInputError) in try v.string() } ?? []
            expressions.append((key, op, values))
        }
    }

    var isEmpty: Bool { matchLabels.isEmpty && expressions.isEmpty }

    var description: String {
        (matchLabels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            + expressions.map { "\($0.key) \($0.op) [\($0.values.joined(separator: ","))]" }).joined(separator: ", ")
    }

    /// Whether pods with `labels` are selected; with `complete` false the pods may carry more labels than those known,
    /// so a requirement on another key is unknown.
    func selects(_ labels: [String: String], complete: Bool, pods: String) -> Truth {
        func missing(_ key: String) -> Truth {
            complete ? .no : .unknown("whether \(pods) carry the label \(key) is not known from the manifests")
        }
        var parts: [Truth] = matchLabels.sorted { $0.key < $1.key }.map { key, value in
            guard let have = labels[key] else { return missing(key) }
            return Truth(have == value)
        }
        for e in expressions {
            let have = labels[e.key]
            switch e.op {
            case "In": parts.append(have.map { Truth(e.values.contains($0)) } ?? missing(e.key))
            case "NotIn": parts.append(have.map { Truth(!e.values.contains($0)) } ?? (complete ? .yes : missing(e.key).negated))
            case "Exists": parts.append(have != nil ? .yes : missing(e.key))
            default: parts.append(have != nil ? .no : (complete ? .yes : missing(e.key)))
            }
        }
        return Truth.all(parts)
    }
}

/// Istio's and Envoy's string match in policies: `*` any non-empty value, `*suffix`, `prefix*`, else exact.
func wildcardMatch(_ pattern: String, _ value: String, ignoringCase: Bool = false) -> Bool {
    let p = ignoringCase ? pattern.lowercased() : pattern
    let v = ignoringCase ? value.lowercased() : value
    if p == "*" { return !v.isEmpty }
    if p.hasPrefix("*") { return v.hasSuffix(p.dropFirst()) }
    if p.hasSuffix("*") { return v.hasPrefix(p.dropLast()) }
    return v == p
}

/// `text` as an RE2 literal (Go's regexp.QuoteMeta).
func quotedRE2(_ text: String) -> String {
    var out = ""
    for c in text {
        if "\\.+*?()|[]{}^$".contains(c) { out.append("\\") }
        out.append(c)
    }
    return out
}

/// Strings of a list that may be absent (`[]`), numbers as written.
func stringList(_ value: YAMLValue?) throws(YAMLInputError) -> [String] {
    guard let value else { return [] }
    return try value.list().map { v throws(YAMLInputError) in try v.string() }
}
