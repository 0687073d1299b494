import Foundation
import MeshprobeIdentity
import MeshprobeSVIDSource
import MeshprobeTLS
import MeshprobeTestSupport
import Testing

@Suite struct WorkloadAPIEndpointTests {
    @Test func readsBothUnixForms() throws {
        #expect(try WorkloadAPIEndpoint(parsing: "unix:///run/spire/sockets/agent.sock").path == "/run/spire/sockets/agent.sock")
        #expect(try WorkloadAPIEndpoint(parsing: "unix:/tmp/agent.sock").path == "/tmp/agent.sock")
    }

    @Test func refusesTCPRelativePathsAndBarePaths() {
        #expect(throws: InputValueError("'tcp://127.0.0.1:8081': only unix: endpoints are supported (the Workload API is the agent's local socket)")) {
            try WorkloadAPIEndpoint(parsing: "tcp://127.0.0.1:8081")
        }
        #expect(throws: InputValueError("'unix:agent.sock': the socket path must be absolute (unix:///run/spire/sockets/agent.sock)")) {
            try WorkloadAPIEndpoint(parsing: "unix:agent.sock")
        }
        #expect(throws: InputValueError("'/run/agent.sock': expected unix:///path/to/agent.sock")) {
            try WorkloadAPIEndpoint(parsing: "/run/agent.sock")
        }
    }
}

/// Updates as the Workload API sends them (DER chains, PKCS#8 keys, DER bundles), made from the lab PKI with
/// `openssl` converting its PEM files.
@Suite struct X509SVIDUpdateTests {
    /// The SVID `name` of `pki` as the Workload API hands it over.
    static func svid(_ pki: LabPKIFixture, _ name: String) async throws -> X509SVIDUpdate.SVID {
        let files = try pki.svid(name, uris: [pki.id(name)])
        let certDER = pki.path("\(name).der"), keyDER = pki.path("\(name)-key.der"), caDER = pki.path("ca.der")
        for arguments in [["x509", "-in", files.cert, "-outform", "DER", "-out", certDER],
                          ["pkcs8", "-topk8", "-nocrypt", "-in", files.key, "-outform", "DER", "-out", keyDER],
                          ["x509", "-in", pki.caFile, "-outform", "DER", "-out", caDER]] {
            let out = try await run("/usr/bin/env", ["openssl"] + arguments, timeout: 20)
            try #require(out.status == 0, "\(out.stderr)")
        }
        func bytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }
        return X509SVIDUpdate.SVID(spiffeID: pki.id(name), chainDER: try bytes(certDER), keyDER: try bytes(keyDER),
                                   bundleDER: try bytes(caDER), hint: "")
    }

    @Test func makesAClientContextWithTheSVIDAndItsBundle() async throws {
        let pki = try LabPKIFixture()
        let update = X509SVIDUpdate(svids: [try await Self.svid(pki, "prober")], federatedBundles: [:])
        let configuration = try update.apply(spiffeID: nil, to: TLSConfiguration(role: .client))
        let context = try TLSContext(configuration: configuration)
        #expect(context.localIdentity?.description == pki.id("prober"))
        #expect(configuration.trustBundles.trustDomains == [pki.trustDomain])
        // The key is never in the description: only the source and the chain's length.
        let svid = try #require(configuration.svidInMemory)
        let offered = try #require(update.svids.first)
        #expect("\(update)".contains("\(pki.id("prober")) (") && "\(update)".contains("a private key"), "\(update)")
        for text in ["\(update)", String(reflecting: offered), "\(configuration)"] {
            #expect(!text.contains("\(offered.keyDER.prefix(8))"), "the key's bytes are printed: \(text)")
        }
        #expect(svid.description == "the Workload API's SVID \(pki.id("prober")) (\(svid.chainDER.count) bytes of certificates, a private key)")
    }

    @Test func picksTheSVIDAskedForAndNamesTheOfferedOnesOtherwise() async throws {
        let pki = try LabPKIFixture()
        let update = X509SVIDUpdate(svids: [try await Self.svid(pki, "first"), try await Self.svid(pki, "second")], federatedBundles: [:])
        #expect(try update.select(spiffeID: nil).spiffeID == pki.id("first"))
        #expect(try update.select(spiffeID: pki.id("second")).spiffeID == pki.id("second"))
        #expect(throws: WorkloadAPIError.noSVIDWithID(requested: pki.id("third"), offered: [pki.id("first"), pki.id("second")])) {
            try update.select(spiffeID: pki.id("third"))
        }
    }

    @Test func addsFederatedBundlesByTrustDomain() async throws {
        let pki = try LabPKIFixture()
        var svid = try await Self.svid(pki, "prober")
        let update = X509SVIDUpdate(svids: [svid], federatedBundles: ["spiffe://other.test": svid.bundleDER])
        #expect(try update.apply(spiffeID: nil, to: TLSConfiguration(role: .client)).trustBundles.trustDomains == [pki.trustDomain, "other.test"].sorted())
        svid.keyDER = Array(svid.keyDER.prefix(10))
        let broken = X509SVIDUpdate(svids: [svid], federatedBundles: [:])
        let configuration = try broken.apply(spiffeID: nil, to: TLSConfiguration(role: .client))
        #expect(throws: TLSError.self) { _ = try TLSContext(configuration: configuration) }
    }

    @Test func refusesBytesThatAreNotDERCertificates() async throws {
        let pki = try LabPKIFixture()
        var svid = try await Self.svid(pki, "prober")
        svid.bundleDER += [0x30, 0x03, 0x01]
        #expect(throws: WorkloadAPIError.self) {
            try X509SVIDUpdate(svids: [svid], federatedBundles: [:]).apply(spiffeID: nil, to: TLSConfiguration(role: .client))
        }
    }
}
