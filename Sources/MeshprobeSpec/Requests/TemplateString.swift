/// A string with per-request placeholders, compiled once (here) and rendered for every request (by the engine).
///
/// Placeholders: `{{seq}}` (a sequence number unique within the run), `{{uuid}}` (a random version-4 UUID),
/// `{{random:N}}` (an integer in 0..<N), `{{pick:a,b,c}}` (one of the values at random), `{{csv:COLUMN}}` (the
/// column, by header name or 1-based number, of the next row of the run's CSV file: rows are used in turn and
/// every placeholder of one request reads the same row), and `{{env:NAME}}` (an environment variable, read once).
public struct TemplateString: Sendable, Equatable {
    @usableFromInline package enum Part: Sendable, Equatable {
        case literal(String)
        case sequence
        case uuid
        case random(UInt64)
        case pick([String])
        case csv(Int)
        case variable(String)
    }

    @usableFromInline package let parts: [Part]

    /// The text when it has no per-request placeholder.
    @inlinable public var constantValue: String? {
        if parts.isEmpty { return "" }
        if parts.count == 1, case .literal(let text) = parts[0] { return text }
        return nil
    }

    public var usesCSV: Bool { parts.contains { if case .csv = $0 { return true } else { return false } } }

    /// Compiles `text`; `field` names it in errors (for example `-H x-id` or `request.path`).
    /// - Parameter variables: the flow variables available here (nil: `{{var:...}}` is not allowed at all).
    public init(_ text: String, field: String, csvHeader: [String]? = nil,
                environment: [String: String], variables: Set<String>? = []) throws(LoadPlanError) {
        var parts: [Part] = []
        var literal = ""
        var rest = Substring(text)
        while let open = rest.range(of: "{{") {
            literal += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].range(of: "}}") else {
                throw LoadPlanError(field: field, value: text, reason: "a '{{' has no closing '}}'")
            }
            let body = rest[open.upperBound..<close.lowerBound].trimmingSpaces()
            rest = rest[close.upperBound...]
            let name = body.split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
            let argument = body.firstIndex(of: ":").map { String(body[body.index(after: $0)...]) }
            let part: Part
            switch (name, argument) {
            case ("seq", nil): part = .sequence
            case ("uuid", nil): part = .uuid
            case ("random", let n?):
                guard let bound = UInt64(n), bound > 0 else {
                    throw LoadPlanError(field: field, value: text, reason: "{{random:N}} needs a positive whole N, got '\(n)'")
                }
                part = .random(bound)
            case ("pick", let list?):
                let values = list.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                guard !values.isEmpty, !list.isEmpty else {
                    throw LoadPlanError(field: field, value: text, reason: "{{pick:a,b,c}} needs at least one value")
                }
                part = .pick(values)
            case ("env", let variable?):
                guard let value = environment[variable] else {
                    throw LoadPlanError(field: field, value: text, reason: "the environment variable \(variable) is not set")
                }
                part = .literal(value)
            case ("var", let name?):
                guard !name.isEmpty else {
                    throw LoadPlanError(field: field, value: text, reason: "{{var:NAME}} needs a variable name")
                }
                if let known = variables, !known.contains(name) {
                    throw LoadPlanError(field: field, value: text,
                                                 reason: "no earlier step or setup step extracts '\(name)'\(known.isEmpty ? "" : " (known: \(known.sorted().joined(separator: ", ")))")")
                }
                part = .variable(name)
            case ("csv", let column?):
                guard let header = csvHeader else {
                    throw LoadPlanError(field: field, value: text, reason: "{{csv:\(column)}} needs a CSV file (--csv FILE or csv: in the scenario)")
                }
                if let index = header.firstIndex(of: column) {
                    part = .csv(index)
                } else if let number = Int(column), number >= 1, number <= header.count {
                    part = .csv(number - 1)
                } else {
                    throw LoadPlanError(field: field, value: text,
                                                 reason: "the CSV file has no column '\(column)' (columns: \(header.joined(separator: ", ")))")
                }
            default:
                throw LoadPlanError(field: field, value: text,
                                             reason: "unknown placeholder '{{\(body)}}': use seq, uuid, random:N, pick:a,b, csv:COLUMN, env:NAME or var:NAME")
            }
            if case .literal(let value) = part {
                literal += value
            } else {
                if !literal.isEmpty { parts.append(.literal(literal)) }
                literal = ""
                parts.append(part)
            }
        }
        literal += rest
        if !literal.isEmpty { parts.append(.literal(literal)) }
        self.parts = parts
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> Substring {
        var s = self
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return s
    }
}
