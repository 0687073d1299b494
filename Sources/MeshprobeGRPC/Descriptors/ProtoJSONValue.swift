/// A JSON value as the proto3 JSON mapping reads and writes it: numbers keep their text (a 64-bit integer is exact,
/// never a `Double`), objects keep their members' order and repeats (a repeated name is an error the mapping names).
enum ProtoJSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([ProtoJSONValue])
    case object([(String, ProtoJSONValue)])

    static func == (a: ProtoJSONValue, b: ProtoJSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): true
        case (.bool(let x), .bool(let y)): x == y
        case (.number(let x), .number(let y)), (.string(let x), .string(let y)): x == y
        case (.array(let x), .array(let y)): x == y
        case (.object(let x), .object(let y)): x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    /// What the value is, for "expected X, got Y": the value itself when short, else its kind.
    var shown: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let text): return text.count <= 40 ? text : "a number"
        case .string(let s):
            let printable = s.count <= 40 ? ProtoJSONWriter.quoted(s) : ProtoJSONWriter.quoted(String(s.prefix(37))) + "..."
            return printable
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// A JSON text the parser refused, at its line and column.
struct ProtoJSONSyntaxError: Error, Sendable {
    var line: Int
    var column: Int
    var message: String
}

/// RFC 8259 JSON, strict: no comments, no trailing commas, no leading zeros, no control characters in strings, one
/// value and only whitespace after it; nesting deeper than `maximumDepth` is refused (no unbounded recursion).
struct ProtoJSONParser {
    static let maximumDepth = 100

    private let bytes: [UInt8]
    private var index = 0

    static func parse(_ text: String) throws(ProtoJSONSyntaxError) -> ProtoJSONValue {
        var parser = ProtoJSONParser(bytes: Array(text.utf8))
        parser.skipWhitespace()
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.index == parser.bytes.count else { throw parser.fail("unexpected text after the JSON value") }
        return value
    }

    private init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    private func fail(_ message: String) -> ProtoJSONSyntaxError {
        var line = 1
        var column = 1
        for byte in bytes[..<min(index, bytes.count)] {
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
        }
        return ProtoJSONSyntaxError(line: line, column: column, message: message)
    }

    private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func skipWhitespace() {
        while let byte = current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { index += 1 }
    }

    private mutating func value(depth: Int) throws(ProtoJSONSyntaxError) -> ProtoJSONValue {
        guard depth < Self.maximumDepth else { throw fail("nested deeper than \(Self.maximumDepth) levels") }
        guard let byte = current else { throw fail("the JSON ends where a value should be") }
        switch byte {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw fail("expected a JSON value")
        }
    }

    private mutating func literal(_ word: String) throws(ProtoJSONSyntaxError) {
        for expected in word.utf8 {
            guard current == expected else { throw fail("expected a JSON value") }
            index += 1
        }
    }

    private mutating func object(depth: Int) throws(ProtoJSONSyntaxError) -> ProtoJSONValue {
        index += 1
        var members: [(String, ProtoJSONValue)] = []
        skipWhitespace()
        if current == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\"") else { throw fail("expected a member name in double quotes") }
            let name = try string()
            skipWhitespace()
            guard current == UInt8(ascii: ":") else { throw fail("expected ':' after the member name") }
            index += 1
            skipWhitespace()
            members.append((name, try value(depth: depth + 1)))
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"): index += 1; return .object(members)
            default: throw fail("expected ',' or '}' in an object")
            }
        }
    }

    private mutating func array(depth: Int) throws(ProtoJSONSyntaxError) -> ProtoJSONValue {
        index += 1
        var elements: [ProtoJSONValue] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try value(depth: depth + 1))
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"): index += 1; return .array(elements)
            default: throw fail("expected ',' or ']' in an array")
            }
        }
    }

    private mutating func number() throws(ProtoJSONSyntaxError) -> String {
        let start = index
        if current == UInt8(ascii: "-") { index += 1 }
        guard let first = current, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9") else { throw fail("expected a digit") }
        if first == UInt8(ascii: "0") {
            index += 1
            if let next = current, next >= UInt8(ascii: "0"), next <= UInt8(ascii: "9") { throw fail("a number must not start with 0") }
        } else {
            skipDigits()
        }
        if current == UInt8(ascii: ".") {
            index += 1
            guard try digitsFollow() else { throw fail("expected a digit after '.'") }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            index += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
            guard try digitsFollow() else { throw fail("expected a digit in the exponent") }
        }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    private mutating func digitsFollow() throws(ProtoJSONSyntaxError) -> Bool {
        let start = index
        skipDigits()
        return index > start
    }

    private mutating func skipDigits() {
        while let byte = current, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") { index += 1 }
    }

    private mutating func string() throws(ProtoJSONSyntaxError) -> String {
        index += 1
        var out: [UInt8] = []
        while true {
            guard let byte = current else { throw fail("the JSON ends inside a string") }
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                guard let text = String(validating: out, as: UTF8.self) else { throw fail("a string that is not valid UTF-8") }
                return text
            case UInt8(ascii: "\\"):
                guard let escape = current else { throw fail("the JSON ends inside a string") }
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if scalar >= 0xD800, scalar < 0xDC00 {
                        guard current == UInt8(ascii: "\\"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "u") else {
                            throw fail("a lone UTF-16 surrogate in a \\u escape")
                        }
                        index += 2
                        let low = try hex4()
                        guard low >= 0xDC00, low < 0xE000 else { throw fail("a lone UTF-16 surrogate in a \\u escape") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw fail("a lone UTF-16 surrogate in a \\u escape") }
                    out.append(contentsOf: Array(String(Character(unicode)).utf8))
                default: throw fail("an unknown escape in a string")
                }
            case 0x00..<0x20: throw fail("a control character in a string (escape it)")
            default: out.append(byte)
            }
        }
    }

    private mutating func hex4() throws(ProtoJSONSyntaxError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let byte = current, let digit = GRPCMetadata.hexValue(byte) else { throw fail("expected 4 hex digits after \\u") }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }
}

/// Writes JSON text: compact, or indented by two spaces a level.
enum ProtoJSONWriter {
    static func text(_ value: ProtoJSONValue, pretty: Bool) -> String {
        var out = ""
        write(value, pretty: pretty, indent: 0, to: &out)
        return out
    }

    private static func write(_ value: ProtoJSONValue, pretty: Bool, indent: Int, to out: inout String) {
        switch value {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let text): out += text
        case .string(let s): out += quoted(s)
        case .array(let elements):
            guard !elements.isEmpty else { out += "[]"; return }
            out += "["
            for (i, element) in elements.enumerated() {
                if i > 0 { out += "," }
                newline(pretty, indent + 1, &out)
                write(element, pretty: pretty, indent: indent + 1, to: &out)
            }
            newline(pretty, indent, &out)
            out += "]"
        case .object(let members):
            guard !members.isEmpty else { out += "{}"; return }
            out += "{"
            for (i, (name, member)) in members.enumerated() {
                if i > 0 { out += "," }
                newline(pretty, indent + 1, &out)
                out += quoted(name)
                out += pretty ? ": " : ":"
                write(member, pretty: pretty, indent: indent + 1, to: &out)
            }
            newline(pretty, indent, &out)
            out += "}"
        }
    }

    private static func newline(_ pretty: Bool, _ indent: Int, _ out: inout String) {
        guard pretty else { return }
        out += "\n"
        out += String(repeating: "  ", count: indent)
    }

    /// A JSON string literal: `"` and `\` escaped, control characters as `\n`, `\t`, ... or `\u00XX`.
    static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\u{00}"..."\u{1F}", "\u{7F}", "\u{2028}", "\u{2029}":
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
