import Foundation
import MeshprobeIdentity
import MeshprobeTLS
import NIOCore
import NIOPosix
import Testing

/// Our handler against the real `openssl` command line, both ways.
@Suite(.timeLimit(.minutes(1)))
struct OpenSSLInteropTests {
    let serverID = "spiffe://td.test/ns/default/sa/server"
    let clientID = "spiffe://td.test/ns/default/sa/client"

    /// A port that was free a moment ago.
    func freePort() throws -> Int {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let channel = try ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).wait()
        let port = channel.localAddress?.port ?? 0
        try channel.close().wait()
        return port
    }

    @Test func ourClientCompletesMutualTLSWithOpenSSLServer() async throws {
        let lab = try Lab()
        let serverFiles = try lab.issue(serverID, as: "server")
        let client = try TLSContext(configuration: lab.clientConfiguration(
            lab.issue(clientID, as: "client"), alpn: ["h2", "http/1.1"], expectedPeer: try PeerExpectation(parsing: serverID)))
        let port = try freePort()
        let logPath = lab.path("s_server.log")
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl", "s_server", "-accept", "127.0.0.1:\(port)", "-cert", serverFiles.certificate,
                             "-key", serverFiles.key, "-CAfile", lab.path("ca.pem"), "-Verify", "2",
                             "-verify_return_error", "-alpn", "h2", "-www", "-naccept", "1"]
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        defer {
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
        }
        // Wait until it listens.
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, !((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").contains("ACCEPT") {
            try await Task.sleep(for: .milliseconds(20))
        }
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
        let lab = try Lab()
        let server = try TLSContext(configuration: lab.serverConfiguration(lab.issue(serverID, as: "server"),
                                                                         expectedPeer: .trustDomain("td.test")))
        let clientFiles = try lab.issue(clientID, as: "client")
        try await withEventLoopGroup { group in
            let echo = try await EchoServer.start(group: group, context: server)
            let result = try await run(["openssl", "s_client", "-connect", "127.0.0.1:\(echo.port)",
                                        "-cert", clientFiles.certificate, "-key", clientFiles.key,
                                        "-CAfile", lab.path("ca.pem"), "-verify_return_error", "-alpn", "h2",
                                        "-servername", "server.td.test"])
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
        let lab = try Lab()
        let server = try TLSContext(configuration: lab.serverConfiguration(lab.issue(serverID, as: "server")))
        try await withEventLoopGroup { group in
            let echo = try await EchoServer.start(group: group, context: server)
            _ = try await run(["openssl", "s_client", "-connect", "127.0.0.1:\(echo.port)",
                               "-CAfile", lab.path("ca.pem"), "-alpn", "h2"])
            let serverSide = try await echo.result()
            #expect(serverSide.error?.kind == .tlsNoPeerCertificate)
            try await echo.channel.close()
        }
    }
}
