import Foundation
import MeshprobeTLS
import MeshprobeTestSupport
import Testing

extension EndToEnd {
    /// `--pushgateway https://...` through a real TLS terminator: HAProxy (`bind ... ssl crt`) in front of a server that
    /// records what it is sent, with certificates from a test CA. The right CA and host push; another CA, or a
    /// certificate for another host, is refused before any traffic (exit 2) with the reason.
    @Suite(.timeLimit(.minutes(2))) struct PushgatewayTLSTests {
        /// HAProxy terminating TLS on two ports: one with a certificate for `localhost`, one for `pushgateway.example`.
        struct Terminator {
            let process: BackgroundProcess
            let directory: URL
            let localhostPort: Int
            let otherHostPort: Int
        }

        func startTerminator(pki: LabPKIFixture, upstream: Int) async throws -> Terminator {
            let directory = try haproxyDirectory()
            func crt(_ name: String, dns: String) throws -> String {
                // An ordinary web server certificate: a DNS SAN, no SPIFFE ID.
                let issued = try LabPKI.issue(by: pki.ca, uriSANs: [], dnsNames: [dns])
                let path = directory.appendingPathComponent("\(name).pem").path
                try (issued.certificatePEM + issued.privateKeyPEM).write(toFile: path, atomically: true, encoding: .utf8)
                return path
            }
            let (localhostPort, otherHostPort) = (try freePort(), try freePort())
            let config = """
                global
                  maxconn 100
                defaults
                  mode http
                  timeout connect 5s
                  timeout client 10s
                  timeout server 10s
                frontend localhost
                  bind 127.0.0.1:\(localhostPort) ssl crt \(try crt("localhost", dns: "localhost"))
                  default_backend gateway
                frontend otherhost
                  bind 127.0.0.1:\(otherHostPort) ssl crt \(try crt("other", dns: "pushgateway.example"))
                  default_backend gateway
                backend gateway
                  server recorder 127.0.0.1:\(upstream)

                """
            let process = try await startHAProxy(config: config, in: directory, waitForPort: localhostPort)
            return Terminator(process: process, directory: directory, localhostPort: localhostPort, otherHostPort: otherHostPort)
        }

        @Test func anHTTPSPushgatewayIsVerifiedByCAAndHostName() async throws {
            let recorder = try await RecordingHTTPServer.start { _, _ in .init(status: 202) }
            defer { Task { await recorder.stop() } }
            let pki = try LabPKIFixture()
            let stranger = try LabPKIFixture(trustDomain: "stranger.test")
            let terminator = try await startTerminator(pki: pki, upstream: recorder.port)
            defer {
                terminator.process.stop()
                try? FileManager.default.removeItem(at: terminator.directory)
            }
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            let auth = try pki.write("auth", "prober:s3cret\n")
            func load(_ url: String, ca: String, extra: [String] = []) async throws -> ProcessOutput {
                try await run(meshprobeBinary, ["load", "http://127.0.0.1:\(echo.port)/", "-n", "20", "-c", "1", "--quiet",
                                                "--pushgateway", url, "--pushgateway-ca", ca, "--pushgateway-job", "tls-check"] + extra)
            }

            // The right CA and host: the push arrives through the terminator, with the job's path under the prefix.
            let good = try await load("https://localhost:\(terminator.localhostPort)/gateway", ca: pki.caFile,
                                      extra: ["--pushgateway-auth-file", auth])
            #expect(good.status == 0, "\(good.stdout)\(good.stderr)")
            #expect(!good.stderr.contains("warning"), "\(good.stderr)")
            let put = try #require(recorder.requests.first { $0.method == "PUT" }, "\(recorder.requests.map(\.uri))")
            #expect(put.uri == "/gateway/metrics/job/tls-check")
            #expect(put.headers.first { $0.0.lowercased() == "authorization" }?.1 == "Basic " + Data("prober:s3cret".utf8).base64EncodedString())
            let counted = put.body.split(separator: "\n").filter { $0.hasPrefix("meshprobe_requests_total{") }
                .compactMap { Double($0.split(separator: " ").last ?? "") }.reduce(0, +)
            #expect(counted == 20, "\(put.body)")
            let requestsBefore = recorder.requests.count
            let served = echo.requestsServed

            // Another CA: refused before the load, naming the certificate problem.
            let wrongCA = try await load("https://localhost:\(terminator.localhostPort)/gateway", ca: stranger.caFile)
            #expect(wrongCA.status == 2, "\(wrongCA.stdout)\(wrongCA.stderr)")
            #expect(wrongCA.stderr.contains("--pushgateway") && wrongCA.stderr.contains("does not verify")
                    && wrongCA.stderr.contains("trust bundle does not contain"), "\(wrongCA.stderr)")

            // A certificate for another host name; and a host given as an IP the certificate does not name.
            let wrongHost = try await load("https://localhost:\(terminator.otherHostPort)/", ca: pki.caFile)
            #expect(wrongHost.status == 2, "\(wrongHost.stdout)\(wrongHost.stderr)")
            #expect(wrongHost.stderr.contains("is not for 'localhost'") && wrongHost.stderr.contains("DNS:pushgateway.example"), "\(wrongHost.stderr)")
            let wrongIP = try await load("https://127.0.0.1:\(terminator.localhostPort)/", ca: pki.caFile)
            #expect(wrongIP.status == 2, "\(wrongIP.stdout)\(wrongIP.stderr)")
            #expect(wrongIP.stderr.contains("is not for '127.0.0.1'") && wrongIP.stderr.contains("DNS:localhost"), "\(wrongIP.stderr)")

            // None of the refused runs sent load or pushed.
            #expect(echo.requestsServed == served)
            #expect(!recorder.requests.dropFirst(requestsBefore).contains { $0.method == "PUT" })

            // A CA file that is not PEM, and one that is missing: bad input naming the flag and the file.
            let notPEM = try pki.write("not-pem.pem", "hello")
            for ca in [notPEM, "/nonexistent/ca.pem"] {
                let bad = try await load("https://localhost:\(terminator.localhostPort)/", ca: ca)
                #expect(bad.status == 2)
                #expect(bad.stderr.contains("--pushgateway-ca") && bad.stderr.contains(ca), "\(bad.stderr)")
            }
        }
    }
}
