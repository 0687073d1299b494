import MeshprobeIdentity

public enum TLSVersion: String, Sendable, Hashable, CaseIterable {
    case tls12 = "1.2"
    case tls13 = "1.3"
}

/// Everything needed to build a ``TLSContext`` for one role.
///
/// Verification modes (both roles):
/// - SPIFFE (the default): the peer leaf must be an X509-SVID (``X509SVIDLeafRules``: exactly one URI SAN, a
///   `spiffe://` ID with a path, not a CA, no keyCertSign or cRLSign, digitalSignature), verified against the
///   trust bundle of its trust domain, then against `expectedPeer` when set. Every certificate of the chain is held
///   to `loosening.securityLevel` (OpenSSL's level 2 by default: no RSA under 2048 bits, no SHA-1 signatures).
/// - Plain TLS (only with `loosening.allowNonSVIDPeer`): when `expectedPeer` is nil and the peer leaf has no
///   SPIFFE URI SAN, the chain is verified against the any-domain bundles (or the system CA store on a client with
///   no bundle at all). Host names are not checked and a self-signed CA leaf is accepted. This is for probing
///   nginx or nghttpd with ordinary certificates.
/// - Host name (client only, `verifyHostname` set): an ordinary web server certificate, as a browser checks it:
///   the chain against the any-domain bundles (or the system CA store when no bundle is given), and the leaf's
///   DNS or IP subject alternative names against the host (OpenSSL's RFC 6125 check); URI SANs play no part. For
///   servers outside the mesh's identity, such as a Prometheus Pushgateway.
/// - None: `verifyPeer == false` on a client (like `curl -k`); peer details are still reported.
public struct TLSConfiguration: Sendable {
    public enum Role: Sendable, Hashable { case client, server }

    public var role: Role
    /// PEM file: leaf first, then intermediates.
    public var certificateChainFile: String?
    /// PEM private key (unencrypted).
    public var privateKeyFile: String?
    /// An SVID held in memory (the SPIFFE Workload API's): used instead of the two files when set.
    public var svidInMemory: InMemorySVID?
    /// CAs to verify the peer against.
    public var trustBundles: TrustBundles
    /// Client: verify the server (default true). Server: request and verify a client certificate (default true).
    public var verifyPeer: Bool
    /// Server only: fail the handshake when the client sends no certificate (implies `verifyPeer`).
    public var requireClientCertificate: Bool
    /// ALPN protocols in preference order, for example `["h2", "http/1.1"]`.
    ///
    /// A server picks the first of its own list that the client offers and fails the handshake with
    /// `tls_alpn_mismatch` when the client offered protocols but none overlap. A client that offered
    /// protocols to a server without ALPN sees `negotiatedProtocol == nil` and decides for itself.
    public var applicationProtocols: [String]
    /// Client SNI override. By default the host is sent, except when it is an IP literal.
    public var serverName: String?
    /// Checked during the handshake (client: the server's ID; server: the client's ID).
    public var expectedPeer: PeerExpectation?
    /// Client only: verify the server as a web server for this host name or IP address (see above) instead of as
    /// a SPIFFE workload.
    public var verifyHostname: String?
    public var minimumVersion: TLSVersion = .tls12
    public var maximumVersion: TLSVersion = .tls13
    /// TLS 1.2 cipher suites in preference order (OpenSSL's names, `:`-separated). The default is Envoy's default
    /// upstream (client) list: ECDHE key exchange and AEAD ciphers only, AES-128-GCM and ChaCha20-Poly1305 before
    /// AES-256-GCM, so meshprobe's handshakes look like a sidecar's. (OpenSSL's own default would put AES-256 first.)
    public var tls12Ciphers: String = TLSConfiguration.meshTLS12Ciphers
    /// TLS 1.3 cipher suites in preference order (IANA names, `:`-separated). The default is BoringSSL's order, which
    /// Envoy uses: AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305.
    public var tls13Ciphersuites: String = TLSConfiguration.meshTLS13Ciphersuites

    public static let meshTLS12Ciphers = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-CHACHA20-POLY1305",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    ].joined(separator: ":")
    public static let meshTLS13Ciphersuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
    /// What the defaults refuse and this context accepts (explicit flags only).
    public var loosening = TLSLoosening()
    /// Client: offer the last session this context saw on each new connection (tickets).
    public var sessionResumption: Bool = true

    public init(role: Role) {
        self.role = role
        self.certificateChainFile = nil
        self.privateKeyFile = nil
        self.svidInMemory = nil
        self.trustBundles = TrustBundles()
        self.verifyPeer = true
        self.requireClientCertificate = false
        self.applicationProtocols = []
        self.serverName = nil
        self.expectedPeer = nil
        self.verifyHostname = nil
    }
}

/// An X.509-SVID as the SPIFFE Workload API hands it over: the certificate chain as concatenated DER (leaf first) and
/// the private key as PKCS#8 DER. The key's bytes are never printed: the description names only their length.
public struct InMemorySVID: Sendable, Hashable, CustomStringConvertible {
    /// Concatenated DER certificates, leaf first.
    public var chainDER: [UInt8]
    /// PKCS#8 DER.
    public var privateKeyDER: [UInt8]
    /// Where it came from, for error messages (`the Workload API's SVID spiffe://td/w`).
    public var source: String

    public init(chainDER: [UInt8], privateKeyDER: [UInt8], source: String) {
        self.chainDER = chainDER
        self.privateKeyDER = privateKeyDER
        self.source = source
    }

    public var description: String { "\(source) (\(chainDER.count) bytes of certificates, a private key)" }
}
