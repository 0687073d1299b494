/// Text from a peer or a file made safe to show: the one rule for what counts as a control character, shared by the
/// terminal output (`TerminalStyle`) and the control API's client (`FaultControlJSON`).
public enum PrintableText {
    /// C0 controls, DEL, C1 controls (which some terminals obey in UTF-8) and bidirectional overrides.
    public static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        return v < 0x20 || (0x7F...0x9F).contains(v) || (0x202A...0x202E).contains(v) || (0x2066...0x2069).contains(v)
    }

    /// `text` with every control character (newlines too) replaced by U+FFFD.
    public static func replacingControls(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars { out.append(isControl(scalar) ? "\u{FFFD}" : scalar) }
        return String(out)
    }
}
