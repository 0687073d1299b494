/// A duration as a flag or a file gives it: `DurationText`'s rule (a number and its unit; only `0` needs none), never
/// negative, at most `DurationText.maximumSeconds`, and positive unless the input allows zero.
///
/// It keeps the text it was written as, so that help texts and messages show the user's spelling.
public struct TimeSpan: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let seconds: Double
    /// As written (`500ms`).
    public let text: String

    /// Parses `text`; the one parse of every duration a flag or file takes.
    public init(parsing text: String, allowZero: Bool = false) throws(InputValueError) {
        let seconds: Double
        do { seconds = try DurationText.seconds(text) } catch { throw InputValueError(error.description) }
        guard seconds > 0 || (allowZero && seconds == 0) else {
            throw InputValueError("'\(text)': expected a \(allowZero ? "zero or positive" : "positive") duration such as 30s, 500ms or 2m")
        }
        guard seconds <= DurationText.maximumSeconds else {
            throw InputValueError("'\(text)': must be at most \(DurationText.maximumText)")
        }
        self.seconds = seconds
        self.text = text
    }

    /// A duration known to be valid, for defaults in code (`TimeSpan("10s")`); traps on a typo, which tests catch.
    public init(_ literal: StaticString) {
        try! self.init(parsing: "\(literal)", allowZero: true)
    }

    public var description: String { text }

    public static func < (a: TimeSpan, b: TimeSpan) -> Bool { a.seconds < b.seconds }
    public static func == (a: TimeSpan, b: TimeSpan) -> Bool { a.seconds == b.seconds }
    public func hash(into hasher: inout Hasher) { hasher.combine(seconds) }
}
