import MeshprobeSpec

extension TemplateString {
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
