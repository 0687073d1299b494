import Foundation
import MeshprobeIdentity
import MeshprobeTLS
import Testing

@Suite(.timeLimit(.minutes(1)))
struct LabPKITests {
    @Test func labCertificatesVerifyWithTheOpenSSLCommandLine() async throws {
        let lab = try LabPKIFixture(trustDomain: "td.test")
        let leaf = try lab.svid("leaf", uris: ["spiffe://td.test/ns/default/sa/api"], dns: ["api.default.svc"])
        let verify = try await run("/usr/bin/env", ["openssl", "verify", "-CAfile", lab.path("ca.pem"), leaf.cert], timeout: 15)
        #expect(verify.status == 0)
        #expect(verify.output.contains(": OK"))

        let leafText = try await run("/usr/bin/env", ["openssl", "x509", "-in", leaf.cert, "-noout", "-text"], timeout: 15).output
        #expect(leafText.contains("URI:spiffe://td.test/ns/default/sa/api"))
        #expect(leafText.contains("DNS:api.default.svc"))
        #expect(leafText.contains("CA:FALSE"))
        #expect(leafText.contains("TLS Web Server Authentication, TLS Web Client Authentication"))
        #expect(leafText.contains("prime256v1"))

        let caText = try await run("/usr/bin/env", ["openssl", "x509", "-in", lab.path("ca.pem"), "-noout", "-text"], timeout: 15).output
        #expect(caText.contains("CA:TRUE"))
        #expect(caText.contains("Certificate Sign"))
        #expect(caText.contains("URI:spiffe://td.test"))

        let key = try await run("/usr/bin/env", ["openssl", "pkey", "-in", leaf.key, "-noout", "-check"], timeout: 15)
        #expect(key.status == 0)
    }

    @Test func describeListsEachCertificateOfABundle() throws {
        let lab = try LabPKIFixture(trustDomain: "td.test")
        let leaf = try LabPKI.issue(by: lab.ca, uriSANs: ["spiffe://td.test/ns/a/sa/b"], dnsNames: ["b.a.svc"])
        let descriptions = try LabPKI.describe(pem: leaf.certificatePEM + lab.ca.certificatePEM, source: "bundle.pem")
        #expect(descriptions.count == 2)
        #expect(descriptions[0].spiffeID?.description == "spiffe://td.test/ns/a/sa/b")
        #expect(descriptions[0].dnsNames == ["b.a.svc"])
        #expect(descriptions[0].isCA == false)
        #expect(descriptions[0].keyType == "EC prime256v1")
        #expect(descriptions[0].issuer == descriptions[1].subject)
        #expect(descriptions[1].isCA == true)
        #expect(descriptions[1].uriSANs == ["spiffe://td.test"])
        #expect(descriptions[0].text.contains("URI SAN:     spiffe://td.test/ns/a/sa/b"))
        #expect(!descriptions[0].serialNumber.isEmpty)
    }

    @Test func describeRejectsTextThatIsNotPEM() {
        #expect(throws: TLSError.self) { try LabPKI.describe(pem: "hello", source: "notes.txt") }
        do {
            _ = try LabPKI.describe(pem: "hello", source: "notes.txt")
        } catch {
            #expect(error.message.contains("notes.txt"))
        }
    }
}

@Suite(.timeLimit(.minutes(1)))
struct ConfigurationErrorTests {
    @Test func missingCertificateFileIsNamedInTheError() throws {
        var configuration = TLSConfiguration(role: .server)
        configuration.certificateChainFile = "/nonexistent/server.pem"
        configuration.privateKeyFile = "/nonexistent/server.key"
        configuration.verifyPeer = false
        do {
            _ = try TLSContext(configuration: configuration)
            Issue.record("expected an error")
        } catch {
            #expect(error.message == "certificate chain file /nonexistent/server.pem does not exist")
        }
    }

    @Test func privateKeyThatDoesNotMatchTheCertificateIsReportedWithoutKeyBytes() throws {
        let lab = try LabPKIFixture(trustDomain: "td.test")
        let a = try lab.svid("a", uris: ["spiffe://td.test/a"])
        let b = try lab.svid("b", uris: ["spiffe://td.test/b"])
        var configuration = TLSConfiguration(role: .server)
        configuration.certificateChainFile = a.cert
        configuration.privateKeyFile = b.key
        configuration.verifyPeer = false
        let keyText = try String(contentsOfFile: b.key, encoding: .utf8)
        let keyBody = keyText.split(separator: "\n").dropFirst().first.map(String.init) ?? "?"
        do {
            _ = try TLSContext(configuration: configuration)
            Issue.record("expected an error")
        } catch {
            #expect(error.message.contains("does not match the certificate in \(a.cert)"))
            #expect(!error.message.contains(keyBody))
        }
    }

    @Test func trustBundleThatIsNotPEMIsNamedInTheError() throws {
        let lab = try LabPKIFixture(trustDomain: "td.test")
        let path = lab.path("junk.pem")
        try "not a certificate".write(toFile: path, atomically: true, encoding: .utf8)
        var bundles = TrustBundles()
        do {
            try bundles.add(spec: "td.test=\(path)")
            Issue.record("expected an error")
        } catch {
            #expect(error.message.contains(path))
            #expect(error.message.contains("not a PEM certificate file"))
        }
        #expect(bundles.isEmpty)
    }
}
