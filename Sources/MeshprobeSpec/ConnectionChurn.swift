import MeshprobeIdentity

/// When a connection is replaced by a fresh one (samples L4 balancing and the mTLS handshake rate; persistent
/// connections bias weighted routing).
public enum ConnectionChurn: Sendable, Equatable, CustomStringConvertible {
    case reuse
    /// A fresh connection after this many requests.
    case every(Int)

    public static let perRequest = ConnectionChurn.every(1)

    /// Parses `reuse`, `request` (a fresh connection per request) or a number of requests per connection.
    public init(parsing text: String) throws(InputValueError) {
        switch text {
        case "reuse": self = .reuse
        case "request": self = .perRequest
        default:
            guard let n = Int(text), n >= 1 else {
                throw InputValueError("'\(text)': expected reuse, request, or a number of requests per connection (1 or more)")
            }
            self = .every(n)
        }
    }

    /// As a flag or file spells it.
    public var spelling: String {
        switch self {
        case .reuse: return "reuse"
        case .every(1): return "request"
        case .every(let n): return "\(n)"
        }
    }

    public var description: String {
        switch self {
        case .reuse: return "reuse"
        case .every(1): return "per request"
        case .every(let n): return "every \(n) requests"
        }
    }
}
