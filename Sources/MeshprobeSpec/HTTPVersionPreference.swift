import MeshprobeIdentity

/// Which HTTP version a run speaks.
public enum HTTPVersionPreference: String, Sendable, CaseIterable {
    /// TLS: ALPN chooses (h2 preferred, then http/1.1). Plaintext: h2c with prior knowledge.
    case auto
    /// HTTP/2 only (ALPN h2 over TLS; prior-knowledge h2c in plaintext).
    case http2
    /// HTTP/1.1 with keep-alive.
    case http1

    /// Parses `auto`, `2` or `1.1`.
    public init(parsing text: String) throws(InputValueError) {
        switch text {
        case "auto": self = .auto
        case "2": self = .http2
        case "1.1": self = .http1
        default: throw InputValueError("'\(text)': expected auto, 2 or 1.1")
        }
    }

    /// As a flag or file spells it.
    public var spelling: String {
        switch self {
        case .auto: return "auto"
        case .http2: return "2"
        case .http1: return "1.1"
        }
    }
}
