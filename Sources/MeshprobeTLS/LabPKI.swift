internal import COpenSSL
import Foundation
import MeshprobeIdentity

/// A certificate and its private key, both PEM.
public struct IssuedCertificate: Sendable, Hashable {
    public var certificatePEM: String
    public var privateKeyPEM: String

    public init(certificatePEM: String, privateKeyPEM: String) {
        self.certificatePEM = certificatePEM
        self.privateKeyPEM = privateKeyPEM
    }

    /// Writes the certificate (mode 0644) and the key (mode 0600).
    public func write(certificateTo certificatePath: String, privateKeyTo keyPath: String) throws(TLSError) {
        try writeFile(certificatePath, certificatePEM, permissions: 0o644)
        try writeFile(keyPath, privateKeyPEM, permissions: 0o600)
    }

    private func writeFile(_ path: String, _ text: String, permissions: Int) throws(TLSError) {
        let created = FileManager.default.createFile(atPath: path, contents: Data(text.utf8),
                                                     attributes: [.posixPermissions: permissions])
        guard created else {
            throw TLSError(kind: .tlsHandshakeFailed, message: "cannot write \(path) (does the folder exist and is it writable?)")
        }
    }
}

/// One certificate of a PEM bundle, described for `meshprobe pki inspect`.
public struct CertificateDescription: Sendable, Hashable {
    /// Position in the bundle, from 0.
    public var index: Int
    public var subject: String
    public var issuer: String
    /// Upper-case hex.
    public var serialNumber: String
    public var notBefore: Date?
    public var notAfter: Date?
    public var uriSANs: [String]
    public var dnsNames: [String]
    public var ipAddresses: [String]
    /// basicConstraints CA:TRUE.
    public var isCA: Bool
    /// For example `EC P-256`.
    public var keyType: String
    /// The single URI SAN when it is a SPIFFE ID.
    public var spiffeID: SPIFFEID?

    /// A multi-line rendering.
    public var text: String {
        func date(_ value: Date?) -> String { value.map { $0.formatted(.iso8601) } ?? "(unknown)" }
        var lines = [
            "certificate \(index)",
            "  subject:     \(subject)",
            "  issuer:      \(issuer)",
            "  serial:      \(serialNumber)",
            "  not before:  \(date(notBefore))",
            "  not after:   \(date(notAfter))",
            "  CA:          \(isCA ? "yes" : "no")",
            "  key:         \(keyType)",
        ]
        for uri in uriSANs { lines.append("  URI SAN:     \(uri)") }
        for name in dnsNames { lines.append("  DNS SAN:     \(name)") }
        for address in ipAddresses { lines.append("  IP SAN:      \(address)") }
        if let spiffeID { lines.append("  SPIFFE ID:   \(spiffeID)") }
        return lines.joined(separator: "\n")
    }
}

/// A lab PKI for `meshprobe pki`, tests and the demo: EC P-256 keys, SHA-256 signatures.
public enum LabPKI {
    /// A self-signed CA for a trust domain: URI SAN `spiffe://<td>`, CA:TRUE, keyCertSign.
    public static func makeCA(trustDomain: String, commonName: String? = nil,
                              validFor seconds: Int = 86400 * 365) throws(TLSError) -> IssuedCertificate {
        let domain = try TrustBundles.normalizedTrustDomain(trustDomain, source: "makeCA")
        let key = try generateKey()
        defer { EVP_PKEY_free(key) }
        let now = Date()
        let certificate = try build(
            commonName: commonName ?? "meshprobe lab CA \(domain)", publicKey: key, issuer: nil, signingKey: key,
            notBefore: now.addingTimeInterval(-300), notAfter: now.addingTimeInterval(TimeInterval(seconds)),
            extensions: [
                (NID_basic_constraints, "critical,CA:TRUE"),
                (NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature"),
                (NID_subject_key_identifier, "hash"),
                (NID_subject_alt_name, "URI:spiffe://\(domain)"),
            ])
        return IssuedCertificate(certificatePEM: certificate.pem, privateKeyPEM: PrivateKey.pem(of: key))
    }

    /// An X509-SVID leaf signed by `ca`.
    ///
    /// `uriSANs` is normally exactly one SPIFFE ID; tests pass two (or none) to make an invalid SVID, and
    /// `keyUsage` (OpenSSL's text, for example `critical,keyCertSign,digitalSignature`) to replace the key usage.
    public static func issue(by ca: IssuedCertificate, uriSANs: [String], dnsNames: [String] = [],
                             notBefore: Date = Date().addingTimeInterval(-300),
                             notAfter: Date = Date().addingTimeInterval(86400),
                             isCA: Bool = false, keyUsage: String? = nil, commonName: String? = nil) throws(TLSError) -> IssuedCertificate {
        for name in uriSANs + dnsNames where name.contains(",") || name.isEmpty {
            throw TLSError(kind: .tlsHandshakeFailed, message: "subject alternative name '\(name)' must be non-empty and have no comma")
        }
        guard notBefore < notAfter else {
            throw TLSError(kind: .tlsHandshakeFailed, message: "notBefore \(notBefore) must be before notAfter \(notAfter)")
        }
        let caCertificate = try X509Certificate.parseAll(pem: ca.certificatePEM, source: "the CA certificate")[0]
        guard let caKey = PrivateKey.parse(pem: ca.privateKeyPEM) else {
            throw TLSError(kind: .tlsHandshakeFailed, message: "the CA private key does not parse as a PEM private key")
        }
        defer { EVP_PKEY_free(caKey) }
        guard X509_check_private_key(caCertificate.pointer, caKey) == 1 else {
            OpenSSLErrorQueue.clear()
            throw TLSError(kind: .tlsHandshakeFailed, message: "the CA private key does not match the CA certificate '\(caCertificate.subject)'")
        }
        let key = try generateKey()
        defer { EVP_PKEY_free(key) }
        let sans = uriSANs.map { "URI:\($0)" } + dnsNames.map { "DNS:\($0)" }
        var extensions: [(Int32, String)] = [
            (NID_basic_constraints, isCA ? "critical,CA:TRUE" : "critical,CA:FALSE"),
            (NID_key_usage, keyUsage ?? (isCA ? "critical,keyCertSign,cRLSign,digitalSignature" : "critical,digitalSignature,keyAgreement")),
            (NID_ext_key_usage, "serverAuth,clientAuth"),
            (NID_subject_key_identifier, "hash"),
            (NID_authority_key_identifier, "keyid:always"),
        ]
        if !sans.isEmpty { extensions.append((NID_subject_alt_name, sans.joined(separator: ","))) }
        let defaultName = dnsNames.first
            ?? uriSANs.first.flatMap { $0.split(separator: "/").last.map(String.init) }
            ?? "meshprobe lab workload"
        let certificate = try build(commonName: commonName ?? defaultName, publicKey: key, issuer: caCertificate,
                                    signingKey: caKey, notBefore: notBefore, notAfter: notAfter, extensions: extensions)
        return IssuedCertificate(certificatePEM: certificate.pem, privateKeyPEM: PrivateKey.pem(of: key))
    }

    /// Describes each certificate in a PEM bundle; `source` names it in errors.
    public static func describe(pem: String, source: String) throws(TLSError) -> [CertificateDescription] {
        try X509Certificate.parseAll(pem: pem, source: source).enumerated().map { index, certificate in
            CertificateDescription(
                index: index, subject: certificate.subject, issuer: certificate.issuer,
                serialNumber: certificate.serialHex, notBefore: certificate.notBefore, notAfter: certificate.notAfter,
                uriSANs: certificate.uriSANs, dnsNames: certificate.dnsNames, ipAddresses: certificate.ipAddresses,
                isCA: certificate.isCA, keyType: certificate.keyDescription, spiffeID: certificate.spiffeID)
        }
    }

    // MARK: Building

    private static func generateKey() throws(TLSError) -> OpaquePointer {
        guard let key = mp_EVP_EC_gen_P256() else { throw TLSError.configuration("cannot generate an EC P-256 key") }
        return key
    }

    private static func build(commonName: String, publicKey: OpaquePointer, issuer: X509Certificate?,
                              signingKey: OpaquePointer, notBefore: Date, notAfter: Date,
                              extensions: [(Int32, String)]) throws(TLSError) -> X509Certificate {
        OpenSSLErrorQueue.clear()
        guard let raw = X509_new() else { throw TLSError.configuration("cannot allocate a certificate") }
        let certificate = X509Certificate(taking: raw)
        let x509 = certificate.pointer
        guard X509_set_version(x509, 2) == 1 else { throw TLSError.configuration("cannot set the certificate version") }

        guard let serial = BN_new() else { throw TLSError.configuration("cannot allocate a serial number") }
        defer { BN_free(serial) }
        guard BN_rand(serial, 127, -1, 0) == 1, BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x509)) != nil else {
            throw TLSError.configuration("cannot set a random serial number")
        }
        guard ASN1_TIME_set(X509_getm_notBefore(x509), time_t(notBefore.timeIntervalSince1970)) != nil,
              ASN1_TIME_set(X509_getm_notAfter(x509), time_t(notAfter.timeIntervalSince1970)) != nil else {
            throw TLSError.configuration("cannot set the validity period")
        }
        guard X509_set_pubkey(x509, publicKey) == 1 else { throw TLSError.configuration("cannot set the public key") }

        let name = X509_get_subject_name(x509)
        let cn = String(commonName.prefix(64))
        guard X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, "meshprobe lab", -1, -1, 0) == 1,
              X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, cn, -1, -1, 0) == 1 else {
            throw TLSError.configuration("cannot set the subject name CN=\(cn)")
        }
        guard X509_set_issuer_name(x509, issuer.map { X509_get_subject_name($0.pointer) } ?? name) == 1 else {
            throw TLSError.configuration("cannot set the issuer name")
        }

        var v3 = X509V3_CTX()
        X509V3_set_ctx(&v3, issuer?.pointer ?? x509, x509, nil, nil, 0)
        for (nid, value) in extensions {
            guard let ext = X509V3_EXT_conf_nid(nil, &v3, nid, value) else {
                throw TLSError.configuration("cannot build the extension \(String(cString: OBJ_nid2sn(nid))) = \(value)")
            }
            defer { X509_EXTENSION_free(ext) }
            guard X509_add_ext(x509, ext, -1) == 1 else { throw TLSError.configuration("cannot add the extension \(value)") }
        }
        guard X509_sign(x509, signingKey, EVP_sha256()) > 0 else { throw TLSError.configuration("cannot sign the certificate") }
        return certificate
    }
}
