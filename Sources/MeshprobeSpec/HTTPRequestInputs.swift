import Foundation
import MeshprobeIdentity

/// HTTP's token rule (RFC 9110, 5.6.2), for methods and header names.
public enum HTTPToken {
    public static func isToken(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || "!#$%&'*+-.^_`|~".utf8.contains(c)
        }
    }
}

/// A request's method: an HTTP token, upper-cased (`get` is GET).
public enum HTTPMethod {
    /// Why a method is refused.
    public static let rule = "must be an HTTP method token such as GET or POST (letters, digits, no spaces)"

    /// Parses a method; the one parse of `--method` and a file's `method`.
    public static func parse(_ text: String) throws(InputValueError) -> String {
        let method = text.uppercased()
        guard HTTPToken.isToken(method) else { throw InputValueError("'\(text)': \(rule)") }
        return method
    }
}

/// A request header as a user gives it: `-H 'name: value'`, or an entry of a file's `headers`. The name is lower-cased;
/// what it may be sent with (a token name, a value without CR, LF or NUL, connection-specific headers on HTTP/1.1
/// only) is `LoadPlan.headerProblem`'s to judge, which knows the HTTP version.
public struct HeaderField: Sendable, Equatable {
    public let name: String
    public let value: String

    /// Parses `name: value`, both sides trimmed.
    public init(parsing text: String) throws(InputValueError) {
        guard let colon = text.firstIndex(of: ":"), colon != text.startIndex else {
            throw InputValueError("'\(text)': expected 'name: value'")
        }
        try self.init(name: text[..<colon].trimmingCharacters(in: .whitespaces),
                      value: text[text.index(after: colon)...].trimmingCharacters(in: .whitespaces))
    }

    /// A header by name and value; a pseudo-header is refused.
    public init(name: String, value: String) throws(InputValueError) {
        guard !name.hasPrefix(":") else {
            throw InputValueError("'\(name)' cannot be set: pseudo-headers come from the target and method")
        }
        self.name = name.lowercased()
        self.value = value
    }
}
