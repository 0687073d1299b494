import Foundation
import MeshprobeIdentity

/// SPIFFE trust bundles keyed by trust domain (federation), plus optional bundles that apply to any trust domain.
public struct TrustBundles: Sendable, Hashable {
    /// PEM text of each CA certificate, by trust domain.
    var domainCertificates: [String: [String]] = [:]
    /// PEM text of each CA certificate that applies to any trust domain (and to plain TLS peers).
    var anyDomainCertificates: [String] = []

    public init() {}

    public var isEmpty: Bool { domainCertificates.isEmpty && anyDomainCertificates.isEmpty }

    /// Trust domains that have their own bundle, sorted.
    public var trustDomains: [String] { domainCertificates.keys.sorted() }

    /// Adds every certificate in a PEM file. `trustDomain` nil means the bundle applies to any trust domain.
    public mutating func add(pemFile: String, trustDomain: String?) throws(TLSError) {
        let text = try readTextFile(pemFile, what: "trust bundle")
        try add(pem: text, trustDomain: trustDomain, source: "trust bundle \(pemFile)")
    }

    /// Adds every certificate in a PEM text; `source` names it in error messages.
    public mutating func add(pem: String, trustDomain: String?, source: String) throws(TLSError) {
        let certificates = try X509Certificate.parseAll(pem: pem, source: source)
        let pems = certificates.map(\.pem)
        if let trustDomain {
            let domain = try Self.normalizedTrustDomain(trustDomain, source: source)
            domainCertificates[domain, default: []].append(contentsOf: pems)
        } else {
            anyDomainCertificates.append(contentsOf: pems)
        }
    }

    /// Adds every certificate of concatenated DER (a Workload API bundle); `source` names it in error messages.
    public mutating func add(der: [UInt8], trustDomain: String?, source: String) throws(TLSError) {
        let pems = try X509Certificate.parseAll(der: der, source: source).map(\.pem)
        if let trustDomain {
            let domain = try Self.normalizedTrustDomain(trustDomain, source: source)
            domainCertificates[domain, default: []].append(contentsOf: pems)
        } else {
            anyDomainCertificates.append(contentsOf: pems)
        }
    }

    /// Adds a `--trust-bundle` spec: `td=FILE` (or `spiffe://td=FILE`) for one trust domain, or a plain `FILE`
    /// for any trust domain. An existing file whose name contains `=` is taken as a plain file.
    public mutating func add(spec: String) throws(TLSError) {
        if let equals = spec.firstIndex(of: "="), !FileManager.default.fileExists(atPath: spec) {
            let domain = String(spec[..<equals])
            let file = String(spec[spec.index(after: equals)...])
            if file.isEmpty {
                throw TLSError(kind: .tlsHandshakeFailed,
                               message: "trust bundle spec '\(spec)' has no file after '='; use TRUST_DOMAIN=FILE or FILE")
            }
            try add(pemFile: file, trustDomain: domain)
        } else {
            try add(pemFile: spec, trustDomain: nil)
        }
    }

    static func normalizedTrustDomain(_ raw: String, source: String) throws(TLSError) -> String {
        var domain = raw
        if domain.hasPrefix("spiffe://") { domain.removeFirst("spiffe://".count) }
        while domain.hasSuffix("/") { domain.removeLast() }
        do {
            return try SPIFFEID(trustDomain: domain, path: "").trustDomain
        } catch {
            throw TLSError(kind: .tlsHandshakeFailed, message: "\(source): '\(raw)' is not a valid trust domain: \(error.reason)")
        }
    }
}

/// Reads a PEM file (`InputFile`: a regular file of at most 4 MiB), with errors that name the file and say what is
/// wrong.
func readTextFile(_ path: String, what: String) throws(TLSError) -> String {
    let bytes: [UInt8]
    do { bytes = try InputFile.read(path, limit: .pem) } catch {
        throw TLSError(kind: .tlsHandshakeFailed, message: "\(what) file \(path) \(error.reason)")
    }
    guard let text = String(bytes: bytes, encoding: .utf8) else {
        throw TLSError(kind: .tlsHandshakeFailed, message: "\(what) file \(path) is not PEM text (it looks binary; DER is not supported)")
    }
    return text
}
