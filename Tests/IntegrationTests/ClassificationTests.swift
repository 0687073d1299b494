import Foundation
import MeshprobeIdentity
import Testing

extension EndToEnd {
    /// Failures classified through a real proxy: HAProxy (Debian) in front of echo workloads. The echo's own 503s are
    /// the application's; HAProxy's own 503 page (no server available) is recognised by its signature.
    @Suite(.timeLimit(.minutes(2))) struct ClassificationTests {
        @Test func applicationAndProxyFailuresAreToldApartInTheJSONAndTheSummary() async throws {
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            // "down" points at a port nothing listens on: HAProxy answers 503 itself when it picks it.
            let (proxy, port, dir) = try await startHAProxy([("up", echo.port, 50), ("down", try freePort(), 50)]) { $0.retries = 0 }
            defer { proxy.stop(); try? FileManager.default.removeItem(at: dir) }
            let json = dir.appendingPathComponent("result.json").path
            // Half the echo's answers are 503s of its own (a fault with the stamp on).
            let out = try await run(meshprobeBinary, ["load", "-n", "400", "-c", "2", "-m", "4", "--json", json,
                                                "http://127.0.0.1:\(port)/?status=503:50"], timeout: 60)
            #expect(out.status == 0 || out.status == 1, "\(out.stdout)\(out.stderr)")
            let object = try #require(FileManager.default.contents(atPath: json).flatMap { try JSONSerialization.jsonObject(with: $0) as? [String: Any] })
            let failures = try #require(object["failures"] as? [[String: Any]])
            let application = failures.first { $0["origin"] as? String == "application" }
            let haproxy = failures.first { $0["proxy"] as? String == "haproxy" }
            #expect(application?["reason"] as? String == "503", "\(failures)")
            #expect(haproxy?["reason"] as? String == FailureClass.Reason.noServerAvailable, "\(failures)")
            #expect((application?["count"] as? Int ?? 0) > 20 && (haproxy?["count"] as? Int ?? 0) > 20, "\(failures)")
            #expect(haproxy?["latency_ms"] != nil)
            #expect(out.stdout.contains("failures by origin"), "\(out.stdout)")
            #expect(out.stdout.contains("proxy: no_server_available (haproxy)"), "\(out.stdout)")
        }
    }
}
