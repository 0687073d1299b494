import Foundation
import MeshprobeTestSupport
import Testing

extension EndToEnd {
    /// JSON requests without a descriptor set, encoded with the server's reflection service: grpcio with
    /// grpcio-reflection (its v1alpha service, and the same servicer under v1), serving a service whose file imports
    /// another file and well-known types.
    @Suite(.timeLimit(.minutes(3))) struct GRPCReflectionTests {
        static let server = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/grpc/reflection_server.py").path

        static let json = #"{"item": {"sku": "a-1", "sizes": [1, 2], "hold": "1.5s"}, "at": "2026-01-02T03:04:05.5Z", "quantity": "7"}"#

        /// The shop service's files (shop.proto imports types.proto and Timestamp; types.proto imports Duration), and
        /// their descriptor set built by grpcio-tools.
        func makeProtos(_ dir: String) async throws -> String {
            try FileManager.default.createDirectory(atPath: "\(dir)/shop/v1", withIntermediateDirectories: true)
            try """
                syntax = "proto3";
                package shop.v1;
                import "google/protobuf/duration.proto";
                message Item { string sku = 1; repeated int32 sizes = 2; google.protobuf.Duration hold = 3; }
                """.write(toFile: "\(dir)/shop/v1/types.proto", atomically: true, encoding: .utf8)
            try """
                syntax = "proto3";
                package shop.v1;
                import "shop/v1/types.proto";
                import "google/protobuf/timestamp.proto";
                message BuyRequest { Item item = 1; google.protobuf.Timestamp at = 2; int64 quantity = 3; }
                message BuyReply { string id = 1; }
                service Shop { rpc Buy(BuyRequest) returns (BuyReply); rpc Watch(BuyRequest) returns (stream BuyReply); }
                """.write(toFile: "\(dir)/shop/v1/shop.proto", atomically: true, encoding: .utf8)
            let protoset = "\(dir)/shop.protoset"
            let protoc = try await run(try #require(which("python3")), ["-m", "grpc_tools.protoc", "-I", dir, "--descriptor_set_out=\(protoset)",
                                                                          "--include_imports", "\(dir)/shop/v1/shop.proto"])
            #expect(protoc.status == 0, "\(protoc.stderr)")
            return protoset
        }

        func startServer(protoset: String, _ arguments: [String]) async throws -> (BackgroundProcess, Int) {
            let python = try #require(which("python3"))
            return try await BackgroundProcess.onFreePort { port in
                try await BackgroundProcess(python, [Self.server, "--port", "\(port)", "--protoset", protoset, "--max-seconds", "150"] + arguments,
                                            waitForPort: port, timeout: 20)
            }
        }

        func grpcMeta(_ path: String) throws -> [String: Any] {
            let result = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
            return try #require((result["meta"] as? [String: Any])?["grpc"] as? [String: Any])
        }

        /// The server answers INVALID_ARGUMENT to any request other than Python's protobuf encoding of the JSON: every
        /// call succeeding shows the bytes are those --protoset gives, and those of protobuf itself.
        @Test func encodesJSONWithTheServersReflectionAsWithAProtoset() async throws {
            let dir = try makeTemporaryDirectory("meshprobe-reflection")
            defer { removeTemporaryDirectory(dir) }
            let protoset = try await makeProtos(dir)
            // One file per answer: the imports are asked for by name, two rounds deep (types.proto, then Duration).
            let (server, port) = try await startServer(protoset: protoset, ["--one-file", "--expect-json", Self.json, "--expect-type", "shop.v1.BuyRequest",
                                                                            "--require-metadata", "x-tenant=blue"])
            defer { server.stop() }
            let url = "grpc://127.0.0.1:\(port)/shop.v1.Shop/Buy"
            let reflected = try await run(meshprobeBinary, ["load", url, "-n", "20", "--data", Self.json, "-H", "x-tenant: blue",
                                                            "--json", "\(dir)/reflected.json"], timeout: 60)
            #expect(reflected.status == 0, "\(reflected.stdout)\(reflected.stderr)")
            #expect(reflected.stdout.contains("statuses:   OK: 20"), "\(reflected.stdout)")
            let withSet = try await run(meshprobeBinary, ["load", url, "-n", "20", "--data", Self.json, "-H", "x-tenant: blue", "--protoset", protoset,
                                                          "--json", "\(dir)/protoset.json"], timeout: 60)
            #expect(withSet.stdout.contains("statuses:   OK: 20"), "\(withSet.stdout)")
            let meta = try grpcMeta("\(dir)/reflected.json")
            #expect(meta["descriptors"] as? String == "reflection")
            #expect(meta["message"] as? String == "inline (JSON, server reflection)")
            let setMeta = try grpcMeta("\(dir)/protoset.json")
            #expect(setMeta["descriptors"] as? String == "protoset")
            #expect(meta["message_bytes"] as? Int == setMeta["message_bytes"] as? Int)
            #expect(try await ResultSchema.load.violation(in: "\(dir)/reflected.json") == nil)
            // The reflection call carries the run's metadata: without it the server refuses reflection.
            let bare = try await run(meshprobeBinary, ["load", url, "-n", "1", "--data", Self.json], timeout: 30)
            #expect(bare.status == 2)
            #expect(bare.stderr.contains("--data: server reflection (127.0.0.1:\(port)): grpc.reflection.v1.ServerReflection answered PERMISSION_DENIED"),
                    "\(bare.stderr)")
        }

        @Test func fallsBackToV1alphaAsGrpcioReflectionServesIt() async throws {
            let dir = try makeTemporaryDirectory("meshprobe-reflection")
            defer { removeTemporaryDirectory(dir) }
            let protoset = try await makeProtos(dir)
            let (server, port) = try await startServer(protoset: protoset, ["--reflection", "v1alpha", "--expect-json", Self.json,
                                                                            "--expect-type", "shop.v1.BuyRequest"])
            defer { server.stop() }
            // A scenario's grpc.data, as the flags' --data.
            try """
                target: grpc://127.0.0.1:\(port)/shop.v1.Shop/Buy
                load: {requests: 10}
                grpc:
                  data: '\(Self.json)'
                """.write(toFile: "\(dir)/scenario.yaml", atomically: true, encoding: .utf8)
            let out = try await run(meshprobeBinary, ["run", "\(dir)/scenario.yaml", "--json", "\(dir)/r.json"], timeout: 60)
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            #expect(out.stdout.contains("statuses:   OK: 10"), "\(out.stdout)")
            #expect(try grpcMeta("\(dir)/r.json")["descriptors"] as? String == "reflection")
        }

        @Test func namesWhatTheServerCannotDescribe() async throws {
            let dir = try makeTemporaryDirectory("meshprobe-reflection")
            defer { removeTemporaryDirectory(dir) }
            let protoset = try await makeProtos(dir)
            let (plain, port) = try await startServer(protoset: protoset, ["--reflection", "none"])
            defer { plain.stop() }
            let base = "grpc://127.0.0.1:\(port)"
            let none = try await run(meshprobeBinary, ["load", "\(base)/shop.v1.Shop/Buy", "-n", "1", "--data", "{}"], timeout: 30)
            #expect(none.status == 2)
            #expect(none.stderr.contains("the server does not serve gRPC reflection: give --protoset FILE (see docs/grpc.md)"), "\(none.stderr)")
            // The same from a scenario names its field.
            try "target: \(base)/shop.v1.Shop/Buy\nload: {requests: 1}\ngrpc: {data: '{}'}\n".write(toFile: "\(dir)/s.yaml", atomically: true, encoding: .utf8)
            let scenario = try await run(meshprobeBinary, ["run", "\(dir)/s.yaml"], timeout: 30)
            #expect(scenario.status == 2)
            #expect(scenario.stderr.contains("\(dir)/s.yaml: grpc.data: server reflection"), "\(scenario.stderr)")
            #expect(scenario.stderr.contains("give grpc.protoset (see docs/grpc.md)"), "\(scenario.stderr)")

            let (withheld, withheldPort) = try await startServer(protoset: protoset, ["--one-file", "--withhold", "google/protobuf/duration.proto"])
            defer { withheld.stop() }
            let shop = "grpc://127.0.0.1:\(withheldPort)"
            let cases: [(String, String)] = [
                ("\(shop)/shop.v1.Shopp/Buy", "the server's reflection service does not know shop.v1.Shopp (it lists: grpc.reflection.v1.ServerReflection, grpc.reflection.v1alpha.ServerReflection, shop.v1.Shop)"),
                ("\(shop)/shop.v1.Shop/Buy", "does not send google/protobuf/duration.proto, which shop/v1/types.proto imports"),
            ]
            for (url, message) in cases {
                let out = try await run(meshprobeBinary, ["load", url, "-n", "1", "--data", "{}"], timeout: 30)
                #expect(out.status == 2, "\(url): \(out.stderr)")
                #expect(out.stderr.contains(message), "\(url): \(out.stderr)")
            }
            let (good, goodPort) = try await startServer(protoset: protoset, [])
            defer { good.stop() }
            let more: [(String, String, String)] = [
                ("shop.v1.Shop/Watch", "{}", "shop.v1.Shop/Watch is a server-streaming method: meshprobe calls unary methods only"),
                ("shop.v1.Shop/Sell", "{}", "service shop.v1.Shop has no method Sell (methods: Buy, Watch)"),
                ("shop.v1.Shop/Buy", #"{"item": {"hold": "soon"}}"#, "the request is not a shop.v1.BuyRequest: .item.hold:"),
            ]
            for (method, data, message) in more {
                let out = try await run(meshprobeBinary, ["load", "grpc://127.0.0.1:\(goodPort)/\(method)", "-n", "1", "--data", data], timeout: 30)
                #expect(out.status == 2, "\(method): \(out.stderr)")
                #expect(out.stderr.contains(message), "\(method): \(out.stderr)")
            }
        }

        @Test func aMalformedReplyOrAnUnansweringPeerIsAnErrorNotACrashOrAHang() async throws {
            let dir = try makeTemporaryDirectory("meshprobe-reflection")
            defer { removeTemporaryDirectory(dir) }
            let protoset = try await makeProtos(dir)
            let (garbage, port) = try await startServer(protoset: protoset, ["--garbage"])
            defer { garbage.stop() }
            let bad = try await run(meshprobeBinary, ["load", "grpc://127.0.0.1:\(port)/shop.v1.Shop/Buy", "-n", "1", "--data", "{}"], timeout: 30)
            #expect(bad.status == 2)
            #expect(bad.stderr.contains("the server's reflection reply is malformed: not a ServerReflectionResponse: the message ends inside a field"),
                    "\(bad.stderr)")
            // A peer that accepts and never speaks: bounded by the run's connect timeout.
            let silent = try await SilentListener.start()
            let silentPort = silent.port
            let started = Date()
            try "target: grpc://127.0.0.1:\(silent.port)/shop.v1.Shop/Buy\nload: {requests: 1, connectTimeout: 500ms}\ngrpc: {data: '{}'}\n"
                .write(toFile: "\(dir)/stalled.yaml", atomically: true, encoding: .utf8)
            let stalled = try await run(meshprobeBinary, ["run", "\(dir)/stalled.yaml"], timeout: 30)
            await silent.stop()
            #expect(stalled.status == 2)
            #expect(stalled.stderr.contains("connecting to 127.0.0.1:\(silentPort) for gRPC reflection took more than 0.5s (the run's connect timeout)"),
                    "\(stalled.stderr)")
            #expect(Date().timeIntervalSince(started) < 10)
            let refused = try await run(meshprobeBinary, ["load", "grpc://127.0.0.1:\(try freePort())/shop.v1.Shop/Buy", "-n", "1", "--data", "{}"], timeout: 30)
            #expect(refused.status == 2)
            #expect(refused.stderr.contains("refused the connection"), "\(refused.stderr)")
        }

        @Test func asksOverMutualTLSWithTheRunsIdentity() async throws {
            let dir = try makeTemporaryDirectory("meshprobe-reflection")
            defer { removeTemporaryDirectory(dir) }
            let protoset = try await makeProtos(dir)
            let pki = try LabPKIFixture()
            let server = try pki.svid("shop", uris: [pki.id("shop")], dns: ["localhost"])
            let prober = try pki.svid("prober", uris: [pki.id("prober")])
            let (process, port) = try await startServer(protoset: protoset, ["--tls", server.cert, server.key, pki.caFile, "--expect-json", Self.json,
                                                                             "--expect-type", "shop.v1.BuyRequest"])
            defer { process.stop() }
            let url = "grpcs://127.0.0.1:\(port)/shop.v1.Shop/Buy"
            let out = try await run(meshprobeBinary, ["load", url, "-n", "10", "--data", Self.json, "--cert", prober.cert, "--key", prober.key,
                                                      "--ca", pki.caFile, "--expect-peer", pki.id("shop")], timeout: 60)
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            #expect(out.stdout.contains("statuses:   OK: 10"), "\(out.stdout)")
            // The run's peer check holds for the reflection connection too.
            let wrongPeer = try await run(meshprobeBinary, ["load", url, "-n", "1", "--data", Self.json, "--cert", prober.cert, "--key", prober.key,
                                                            "--ca", pki.caFile, "--expect-peer", pki.id("ratings")], timeout: 30)
            #expect(wrongPeer.status == 2, "\(wrongPeer.stdout)\(wrongPeer.stderr)")
            #expect(wrongPeer.stderr.contains("--data: server reflection (127.0.0.1:\(port)): 127.0.0.1:\(port): tls_"), "\(wrongPeer.stderr)")
        }
    }
}
