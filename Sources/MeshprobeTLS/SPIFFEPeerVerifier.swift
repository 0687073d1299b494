internal import COpenSSL
import Foundation
import MeshprobeIdentity

/// Owns an `X509_STORE*` holding one trust bundle.
final class OwnedX509Store {
    let pointer: OpaquePointer

    init(certificates pems: [String], source: String) throws(TLSError) {
        guard let store = X509_STORE_new() else { throw TLSError.configuration("cannot allocate a certificate store") }
        self.pointer = store
        for pem in pems {
            for certificate in try X509Certificate.parseAll(pem: pem, source: source) {
                guard X509_STORE_add_cert(store, certificate.pointer) == 1 else {
                    throw TLSError.configuration("cannot add CA \(certificate.subject) from \(source) to the trust store")
                }
            }
        }
    }

    /// The operating system's default CA store (used by a client that was given no bundle).
    init(systemDefault: ()) throws(TLSError) {
        guard let store = X509_STORE_new() else { throw TLSError.configuration("cannot allocate a certificate store") }
        self.pointer = store
        _ = X509_STORE_set_default_paths(store)
        OpenSSLErrorQueue.clear()
    }

    deinit { X509_STORE_free(pointer) }
}

/// The SPIFFE X509-SVID check that replaces OpenSSL's default chain verification.
///
/// Read-only after construction; `X509_STORE` is safe for concurrent verification.
final class SPIFFEPeerVerifier {
    enum Outcome {
        case accepted(SPIFFEID?)
        /// `x509Error` is set on OpenSSL's store context so that the right TLS alert goes to the peer.
        case rejected(TLSError, x509Error: Int32)
    }

    let expectedPeer: PeerExpectation?
    /// Host-name mode: the server is an ordinary web server for this host (no SPIFFE ID checked).
    let hostname: String?
    let domainStores: [String: OwnedX509Store]
    let anyDomainStore: OwnedX509Store?
    /// "the server" or "the client": the peer as our messages name it.
    let peerName: String
    /// Plain TLS mode: a peer leaf without a SPIFFE ID is checked as an ordinary certificate (explicit loosening).
    let allowNonSVIDPeer: Bool
    /// The OpenSSL security level every certificate of the peer's chain is held to (key sizes, signature digests).
    let securityLevel: Int32

    init(configuration: TLSConfiguration) throws(TLSError) {
        self.expectedPeer = configuration.expectedPeer
        if let host = configuration.verifyHostname {
            guard configuration.role == .client else {
                throw TLSError.configuration("host-name verification is for clients: a server verifies client certificates by SPIFFE ID")
            }
            guard configuration.expectedPeer == nil, configuration.trustBundles.trustDomains.isEmpty else {
                throw TLSError.configuration("host-name verification (of \(host)) takes CA bundles for any domain, not a SPIFFE expectation or per-domain bundles")
            }
        }
        self.hostname = configuration.verifyHostname
        self.peerName = configuration.role == .client ? "the server" : "the client"
        self.allowNonSVIDPeer = configuration.loosening.allowNonSVIDPeer
        self.securityLevel = Int32(configuration.loosening.securityLevel)
        var stores: [String: OwnedX509Store] = [:]
        for (domain, pems) in configuration.trustBundles.domainCertificates {
            stores[domain] = try OwnedX509Store(certificates: pems, source: "trust bundle for \(domain)")
        }
        self.domainStores = stores
        let anyDomain = configuration.trustBundles.anyDomainCertificates
        if !anyDomain.isEmpty {
            self.anyDomainStore = try OwnedX509Store(certificates: anyDomain, source: "trust bundle")
        } else if configuration.role == .client && configuration.trustBundles.isEmpty {
            self.anyDomainStore = try OwnedX509Store(systemDefault: ())
        } else {
            self.anyDomainStore = nil
        }
    }

    /// Verifies a peer leaf and the untrusted chain it sent.
    func verify(leaf leafPointer: OpaquePointer, untrusted: OpaquePointer?) -> Outcome {
        let leaf = X509Certificate(borrowing: leafPointer)
        let spiffeURIs = leaf.uriSANs.filter { $0.lowercased().hasPrefix("spiffe://") }

        if let hostname, let store = anyDomainStore {
            // Host-name mode: an ordinary web server certificate for `hostname`; URI SANs play no part.
            if let failure = checkChain(leaf: leafPointer, untrusted: untrusted, store: store, leafLabel: "'\(leaf.subject)'",
                                        hostname: hostname) {
                return failure
            }
            return .accepted(nil)
        }

        if spiffeURIs.isEmpty, allowNonSVIDPeer, expectedPeer == nil, let store = anyDomainStore {
            // Plain TLS mode (explicitly allowed): an ordinary X.509 chain, host name not checked.
            if let failure = checkChain(leaf: leafPointer, untrusted: untrusted, store: store, leafLabel: leaf.subject) {
                return failure
            }
            return .accepted(nil)
        }
        let id: SPIFFEID
        switch X509SVIDLeafRules.check(leaf, peerName: peerName) {
        case .success(let valid): id = valid
        case .failure(var error):
            if let expectedPeer, error.kind == .tlsNoSPIFFEID { error.message = "expected \(expectedPeer); " + error.message }
            return .rejected(error, x509Error: X509_V_ERR_CERT_REJECTED)
        }
        guard let store = domainStores[id.trustDomain] ?? anyDomainStore else {
            let configured = domainStores.keys.sorted()
            let have = configured.isEmpty ? "no trust bundle is configured" : "bundles are configured for \(configured.joined(separator: ", "))"
            return .rejected(TLSError(kind: .tlsUnknownCA,
                                      message: "\(peerName) presented \(id) but there is no trust bundle for trust domain '\(id.trustDomain)' (\(have)); add --trust-bundle \(id.trustDomain)=FILE"),
                             x509Error: X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY)
        }
        if let failure = checkChain(leaf: leafPointer, untrusted: untrusted, store: store, leafLabel: id.description) {
            return failure
        }
        if let expectedPeer, !expectedPeer.matches(id) {
            return .rejected(TLSError(kind: .tlsWrongSPIFFEID, message: "expected \(expectedPeer), \(peerName) presented \(id)"),
                             x509Error: X509_V_ERR_CERT_REJECTED)
        }
        return .accepted(id)
    }

    /// Checks the expectation again after a resumed handshake (no certificate verification runs then).
    func recheck(resumedPeer leaf: X509Certificate?) -> TLSError? {
        guard let expectedPeer else { return nil }
        guard let leaf else {
            return TLSError(kind: .tlsNoPeerCertificate, message: "expected \(expectedPeer), the resumed session has no peer certificate")
        }
        guard let id = leaf.spiffeID else {
            return TLSError(kind: .tlsNoSPIFFEID, message: "expected \(expectedPeer), the resumed session's peer certificate has no SPIFFE ID")
        }
        if !expectedPeer.matches(id) {
            return TLSError(kind: .tlsWrongSPIFFEID, message: "expected \(expectedPeer), \(peerName) presented \(id) (resumed session)")
        }
        return nil
    }

    /// Runs X509_verify_cert on a fresh store context; nil when the chain is good.
    private func checkChain(leaf: OpaquePointer, untrusted: OpaquePointer?, store: OwnedX509Store, leafLabel: String,
                            hostname: String? = nil) -> Outcome? {
        guard let storeContext = X509_STORE_CTX_new() else {
            return .rejected(TLSError.configuration("cannot allocate a verification context"), x509Error: X509_V_ERR_OUT_OF_MEM)
        }
        defer { X509_STORE_CTX_free(storeContext) }
        guard X509_STORE_CTX_init(storeContext, store.pointer, leaf, untrusted) == 1 else {
            return .rejected(TLSError.configuration("cannot initialise certificate verification"), x509Error: X509_V_ERR_UNSPECIFIED)
        }
        // Our store context replaces the one OpenSSL set up with the SSL security level: set it again.
        if let parameters = X509_STORE_CTX_get0_param(storeContext) {
            X509_VERIFY_PARAM_set_auth_level(parameters, securityLevel)
        }
        if let hostname, let parameters = X509_STORE_CTX_get0_param(storeContext) {
            let bare = hostname.hasPrefix("[") && hostname.hasSuffix("]") ? String(hostname.dropFirst().dropLast()) : hostname
            // An IP literal is matched against IP SANs, a name against DNS SANs (wildcards in the leftmost label).
            let set = TLSContext.sniName(bare) == nil ? X509_VERIFY_PARAM_set1_ip_asc(parameters, bare)
                                                      : X509_VERIFY_PARAM_set1_host(parameters, bare, 0)
            guard set == 1 else {
                OpenSSLErrorQueue.clear()
                return .rejected(TLSError.configuration("cannot verify the host name '\(hostname)'"), x509Error: X509_V_ERR_UNSPECIFIED)
            }
        }
        if X509_verify_cert(storeContext) == 1 { return nil }
        let error = X509_STORE_CTX_get_error(storeContext)
        let depth = X509_STORE_CTX_get_error_depth(storeContext)
        OpenSSLErrorQueue.clear()
        let reason = String(cString: X509_verify_cert_error_string(Int(error)))
        let failing = X509_STORE_CTX_get_current_cert(storeContext).map { X509Certificate(borrowing: $0) }
        let who = depth <= 0
            ? "\(peerName) certificate \(leafLabel)"
            : "the CA certificate '\(failing?.subject ?? "?")' at depth \(depth) of \(peerName)'s chain"
        let now = Date()
        let kind: ErrorKind
        let message: String
        switch error {
        case X509_V_ERR_CERT_HAS_EXPIRED:
            kind = .tlsCertificateExpired
            message = "\(who) expired at \(Self.format(failing?.notAfter)) (now \(Self.format(now)))"
        case X509_V_ERR_CERT_NOT_YET_VALID:
            kind = .tlsCertificateNotYetValid
            message = "\(who) is not valid before \(Self.format(failing?.notBefore)) (now \(Self.format(now))); check the clocks"
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
             X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN,
             X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE, X509_V_ERR_CERT_SIGNATURE_FAILURE,
             X509_V_ERR_CERT_UNTRUSTED:
            kind = .tlsUnknownCA
            let issuer = failing?.issuer ?? X509Certificate(borrowing: leaf).issuer
            message = "\(who) was issued by '\(issuer)', which the trust bundle does not contain (\(reason))"
        case X509_V_ERR_EE_KEY_TOO_SMALL, X509_V_ERR_CA_KEY_TOO_SMALL:
            kind = .tlsWeakKey
            message = "\(who) has a weak key (\(failing?.keyDescription ?? "unknown")), below TLS security level \(securityLevel) (at level 2: RSA and DH of 2048 bits or more); --tls-security-level lowers it"
        case X509_V_ERR_CA_MD_TOO_WEAK:
            kind = .tlsWeakSignature
            message = "\(who) is signed with \(failing?.signatureAlgorithm ?? "a weak digest"), below TLS security level \(securityLevel) (at level 2: no SHA-1); --tls-security-level lowers it"
        case X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH:
            kind = .tlsWrongHostname
            let leafCertificate = X509Certificate(borrowing: leaf)
            let names = leafCertificate.dnsNames.map { "DNS:\($0)" } + leafCertificate.ipAddresses.map { "IP:\($0)" }
            message = "\(who) is not for '\(hostname ?? "")': it names \(names.isEmpty ? "no DNS or IP subject alternative name" : names.joined(separator: ", "))"
        default:
            kind = .tlsHandshakeFailed
            message = "\(who) failed verification: \(reason)"
        }
        return .rejected(TLSError(kind: kind, message: message), x509Error: error)
    }

    static func format(_ date: Date?) -> String {
        guard let date else { return "(unknown)" }
        return date.formatted(.iso8601)
    }
}
