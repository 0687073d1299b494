/// A SPIFFE ID: `spiffe://<trust-domain>/<path>`.
///
/// Parsing follows the SPIFFE ID specification: the scheme is `spiffe`, the trust domain is lower-case
/// letters, digits, `.`, `-` and `_`, the path segments are non-empty, not `.` or `..`, and use only
/// letters, digits, `.`, `-` and `_`. No query, fragment, port or user info.
public struct SPIFFEID: Hashable, Sendable, CustomStringConvertible, Codable {
    public let trustDomain: String
    /// The path including its leading `/`, or the empty string for a trust domain ID.
    public let path: String

    public var description: String { "spiffe://\(trustDomain)\(path)" }

    public init(trustDomain: String, path: String) throws(SPIFFEIDError) {
        try Self.validateTrustDomain(trustDomain, in: "spiffe://\(trustDomain)\(path)")
        try Self.validatePath(path, in: "spiffe://\(trustDomain)\(path)")
        self.trustDomain = trustDomain
        self.path = path
    }

    public init(parsing string: String) throws(SPIFFEIDError) {
        let prefix = "spiffe://"
        guard string.lowercased().hasPrefix(prefix) else {
            throw SPIFFEIDError(input: string, reason: "must start with spiffe://")
        }
        guard string.hasPrefix(prefix) else {
            throw SPIFFEIDError(input: string, reason: "the scheme must be lower-case 'spiffe'")
        }
        let rest = string.dropFirst(prefix.count)
        let slash = rest.firstIndex(of: "/")
        let domain = String(rest[..<(slash ?? rest.endIndex)])
        let path = slash.map { String(rest[$0...]) } ?? ""
        try Self.validateTrustDomain(domain, in: string)
        try Self.validatePath(path, in: string)
        self.trustDomain = domain
        self.path = path
    }

    public init(from decoder: any Decoder) throws {
        let string = try decoder.singleValueContainer().decode(String.self)
        self = try SPIFFEID(parsing: string)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    /// Istio-style `ns/<namespace>/sa/<service-account>` components, when the path has that shape.
    public var istioNamespaceAndServiceAccount: (namespace: String, serviceAccount: String)? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        guard parts.count == 4, parts[0] == "ns", parts[2] == "sa" else { return nil }
        return (String(parts[1]), String(parts[3]))
    }

    static func validateTrustDomain(_ domain: String, in input: String) throws(SPIFFEIDError) {
        if domain.isEmpty { throw SPIFFEIDError(input: input, reason: "the trust domain is empty") }
        if domain.count > 255 { throw SPIFFEIDError(input: input, reason: "the trust domain is longer than 255 characters") }
        for scalar in domain.unicodeScalars {
            switch scalar {
            case "a"..."z", "0"..."9", ".", "-", "_": continue
            case "A"..."Z":
                throw SPIFFEIDError(input: input, reason: "the trust domain must be lower case")
            case ":": throw SPIFFEIDError(input: input, reason: "the trust domain must not have a port")
            case "@": throw SPIFFEIDError(input: input, reason: "the trust domain must not have user info")
            default:
                throw SPIFFEIDError(input: input, reason: "the trust domain has the character '\(scalar)'")
            }
        }
    }

    static func validatePath(_ path: String, in input: String) throws(SPIFFEIDError) {
        if path.isEmpty { return }
        if path.contains("?") { throw SPIFFEIDError(input: input, reason: "a SPIFFE ID must not have a query") }
        if path.contains("#") { throw SPIFFEIDError(input: input, reason: "a SPIFFE ID must not have a fragment") }
        let segments = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        for segment in segments {
            if segment.isEmpty { throw SPIFFEIDError(input: input, reason: "the path has an empty segment or a trailing '/'") }
            if segment == "." || segment == ".." { throw SPIFFEIDError(input: input, reason: "the path has a '\(segment)' segment") }
            for scalar in segment.unicodeScalars {
                switch scalar {
                case "a"..."z", "A"..."Z", "0"..."9", ".", "-", "_": continue
                default: throw SPIFFEIDError(input: input, reason: "the path has the character '\(scalar)'")
                }
            }
        }
    }
}

public struct SPIFFEIDError: Error, Sendable, CustomStringConvertible, Equatable {
    public let input: String
    public let reason: String
    public var description: String { "'\(input)' is not a valid SPIFFE ID: \(reason)" }
}

/// What a prober expects of the peer it connects to (`--expect-peer`).
public enum PeerExpectation: Sendable, Hashable, CustomStringConvertible {
    /// Exactly this SPIFFE ID.
    case spiffeID(SPIFFEID)
    /// Any SPIFFE ID in this trust domain.
    case trustDomain(String)

    /// Parses `spiffe://td/path` as an exact ID, and `td` or `spiffe://td` as a trust domain.
    public init(parsing string: String) throws(SPIFFEIDError) {
        if string.hasPrefix("spiffe://") {
            let id = try SPIFFEID(parsing: string)
            self = id.path.isEmpty ? .trustDomain(id.trustDomain) : .spiffeID(id)
        } else {
            try SPIFFEID.validateTrustDomain(string, in: string)
            self = .trustDomain(string)
        }
    }

    public func matches(_ id: SPIFFEID) -> Bool {
        switch self {
        case .spiffeID(let expected): return expected == id
        case .trustDomain(let domain): return id.trustDomain == domain
        }
    }

    public var description: String {
        switch self {
        case .spiffeID(let id): return id.description
        case .trustDomain(let domain): return "any SPIFFE ID in trust domain '\(domain)'"
        }
    }
}
