import Foundation
import MeshprobeIdentity
import MeshprobeTLS
import NIOCore
import NIOPosix
import Testing

/// Host-name mode (`verifyHostname`): a client checks an ordinary web server certificate as a browser does, its chain
/// against the CA bundle and its DNS or IP subject alternative names against the host; URI SANs play no part. The
/// server presents a lab certificate with the DNS SAN `localhost` and no SPIFFE ID.
@Suite(.timeLimit(.minutes(1)), .tags(.endToEnd))
struct HostnameVerificationTests {
    /// Connects a client without a certificate, verifying `hostname` against the lab CA, to a server presenting `serverFiles`.
    func handshake(lab: LabPKIFixture, serverFiles: (cert: String, key: String), hostname: String) async throws -> (client: SideResult, server: SideResult) {
        let server = try TLSContext(configuration: lab.serverConfiguration(serverFiles, requireClientCertificate: false))
        var trust = TrustBundles()
        try trust.add(pemFile: lab.path("ca.pem"), trustDomain: nil)
        var configuration = try lab.clientConfiguration(nil, trust: trust)
        configuration.verifyHostname = hostname
        return try await MeshprobeTLSTests.handshake(server: server, client: TLSContext(configuration: configuration), connectingTo: hostname)
    }

    func localhostCertificate(_ lab: LabPKIFixture, by ca: IssuedCertificate? = nil) throws -> (cert: String, key: String) {
        try lab.svid("localhost", uris: [], dns: ["localhost"], by: ca)
    }

    @Test func acceptsACertificateForTheHostName() async throws {
        let lab = try LabPKIFixture(trustDomain: "td.test")
        let (client, server) = try await handshake(lab: lab, serverFiles: localhostCertificate(lab), hostname: "localhost")
        #expect(client.error == nil, "\(client.error?.description ?? "")")
        #expect(client.received == "ping")
        #expect(client.completed?.peer?.dnsNames == ["localhost"])
        #expect(client.completed?.peer?.spiffeID == nil)
        #expect(server.error == nil)
    }

    @Test(arguments: ["pushgateway.example", "127.0.0.1"])
    func rejectsACertificateForAnotherHostAsTheWrongHostname(host: String) async throws {
        let lab = try LabPKIFixture(trustDomain: "td.test")
        let (client, server) = try await handshake(lab: lab, serverFiles: localhostCertificate(lab), hostname: host)
        #expect(client.error?.kind == .tlsWrongHostname, "\(client.error?.description ?? "no error")")
        #expect(client.error?.message.contains("is not for '\(host)': it names DNS:localhost") == true, "\(client.error?.message ?? "")")
        #expect(client.completed == nil)
        #expect(client.received.isEmpty)
        #expect(server.error?.kind == .tlsPeerRejectedCertificate)
    }

    @Test func rejectsACertificateForTheHostNameFromAnotherCA() async throws {
        let lab = try LabPKIFixture(trustDomain: "td.test")
        let stranger = try LabPKI.makeCA(trustDomain: "stranger.test", commonName: "stranger CA")
        let (client, server) = try await handshake(lab: lab, serverFiles: localhostCertificate(lab, by: stranger), hostname: "localhost")
        #expect(client.error?.kind == .tlsUnknownCA, "\(client.error?.description ?? "no error")")
        #expect(client.error?.message.contains("stranger CA") == true, "\(client.error?.message ?? "")")
        #expect(client.completed == nil)
        #expect(server.error?.kind == .tlsPeerRejectedCertificate)
    }
}
