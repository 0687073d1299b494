internal import COpenSSL
import MeshprobeIdentity

/// What a TLS context lets through that the defaults refuse; the default loosens nothing.
///
/// Set only from explicit flags or policy keys, and printed wherever a run reports its TLS settings.
public struct TLSLoosening: Sendable, Hashable {
    /// OpenSSL's security level 2: RSA, DSA and DH keys of 2048 bits or more, ECC of 224 bits or more, no SHA-1
    /// (or weaker) certificate signatures; applied to handshakes and to every certificate of the peer's chain.
    public static let defaultSecurityLevel = 2

    /// The OpenSSL security level (0 to 5) for keys, signatures and handshake parameters.
    public var securityLevel: Int = TLSLoosening.defaultSecurityLevel
    /// Accepts a peer leaf with no `spiffe://` URI SAN as an ordinary certificate (its chain checked, no identity).
    /// Only without an expected peer; a leaf that carries a SPIFFE ID is always held to the X509-SVID rules.
    public var allowNonSVIDPeer = false

    public init(securityLevel: Int = TLSLoosening.defaultSecurityLevel, allowNonSVIDPeer: Bool = false) {
        self.securityLevel = securityLevel
        self.allowNonSVIDPeer = allowNonSVIDPeer
    }

    /// What is loosened, one phrase each (empty when nothing is below the defaults).
    public var loosened: [String] {
        var phrases: [String] = []
        if securityLevel < Self.defaultSecurityLevel {
            phrases.append("TLS security level \(securityLevel) (below \(Self.defaultSecurityLevel): weak keys and SHA-1 signatures accepted)")
        }
        if allowNonSVIDPeer { phrases.append("peer certificates without a SPIFFE ID accepted (plain TLS)") }
        return phrases
    }

    public var isLoosened: Bool { !loosened.isEmpty }
}

/// The X509-SVID leaf rules a relying party enforces (spiffe/spiffe `standards/X509-SVID.md`), for the client
/// checking a server and for a server checking a client alike.
enum X509SVIDLeafRules {
    /// The leaf's SPIFFE ID when it is a valid X509-SVID leaf, else the rule it breaks. `peerName` is "the server"
    /// or "the client".
    static func check(_ leaf: X509Certificate, peerName: String) -> Result<SPIFFEID, TLSError> {
        func reject(_ kind: ErrorKind, _ message: String) -> Result<SPIFFEID, TLSError> {
            .failure(TLSError(kind: kind, message: message))
        }
        let label = "\(peerName) certificate '\(leaf.subject)'"
        let uris = leaf.uriSANs
        // §2: an X509-SVID contains exactly one URI SAN; validators must reject one with more.
        guard let uri = uris.first else {
            return reject(.tlsNoSPIFFEID, "expected an X509-SVID with one spiffe:// URI SAN; \(label) has no URI SAN")
        }
        if uris.count > 1 {
            return reject(.tlsMultipleURISANs,
                          "\(label) has \(uris.count) URI SANs (\(uris.joined(separator: ", "))); an X509-SVID must have exactly one")
        }
        // §5.2: the scheme of the SPIFFE ID is `spiffe`.
        guard uri.hasPrefix("spiffe://") else {
            return reject(.tlsNoSPIFFEID, "expected an X509-SVID with one spiffe:// URI SAN; \(label) has the URI SAN \(uri), which is not a SPIFFE ID")
        }
        // §3.1 and §5.2: a leaf SPIFFE ID has a non-root path.
        let withoutRootSlash = uri.hasSuffix("/") && !uri.dropFirst("spiffe://".count).dropLast().contains("/") ? String(uri.dropLast()) : uri
        let id: SPIFFEID
        do {
            id = try SPIFFEID(parsing: withoutRootSlash)
        } catch {
            return reject(.tlsNoSPIFFEID, "\(label)'s URI SAN is not a valid SPIFFE ID: \(error)")
        }
        if id.path.isEmpty {
            return reject(.tlsSPIFFEIDWithoutPath,
                          "\(label) has the SPIFFE ID \(uri), which has no path: that names a trust domain, and a leaf SVID must name a workload")
        }
        // §4.1 and §5.2: a leaf has basicConstraints cA false.
        if leaf.isCA {
            return reject(.tlsLeafIsCA,
                          "\(peerName) certificate for \(id) is a CA certificate (basicConstraints CA:TRUE); an X509-SVID leaf must not be a CA")
        }
        // §4.3 and §5.2: a leaf sets neither keyCertSign nor cRLSign, and sets digitalSignature.
        if let usage = leaf.keyUsage {
            let signing = [(UInt32(KU_KEY_CERT_SIGN), "keyCertSign"), (UInt32(KU_CRL_SIGN), "cRLSign")]
                .filter { usage & $0.0 != 0 }.map(\.1)
            if !signing.isEmpty {
                return reject(.tlsLeafSigningKeyUsage,
                              "\(peerName) certificate for \(id) has key usage \(signing.joined(separator: " and ")); an X509-SVID leaf must not sign certificates or CRLs")
            }
            if usage & UInt32(KU_DIGITAL_SIGNATURE) == 0 {
                return reject(.tlsLeafWithoutDigitalSignature,
                              "\(peerName) certificate for \(id) has a key usage extension without digitalSignature, which an X509-SVID leaf must set")
            }
        }
        return .success(id)
    }
}
