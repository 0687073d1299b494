import Foundation
import MeshprobeIdentity
import MeshprobeTLS

/// A temporary directory holding a lab CA (`ca.pem`) and the certificates issued by it; removed at deinit.
public final class LabPKIFixture: Sendable {
    public let directory: URL
    public let trustDomain: String
    public let ca: IssuedCertificate

    public init(trustDomain: String = "lab.meshprobe.test") throws {
        self.trustDomain = trustDomain
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-pki-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        ca = try LabPKI.makeCA(trustDomain: trustDomain)
        try write("ca.pem", ca.certificatePEM)
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    /// The SPIFFE ID of service account `sa` in namespace `ns` of this trust domain.
    public func id(_ sa: String, ns: String = "lab") -> String { "spiffe://\(trustDomain)/ns/\(ns)/sa/\(sa)" }

    /// The path of `name` in the directory, whether or not it exists.
    public func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// The CA's certificate.
    public var caFile: String { path("ca.pem") }

    /// Writes `contents` to `name` in the directory; its path.
    @discardableResult
    public func write(_ name: String, _ contents: String) throws -> String {
        let path = path(name)
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Issues a certificate (by the lab CA unless `issuer` is given) and writes `name.pem` and `name-key.pem` (the key
    /// readable by its owner only); their paths.
    public func svid(_ name: String, uris: [String], dns: [String] = [], notBefore: Date = Date() - 300,
                     notAfter: Date = Date() + 3600, isCA: Bool = false, keyUsage: String? = nil,
                     by issuer: IssuedCertificate? = nil) throws -> (cert: String, key: String) {
        let issued = try LabPKI.issue(by: issuer ?? ca, uriSANs: uris, dnsNames: dns, notBefore: notBefore, notAfter: notAfter,
                                      isCA: isCA, keyUsage: keyUsage)
        let paths = (cert: path("\(name).pem"), key: path("\(name)-key.pem"))
        try issued.write(certificateTo: paths.cert, privateKeyTo: paths.key)
        return paths
    }

    /// The lab CA as the trust bundle of its trust domain.
    public func trustBundles() throws -> TrustBundles {
        var bundles = TrustBundles()
        try bundles.add(pemFile: caFile, trustDomain: trustDomain)
        return bundles
    }

    /// A server presenting `svid` that asks for a client certificate, verified against `trust` (the lab CA when nil)
    /// and required when `requireClientCertificate`.
    public func serverConfiguration(_ svid: (cert: String, key: String), trust: TrustBundles? = nil, requireClientCertificate: Bool = true,
                                    alpn: [String] = ["h2", "http/1.1"], expectedPeer: PeerExpectation? = nil) throws -> TLSConfiguration {
        var configuration = TLSConfiguration(role: .server)
        configuration.certificateChainFile = svid.cert
        configuration.privateKeyFile = svid.key
        configuration.trustBundles = try trust ?? trustBundles()
        configuration.requireClientCertificate = requireClientCertificate
        configuration.applicationProtocols = alpn
        configuration.expectedPeer = expectedPeer
        return configuration
    }

    /// A client presenting `svid` (none when nil) that verifies the server against `trust` (the lab CA when nil).
    public func clientConfiguration(_ svid: (cert: String, key: String)?, trust: TrustBundles? = nil, alpn: [String] = ["h2"],
                                    expectedPeer: PeerExpectation? = nil) throws -> TLSConfiguration {
        var configuration = TLSConfiguration(role: .client)
        configuration.certificateChainFile = svid?.cert
        configuration.privateKeyFile = svid?.key
        configuration.trustBundles = try trust ?? trustBundles()
        configuration.applicationProtocols = alpn
        configuration.expectedPeer = expectedPeer
        return configuration
    }

    /// A server context presenting `svid`: mutual TLS with the lab CA, or no client certificate asked for at all when
    /// `requireClientCert` is false.
    public func serverTLS(_ svid: (cert: String, key: String), requireClientCert: Bool = true,
                          alpn: [String] = ["h2", "http/1.1"], loosening: TLSLoosening = TLSLoosening()) throws -> TLSContext {
        var configuration = try serverConfiguration(svid, requireClientCertificate: requireClientCert, alpn: alpn)
        configuration.verifyPeer = requireClientCert
        configuration.loosening = loosening
        return try TLSContext(configuration: configuration)
    }

    /// A client context presenting `svid` (none when nil) that trusts `bundle` (the lab CA when nil) for `trustDomain`
    /// (for any trust domain when nil) and checks the server against `expect`.
    public func clientTLS(_ svid: (cert: String, key: String)?, expect: PeerExpectation?, alpn: [String] = ["h2", "http/1.1"],
                          bundle: String? = nil, trustDomain: String? = nil, loosening: TLSLoosening = TLSLoosening()) throws -> TLSContext {
        var trust = TrustBundles()
        try trust.add(pemFile: bundle ?? caFile, trustDomain: trustDomain)
        var configuration = try clientConfiguration(svid, trust: trust, alpn: alpn, expectedPeer: expect)
        configuration.loosening = loosening
        return try TLSContext(configuration: configuration)
    }
}
