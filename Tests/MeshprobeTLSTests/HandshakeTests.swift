import Foundation
import MeshprobeIdentity
import MeshprobeTLS
import NIOCore
import NIOPosix
import Testing

@Suite(.timeLimit(.minutes(1)), .tags(.endToEnd))
struct HandshakeTests {
    let serverID = "spiffe://td.test/ns/default/sa/server"
    let clientID = "spiffe://td.test/ns/default/sa/client"

    @Test func mutualTLSHandshakeNegotiatesH2AndBothSidesSeeThePeerSPIFFEID() async throws {
        let lab = try LabPKIFixture(trustDomain: "td.test")
        let server = try TLSContext(configuration: lab.serverConfiguration(lab.svid("server", uris: [serverID]),
                                                                         expectedPeer: .trustDomain("td.test")))
        let client = try TLSContext(configuration: lab.clientConfiguration(lab.svid("client", uris: [clientID]),
                                                                         expectedPeer: try PeerExpectation(parsing: serverID)))
        #expect(server.localIdentity?.description == serverID)
        #expect(client.localIdentity?.description == clientID)
        try await withEventLoopGroup { group in
            let echo = try await EchoServer.start(group: group, context: server)
            let clientSide = try await connect(group: group, port: echo.port, context: client)
            let serverSide = try await echo.result()
            #expect(clientSide.error == nil)
            #expect(clientSide.received == "ping")
            #expect(clientSide.completed?.negotiatedProtocol == "h2")
            #expect(clientSide.completed?.version == "TLSv1.3")
            #expect(clientSide.completed?.peer?.spiffeID?.description == serverID)
            #expect(clientSide.completed?.resumed == false)
            #expect((clientSide.completed?.handshakeNanoseconds ?? 0) > 0)
            #expect(serverSide.error == nil)
            #expect(serverSide.completed?.negotiatedProtocol == "h2")
            #expect(serverSide.completed?.peer?.spiffeID?.description == clientID)
            #expect(serverSide.received == "ping")
            try await echo.channel.close()
        }
    }

    @Test func serverSeesTheSNIFromTheOverrideTheHostOrNoneForIPLiterals() async throws {
        let lab = try LabPKIFixture(trustDomain: "td.test")
        let server = try TLSContext(configuration: lab.serverConfiguration(lab.svid("server", uris: [serverID])))
        let plain = try lab.clientConfiguration(lab.svid("client", uris: [clientID]))
        var overridden = plain
        overridden.serverName = "reviews.bookinfo.svc.cluster.local"
        let plainContext = try TLSContext(configuration: plain)
        let overriddenContext = try TLSContext(configuration: overridden)
        // (client context, name passed to makeHandler(connectingTo:), SNI the server must see)
        let cases: [(TLSContext, String, String?)] = [
            (plainContext, "127.0.0.1", nil),
            (plainContext, "::1", nil),
            (plainContext, "gateway.example.org", "gateway.example.org"),
            (overriddenContext, "127.0.0.1", "reviews.bookinfo.svc.cluster.local"),
            (overriddenContext, "gateway.example.org", "reviews.bookinfo.svc.cluster.local"),
        ]
        try await withEventLoopGroup { group in
            let echo = try await EchoServer.start(group: group, context: server, connections: cases.count)
            for (index, (context, host, expected)) in cases.enumerated() {
                let clientSide = try await connect(group: group, port: echo.port, context: context, connectingTo: host)
                let serverSide = try await echo.result(index)
                #expect(clientSide.error == nil)
                #expect(serverSide.completed?.serverName == expected, "host \(host)")
                #expect(clientSide.completed?.serverName == expected, "host \(host)")
            }
            try await echo.channel.close()
        }
    }

    @Test(arguments: [TLSVersion.tls12, .tls13])
    func secondConnectionResumesTheSession(version: TLSVersion) async throws {
        let lab = try LabPKIFixture(trustDomain: "td.test")
        let server = try TLSContext(configuration: lab.serverConfiguration(lab.svid("server", uris: [serverID])))
        var clientConfiguration = try lab.clientConfiguration(lab.svid("client", uris: [clientID]))
        clientConfiguration.maximumVersion = version
        clientConfiguration.minimumVersion = version
        let client = try TLSContext(configuration: clientConfiguration)
        try await withEventLoopGroup { group in
            let echo = try await EchoServer.start(group: group, context: server, connections: 2)
            let first = try await connect(group: group, port: echo.port, context: client)
            let second = try await connect(group: group, port: echo.port, context: client)
            #expect(first.error == nil)
            #expect(first.completed?.resumed == false)
            #expect(first.completed?.version == (version == .tls12 ? "TLSv1.2" : "TLSv1.3"))
            // The mesh's preference (Envoy's client defaults): AES-128-GCM first, not OpenSSL's AES-256.
            #expect(first.completed?.cipher == (version == .tls12 ? "ECDHE-ECDSA-AES128-GCM-SHA256" : "TLS_AES_128_GCM_SHA256"))
            #expect(second.error == nil)
            #expect(second.completed?.resumed == true)
            #expect(second.received == "ping")
            // The resumed session still reports the peer identity.
            #expect(second.completed?.peer?.spiffeID?.description == serverID)
            let serverSecond = try await echo.result(1)
            #expect(serverSecond.completed?.resumed == true)
            #expect(serverSecond.completed?.peer?.spiffeID?.description == clientID)
            try await echo.channel.close()
        }
    }

    @Test func unknownCipherSuitesAreAConfigurationError() throws {
        let lab = try LabPKIFixture(trustDomain: "td.test")
        var twelve = try lab.clientConfiguration(nil)
        twelve.tls12Ciphers = "NOT-A-CIPHER"
        #expect(throws: TLSError.self) { try TLSContext(configuration: twelve) }
        var thirteen = try lab.clientConfiguration(nil)
        thirteen.tls13Ciphersuites = "TLS_NOT_A_SUITE"
        #expect(throws: TLSError.self) { try TLSContext(configuration: thirteen) }
    }

    @Test func serverVerifiesAClientFromAFederatedTrustDomainAgainstThatDomainsBundle() async throws {
        let lab = try LabPKIFixture(trustDomain: "td.test")
        let otherCA = try LabPKI.makeCA(trustDomain: "b.test")
        try otherCA.certificatePEM.write(toFile: lab.path("b-ca.pem"), atomically: true, encoding: .utf8)
        var serverTrust = TrustBundles()
        try serverTrust.add(spec: "td.test=\(lab.path("ca.pem"))")
        try serverTrust.add(spec: "b.test=\(lab.path("b-ca.pem"))")
        #expect(serverTrust.trustDomains == ["b.test", "td.test"])
        let server = try TLSContext(configuration: lab.serverConfiguration(lab.svid("server", uris: [serverID]), trust: serverTrust))
        let federatedClient = "spiffe://b.test/ns/payments/sa/api"
        let client = try TLSContext(configuration: lab.clientConfiguration(
            lab.svid("b-client", uris: [federatedClient], by: otherCA)))
        try await withEventLoopGroup { group in
            let echo = try await EchoServer.start(group: group, context: server)
            let clientSide = try await connect(group: group, port: echo.port, context: client)
            let serverSide = try await echo.result()
            #expect(clientSide.error == nil)
            #expect(serverSide.error == nil)
            #expect(serverSide.completed?.peer?.spiffeID?.description == federatedClient)
            try await echo.channel.close()
        }
    }

    @Test func plainTLSModeAcceptsAnOrdinaryCertificateOnlyWhenAllowed() async throws {
        let lab = try LabPKIFixture(trustDomain: "td.test")
        let plain = try lab.svid("plain", uris: [], dns: ["localhost"])
        let server = try TLSContext(configuration: lab.serverConfiguration(plain, requireClientCertificate: false))
        var anyDomain = TrustBundles()
        try anyDomain.add(pemFile: lab.path("ca.pem"), trustDomain: nil)
        let strict = try TLSContext(configuration: lab.clientConfiguration(nil, trust: anyDomain))
        var allowing = try lab.clientConfiguration(nil, trust: anyDomain)
        allowing.loosening.allowNonSVIDPeer = true
        let client = try TLSContext(configuration: allowing)
        try await withEventLoopGroup { group in
            let refused = try await EchoServer.start(group: group, context: server)
            let strictSide = try await connect(group: group, port: refused.port, context: strict, serverName: "localhost")
            #expect(strictSide.error?.kind == .tlsNoSPIFFEID)
            _ = try? await refused.result()
            try? await refused.channel.close()

            let echo = try await EchoServer.start(group: group, context: server)
            let clientSide = try await connect(group: group, port: echo.port, context: client, serverName: "localhost")
            #expect(clientSide.error == nil)
            #expect(clientSide.received == "ping")
            #expect(clientSide.completed?.peer?.spiffeID == nil)
            #expect(clientSide.completed?.peer?.dnsNames == ["localhost"])
            let serverSide = try await echo.result()
            #expect(serverSide.completed?.peer == nil)
            try await echo.channel.close()
        }
    }

    @Test func clientWithoutVerificationConnectsToAnUntrustedServerAndStillReportsIt() async throws {
        let lab = try LabPKIFixture(trustDomain: "td.test")
        let stranger = try LabPKI.makeCA(trustDomain: "stranger.test")
        let server = try TLSContext(configuration: lab.serverConfiguration(
            lab.svid("server", uris: ["spiffe://stranger.test/x"], by: stranger), requireClientCertificate: false))
        var configuration = try lab.clientConfiguration(nil)
        configuration.verifyPeer = false
        let client = try TLSContext(configuration: configuration)
        try await withEventLoopGroup { group in
            let echo = try await EchoServer.start(group: group, context: server)
            let clientSide = try await connect(group: group, port: echo.port, context: client)
            #expect(clientSide.error == nil)
            #expect(clientSide.completed?.peer?.spiffeID?.description == "spiffe://stranger.test/x")
            _ = try await echo.result()
            try await echo.channel.close()
        }
    }

    @Test func writesMadeBeforeTheHandshakeAreSentAfterIt() async throws {
        let lab = try LabPKIFixture(trustDomain: "td.test")
        let server = try TLSContext(configuration: lab.serverConfiguration(lab.svid("server", uris: [serverID])))
        let client = try TLSContext(configuration: lab.clientConfiguration(lab.svid("client", uris: [clientID])))
        try await withEventLoopGroup { group in
            let echo = try await EchoServer.start(group: group, context: server)
            let promise = group.next().makePromise(of: SideResult.self)
            let channel = try await ClientBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers([
                            client.makeHandler(),
                            Recorder(promise: promise, request: "", isDone: { $0 == "early" }),
                        ])
                    }
                }
                .connect(host: "127.0.0.1", port: echo.port).get()
            // Written straight away, while the handshake is still in flight.
            try await channel.writeAndFlush(ByteBuffer(string: "early"))
            let clientSide = try await wait(promise, what: "early write echo")
            #expect(clientSide.received == "early")
            try await echo.channel.close()
        }
    }

    @Test func handshakeFailsWithALPNMismatchWhenNoProtocolOverlaps() async throws {
        let lab = try LabPKIFixture(trustDomain: "td.test")
        let server = try TLSContext(configuration: lab.serverConfiguration(lab.svid("server", uris: [serverID]), alpn: ["h2"]))
        let client = try TLSContext(configuration: lab.clientConfiguration(lab.svid("client", uris: [clientID]), alpn: ["http/1.1"]))
        try await withEventLoopGroup { group in
            let echo = try await EchoServer.start(group: group, context: server)
            let clientSide = try await connect(group: group, port: echo.port, context: client)
            let serverSide = try await echo.result()
            #expect(clientSide.error?.kind == .tlsALPNMismatch)
            #expect(serverSide.error?.kind == .tlsALPNMismatch)
            #expect(serverSide.error?.message.contains("http/1.1") == true)
            try await echo.channel.close()
        }
    }
}
