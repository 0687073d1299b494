import Foundation

/// The checks of an identity's sources that need no TLS library: the files are there, and a client has what it needs
/// to verify its server. Each names its fields the reader's way (`--svid-dir`, `svidDir`).
extension TLSIdentitySpec {
    /// What a problem is about.
    public enum Field: Sendable, Hashable {
        case cert, key, ca, svidDir, trustBundles, expectPeer, insecure, sni

        /// The flag that sets it.
        public var flag: String {
            switch self {
            case .cert: return "--cert"
            case .key: return "--key"
            case .ca: return "--ca"
            case .svidDir: return "--svid-dir"
            case .trustBundles: return "--trust-bundle"
            case .expectPeer: return "--expect-peer"
            case .insecure: return "-k"
            case .sni: return "--sni"
            }
        }
    }

    /// A problem with the identity: `message` names the field first (for a reader that shows no location), `reason`
    /// is the same without it (for one that shows the field at its place in a file).
    public struct Problem: Error, Sendable, Equatable {
        public var field: Field
        public var message: String
        public var reason: String
    }

    /// Resolves the files to use: explicit files win over the SVID directory (its root-cert.pem only when present).
    public func files() -> (cert: String?, key: String?, ca: String?) {
        var cert = self.cert, key = self.key, ca = self.ca
        if let dir = svidDir {
            let url = URL(fileURLWithPath: dir)
            cert = cert ?? url.appendingPathComponent("cert-chain.pem").path
            key = key ?? url.appendingPathComponent("key.pem").path
            let root = url.appendingPathComponent("root-cert.pem").path
            if ca == nil, FileManager.default.fileExists(atPath: root) { ca = root }
        }
        return (cert, key, ca)
    }

    /// Refuses a certificate without its key and an SVID directory that is missing or lacks the files it must give.
    public func checkSources(naming name: (Field) -> String = \.flag) throws(Problem) {
        if (cert == nil) != (key == nil) && svidDir == nil {
            let field: Field = cert == nil ? .key : .cert
            throw Problem(field: field, message: "\(name(.cert)) and \(name(.key)) go together: give both or neither",
                          reason: "\(name(.cert)) and \(name(.key)) go together: give both or neither")
        }
        if let dir = svidDir {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
                let reason = "no such directory (is the SVID volume mounted there?)"
                throw Problem(field: .svidDir, message: "\(name(.svidDir)) '\(dir)': \(reason)", reason: "'\(dir)': \(reason)")
            }
            // The files this directory must provide: those no explicit file gives.
            var needed: [String] = []
            if cert == nil { needed.append("cert-chain.pem") }
            if key == nil { needed.append("key.pem") }
            let missing = needed.map { URL(fileURLWithPath: dir).appendingPathComponent($0).path }
                .filter { !FileManager.default.isReadableFile(atPath: $0) }
            if !missing.isEmpty {
                let reason = "missing or unreadable \(missing.joined(separator: ", ")) (the SVID files, Istio/SPIRE names: cert-chain.pem, key.pem, root-cert.pem)"
                throw Problem(field: .svidDir, message: "\(name(.svidDir)) '\(dir)': \(reason)", reason: "'\(dir)': \(reason)")
            }
        }
    }

    /// Refuses what a client cannot do: verify an https server without a trust bundle, or check a plaintext
    /// server's identity or name. Without `readFiles` nothing on disk is looked at, and an SVID directory counts as
    /// giving its root-cert.pem.
    public func checkClient(https: Bool, insecure: Bool, expectsPeer: Bool, sni: Bool, readFiles: Bool = true,
                            naming name: (Field) -> String = \.flag) throws(Problem) {
        if https {
            let hasCA = readFiles ? files().ca != nil : (ca != nil || svidDir != nil)
            if !insecure && !hasCA && trustBundles.isEmpty {
                let skip = "\(name(.insecure)) to skip verification"
                let reason: String
                if let dir = svidDir {
                    reason = "https needs a trust bundle to verify the server: \(URL(fileURLWithPath: dir).appendingPathComponent("root-cert.pem").path) is missing (give \(name(.ca)) or \(name(.trustBundles)), or \(skip))"
                } else {
                    reason = "https needs a trust bundle to verify the server: \(name(.ca)), \(name(.svidDir)) or \(name(.trustBundles)) (or \(skip))"
                }
                throw Problem(field: svidDir == nil ? .ca : .svidDir, message: reason, reason: reason)
            }
        } else if expectsPeer {
            let reason = "needs an https:// or grpcs:// URL: plaintext has no peer certificate"
            throw Problem(field: .expectPeer, message: "\(name(.expectPeer)) \(reason)", reason: reason)
        } else if sni {
            let reason = "needs an https:// or grpcs:// URL: plaintext has no TLS server name"
            throw Problem(field: .sni, message: "\(name(.sni)) \(reason)", reason: reason)
        }
    }
}
