import Foundation
import MeshprobeEcho
import Testing

extension EndToEnd {
    /// What a person or a CI log sees of a running load: the live view's log line from its first update, and a URL
    /// whose scheme does not match the port named as that mistake.
    @Suite(.timeLimit(.minutes(1))) struct LiveViewAndSchemeTests {
        @Test func theLogLineHasATimestampAndCountsFromTheFirstUpdate() async throws {
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            // Standard error is a file here, not a terminal: one line per update.
            let out = try await run(meshprobeBinary, ["load", "http://127.0.0.1:\(echo.port)/", "-d", "3s", "--rate", "200"])
            #expect(out.status == 0, "\(out.output)")
            let lines = out.stderr.split(separator: "\n").map(String.init).filter { $0.contains(" elapsed=") }
            let first = try #require(lines.first, "no progress line in: \(out.stderr)")
            let stamp = try #require(first.split(separator: " ").first.map(String.init))
            #expect(stamp.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/) != nil, "\(first)")
            func count(_ key: String) -> Int? {
                first.split(separator: " ").first { $0.hasPrefix(key + "=") }.flatMap { Int($0.dropFirst(key.count + 1)) }
            }
            #expect((count("sent") ?? 0) > 0, "\(first)")
            #expect((count("ok") ?? 0) > 0, "\(first)")
            #expect(first.contains(" target=200/s "), "\(first)")
        }

        @Test func httpAgainstATLSPortIsNamedAsThatMistake() async throws {
            let pki = try LabPKIFixture()
            let echo = try await startEcho(version: "v1", tls: try pki.serverTLS(try pki.svid("reviews", uris: [pki.id("reviews")])))
            defer { Task { await echo.close() } }
            for http in [[], ["--http", "1.1"]] {
                let out = try await run(meshprobeBinary, ["load", "http://127.0.0.1:\(echo.port)/", "-n", "5"] + http)
                #expect(out.stdout.contains("wrong_scheme: 5 requests"), "\(out.output)")
                #expect(out.stdout.contains("answered with TLS: use https://"), "\(out.output)")
                #expect(!out.stdout.contains("tls_handshake_failed"), "\(out.output)")
            }
        }

        @Test func httpsAgainstAPlaintextPortIsNamedAsThatMistake() async throws {
            let pki = try LabPKIFixture()
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            let out = try await run(meshprobeBinary, ["load", "https://127.0.0.1:\(echo.port)/", "-n", "5", "--ca", pki.caFile])
            #expect(out.stdout.contains("wrong_scheme: 5 requests"), "\(out.output)")
            #expect(out.stdout.contains("answered in plaintext, not TLS"), "\(out.output)")
            #expect(out.stdout.contains("use http://"), "\(out.output)")
        }
    }
}
