import ArgumentParser
import Foundation
import MeshprobeIdentity
import MeshprobeSpec
import MeshprobeTLS

/// Where this process's SVID and trust bundles come from, and what it expects of its peer.
struct IdentityOptions: ParsableArguments {
    @Option(help: "Certificate chain (PEM, leaf first) to present.", completion: .file())
    var cert: String?

    @Option(help: "Private key (PEM) of --cert. Never printed.", completion: .file())
    var key: String?

    @Option(help: "Trust bundle (PEM CAs) used to verify the peer, for any trust domain.", completion: .file())
    var ca: String?

    @Option(name: .customLong("svid-dir"), help: "Directory with Istio/SPIRE names: cert-chain.pem, key.pem, root-cert.pem.",
            completion: .directory)
    var svidDir: String?

    @Option(name: .customLong("trust-bundle"), help: ArgumentHelp("Trust bundle for one trust domain, TRUST_DOMAIN=FILE (federation); repeatable.", valueName: "td=file"),
            transform: InputArgument.trustBundle)
    var trustBundles: [TrustBundleSource] = []

    @Option(name: .customLong("tls-security-level"), help: ArgumentHelp(
        "OpenSSL security level for keys and signatures, of the handshake and of every peer certificate (default 2: RSA/DH 2048 bits or more, no SHA-1). A lower level is printed as loosened.",
        valueName: "0-5"))
    var tlsSecurityLevel: Int = TLSLoosening.defaultSecurityLevel

    @Flag(name: .customLong("allow-non-svid-peer"), help: "Accept a peer certificate with no spiffe:// URI SAN when its chain verifies against --ca (plain TLS, for servers such as nginx); not with --expect-peer. Printed as loosened.")
    var allowNonSVIDPeer = false

    /// The flags as the value a file's `identity` section gives too.
    var spec: TLSIdentitySpec {
        var spec = TLSIdentitySpec()
        spec.cert = cert
        spec.key = key
        spec.ca = ca
        spec.svidDir = svidDir
        spec.trustBundles = trustBundles
        spec.tlsSecurityLevel = tlsSecurityLevel
        spec.allowNonSVIDPeer = allowNonSVIDPeer
        return spec
    }
}

/// The TLS identity as a context: checks name the flags (a file's reader puts its location in front).
extension TLSIdentitySpec {
    /// What it loosens (nothing by default).
    var loosening: TLSLoosening {
        TLSLoosening(securityLevel: tlsSecurityLevel ?? TLSLoosening.defaultSecurityLevel, allowNonSVIDPeer: allowNonSVIDPeer)
    }

    func validateFlags() throws {
        if let tlsSecurityLevel, !(0...5).contains(tlsSecurityLevel) {
            throw CLIError.badInput("--tls-security-level \(tlsSecurityLevel): OpenSSL's levels are 0 to 5 (default \(TLSLoosening.defaultSecurityLevel))")
        }
        do { try checkSources() } catch { throw CLIError.badInput(error.message) }
    }

    /// Builds the trust bundles from --ca, root-cert.pem and --trust-bundle td=FILE.
    func bundles() throws -> TrustBundles {
        var bundles = TrustBundles()
        do {
            if let ca = files().ca { try bundles.add(pemFile: ca, trustDomain: nil) }
            for bundle in trustBundles { try bundles.add(pemFile: bundle.file, trustDomain: bundle.trustDomain) }
        } catch {
            throw CLIError.badInput(error.message)
        }
        return bundles
    }

    /// A TLS context for this process in `role`.
    func makeContext(role: TLSConfiguration.Role, alpn: [String], expectedPeer: PeerExpectation?, verifyPeer: Bool,
                     serverName: String?, requireClientCertificate: Bool = false) throws -> TLSContext {
        try validateFlags()
        var configuration = try baseConfiguration(role: role, alpn: alpn, expectedPeer: expectedPeer, verifyPeer: verifyPeer,
                                                  serverName: serverName, requireClientCertificate: requireClientCertificate)
        let f = files()
        configuration.certificateChainFile = f.cert
        configuration.privateKeyFile = f.key
        do {
            return try TLSContext(configuration: configuration)
        } catch {
            throw CLIError.badInput(error.message)
        }
    }

    /// The files a run watches for rotation: the SVID's chain and key, and every trust bundle file.
    var watchedFiles: [String] {
        let f = files()
        return [f.cert, f.key, f.ca].compactMap { $0 } + trustBundles.map(\.file)
    }

    /// Everything of a context but our own SVID: the trust bundles of the flags, ALPN, the peer checks.
    func baseConfiguration(role: TLSConfiguration.Role, alpn: [String], expectedPeer: PeerExpectation?, verifyPeer: Bool,
                           serverName: String?, requireClientCertificate: Bool = false) throws -> TLSConfiguration {
        var configuration = TLSConfiguration(role: role)
        configuration.trustBundles = try bundles()
        configuration.applicationProtocols = alpn
        configuration.expectedPeer = expectedPeer
        configuration.verifyPeer = verifyPeer
        configuration.serverName = serverName
        configuration.requireClientCertificate = requireClientCertificate
        configuration.loosening = loosening
        if loosening.allowNonSVIDPeer, expectedPeer != nil {
            throw CLIError.badInput("--allow-non-svid-peer accepts peers without a SPIFFE ID, which --expect-peer requires: give one or the other")
        }
        return configuration
    }
}
