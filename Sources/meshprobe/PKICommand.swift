import ArgumentParser
import Foundation
import MeshprobeIdentity
import MeshprobeRunner
import MeshprobeTLS

struct PKICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pki",
        abstract: "A throwaway SPIFFE CA and X509-SVIDs for labs, tests and game days.",
        subcommands: [CA.self, Issue.self, Inspect.self]
    )

    struct CA: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a CA for a trust domain: OUT/ca.pem and OUT/ca-key.pem (mode 0600).",
            discussion: "Example: meshprobe pki ca --trust-domain example.org --out ./pki")

        @Option(name: .customLong("trust-domain"), help: "The trust domain, e.g. cluster.local.", transform: InputArgument.trustDomain)
        var trustDomain: String

        @Option(help: "Output directory (created if missing).", completion: .directory)
        var out: String

        @Option(help: "Validity in days.")
        var days: Int = 365

        func run() throws {
            guard days > 0, days <= 36600 else { throw CLIError.badInput("--days must be 1-36600 (100 years)") }
            let ca: IssuedCertificate
            do { ca = try LabPKI.makeCA(trustDomain: trustDomain, validFor: days * 86400) } catch { throw CLIError.badInput(error.message) }
            try writeFiles(out, [("ca.pem", ca.certificatePEM, false), ("ca-key.pem", ca.privateKeyPEM, true)])
            printLine("CA for spiffe://\(trustDomain) written to \(out)/ca.pem (key: \(out)/ca-key.pem, mode 0600)")
        }
    }

    struct Issue: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue an X509-SVID: OUT/cert-chain.pem, OUT/key.pem (0600), OUT/root-cert.pem (Istio/SPIRE names).",
            discussion: """
                Example: meshprobe pki issue --ca-dir ./pki --spiffe-id spiffe://example.org/ns/default/sa/reviews --out ./svid-reviews
                A lab set for access checks: give --spiffe-id several times, and each SVID goes to OUT/NAME (NAME: the ID's last path \
                segment); the `identities:` a policy needs for them is printed.
                Lab flags make deliberately bad certificates for testing verifiers: --expired, --not-yet-valid, --leaf-ca, --extra-uri.
                """)

        @Option(name: .customLong("ca-dir"), help: "Directory with ca.pem and ca-key.pem from `pki ca`.", completion: .directory)
        var caDir: String

        @Option(name: .customLong("spiffe-id"), help: "The SVID's SPIFFE ID (its single URI SAN); repeatable: a set, each in OUT/NAME.",
                transform: InputArgument.spiffeID)
        var spiffeIDs: [SPIFFEID]

        @Option(name: .customLong("dns"), help: "DNS name SAN; repeatable.")
        var dnsNames: [String] = []

        @Option(name: .customLong("valid-for"), help: .defaulted("Validity from now (24h, 30m, 7d is 168h).", Self.defaultValidity),
                transform: InputArgument.validity)
        var validFor: TimeSpan = Self.defaultValidity
        static let defaultValidity = TimeSpan("24h")

        @Option(help: "Output directory (created if missing).", completion: .directory)
        var out: String

        @Flag(help: "Lab: make a certificate that expired an hour ago.")
        var expired = false

        @Flag(name: .customLong("not-yet-valid"), help: "Lab: make a certificate valid only from tomorrow.")
        var notYetValid = false

        @Flag(name: .customLong("leaf-ca"), help: "Lab: mark the leaf as a CA (invalid for an SVID).")
        var leafCA = false

        @Option(name: .customLong("extra-uri"), help: "Lab: add another URI SAN (two URI SANs make an invalid SVID).")
        var extraURIs: [String] = []

        func run() throws {
            // One SVID: OUT is its directory. A set: each in OUT/NAME, NAME the ID's last path segment.
            let names = spiffeIDs.map { $0.path.split(separator: "/").last.map(String.init) ?? "svid" }
            if spiffeIDs.count > 1, let twice = names.first(where: { name in names.filter { $0 == name }.count > 1 }) {
                throw CLIError.badInput("--spiffe-id: two IDs end in '\(twice)', and a set's SVIDs go to OUT/NAME by the last path segment: issue them one at a time with their own --out")
            }
            for (id, name) in zip(spiffeIDs, names) {
                try issue(id, to: spiffeIDs.count > 1 ? URL(fileURLWithPath: out).appendingPathComponent(name).path : out)
            }
            if spiffeIDs.count > 1 {
                printLine("identities:   # for a policy's expect.access (paths relative to the policy's directory)")
                for (id, name) in zip(spiffeIDs, names) { printLine("  \(id): {svidDir: \(out)/\(name)}") }
            }
        }

        func issue(_ id: SPIFFEID, to out: String) throws {
            let dir = URL(fileURLWithPath: caDir)
            let caCert = dir.appendingPathComponent("ca.pem").path
            let caKey = dir.appendingPathComponent("ca-key.pem").path
            let certPEM = try readPEMFile(caCert, flag: "--ca-dir")
            let keyPEM = try readPEMFile(caKey, flag: "--ca-dir")
            let seconds = validFor.seconds
            var notBefore = Date() - 300
            var notAfter = Date() + seconds
            if expired {
                notBefore = Date() - 86400
                notAfter = Date() - 3600
            }
            if notYetValid {
                notBefore = Date() + 86400
                notAfter = Date() + 86400 + seconds
            }
            let svid: IssuedCertificate
            do {
                svid = try LabPKI.issue(by: IssuedCertificate(certificatePEM: certPEM, privateKeyPEM: keyPEM),
                                        uriSANs: [id.description] + extraURIs, dnsNames: dnsNames,
                                        notBefore: notBefore, notAfter: notAfter, isCA: leafCA)
            } catch {
                throw CLIError.badInput(error.message)
            }
            try writeFiles(out, [("cert-chain.pem", svid.certificatePEM, false), ("key.pem", svid.privateKeyPEM, true),
                                 ("root-cert.pem", certPEM, false)])
            printLine("SVID \(id) written to \(out)/cert-chain.pem, key.pem (mode 0600), root-cert.pem")
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Describe the certificates in PEM files (never prints private keys).",
            discussion: "Example: meshprobe pki inspect ./svid-reviews/cert-chain.pem")

        @Argument(help: "PEM files.", completion: .file(extensions: ["pem", "crt"]))
        var files: [String]

        func run() throws {
            for file in files {
                let pem = try readPEMFile(file, flag: nil)
                let descriptions: [CertificateDescription]
                do { descriptions = try LabPKI.describe(pem: pem, source: file) } catch { throw CLIError.badInput(error.message) }
                printLine("\(file): \(descriptions.count) certificate(s)")
                for d in descriptions { printLine(d.text) }
            }
        }
    }
}

/// A PEM file's text (`InputFile`: a regular file of at most 4 MiB, UTF-8); bad input names `flag` and the file.
func readPEMFile(_ path: String, flag: String?) throws -> String {
    let bytes = try readInputFile(path, limit: .pem, flag: flag)
    guard let text = String(bytes: bytes, encoding: .utf8) else {
        throw CLIError.badInput("\(flag.map { "\($0) '\(path)'" } ?? path): not PEM text (it looks binary; DER is not supported)")
    }
    return text
}
