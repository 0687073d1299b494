/// Why a request did not get a response, or why a connection could not carry requests.
///
/// Every failed request is counted under exactly one kind; the raw values are stable and appear in
/// the JSON result and the terminal summary.
public enum ErrorKind: String, Sendable, Hashable, CaseIterable, Codable, Comparable {
    // Connection establishment.
    case connectRefused = "connect_refused"
    case connectTimeout = "connect_timeout"
    case connectFailed = "connect_failed"
    // TLS and SPIFFE verification, by kind.
    case tlsCertificateExpired = "tls_certificate_expired"
    case tlsCertificateNotYetValid = "tls_certificate_not_yet_valid"
    case tlsUnknownCA = "tls_unknown_ca"
    case tlsWrongSPIFFEID = "tls_wrong_spiffe_id"
    /// A web server certificate (host-name verification) that names other hosts than the one connected to.
    case tlsWrongHostname = "tls_wrong_hostname"
    case tlsMultipleURISANs = "tls_multiple_uri_sans"
    case tlsNoSPIFFEID = "tls_no_spiffe_id"
    case tlsLeafIsCA = "tls_leaf_is_ca"
    /// A leaf SPIFFE ID with a root path (`spiffe://td` or `spiffe://td/`).
    case tlsSPIFFEIDWithoutPath = "tls_spiffe_id_without_path"
    /// A leaf whose key usage has keyCertSign or cRLSign.
    case tlsLeafSigningKeyUsage = "tls_leaf_signing_key_usage"
    /// A leaf whose key usage extension lacks digitalSignature.
    case tlsLeafWithoutDigitalSignature = "tls_leaf_without_digital_signature"
    /// A key below the security level (RSA/DH under 2048 bits at level 2).
    case tlsWeakKey = "tls_weak_key"
    /// A certificate signature below the security level (SHA-1 at level 2).
    case tlsWeakSignature = "tls_weak_signature"
    case tlsNoPeerCertificate = "tls_no_peer_certificate"
    case tlsPeerRejectedCertificate = "tls_peer_rejected_certificate"
    case tlsALPNMismatch = "tls_alpn_mismatch"
    case tlsHandshakeFailed = "tls_handshake_failed"
    /// The URL's scheme is not what the port speaks: an `http://` URL and the server answered with TLS, or an
    /// `https://` URL and it answered in plaintext.
    case wrongScheme = "wrong_scheme"
    // HTTP/2 and HTTP/1.1 on an established connection.
    case streamReset = "stream_reset"
    case goAway = "goaway"
    case connectionLost = "connection_lost"
    case protocolError = "protocol_error"
    case requestTimeout = "request_timeout"
    // A multi-step iteration could not take a value from a response (header or JSON field missing).
    case extractionFailed = "extraction_failed"
    // Requests never sent: due when the run was stopped, waiting past the timeout for a free stream, or unsendable as
    // rendered. (Requests left when every connection was given up count under that connection failure's kind.)
    case notSent = "not_sent"
    // Requests in flight when the run was aborted (signal, abort switch).
    case aborted = "aborted"

    public static func < (lhs: ErrorKind, rhs: ErrorKind) -> Bool { lhs.rawValue < rhs.rawValue }
}

extension ErrorKind {
    /// A request that failed this way without a response waited for nothing else: how long, counted in latency
    /// thresholds. Not a timeout (counted at the timeout, what it waited beyond is unknown), a request never sent or
    /// aborted by the run's end, or a failed extraction (its response is counted already).
    public var waitCounts: Bool {
        switch self {
        case .requestTimeout, .notSent, .aborted, .extractionFailed: false
        default: true
        }
    }

    /// A connection failure that a later attempt may not repeat: nothing listening (a restarting server), a timeout,
    /// a connection closed or reset before or during the handshake. The peer's certificate, identity or protocol
    /// refused is not: the next attempt meets the same peer.
    public var isTransientConnectionFailure: Bool {
        switch self {
        case .connectRefused, .connectTimeout, .connectFailed, .connectionLost, .tlsHandshakeFailed, .streamReset, .goAway:
            return true
        default:
            return false
        }
    }
}
