import Foundation
import MeshprobeIdentity
import MeshprobeTLS
import NIOCore
import NIOPosix
import Testing

/// Each way a peer certificate can be wrong is reported as its own error kind, with a plain message.
@Suite(.timeLimit(.minutes(1)), .tags(.endToEnd))
struct VerificationErrorTests {
    let serverID = "spiffe://td.test/ns/default/sa/server"
    let clientID = "spiffe://td.test/ns/default/sa/client"

    /// Connects a client (with a valid client certificate unless told otherwise) to a server presenting `serverFiles`.
    func handshake(lab: LabPKIFixture, serverFiles: (cert: String, key: String), clientFiles: (cert: String, key: String)?? = nil,
                   expectedPeer: PeerExpectation? = nil, version: TLSVersion = .tls13) async throws -> (client: SideResult, server: SideResult) {
        let server = try TLSContext(configuration: lab.serverConfiguration(serverFiles))
        let clientCertificate = try clientFiles ?? lab.svid("client", uris: [clientID])
        var configuration = try lab.clientConfiguration(clientCertificate, expectedPeer: expectedPeer)
        configuration.maximumVersion = version
        return try await MeshprobeTLSTests.handshake(server: server, client: TLSContext(configuration: configuration))
    }

    @Test func rejectsAnExpiredServerCertificate() async throws {
        let lab = try LabPKIFixture(trustDomain: "td.test")
        let files = try lab.svid("expired", uris: [serverID], notBefore: Date().addingTimeInterval(-7200),
                                  notAfter: Date().addingTimeInterval(-3600))
        let (client, server) = try await handshake(lab: lab, serverFiles: files)
        #expect(client.error?.kind == .tlsCertificateExpired)
        #expect(client.error?.message.contains("expired at") == true)
        #expect(client.completed == nil)
        // The server learns of it through the alert.
        #expect(server.error?.kind == .tlsPeerRejectedCertificate)
        #expect(server.error?.message.contains("expired") == true)
    }

    @Test func rejectsAServerCertificateThatIsNotYetValid() async throws {
        let lab = try LabPKIFixture(trustDomain: "td.test")
        let files = try lab.svid("future", uris: [serverID], notBefore: Date().addingTimeInterval(3600),
                                  notAfter: Date().addingTimeInterval(7200))
        let (client, _) = try await handshake(lab: lab, serverFiles: files)
        #expect(client.error?.kind == .tlsCertificateNotYetValid)
    }

    @Test func rejectsACertificateFromAnotherCA() async throws {
        let lab = try LabPKIFixture(trustDomain: "td.test")
        let impostorCA = try LabPKI.makeCA(trustDomain: "td.test", commonName: "impostor CA")
        let files = try lab.svid("impostor", uris: [serverID], by: impostorCA)
        let (client, server) = try await handshake(lab: lab, serverFiles: files)
        #expect(client.error?.kind == .tlsUnknownCA)
        #expect(client.error?.message.contains("impostor CA") == true)
        #expect(server.error?.kind == .tlsPeerRejectedCertificate)
    }

    @Test func rejectsAServerWithTheWrongSPIFFEID() async throws {
        let lab = try LabPKIFixture(trustDomain: "td.test")
        let files = try lab.svid("other", uris: ["spiffe://td.test/ns/default/sa/other"])
        let (client, _) = try await handshake(lab: lab, serverFiles: files, expectedPeer: try PeerExpectation(parsing: serverID))
        #expect(client.error?.kind == .tlsWrongSPIFFEID)
        #expect(client.error?.message == "expected \(serverID), the server presented spiffe://td.test/ns/default/sa/other")
    }

    @Test func rejectsCertificateWithTwoURISANs() async throws {
        let lab = try LabPKIFixture(trustDomain: "td.test")
        let files = try lab.svid("two", uris: [serverID, "spiffe://td.test/ns/default/sa/second"])
        let (client, _) = try await handshake(lab: lab, serverFiles: files)
        #expect(client.error?.kind == .tlsMultipleURISANs)
    }

    @Test func rejectsAServerCertificateWithoutASPIFFEIDWhenAPeerIsExpected() async throws {
        let lab = try LabPKIFixture(trustDomain: "td.test")
        let files = try lab.svid("plain", uris: [], dns: ["server.example"])
        let (client, _) = try await handshake(lab: lab, serverFiles: files, expectedPeer: .trustDomain("td.test"))
        #expect(client.error?.kind == .tlsNoSPIFFEID)
    }

    @Test func rejectsALeafThatIsACA() async throws {
        let lab = try LabPKIFixture(trustDomain: "td.test")
        let files = try lab.svid("ca-leaf", uris: [serverID], isCA: true)
        let (client, _) = try await handshake(lab: lab, serverFiles: files)
        #expect(client.error?.kind == .tlsLeafIsCA)
    }

    @Test func rejectsAClientWithTheWrongSPIFFEIDOnTheServer() async throws {
        let lab = try LabPKIFixture(trustDomain: "td.test")
        let server = try TLSContext(configuration: lab.serverConfiguration(
            lab.svid("server", uris: [serverID]), expectedPeer: try PeerExpectation(parsing: clientID)))
        let client = try TLSContext(configuration: lab.clientConfiguration(lab.svid("evil", uris: ["spiffe://td.test/ns/evil/sa/x"])))
        try await withEventLoopGroup { group in
            let echo = try await EchoServer.start(group: group, context: server)
            let clientSide = try await connect(group: group, port: echo.port, context: client)
            let serverSide = try await echo.result()
            #expect(serverSide.error?.kind == .tlsWrongSPIFFEID)
            #expect(serverSide.error?.message == "expected \(clientID), the client presented spiffe://td.test/ns/evil/sa/x")
            // With TLS 1.3 the client learns of it after its own handshake finished, on the next read.
            #expect(clientSide.error?.kind == .tlsPeerRejectedCertificate)
            #expect(clientSide.received.isEmpty)
            try await echo.channel.close()
        }
    }

    @Test(arguments: [TLSVersion.tls12, .tls13])
    func serverRequiringAClientCertificateRejectsAClientWithout(version: TLSVersion) async throws {
        let lab = try LabPKIFixture(trustDomain: "td.test")
        let (client, server) = try await handshake(lab: lab, serverFiles: lab.svid("server", uris: [serverID]),
                                                   clientFiles: .some(nil), version: version)
        #expect(server.error?.kind == .tlsNoPeerCertificate)
        #expect(client.error?.kind == .tlsPeerRejectedCertificate)
        #expect(client.error?.message.contains("none is configured") == true)
        #expect(client.received.isEmpty)
    }

    @Test func reportsAClosedConnectionDuringTheHandshake() async throws {
        let lab = try LabPKIFixture(trustDomain: "td.test")
        let client = try TLSContext(configuration: lab.clientConfiguration(nil))
        try await withEventLoopGroup { group in
            // A plain TCP server that closes every connection at once.
            let closer = try await ServerBootstrap(group: group)
                .childChannelInitializer { channel in channel.close() }
                .bind(host: "127.0.0.1", port: 0).get()
            let clientSide = try await connect(group: group, port: closer.localAddress?.port ?? 0, context: client)
            #expect(clientSide.error?.kind == .tlsHandshakeFailed)
            #expect(clientSide.error?.message == "connection closed during the TLS handshake")
            try await closer.close()
        }
    }
}
