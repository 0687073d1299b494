import MeshprobeIdentity

/// An open model's rate, in requests per second (all connections together): 0, or `minimum` to `maximum`.
///
/// 0 is a rate only where the load ramps from or to nothing (a stage's target, a start with stages); the whole
/// configuration checks that.
public struct Rate: Sendable, Hashable, Comparable, CustomStringConvertible {
    public static let minimum = 0.001
    public static let maximum: Double = 10_000_000

    public let perSecond: Double

    public init(perSecond: Double) {
        self.perSecond = perSecond
    }

    /// Parses a number of requests per second; the one parse of every rate a flag or file takes.
    public init(parsing text: String) throws(InputValueError) {
        guard let value = Double(text), value.isFinite, value == 0 || (Self.minimum...Self.maximum).contains(value) else {
            throw InputValueError("'\(text)': expected requests per second: 0, or 0.001 to 10000000")
        }
        perSecond = value
    }

    public var description: String { "\(perSecond)" }

    public static func < (a: Rate, b: Rate) -> Bool { a.perSecond < b.perSecond }
}
