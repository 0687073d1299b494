import Foundation
import MeshprobeIdentity
import MeshprobeTLS
import NIOCore
import NIOPosix
import Testing

/// Our handler against the real `openssl` command line, both ways.
@Suite(.timeLimit(.minutes(1)), .tags(.endToEnd))
struct OpenSSLInteropTests {
    let serverID = "spiffe://td.test/ns/default/sa/server"
    let clientID = "spiffe://td.test/ns/default/sa/client"

    @Test func ourClientCompletesMutualTLSWithOpenSSLServer() async throws {
        let lab = try LabPKIFixture(trustDomain: "td.test")
        let serverFiles = try lab.svid("server", uris: [serverID])
        let client = try TLSContext(configuration: lab.clientConfiguration(
            lab.svid("client", uris: [clientID]), alpn: ["h2", "http/1.1"], expectedPeer: try PeerExpectation(parsing: serverID)))
        let port = try freePort()
        // Not a BackgroundProcess: its probe connection would take s_server's one accept.
        let server = try SignalledProcess("/usr/bin/env", [
            "openssl", "s_server", "-accept", "127.0.0.1:\(port)", "-cert", serverFiles.cert, "-key", serverFiles.key,
            "-CAfile", lab.path("ca.pem"), "-Verify", "2", "-verify_return_error", "-alpn", "h2", "-www", "-naccept", "1",
        ])
        defer { server.send(SIGTERM) }
        _ = try await server.wait(upTo: 10) { (server.stdout + server.stderr).contains("ACCEPT") }
        try await withEventLoopGroup { group in
            let result = try await connect(group: group, port: port, context: client, request: "GET / HTTP/1.0\r\n\r\n",
                                           isDone: { $0.contains("</HTML>") || $0.contains("</html>") })
            #expect(result.error == nil)
            #expect(result.completed?.negotiatedProtocol == "h2")
            #expect(result.completed?.peer?.spiffeID?.description == serverID)
            #expect(result.received.hasPrefix("HTTP/1.0 200 ok"))
            // s_server -www reports the client certificate it verified.
            #expect(result.received.contains("client certificate") || result.received.contains("Client certificate"))
        }
    }

    @Test func openSSLClientCompletesMutualTLSWithOurServer() async throws {
        let lab = try LabPKIFixture(trustDomain: "td.test")
        let server = try TLSContext(configuration: lab.serverConfiguration(lab.svid("server", uris: [serverID]),
                                                                         expectedPeer: .trustDomain("td.test")))
        let clientFiles = try lab.svid("client", uris: [clientID])
        try await withEventLoopGroup { group in
            let echo = try await EchoServer.start(group: group, context: server)
            let result = try await run("/usr/bin/env", ["openssl", "s_client", "-connect", "127.0.0.1:\(echo.port)",
                                                         "-cert", clientFiles.cert, "-key", clientFiles.key,
                                                         "-CAfile", lab.path("ca.pem"), "-verify_return_error", "-alpn", "h2",
                                                         "-servername", "server.td.test"], timeout: 15)
            #expect(result.status == 0)
            #expect(result.output.contains("ALPN protocol: h2"))
            #expect(result.output.contains("Verify return code: 0 (ok)"))
            let serverSide = try await echo.result()
            #expect(serverSide.error == nil)
            #expect(serverSide.completed?.negotiatedProtocol == "h2")
            #expect(serverSide.completed?.peer?.spiffeID?.description == clientID)
            try await echo.channel.close()
        }
    }

    @Test func openSSLClientWithoutACertificateIsRejectedByOurServer() async throws {
        let lab = try LabPKIFixture(trustDomain: "td.test")
        let server = try TLSContext(configuration: lab.serverConfiguration(lab.svid("server", uris: [serverID])))
        try await withEventLoopGroup { group in
            let echo = try await EchoServer.start(group: group, context: server)
            _ = try await run("/usr/bin/env", ["openssl", "s_client", "-connect", "127.0.0.1:\(echo.port)",
                                                "-CAfile", lab.path("ca.pem"), "-alpn", "h2"], timeout: 15)
            let serverSide = try await echo.result()
            #expect(serverSide.error?.kind == .tlsNoPeerCertificate)
            try await echo.channel.close()
        }
    }
}
