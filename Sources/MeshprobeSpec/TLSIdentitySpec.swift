import MeshprobeIdentity

/// Where a process's SVID and trust bundles come from, as the identity flags or a file's `identity` section give
/// them; the command line turns it into a TLS context.
public struct TLSIdentitySpec: Sendable, Equatable {
    /// Certificate chain (PEM, leaf first) to present.
    public var cert: String?
    /// Private key (PEM) of `cert`.
    public var key: String?
    /// Trust bundle for any trust domain.
    public var ca: String?
    /// Directory with Istio/SPIRE names: cert-chain.pem, key.pem, root-cert.pem.
    public var svidDir: String?
    /// Trust bundles for one trust domain each (federation).
    public var trustBundles: [TrustBundleSource] = []
    /// The OpenSSL security level; nil: the default (2).
    public var tlsSecurityLevel: Int?
    /// Accept a peer certificate without a SPIFFE ID (plain TLS).
    public var allowNonSVIDPeer = false

    public init() {}
}

/// A trust bundle for one trust domain: `TRUST_DOMAIN=FILE` on the command line, `TRUST_DOMAIN: FILE` in a file.
public struct TrustBundleSource: Sendable, Equatable {
    public var trustDomain: String
    public var file: String

    public init(trustDomain: String, file: String) {
        self.trustDomain = trustDomain
        self.file = file
    }

    /// Parses `TRUST_DOMAIN=FILE`.
    public init(parsing text: String) throws(InputValueError) {
        guard let eq = text.firstIndex(of: "="), text.index(after: eq) != text.endIndex else {
            throw InputValueError("'\(text)': expected TRUST_DOMAIN=FILE")
        }
        let domain = String(text[..<eq])
        try Self.checkTrustDomain(domain)
        self.init(trustDomain: domain, file: String(text[text.index(after: eq)...]))
    }

    /// Refuses what is not a SPIFFE trust domain (lower case, no scheme, no path).
    public static func checkTrustDomain(_ domain: String) throws(InputValueError) {
        do { _ = try SPIFFEID(parsing: "spiffe://\(domain)") } catch {
            throw InputValueError("'\(domain)' is not a trust domain: \(error.reason)")
        }
    }
}
