import Foundation
import MeshprobeYAML

/// How a route matches one request attribute (a header, the path, the method).
public enum ValueMatch: Sendable, Equatable, CustomStringConvertible {
    case exact(String)
    case prefix(String)
    /// A regular expression that must match the whole value (RE2 semantics, as in Envoy; see `LinearRegex`).
    case regex(String)

    public var description: String {
        switch self {
        case .exact(let v): return "= \(v)"
        case .prefix(let v): return "prefix \(v)"
        case .regex(let v): return "~ \(v)"
        }
    }

    public func matches(_ value: String) -> Bool {
        switch self {
        case .exact(let v): return value == v
        case .prefix(let v): return value.hasPrefix(v)
        case .regex(let pattern):
            // Linear in the value whatever the pattern (Swift's Regex backtracks: `(a|a)*b` took exponential time).
            guard let regex = try? LinearRegex(pattern) else { return false }
            return regex.wholeMatch(value)
        }
    }

    /// A value a request can send to match: the exact value, the prefix itself, or the literal a regex spells
    /// (`^/reviews/1$`, `beta\.users`); nil for a regex with operators, which needs an example value.
    public var sample: String? {
        switch self {
        case .exact(let v), .prefix(let v): return v
        case .regex(var pattern):
            if pattern.hasPrefix("^") { pattern.removeFirst() }
            if pattern.hasSuffix("$") && !pattern.hasSuffix("\\$") { pattern.removeLast() }
            var literal = ""
            var escaped = false
            for c in pattern {
                if escaped {
                    guard c.isPunctuation || c.isSymbol else { return nil }  // \d, \w, ...: a class, not a literal.
                    literal.append(c)
                    escaped = false
                } else if c == "\\" {
                    escaped = true
                } else if ".^$|?*+()[]{}".contains(c) {
                    return nil
                } else {
                    literal.append(c)
                }
            }
            return escaped || literal.isEmpty ? nil : literal
        }
    }
}

/// One condition of a route's match, and the value requests send to meet it.
public struct MatchCondition: Sendable, Equatable, CustomStringConvertible {
    public enum Subject: Sendable, Equatable {
        case header(String)
        case path
        case method
    }

    public var subject: Subject
    public var match: ValueMatch
    /// What the probe's requests carry.
    public var sent: String

    public init(subject: Subject, match: ValueMatch, sent: String) {
        self.subject = subject
        self.match = match
        self.sent = sent
    }

    /// A condition from a mesh manifest, sending the match's own sample; nil for a regex that needs an example.
    init?(subject: Subject, match: ValueMatch) {
        guard let sample = match.sample else { return nil }
        self.init(subject: subject, match: match, sent: sample)
    }

    /// The importers' note for a route left out because a regex in it needs an example value.
    static func regexNote(at value: YAMLValue, route: String, what: String) -> String {
        "\(value.file):\(value.line): \(route): not checked: the \(what) regex needs an example value "
            + "(write this route in the policy's routes with send: VALUE)"
    }

    public var description: String {
        let what: String
        switch subject {
        case .header(let name): what = "header \(name)"
        case .path: what = "path"
        case .method: what = "method"
        }
        if case .exact = match { return "\(what) \(match)" }
        return "\(what) \(match) (sent \(sent))"
    }

    /// Reads `VALUE` (exact) or `{exact: VALUE}`, `{prefix: PREFIX, send: EXAMPLE}`, `{regex: RE, send: EXAMPLE}` from
    /// a policy file (a method is always exact).
    static func parse(_ value: YAMLValue, subject: Subject) throws(YAMLInputError) -> MatchCondition {
        if case .scalar = value.node {
            let exact = try value.string()
            try check(exact, subject: subject, at: value)
            return MatchCondition(subject: subject, match: .exact(exact), sent: exact)
        }
        guard subject != .method else { throw value.error("a method is one uppercase token such as GET or POST") }
        let f = try value.mapping(allowed: ["exact", "prefix", "regex", "send"])
        let kinds = ["exact", "prefix", "regex"].filter { f[$0] != nil }
        guard kinds.count == 1, let kind = kinds.first, let v = f[kind] else {
            throw value.error("give exactly one of exact, prefix, regex")
        }
        let text = try v.string()
        let match: ValueMatch
        switch kind {
        case "exact": match = .exact(text)
        case "prefix":
            guard !text.isEmpty else { throw v.error("an empty prefix matches everything: leave the match out") }
            match = .prefix(text)
        default:
            do {
                _ = try LinearRegex(text)
            } catch {
                throw v.error("not a regular expression meshprobe can match as RE2 does: \(error)")
            }
            match = .regex(text)
        }
        if case .exact = match, f["send"] != nil { throw value.error("an exact match sends its value: leave send out") }
        if case .regex = match, f["send"] == nil {
            throw value.error("a regex needs an example value that matches it: add send: VALUE")
        }
        guard let sent = try f["send"]?.string() ?? match.sample else { throw value.error("add send: VALUE") }
        guard match.matches(sent) else { throw (f["send"] ?? value).error("'\(sent)' does not match \(match)") }
        try check(sent, subject: subject, at: f["send"] ?? v)
        return MatchCondition(subject: subject, match: match, sent: sent)
    }

    private static func check(_ sent: String, subject: Subject, at value: YAMLValue) throws(YAMLInputError) {
        switch subject {
        case .path where !sent.hasPrefix("/"):
            throw value.error("a path must start with '/'")
        case .method where sent.isEmpty || !sent.allSatisfy({ $0.isLetter && $0.isUppercase }):
            throw value.error("a method is an uppercase token such as GET or POST")
        case .header where sent.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" }):
            throw value.error("a header value cannot hold CR, LF or NUL")
        default:
            break
        }
    }
}
