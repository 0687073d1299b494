import Foundation

/// A usage error (a flag or an argument the parser or a command's `validate()` refused) as meshprobe prints it, in
/// two lines as kubectl does: what is wrong, naming the command and the flag, and where the help is.
///
/// ```
/// meshprobe load: -d: '10' has no unit: write 10s or 10ms (units: us, ms, s, m or h)
/// see 'meshprobe load --help'
/// ```
///
/// Its words come from swift-argument-parser's `message(for:)` (which flag, which value), rephrased; the command from
/// the `See 'COMMAND --help'` line of its `fullMessage(for:)`. Exit code 2 (docs/conventions.md).
struct UsageError: Equatable {
    /// `meshprobe load`.
    var command: String
    /// What is wrong, with the flag first when there is one: `-d: '10' has no unit ...`.
    var message: String

    /// From the parser's texts: `message` (`message(for:)`) and `fullMessage` (`fullMessage(for:)`, for the command
    /// when `command` is nil: an error while parsing, before the command is known).
    init(message: String, fullMessage: String, command: String? = nil) {
        self.command = command ?? Self.command(in: fullMessage) ?? "meshprobe"
        self.message = Self.rephrased(message)
    }

    /// The two lines.
    var lines: [String] {
        ["\(command): \(message)", "see '\(command) --help'"]
    }

    /// The command the parser's `See 'meshprobe load --help' for more information.` line names.
    static func command(in fullMessage: String) -> String? {
        for line in fullMessage.split(separator: "\n") {
            let text = line.drop { $0 == " " }
            guard text.hasPrefix("See '"), let end = text.range(of: " --help'") else { continue }
            return String(text[text.index(text.startIndex, offsetBy: 5)..<end.lowerBound])
        }
        return nil
    }

    /// The parser's sentence with the flag first (`The value '10' is invalid for '-d <duration>': REASON` reads
    /// `-d: REASON`), on one line, starting in lower case as the rest of the line does.
    static func rephrased(_ message: String) -> String {
        let text = message.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: "; ")
        if let invalid = parse(text, "The value '", "' is invalid for '", "'") {
            let (value, subject, rest) = invalid
            let flag = subject.split(separator: " ").first.map(String.init) ?? subject
            guard rest.hasPrefix(": ") else { return "\(flag): '\(value)' is not a valid value\(rest)" }
            let reason = String(rest.dropFirst(2))
            return reason.hasPrefix("'\(value)'") ? "\(flag): \(reason)" : "\(flag): '\(value)': \(reason)"
        }
        if let missing = parse(text, "Missing value for '", "", "'") {
            let parts = missing.1.split(separator: " ", maxSplits: 1).map(String.init)
            return "\(parts[0]): needs a value\(parts.count > 1 ? " (\(parts[1]))" : "")\(missing.2)"
        }
        if let unknown = parse(text, "Unknown option '", "", "'") {
            let suggestion = parse(unknown.2, ". Did you mean '", "", "'?").map { "; did you mean \($0.1)?" } ?? unknown.2
            return "\(unknown.1): unknown option\(suggestion)"
        }
        if let noValue = parse(text, "The option '", "", "' does not take any value, but '") {
            let value = noValue.2.hasSuffix("' was specified.") ? String(noValue.2.dropLast("' was specified.".count)) : noValue.2
            return "\(noValue.1): takes no value, but '\(value)' was given"
        }
        guard let first = text.first, first.isUppercase, text.dropFirst().first?.isLowercase == true else { return text }
        return first.lowercased() + text.dropFirst()
    }

    /// Reads `PREFIX A MIDDLE B END...` (`middle` empty: `PREFIX B END...`): the first value (or empty), the value
    /// ending at `end`, and what follows `end`.
    private static func parse(_ text: String, _ prefix: String, _ middle: String, _ end: String) -> (String, String, String)? {
        guard text.hasPrefix(prefix) else { return nil }
        var rest = text.dropFirst(prefix.count)
        var first = ""
        if !middle.isEmpty {
            guard let m = rest.range(of: middle) else { return nil }
            first = String(rest[..<m.lowerBound])
            rest = rest[m.upperBound...]
        }
        guard let e = rest.range(of: end) else { return nil }
        return (first, String(rest[..<e.lowerBound]), String(rest[e.upperBound...]))
    }
}
