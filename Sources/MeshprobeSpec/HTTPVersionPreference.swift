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

/// The ALPN a mesh's sidecar expects of a peer on its inbound port (`meshAlpn`, `--mesh-alpn`).
///
/// Istio's inbound listener sends mTLS connections to its HTTP filter chain only when the ClientHello offers one of
/// `istio`, `istio-peer-exchange`, `istio-http/1.0`, `istio-http/1.1`, `istio-h2` (`allIstioMtlsALPNs` in Istio's
/// pilot); a plain `h2` lands on the passthrough chain. Its own sidecars offer `istio-h2, istio, h2` for HTTP/2 and
/// `istio-http/1.1, istio, http/1.1` for HTTP/1.1; the server then picks `h2` or `http/1.1`. `istio-peer-exchange`
/// is left out: it asks for the TCP metadata exchange preamble.
public enum MeshALPN: String, Sendable, Hashable, CaseIterable {
    case istio

    /// The protocols to offer, in order, for `version`.
    public func protocols(for version: HTTPVersionPreference) -> [String] {
        switch (self, version) {
        case (.istio, .auto): ["istio-h2", "istio-http/1.1", "istio", "h2", "http/1.1"]
        case (.istio, .http2): ["istio-h2", "istio", "h2"]
        case (.istio, .http1): ["istio-http/1.1", "istio", "http/1.1"]
        }
    }

    /// Parses `istio`.
    public init(parsing text: String) throws(InputValueError) {
        guard let value = MeshALPN(rawValue: text) else { throw InputValueError("'\(text)': expected istio") }
        self = value
    }
}
