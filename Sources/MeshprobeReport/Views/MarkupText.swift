/// Escaping of untrusted text (workload names, header values, error messages, file names) for XML and HTML.
///
/// Both escape `& < > " '` so one function serves text and attribute values, and both replace what XML 1.0 forbids
/// anywhere (C0 controls other than tab, newline and carriage return; U+FFFE, U+FFFF) and the C1 controls with
/// U+FFFD, so a hostile server's stamp cannot make the report unparseable. Invalid UTF-8 never reaches here: Swift
/// strings made from bytes (`String(decoding:as:)`) already hold U+FFFD for it.
public enum MarkupText {
    /// Text safe inside an XML or HTML element or a quoted attribute; in attributes, tab, newline and carriage return
    /// become character references so parsers keep them (attribute-value normalisation would turn them into spaces).
    public static func escape(_ text: String, attribute: Bool = false) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\t", "\n", "\r":
                if attribute { out += "&#\(scalar.value);" } else { out.unicodeScalars.append(scalar) }
            default:
                out.unicodeScalars.append(allowed(scalar) ? scalar : "\u{FFFD}")
            }
        }
        return out
    }

    /// Whether XML 1.0 allows `scalar` (and it is not a C1 control, which HTML reports as a parse error).
    static func allowed(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        if v < 0x20 { return v == 0x09 || v == 0x0A || v == 0x0D }
        if (0x7F...0x9F).contains(v) { return false }
        if v == 0xFFFE || v == 0xFFFF { return false }
        return true
    }
}
