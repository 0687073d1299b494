import Foundation
import MeshprobeIdentity

/// A limit that stops a run when the target is in trouble (a game day must not turn into an outage).
///
/// Guards are checked once a second on the last finished second, when it holds at least `minimumResponses`.
public enum LoadGuard: Sendable, Equatable, CustomStringConvertible {
    /// Stop when the share of failed requests (non-2xx/3xx and errors) in a second exceeds this fraction.
    case errorRate(Double)
    /// Stop when a second's p99 latency exceeds this many seconds.
    case p99(Double)

    public static let minimumResponses = 20

    /// Parses an error-rate limit: a fraction between 0 and 1, both excluded (`0.2`).
    public static func errorRate(parsing text: String) throws(InputValueError) -> LoadGuard {
        guard let limit = Double(text), limit > 0, limit < 1 else {
            throw InputValueError("'\(text)': expected a fraction between 0 and 1, e.g. 0.2")
        }
        return .errorRate(limit)
    }

    /// Parses a p99 limit: a positive duration (`500ms`).
    public static func p99(parsing text: String) throws(InputValueError) -> LoadGuard {
        .p99(try TimeSpan(parsing: text).seconds)
    }

    public var description: String {
        switch self {
        case .errorRate(let limit): return String(format: "error rate above %.1f%%", limit * 100)
        case .p99(let limit): return String(format: "p99 above %.1f ms", limit * 1000)
        }
    }
}

/// What a guard does when it fires.
public enum GuardAction: String, Sendable, Equatable, CaseIterable {
    /// Stop the load (in-flight requests get the grace period); the run is incomplete.
    case stop
    /// Stop following the stages: the rate or concurrency stays where it was until the run ends.
    case hold

    /// Parses `stop` or `hold`.
    public init(parsing text: String) throws(InputValueError) {
        guard let action = GuardAction(rawValue: text) else { throw InputValueError("'\(text)': expected stop or hold") }
        self = action
    }
}
