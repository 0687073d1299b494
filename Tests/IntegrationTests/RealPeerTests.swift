import Foundation
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeSpec
import MeshprobeTLS
import Testing

extension EndToEnd {
    /// Interoperability with real HTTP/2 and HTTP/1.1 peers from Debian: nghttpd, h2load, curl and nginx.
    @Suite(.timeLimit(.minutes(2))) struct RealPeerTests {
    func htdocs() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-htdocs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try String(repeating: "meshprobe\n", count: 100).write(to: dir.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
        return dir
    }

    @Test func ourClientAgainstNghttpdOverH2c() async throws {
        let nghttpd = try #require(which("nghttpd"), "nghttpd is installed by scripts/install-deps")
        let docs = try htdocs()
        let port = try freePort()
        let peer = try await BackgroundProcess(nghttpd, ["--no-tls", "-a", "127.0.0.1", "-d", docs.path, "\(port)"], waitForPort: port)
        defer { peer.stop() }
        let result = try await runLoad(["http://127.0.0.1:\(port)/index.html"], requests: 500, connections: 2, streams: 20)
        #expect(result.succeeded == 500)
        #expect(result.statuses == [200: 500])
        let missing = try await runLoad(["http://127.0.0.1:\(port)/missing"], requests: 10, connections: 1, streams: 5)
        #expect(missing.statuses == [404: 10])
        #expect(missing.failed == 10)
    }

    @Test func ourClientAgainstNghttpdOverTLSWithPlainCertificates() async throws {
        let nghttpd = try #require(which("nghttpd"))
        let pki = try LabPKIFixture()
        // An ordinary server certificate (DNS name, no SPIFFE ID): plain TLS verification against the CA.
        let server = try pki.svid("nghttpd", uris: [], dns: ["localhost"])
        let docs = try htdocs()
        let port = try freePort()
        let peer = try await BackgroundProcess(nghttpd, ["-a", "127.0.0.1", "-d", docs.path, "\(port)", server.key, server.cert], waitForPort: port)
        defer { peer.stop() }
        var configuration = TLSConfiguration(role: .client)
        configuration.applicationProtocols = ["h2"]
        try configuration.trustBundles.add(pemFile: pki.caFile, trustDomain: nil)
        configuration.loosening.allowNonSVIDPeer = true
        let tls = try TLSContext(configuration: configuration)
        let result = try await runLoad(["https://127.0.0.1:\(port)/index.html"], tls: tls, requests: 300, connections: 2, streams: 10)
        #expect(result.succeeded == 300)
        #expect(result.negotiatedProtocols["h2"] == 2)
    }

    @Test func h2loadAgainstOurEchoOverTLSAndH2c() async throws {
        let h2load = try #require(which("h2load"))
        let pki = try LabPKIFixture()
        let server = try pki.svid("reviews", uris: [pki.id("reviews")], dns: ["localhost"])
        // h2load cannot present a client certificate, so this echo does not ask for one.
        let tlsEcho = try await startEcho(version: "v1", tls: try pki.serverTLS(server, requireClientCert: false))
        let plainEcho = try await startEcho(version: "v1", tls: nil)
        defer { Task { await tlsEcho.close(); await plainEcho.close() } }
        for url in ["https://127.0.0.1:\(tlsEcho.port)/", "http://127.0.0.1:\(plainEcho.port)/"] {
            let out = try await run(h2load, ["-n", "2000", "-c", "4", "-m", "10", url], timeout: 60)
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            #expect(out.stdout.contains("2000 succeeded, 0 failed"), "\(out.stdout)")
            #expect(out.stdout.contains("status codes: 2000 2xx"), "\(out.stdout)")
        }
    }

    @Test func curlWithAClientCertificateSeesTheStampsAndItsOwnIdentity() async throws {
        let curl = try #require(which("curl"))
        let pki = try LabPKIFixture()
        let server = try pki.svid("reviews", uris: [pki.id("reviews")], dns: ["localhost"])
        let client = try pki.svid("curl", uris: [pki.id("curl")])
        let echo = try await startEcho(version: "v3", tls: try pki.serverTLS(server))
        defer { Task { await echo.close() } }
        let out = try await run(curl, ["-sS", "--http2", "-i", "--resolve", "localhost:\(echo.port):127.0.0.1",
                                 "--cacert", pki.caFile, "--cert", client.cert, "--key", client.key,
                                 "https://localhost:\(echo.port)/hello?size=600"], timeout: 30)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.hasPrefix("HTTP/2 200"), "\(out.stdout)")
        #expect(out.stdout.contains("\(EchoStamp.version): v3"))
        #expect(out.stdout.contains("\(EchoStamp.caller): \(pki.id("curl"))"))
        #expect(out.stdout.contains("\(EchoStamp.callerSource): mtls"))
        #expect(out.stdout.contains("\(EchoStamp.identity): \(pki.id("reviews"))"))
        #expect(out.stdout.contains("\"caller\":\"\(pki.id("curl"))\""))
        #expect(out.stdout.contains("\(EchoStamp.serverName): localhost"))

        // Without a client certificate the handshake fails: mTLS is required.
        let refused = try await run(curl, ["-sS", "--http2", "--resolve", "localhost:\(echo.port):127.0.0.1", "--cacert", pki.caFile,
                                     "https://localhost:\(echo.port)/"], timeout: 30)
        #expect(refused.status != 0)

        // HTTP/1.1 over the same port, chosen by ALPN.
        let h1 = try await run(curl, ["-sS", "--http1.1", "-i", "--resolve", "localhost:\(echo.port):127.0.0.1", "--cacert", pki.caFile,
                                "--cert", client.cert, "--key", client.key, "https://localhost:\(echo.port)/"], timeout: 30)
        #expect(h1.stdout.hasPrefix("HTTP/1.1 200"), "\(h1.stdout)")
    }

    @Test func curlHTTP1AndPriorKnowledgeH2cOnOnePlaintextPort() async throws {
        let curl = try #require(which("curl"))
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let h2 = try await run(curl, ["-sS", "-i", "--http2-prior-knowledge", "http://127.0.0.1:\(echo.port)/?status=418"], timeout: 30)
        #expect(h2.stdout.hasPrefix("HTTP/2 418"), "\(h2.stdout)")
        let h1 = try await run(curl, ["-sS", "-i", "--http1.1", "-d", "hello", "http://127.0.0.1:\(echo.port)/x"], timeout: 30)
        #expect(h1.stdout.hasPrefix("HTTP/1.1 200"), "\(h1.stdout)")
        #expect(h1.stdout.contains("\"request_body_bytes\":5"))
        let bad = try await run(curl, ["-sS", "-i", "--http2-prior-knowledge", "http://127.0.0.1:\(echo.port)/?delay=forever"], timeout: 30)
        #expect(bad.stdout.hasPrefix("HTTP/2 400"), "\(bad.stdout)")
    }

    /// Starts nginx on `port` serving `docs`, with `server` lines added to the server block.
    func startNginx(docs: URL, port: Int, listen: String, server: String = "", http: String = "") async throws -> BackgroundProcess {
        let nginx = try #require(which("nginx"))
        let conf = docs.appendingPathComponent("nginx.conf")
        try """
        daemon off;
        master_process off;
        worker_processes 1;
        pid \(docs.path)/nginx.pid;
        error_log stderr warn;
        events { worker_connections 256; }
        http {
            access_log off;
            client_body_temp_path \(docs.path);
            proxy_temp_path \(docs.path);
            fastcgi_temp_path \(docs.path);
            uwsgi_temp_path \(docs.path);
            scgi_temp_path \(docs.path);
            \(http)
            server {
                listen \(listen);
                root \(docs.path);
                \(server)
            }
        }
        """.write(to: conf, atomically: true, encoding: .utf8)
        return try await BackgroundProcess(nginx, ["-p", docs.path, "-c", conf.path, "-e", "stderr"], waitForPort: port)
    }

    @Test func goAwayFromNginxRetiresConnectionsAndEveryRequestIsAccountedFor() async throws {
        let pki = try LabPKIFixture()
        let server = try pki.svid("nginx", uris: [], dns: ["localhost"])
        let docs = try htdocs()
        let port = try freePort()
        // nginx ends an HTTP/2 connection with GOAWAY after keepalive_requests requests.
        let peer = try await startNginx(docs: docs, port: port, listen: "127.0.0.1:\(port) ssl http2",
                                        server: "ssl_certificate \(server.cert); ssl_certificate_key \(server.key);",
                                        http: "keepalive_requests 50;")
        defer { peer.stop() }
        let tls = try pki.clientTLS(nil, expect: nil, alpn: ["h2"], loosening: TLSLoosening(allowNonSVIDPeer: true))
        let result = try await runLoad(["https://127.0.0.1:\(port)/index.html"], tls: tls, requests: 1000, connections: 2, streams: 10)
        // Requests above GOAWAY's last stream are refused (goaway); when nginx closes its socket with our newer
        // requests unread, the kernel resets the connection and the GOAWAY frame itself can be lost
        // (connection_lost). Either way each request is counted once, under one of those kinds.
        let lost = result.errors[.goAway, default: 0] + result.errors[.connectionLost, default: 0]
        #expect(result.succeeded + lost == 1000, "errors: \(result.errors)")
        #expect(Set(result.errors.keys).isSubset(of: [.goAway, .connectionLost]), "errors: \(result.errors)")
        #expect(result.succeeded >= 500)
        // Every connection carries at most 50 requests; resumption makes the reconnects cheap.
        #expect(result.connectionsEstablished >= result.succeeded / 50)
        #expect(result.tlsResumed > 0)
    }

    @Test func http1KeepAliveAgainstNginx() async throws {
        let docs = try htdocs()
        let port = try freePort()
        let peer = try await startNginx(docs: docs, port: port, listen: "127.0.0.1:\(port)",
                                        server: "add_header x-served-by nginx-blue;", http: "keepalive_requests 100000;")
        defer { peer.stop() }
        let result = try await runLoad(["http://127.0.0.1:\(port)/index.html"], requests: 300, connections: 3, streams: 1, http: .http1) {
            $0.plan.identityHeader = "x-served-by"
        }
        #expect(result.succeeded == 300)
        #expect(result.connectionsEstablished == 3)
        #expect(result.identities.keys.map(\.workload) == ["nginx-blue"])
    }
    }
}
