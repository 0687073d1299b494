/// A string with per-request placeholders, compiled once and rendered for every request.
///
/// Placeholders: `{{seq}}` (a sequence number unique within the run), `{{uuid}}` (a random version-4 UUID),
/// `{{random:N}}` (an integer in 0..<N), `{{pick:a,b,c}}` (one of the values at random), `{{csv:COLUMN}}` (the
/// column, by header name or 1-based number, of the next row of the run's CSV file: rows are used in turn and
/// every placeholder of one request reads the same row), and `{{env:NAME}}` (an environment variable, read once).
public struct TemplateString: Sendable, Equatable {
    enum Part: Sendable, Equatable {
        case literal(String)
        case sequence
        case uuid
        case random(UInt64)
        case pick([String])
        case csv(Int)
        case variable(String)
    }

    let parts: [Part]

    /// The text when it has no per-request placeholder.
    public var constantValue: String? {
        if parts.isEmpty { return "" }
        if parts.count == 1, case .literal(let text) = parts[0] { return text }
        return nil
    }

    public var usesCSV: Bool { parts.contains { if case .csv = $0 { return true } else { return false } } }

    /// Compiles `text`; `field` names it in errors (for example `-H x-id` or `request.path`).
    /// - Parameter variables: the flow variables available here (nil: `{{var:...}}` is not allowed at all).
    public init(_ text: String, field: String, csvHeader: [String]? = nil,
                environment: [String: String], variables: Set<String>? = []) throws(LoadConfigurationError) {
        var parts: [Part] = []
        var literal = ""
        var rest = Substring(text)
        while let open = rest.range(of: "{{") {
            literal += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].range(of: "}}") else {
                throw LoadConfigurationError(field: field, value: text, reason: "a '{{' has no closing '}}'")
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
                    throw LoadConfigurationError(field: field, value: text, reason: "{{random:N}} needs a positive whole N, got '\(n)'")
                }
                part = .random(bound)
            case ("pick", let list?):
                let values = list.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                guard !values.isEmpty, !list.isEmpty else {
                    throw LoadConfigurationError(field: field, value: text, reason: "{{pick:a,b,c}} needs at least one value")
                }
                part = .pick(values)
            case ("env", let variable?):
                guard let value = environment[variable] else {
                    throw LoadConfigurationError(field: field, value: text, reason: "the environment variable \(variable) is not set")
                }
                part = .literal(value)
            case ("var", let name?):
                guard !name.isEmpty else {
                    throw LoadConfigurationError(field: field, value: text, reason: "{{var:NAME}} needs a variable name")
                }
                if let known = variables, !known.contains(name) {
                    throw LoadConfigurationError(field: field, value: text,
                                                 reason: "no earlier step or setup step extracts '\(name)'\(known.isEmpty ? "" : " (known: \(known.sorted().joined(separator: ", ")))")")
                }
                part = .variable(name)
            case ("csv", let column?):
                guard let header = csvHeader else {
                    throw LoadConfigurationError(field: field, value: text, reason: "{{csv:\(column)}} needs a CSV file (--csv FILE or csv: in the scenario)")
                }
                if let index = header.firstIndex(of: column) {
                    part = .csv(index)
                } else if let number = Int(column), number >= 1, number <= header.count {
                    part = .csv(number - 1)
                } else {
                    throw LoadConfigurationError(field: field, value: text,
                                                 reason: "the CSV file has no column '\(column)' (columns: \(header.joined(separator: ", ")))")
                }
            default:
                throw LoadConfigurationError(field: field, value: text,
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

    /// Renders for one request.
    public func render(_ values: inout TemplateValues) -> String {
        if let constantValue { return constantValue }
        var out = ""
        for part in parts {
            switch part {
            case .literal(let text): out += text
            case .sequence: out += String(values.sequence)
            case .uuid: out += values.uuid()
            case .random(let bound): out += String(values.random.next() % bound)
            case .pick(let list): out += list[Int(values.random.next() % UInt64(list.count))]
            case .csv(let column): out += values.csvValue(column)
            case .variable(let name): out += values.variables[name] ?? ""
            }
        }
        return out
    }
}

/// The per-request state templates draw on: the sequence number, a seeded generator, the current CSV row.
public struct TemplateValues: Sendable {
    public var sequence: UInt64
    public var random: SplitMix64
    /// Flow variables for `{{var:NAME}}` (setup values, then what earlier steps of the iteration extracted).
    public var variables: [String: String] = [:]
    let csv: CSVTable?
    var row: Int = 0

    public init(sequence: UInt64, seed: UInt64, csv: CSVTable?) {
        self.sequence = sequence
        self.random = SplitMix64(seed: seed)
        self.csv = csv
    }

    /// Moves to the values of the next request.
    public mutating func advance(by step: UInt64) {
        sequence &+= step
        if let csv, !csv.rows.isEmpty { row = Int(sequence % UInt64(csv.rows.count)) }
    }

    func csvValue(_ column: Int) -> String {
        guard let csv, !csv.rows.isEmpty else { return "" }
        let r = csv.rows[row % csv.rows.count]
        return column < r.count ? r[column] : ""
    }

    mutating func uuid() -> String {
        var a = random.next()
        var b = random.next()
        a = (a & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000  // version 4
        b = (b & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000  // RFC 4122 variant
        func hex(_ v: UInt64, _ digits: Int) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: max(0, digits - s.count)) + s
        }
        return "\(hex(a >> 32, 8))-\(hex((a >> 16) & 0xFFFF, 4))-\(hex(a & 0xFFFF, 4))-\(hex(b >> 48, 4))-\(hex(b & 0xFFFF_FFFF_FFFF, 12))"
    }
}

/// A CSV file for `{{csv:COLUMN}}`: a header row, then data rows (RFC 4180 quoting).
public struct CSVTable: Sendable, Equatable {
    public var header: [String]
    public var rows: [[String]]

    public init(parsing text: String, source: String) throws(LoadConfigurationError) {
        var records: [[String]] = []
        var record: [String] = []
        var field = ""
        var inQuotes = false
        var line = 1
        var chars = Array(text)[...]
        while let c = chars.popFirst() {
            if inQuotes {
                if c == "\"" {
                    if chars.first == "\"" { field.append("\""); chars = chars.dropFirst() } else { inQuotes = false }
                } else {
                    if c == "\n" { line += 1 }
                    field.append(c)
                }
                continue
            }
            switch c {
            case "\"" where field.isEmpty: inQuotes = true
            case ",": record.append(field); field = ""
            case "\r": continue
            case "\n", "\r\n":
                record.append(field)
                field = ""
                if !(record.count == 1 && record[0].isEmpty) { records.append(record) }
                record = []
                line += 1
            default: field.append(c)
            }
        }
        if inQuotes { throw LoadConfigurationError(field: source, value: "line \(line)", reason: "a quoted field is not closed") }
        if !field.isEmpty || !record.isEmpty {
            record.append(field)
            records.append(record)
        }
        guard let header = records.first else {
            throw LoadConfigurationError(field: source, value: "", reason: "the CSV file is empty: it needs a header row and at least one data row")
        }
        guard records.count >= 2 else {
            throw LoadConfigurationError(field: source, value: "", reason: "the CSV file has a header but no data rows")
        }
        self.header = header
        self.rows = Array(records.dropFirst())
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
