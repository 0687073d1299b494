import Foundation
import MeshprobeTestSupport
import Testing

extension EndToEnd {
    /// `meshprobe load` making gRPC calls to a real gRPC server: Python's grpcio (gRPC's C core), with its standard
    /// health service (grpcio-health-checking), over h2c and mutual TLS.
    @Suite(.timeLimit(.minutes(3))) struct GRPCLoadTests {
        static let server = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/grpc/stamp_server.py").path

        func startServer(_ arguments: [String]) async throws -> (BackgroundProcess, Int) {
            let python = try #require(which("python3"))
            return try await BackgroundProcess.onFreePort { port in
                try await BackgroundProcess(python, [Self.server, "--port", "\(port)", "--max-seconds", "150"] + arguments,
                                            waitForPort: port, timeout: 20)
            }
        }

        func json(_ path: String) throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        }

        @Test func countsEveryIdentitysCallsByGRPCStatusOverH2c() async throws {
            let (server, port) = try await startServer(["--workload", "ratings", "--version", "v2", "--fail-every", "4",
                                                        "--fail-status", "UNAVAILABLE", "--fail-message", "down for 25% of calls"])
            defer { server.stop() }
            let dir = try makeTemporaryDirectory("meshprobe-grpc")
            defer { removeTemporaryDirectory(dir) }
            let message = "\(dir)/request.bin"
            try Data("ping".utf8).write(to: URL(fileURLWithPath: message))
            let out = try await run(meshprobeBinary, ["load", "grpc://127.0.0.1:\(port)/meshprobe.test.Stamp/Call", "-n", "200", "-c", "2", "-m", "4",
                                                      "--data", "@\(message)", "--json", "\(dir)/result.json"], timeout: 60)
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            // The table names each identity's statuses; the failures are the application's (the stamps were on them).
            #expect(out.stdout.contains("grpc-status"), "\(out.stdout)")
            #expect(out.stdout.contains("OK 150, UNAVAILABLE 50"), "\(out.stdout)")
            #expect(out.stdout.contains("application: UNAVAILABLE: 50"), "\(out.stdout)")
            // The grpc-message the failures came with, percent-decoded (the server sent "down for 25%25 of calls").
            #expect(out.stdout.contains(#""down for 25% of calls""#), "\(out.stdout)")
            let result = try json("\(dir)/result.json")
            let summary = try #require(result["summary"] as? [String: Any])
            #expect(summary["statuses"] as? [String: Int] == ["OK": 150, "UNAVAILABLE": 50])
            #expect((result["failures"] as? [[String: Any]])?.first?["message"] as? String == "down for 25% of calls")
            let meta = try #require(result["meta"] as? [String: Any])
            #expect(meta["targets"] as? [String] == ["grpc://127.0.0.1:\(port)/meshprobe.test.Stamp/Call"])
            let grpc = try #require(meta["grpc"] as? [String: Any])
            #expect(grpc["method"] as? String == "meshprobe.test.Stamp/Call")
            #expect(grpc["message_bytes"] as? Int == 4)
            // Series as Istio labels gRPC: response_code 200, grpc_response_status the number.
            let series = try #require(result["series"] as? [[String: Any]])
            let labels = series.compactMap { $0["labels"] as? [String: Any] }
            let failing = try #require(labels.first { $0["grpc_response_status"] as? String == "14" })
            #expect(failing["response_code"] as? Int == 200)
            #expect(failing["failure_class"] as? String == "application:UNAVAILABLE")
            #expect(failing["destination_version"] as? String == "v2")
            #expect(labels.contains { $0["grpc_response_status"] as? String == "0" && $0["failure_class"] as? String == "" })
            #expect(try await ResultSchema.load.violation(in: "\(dir)/result.json") == nil)
        }

        /// Answers a gRPC server makes itself, without the handler's metadata, are not blamed on a proxy; a deadline the
        /// server keeps is its DEADLINE_EXCEEDED, not a race with meshprobe's own timeout.
        @Test func theServersOwnAnswersAreNotAProxysAndDeadlinesAreTheServers() async throws {
            let (unstamped, port) = try await startServer(["--fail-every", "2", "--unstamped", "--fail-status", "UNAVAILABLE"])
            defer { unstamped.stop() }
            let out = try await run(meshprobeBinary, ["load", "grpc://127.0.0.1:\(port)/meshprobe.test.Stamp/Call", "-n", "40"], timeout: 60)
            #expect(out.stdout.contains("unknown: UNAVAILABLE: 20"), "\(out.stdout)")
            #expect(!out.stdout.contains("proxy:"), "\(out.stdout)")
            let (slow, slowPort) = try await startServer(["--sleep-ms", "400"])
            defer { slow.stop() }
            let late = try await run(meshprobeBinary, ["load", "grpc://127.0.0.1:\(slowPort)/meshprobe.test.Stamp/Call", "-n", "8", "-c", "1", "-m", "4",
                                                       "--timeout", "150ms"], timeout: 60)
            #expect(late.stdout.contains("statuses:   DEADLINE_EXCEEDED: 8"), "\(late.stdout)")
            #expect(!late.stdout.contains("request_timeout"), "\(late.stdout)")
            // Nothing succeeded: the reason names the failed answers, not a client error kind.
            #expect(late.status == 1)
            #expect(late.stdout.contains("no request succeeded: most common failure application: DEADLINE_EXCEEDED (8)"), "\(late.stdout)")
        }

        /// A proxy's timeout that cuts a call after the workload's stamped headers (HAProxy's `timeout server` ends the
        /// stream with an empty DATA frame, no trailers): INTERNAL, as gRPC clients count it, and not blamed on the
        /// application, whose stamp came first: of unknown origin, said so.
        @Test func aCallCutAfterTheStampedHeadersIsNotTheApplications() async throws {
            let (server, serverPort) = try await startServer(["--sleep-ms", "1000", "--workload", "ratings", "--version", "v1"])
            defer { server.stop() }
            let dir = try haproxyDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let port = try freePort()
            let proxy = try await startHAProxy(config: """
                defaults
                    mode http
                    timeout connect 1s
                    timeout client 10s
                    timeout server 300ms
                frontend fe
                    bind 127.0.0.1:\(port) proto h2
                    default_backend be
                backend be
                    server s1 127.0.0.1:\(serverPort) proto h2

                """, in: dir, waitForPort: port)
            defer { proxy.stop() }
            let out = try await run(meshprobeBinary, ["load", "grpc://127.0.0.1:\(port)/meshprobe.test.Stamp/Call", "-n", "6", "-c", "1",
                                                      "--json", "\(dir.path)/result.json"], timeout: 60)
            #expect(out.status == 1, "\(out.stdout)\(out.stderr)")
            #expect(out.stdout.contains("statuses:   INTERNAL: 6"), "\(out.stdout)")
            #expect(out.stdout.contains("unknown: ended_after_headers: 6"), "\(out.stdout)")
            #expect(!out.stdout.contains("application:"), "\(out.stdout)")
            // The rows still name who answered the headers.
            #expect(out.stdout.contains("ratings") && out.stdout.contains("INTERNAL 6"), "\(out.stdout)")
            let failures = try #require(try json("\(dir.path)/result.json")["failures"] as? [[String: Any]])
            #expect(failures.first?["origin"] as? String == "unknown" && failures.first?["reason"] as? String == "ended_after_headers", "\(failures)")
        }

        @Test func callsOverMutualTLSWithGzipAndTheHealthService() async throws {
            let pki = try LabPKIFixture()
            let server = try pki.svid("ratings", uris: [pki.id("ratings")], dns: ["localhost"])
            let prober = try pki.svid("prober", uris: [pki.id("prober")])
            let (process, port) = try await startServer(["--workload", "ratings", "--tls", server.cert, server.key, pki.caFile])
            defer { process.stop() }
            let identity = ["--cert", prober.cert, "--key", prober.key, "--ca", pki.caFile, "--expect-peer", pki.id("ratings")]
            let dir = try makeTemporaryDirectory("meshprobe-grpc")
            defer { removeTemporaryDirectory(dir) }
            let message = "\(dir)/request.bin"
            try Data(repeating: UInt8(ascii: "a"), count: 2000).write(to: URL(fileURLWithPath: message))
            // gzip: grpcio inflates the message (and would answer INTERNAL for a bad one).
            let gzip = try await run(meshprobeBinary, ["load", "grpcs://127.0.0.1:\(port)/meshprobe.test.Stamp/Call", "-n", "100", "-c", "2", "-m", "5",
                                                       "--data", "@\(message)", "--grpc-compression", "gzip"] + identity, timeout: 60)
            #expect(gzip.status == 0, "\(gzip.stdout)\(gzip.stderr)")
            #expect(gzip.stdout.contains("statuses:   OK: 100"), "\(gzip.stdout)")
            #expect(gzip.stdout.contains(pki.id("ratings")), "\(gzip.stdout)")
            // The health service: SERVING answers OK; a service it does not know, NOT_FOUND (grpc-status 5).
            let healthy = try await run(meshprobeBinary, ["load", "https://127.0.0.1:\(port)", "--grpc-health", "meshprobe.test", "-n", "20"] + identity,
                                        timeout: 60)
            #expect(healthy.status == 0, "\(healthy.stdout)\(healthy.stderr)")
            #expect(healthy.stdout.contains("statuses:   OK: 20"), "\(healthy.stdout)")
            let unknown = try await run(meshprobeBinary, ["load", "grpcs://127.0.0.1:\(port)", "--grpc-health", "nope", "-n", "20",
                                                          "--threshold", "error_rate<1%"] + identity, timeout: 60)
            #expect(unknown.status == 1, "\(unknown.stdout)\(unknown.stderr)")
            #expect(unknown.stdout.contains("statuses:   NOT_FOUND: 20"), "\(unknown.stdout)")
            // NOT_SERVING comes with grpc-status 0: a failure all the same (as Kubernetes' gRPC probe counts it), by the
            // health service (application), its gRPC status OK in the series.
            let draining = try await run(meshprobeBinary, ["load", "grpcs://127.0.0.1:\(port)", "--grpc-health", "meshprobe.draining", "-n", "20",
                                                           "--json", "\(dir)/draining.json"] + identity, timeout: 60)
            #expect(draining.status == 1, "\(draining.stdout)\(draining.stderr)")
            #expect(draining.stdout.contains("statuses:   health NOT_SERVING: 20"), "\(draining.stdout)")
            #expect(draining.stdout.contains("application: health NOT_SERVING: 20"), "\(draining.stdout)")
            let result = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/draining.json"))) as? [String: Any])
            #expect((result["summary"] as? [String: Any])?["failed"] as? Int == 20, "\(result)")
            let series = try #require(result["series"] as? [[String: Any]])
            #expect(!series.isEmpty && series.allSatisfy { ($0["labels"] as? [String: Any])?["grpc_response_status"] as? String == "0" }, "\(series)")
            #expect(try await ResultSchema.load.violation(in: "\(dir)/draining.json") == nil)
            // Merged (the series carry the serving status in their failure class): still NOT_SERVING per identity.
            let second = try await run(meshprobeBinary, ["load", "grpcs://127.0.0.1:\(port)", "--grpc-health", "meshprobe.draining", "-n", "20",
                                                         "--json", "\(dir)/draining-2.json"] + identity, timeout: 60)
            #expect(second.status == 1, "\(second.stdout)\(second.stderr)")
            let merged = try await run(meshprobeBinary, ["merge", "\(dir)/draining.json", "\(dir)/draining-2.json", "--json", "\(dir)/merged.json"], timeout: 60)
            #expect(merged.status == 1, "\(merged.stdout)\(merged.stderr)")
            let mergedResult = try #require(FileManager.default.contents(atPath: "\(dir)/merged.json")
                .flatMap { try JSONSerialization.jsonObject(with: $0) as? [String: Any] }, "\(merged.stdout)\(merged.stderr)")
            let rows = try #require(mergedResult["workloads"] as? [[String: Any]])
            #expect(rows.count == 1 && (rows.first?["statuses"] as? [String: Int]) == ["health NOT_SERVING": 40] && rows.first?["errors"] as? Int == 40,
                    "\(rows)")
        }

        @Test func encodesAJSONRequestWithADescriptorSet() async throws {
            let dir = try makeTemporaryDirectory("meshprobe-grpc")
            defer { removeTemporaryDirectory(dir) }
            try """
                syntax = "proto3";
                package meshprobe.test;
                message Ask { string name = 1; int64 id = 2; repeated int32 tags = 3; }
                service Stamp { rpc Call(Ask) returns (Ask); }
                """.write(toFile: "\(dir)/stamp.proto", atomically: true, encoding: .utf8)
            let protoc = try await run(try #require(which("python3")), ["-m", "grpc_tools.protoc", "-I", dir,
                                                                          "--descriptor_set_out=\(dir)/stamp.protoset", "--include_imports", "\(dir)/stamp.proto"])
            #expect(protoc.status == 0, "\(protoc.stderr)")
            // {"name": "a", "id": "5", "tags": [1, 2]}: field 1 "a", field 2 varint 5, field 3 packed [1, 2].
            let (server, port) = try await startServer(["--expect-request-hex", "0a01611005" + "1a020102"])
            defer { server.stop() }
            let url = "grpc://127.0.0.1:\(port)/meshprobe.test.Stamp/Call"
            let out = try await run(meshprobeBinary, ["load", url, "-n", "20", "--protoset", "\(dir)/stamp.protoset",
                                                      "--data", #"{"name": "a", "id": "5", "tags": [1, 2]}"#, "--json", "\(dir)/r.json"], timeout: 60)
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            #expect(out.stdout.contains("statuses:   OK: 20"), "\(out.stdout)")
            let meta = try #require(try json("\(dir)/r.json")["meta"] as? [String: Any])
            #expect((meta["grpc"] as? [String: Any])?["message"] as? String == "inline (JSON, descriptor set \(dir)/stamp.protoset)")
            // The set names what is wrong before anything is sent.
            let unknown = try await run(meshprobeBinary, ["load", "grpc://127.0.0.1:\(port)/meshprobe.test.Stamp/Get", "-n", "1",
                                                          "--protoset", "\(dir)/stamp.protoset"], timeout: 30)
            #expect(unknown.status == 2)
            #expect(unknown.stderr.contains("--protoset '\(dir)/stamp.protoset':"), "\(unknown.stderr)")
            #expect(unknown.stderr.contains("Call"), "\(unknown.stderr)")
            let badJSON = try await run(meshprobeBinary, ["load", url, "-n", "1", "--protoset", "\(dir)/stamp.protoset", "--data", #"{"id": "x"}"#],
                                        timeout: 30)
            #expect(badJSON.status == 2)
            #expect(badJSON.stderr.contains(".id: expected a 64-bit integer"), "\(badJSON.stderr)")
        }

        /// `merge` of two gRPC runs: the statuses by name and per identity add up, the call is kept, the table shows
        /// the grpc-status column.
        @Test func mergeAddsGRPCRuns() async throws {
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("grpc-merge-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let url = "grpc://127.0.0.1:\(echo.port)/meshprobe.echo.v1.Echo/Call"
            for (name, n) in [("a", "300"), ("b", "200")] {
                let out = try await run(meshprobeBinary, ["load", url, "-n", n, "--json", "\(dir)/\(name).json", "--quiet"], timeout: 60)
                #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            }
            let merged = try await run(meshprobeBinary, ["merge", "\(dir)/a.json", "\(dir)/b.json", "--json", "\(dir)/all.json"], timeout: 60)
            #expect(merged.status == 0, "\(merged.stdout)\(merged.stderr)")
            #expect(merged.stdout.contains("statuses:   OK: 500") && merged.stdout.contains("grpc-status"), "\(merged.stdout)")
            #expect(try await ResultSchema.load.violation(in: "\(dir)/all.json") == nil)
            let object = try #require(FileManager.default.contents(atPath: "\(dir)/all.json").flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] })
            let meta = try #require(object["meta"] as? [String: Any])
            #expect((meta["grpc"] as? [String: Any])?["method"] as? String == "meshprobe.echo.v1.Echo/Call", "\(meta)")
            let rows = try #require(object["workloads"] as? [[String: Any]])
            #expect(rows.count == 1 && rows[0]["requests"] as? Int == 500 && (rows[0]["statuses"] as? [String: Int]) == ["OK": 500], "\(rows)")
        }

        /// A grpcs:// URL at a plaintext port: the hint names gRPC's schemes, not HTTP's (the TLS layer does not know the URL).
        @Test func aWrongSchemeIsNamedInGRPCsTerms() async throws {
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            let out = try await run(meshprobeBinary, ["load", "grpcs://127.0.0.1:\(echo.port)/meshprobe.echo.v1.Echo/Call", "--insecure", "-n", "5"],
                                    timeout: 30)
            #expect(out.stdout.contains("wrong_scheme"), "\(out.stdout)\(out.stderr)")
            #expect(out.stdout.contains("use grpc://, the URL says grpcs://"), "\(out.stdout)\(out.stderr)")
            #expect(!out.stdout.contains("use http://"), "\(out.stdout)")
        }

        @Test func refusesWhatAGRPCRunCannotSend() async throws {
            let cases: [([String], String)] = [
                (["grpc://127.0.0.1:1/"], "name the gRPC method in the path: grpcs://HOST:PORT/package.Service/Method"),
                (["grpc://127.0.0.1:1/a/b/c"], "'/a/b/c': must name a gRPC method as package.Service/Method"),
                (["grpc://127.0.0.1:1/p.S/M", "--data", "{}"], "--data: server reflection (127.0.0.1:1): 127.0.0.1:1 refused the connection"),
                (["grpc://127.0.0.1:1/p.S/M", "--method", "GET"], "--method GET: a gRPC call is a POST"),
                (["grpc://127.0.0.1:1/p.S/M", "--http", "1.1"], "--http '1.1': gRPC runs over HTTP/2 only"),
                (["grpc://127.0.0.1:1/p.S/M", "http://127.0.0.1:1/"], "is not a gRPC target, and this run makes gRPC calls"),
                (["grpc://127.0.0.1:1/p.S/M", "grpc://127.0.0.1:2/p.S/N"], "calls /p.S/N, and the run calls /p.S/M: one method a run"),
                (["grpc://127.0.0.1:1/p.S/M", "-H", "te: gzip"], "is gRPC's own header"),
                (["grpc://127.0.0.1:1/p.S/M", "--grpc-health", ""], "with a health check the URL names no method"),
                (["http://127.0.0.1:1/", "--grpc-compression", "gzip"], "--grpc-compression 'gzip': is for gRPC calls"),
            ]
            for (arguments, message) in cases {
                let out = try await run(meshprobeBinary, ["load"] + arguments + ["-n", "1"], timeout: 30)
                #expect(out.status == 2, "\(arguments): \(out.stderr)")
                #expect(out.stderr.contains(message), "\(arguments): \(out.stderr)")
            }
        }
    }
}
