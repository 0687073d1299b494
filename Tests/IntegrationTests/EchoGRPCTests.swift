import Foundation
import MeshprobeEcho
import MeshprobeIdentity
import MeshprobeTLS
import NIOPosix
import Testing

extension EndToEnd {
    /// The echo's gRPC service against grpcio (the C-core implementation) and grpcio-health-checking's client, over
    /// mTLS and h2c prior knowledge; and the wire's refusals against curl.
    @Suite(.timeLimit(.minutes(2))) struct EchoGRPCTests {
        let pki: LabPKIFixture
        let echoSVID: (cert: String, key: String)
        let clientSVID: (cert: String, key: String)
        let opsSVID: (cert: String, key: String)

        init() throws {
            pki = try LabPKIFixture()
            echoSVID = try pki.svid("reviews", uris: [pki.id("reviews")], dns: [Self.serverName])
            clientSVID = try pki.svid("productpage", uris: [pki.id("productpage")])
            opsSVID = try pki.svid("ops", uris: [pki.id("gameday", ns: "ops")])
        }

        /// The DNS name in the echo's SVID that grpcio checks (`grpc.ssl_target_name_override`).
        static let serverName = "reviews.lab.test"

        func startEcho(tls: Bool) async throws -> EchoServer {
            var configuration = EchoConfiguration(identity: EchoIdentity(workload: "reviews", version: "v3", cluster: "east",
                                                                         namespace: "lab", pod: "reviews-v3-0"))
            configuration.port = 0
            configuration.tls = tls ? try pki.serverTLS(echoSVID) : nil
            configuration.controlAllowList = [try SPIFFEID(parsing: pki.id("gameday", ns: "ops"))]
            return try await EchoServer.start(configuration, group: MultiThreadedEventLoopGroup.singleton)
        }

        /// Runs the grpcio driver over `calls` (one JSON object each; see `GRPCPeer.driver`) against `echo`.
        func calls(_ echo: EchoServer, tls: Bool, _ calls: [[String: Any]]) async throws -> [[String: Any]] {
            var target: [String: Any] = ["address": "127.0.0.1:\(echo.port)"]
            if tls {
                target["tls"] = ["ca": pki.caFile, "cert": clientSVID.cert, "key": clientSVID.key, "serverName": Self.serverName,
                                 "opsCert": opsSVID.cert, "opsKey": opsSVID.key]
            }
            return try await GRPCPeer.run(target: target, calls: calls)
        }

        @Test func grpcioCallsTheEchoOverMTLSAndGetsTheStampsInTheReplyAndAsMetadata() async throws {
            let echo = try await startEcho(tls: true)
            defer { Task { await echo.close() } }
            let results = try await calls(echo, tls: true, [
                ["kind": "call", "payload": 300, "replySize": 1000, "metadata": [["x-request-id", "call-1"]]],
                ["kind": "health", "service": ""],
            ])
            let call = results[0]
            #expect(call["code"] as? String == "OK", "\(call)")
            let reply = try #require(call["reply"] as? [String: Any], "\(call)")
            #expect(reply["workload"] as? String == "reviews")
            #expect(reply["version"] as? String == "v3")
            #expect(reply["cluster"] as? String == "east")
            #expect(reply["identity"] as? String == pki.id("reviews"))
            #expect(reply["caller"] as? String == pki.id("productpage"))
            #expect(reply["callerSource"] as? String == "mtls")
            #expect(reply["sni"] as? String == Self.serverName)
            #expect(reply["attempt"] as? Int == 1)
            #expect(reply["requestPayloadBytes"] as? Int == 300)
            #expect(reply["payloadBytes"] as? Int == 1000)
            #expect(reply["method"] as? String == "/meshprobe.echo.v1.Echo/Call")
            // The same stamps as response metadata (initial metadata: the HEADERS before the message).
            let metadata = try #require(call["initialMetadata"] as? [String: String], "\(call)")
            #expect(metadata[EchoStamp.workload] == "reviews")
            #expect(metadata[EchoStamp.version] == "v3")
            #expect(metadata[EchoStamp.cluster] == "east")
            #expect(metadata[EchoStamp.identity] == pki.id("reviews"))
            #expect(metadata[EchoStamp.caller] == pki.id("productpage"))
            #expect(metadata[EchoStamp.callerSource] == "mtls")
            #expect(metadata[EchoStamp.attempt] == "1")
            #expect(results[1]["code"] as? String == "OK", "\(results[1])")
            #expect(results[1]["status"] as? String == "SERVING", "\(results[1])")
            #expect(echo.requestsServed == 2)
        }

        @Test func grpcioOverH2cGetsHealthUnimplementedGzipAndItsOwnKnobs() async throws {
            let echo = try await startEcho(tls: false)
            defer { Task { await echo.close() } }
            let results = try await calls(echo, tls: false, [
                ["kind": "call", "payload": 10],
                ["kind": "health", "service": ""],
                ["kind": "health", "service": "meshprobe.echo.v1.Echo"],
                ["kind": "health", "service": "nope.v1.Nothing"],
                ["kind": "watch", "service": ""],
                ["kind": "raw", "method": "/meshprobe.echo.v1.Echo/Nope"],
                ["kind": "raw", "method": "/nope.v1.Nothing/Call"],
                // 200 kB of one letter: gzip shrinks it to a few hundred bytes, so it went compressed.
                ["kind": "call", "payload": 200_000, "gzip": true],
                ["kind": "call", "grpcStatus": 8],
                ["kind": "call", "replySize": 2_000_000],
                ["kind": "call", "delayMs": 3000, "timeout": 0.3],
            ])
            func code(_ i: Int) -> String? { results[i]["code"] as? String }
            #expect(code(0) == "OK", "\(results[0])")
            #expect((results[0]["reply"] as? [String: Any])?["callerSource"] as? String == "none")
            #expect((results[0]["initialMetadata"] as? [String: String])?[EchoStamp.workload] == "reviews", "\(results[0])")
            #expect(results[1]["status"] as? String == "SERVING" && results[2]["status"] as? String == "SERVING", "\(results[1...2])")
            #expect(code(3) == "NOT_FOUND", "\(results[3])")
            #expect(code(4) == "UNIMPLEMENTED", "\(results[4])")
            #expect(code(5) == "UNIMPLEMENTED" && code(6) == "UNIMPLEMENTED", "\(results[5...6])")
            #expect((results[5]["details"] as? String)?.contains("/meshprobe.echo.v1.Echo/Nope") == true, "\(results[5])")
            #expect(code(7) == "OK", "\(results[7])")
            #expect((results[7]["reply"] as? [String: Any])?["requestPayloadBytes"] as? Int == 200_000, "\(results[7])")
            #expect(code(8) == "RESOURCE_EXHAUSTED", "\(results[8])")
            // A trailers-only answer: grpcio hands its metadata over as trailing metadata.
            #expect((results[8]["trailingMetadata"] as? [String: String])?[EchoStamp.fault] == "status=RESOURCE_EXHAUSTED", "\(results[8])")
            #expect(code(9) == "INVALID_ARGUMENT", "\(results[9])")
            #expect(code(10) == "DEADLINE_EXCEEDED", "\(results[10])")
            let elapsed = try #require(results[10]["seconds"] as? Double)
            #expect(elapsed < 2.5, "answered at the deadline, not after the 3 s delay: \(elapsed) s")
        }

        @Test func controlAPIFaultsReachGRPCCallsAsGRPCStatusesOrAsAProxysHTTPStatus() async throws {
            let echo = try await startEcho(tls: true)
            defer { Task { await echo.close() } }
            let results = try await calls(echo, tls: true, [
                ["kind": "fault", "body": ["grpcStatus": "UNAVAILABLE", "path": "/meshprobe.echo.v1.Echo/", "durationSeconds": 60]],
                ["kind": "call"],
                ["kind": "health", "service": ""],
                ["kind": "clear"],
                ["kind": "fault", "body": ["status": 503, "durationSeconds": 60]],
                ["kind": "call"],
                ["kind": "clear"],
                ["kind": "fault", "body": ["grpcStatus": 7, "status": 418, "durationSeconds": 60]],
                ["kind": "call"],
                ["kind": "http", "path": "/reviews"],
                ["kind": "clear"],
                ["kind": "call"],
            ])
            #expect((results[0]["fault"] as? [String: Any])?["grpcStatus"] as? String == "UNAVAILABLE", "\(results[0])")
            #expect(results[1]["code"] as? String == "UNAVAILABLE", "\(results[1])")
            #expect((results[1]["trailingMetadata"] as? [String: String])?[EchoStamp.fault] == "status=UNAVAILABLE;control=f1", "\(results[1])")
            #expect(results[2]["status"] as? String == "SERVING", "the fault's path is the echo service only: \(results[2])")
            // No grpc-status: grpcio maps the HTTP status (503: UNAVAILABLE), as it would a proxy's answer.
            #expect(results[5]["code"] as? String == "UNAVAILABLE", "\(results[5])")
            #expect((results[5]["details"] as? String)?.contains("503") == true, "\(results[5])")
            #expect(results[8]["code"] as? String == "PERMISSION_DENIED", "\(results[8])")
            #expect(results[9]["status"] as? Int == 418, "HTTP requests get the fault's HTTP status: \(results[9])")
            #expect(results[11]["code"] as? String == "OK", "\(results[11])")
        }

        /// What grpcio never sends: a GET, a truncated message, an unknown compression, a grpc-timeout shorter than a
        /// delay; curl sends them over h2c prior knowledge and shows the answer's headers and trailers.
        @Test func refusesMalformedCallsWithTheRightStatusAndAMessage() async throws {
            let echo = try await startEcho(tls: false)
            defer { Task { await echo.close() } }
            let url = "http://127.0.0.1:\(echo.port)/meshprobe.echo.v1.Echo/Call"
            let dir = try makeTemporaryDirectory("meshprobe-grpc-curl")
            defer { removeTemporaryDirectory(dir) }
            func body(_ name: String, _ bytes: [UInt8]) throws -> String {
                let path = "\(dir)/\(name)"
                try Data(bytes).write(to: URL(fileURLWithPath: path))
                return "@\(path)"
            }
            func curl(_ extra: [String]) async throws -> String {
                let out = try await run("/usr/bin/curl", ["-s", "-D", "-", "-o", "/dev/null", "--http2-prior-knowledge",
                                                          "-H", "content-type: application/grpc", "-H", "te: trailers"] + extra + [url], timeout: 20)
                return out.stdout.lowercased()
            }
            let get = try await curl([])
            #expect(get.contains("grpc-status: 13") && get.contains("grpc-message: a grpc call is a post request, not get"), "\(get)")
            let truncated = try await curl(["--data-binary", try body("truncated", [0, 0, 0, 0, 10, 1, 2])])
            #expect(truncated.contains("grpc-status: 13") && truncated.contains("grpc-message: malformed request body"), "\(truncated)")
            let snappy = try await curl(["-H", "grpc-encoding: snappy", "--data-binary", try body("snappy", [1, 0, 0, 0, 2, 1, 2])])
            #expect(snappy.contains("grpc-status: 12") && snappy.contains("grpc-accept-encoding: identity,gzip"), "\(snappy)")
            // CallRequest{delay: 2 s}: field 3 (Duration), seconds 2; the call's grpc-timeout is 100 ms.
            let delayed: [UInt8] = [0x1A, 0x02, 0x08, 0x02]
            let started = Date()
            let late = try await curl(["-H", "grpc-timeout: 100m", "--data-binary", try body("delayed", [0, 0, 0, 0, UInt8(delayed.count)] + delayed)])
            #expect(late.contains("grpc-status: 4"), "\(late)")
            #expect(Date().timeIntervalSince(started) < 1.5, "answered at the call's deadline, not after the delay")
            let ok = try await curl(["--data-binary", try body("empty", [0, 0, 0, 0, 0])])
            #expect(ok.hasPrefix("http/2 200") && ok.contains("x-meshprobe-workload: reviews") && ok.contains("grpc-status: 0"), "\(ok)")
        }
    }
}

/// grpcio as the echo's peer: stubs generated from the repository's protos into a temporary directory, then one
/// Python process that makes the calls in order and prints one JSON result a call.
enum GRPCPeer {
    static func run(target: [String: Any], calls: [[String: Any]]) async throws -> [[String: Any]] {
        let dir = try makeTemporaryDirectory("meshprobe-grpcio")
        defer { removeTemporaryDirectory(dir) }
        let protos = packageRoot.appendingPathComponent("protos").path
        let generate = try await MeshprobeTestSupport.run("/usr/bin/env", ["python3", "-m", "grpc_tools.protoc", "-I", protos, "--python_out=\(dir)",
                                                                           "--grpc_python_out=\(dir)", "meshprobe/echo/v1/echo.proto"], timeout: 60)
        try #require(generate.status == 0, "grpc_tools.protoc: \(generate.output)")
        let input = String(decoding: try JSONSerialization.data(withJSONObject: ["target": target, "calls": calls]), as: UTF8.self)
        let out = try await python(driver, [dir], stdin: input)
        try #require(out.status == 0, "the grpcio driver failed: \(out.output)")
        let lines = out.stdout.split(separator: "\n")
        try #require(lines.count == calls.count, "\(out.output)")
        return try lines.map { try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    }

    static let driver = #"""
import json, ssl, sys, time, urllib.request
sys.path.insert(0, sys.argv[1])
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from meshprobe.echo.v1 import echo_pb2, echo_pb2_grpc

spec = json.load(sys.stdin)
target = spec["target"]
tls = target.get("tls")
if tls:
    read = lambda p: open(p, "rb").read()
    credentials = grpc.ssl_channel_credentials(read(tls["ca"]), read(tls["key"]), read(tls["cert"]))
    channel = grpc.secure_channel(target["address"], credentials, options=[("grpc.ssl_target_name_override", tls["serverName"])])
    control = ssl.create_default_context(cafile=tls["ca"])
    control.check_hostname = False
    control.load_cert_chain(tls["opsCert"], tls["opsKey"])
else:
    channel = grpc.insecure_channel(target["address"])
base = ("https://" if tls else "http://") + target["address"]
echo = echo_pb2_grpc.EchoStub(channel)
health = health_pb2_grpc.HealthStub(channel)

def http(method, path, body=None):
    request = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode())
    if body is not None:
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, context=control if tls else None, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()

def outcome(unary, request, call):
    started = time.monotonic()
    result = {}
    try:
        response, rpc = unary.with_call(request, timeout=call.get("timeout", 10), metadata=[tuple(m) for m in call.get("metadata", [])],
                                        compression=grpc.Compression.Gzip if call.get("gzip") else None)
        result["code"] = rpc.code().name
        result["initialMetadata"] = dict(rpc.initial_metadata())
        result["trailingMetadata"] = dict(rpc.trailing_metadata())
    except grpc.RpcError as error:
        response = None
        result.update(code=error.code().name, details=error.details(),
                      initialMetadata=dict(error.initial_metadata() or ()), trailingMetadata=dict(error.trailing_metadata() or ()))
    result["seconds"] = time.monotonic() - started
    return response, result

for call in spec["calls"]:
    kind = call["kind"]
    if kind == "call":
        request = echo_pb2.CallRequest(payload=b"a" * call.get("payload", 0), reply_size=call.get("replySize", 0),
                                       grpc_status=call.get("grpcStatus", 0))
        if "delayMs" in call:
            request.delay.FromMilliseconds(call["delayMs"])
        reply, result = outcome(echo.Call, request, call)
        if reply is not None:
            result["reply"] = dict(workload=reply.workload, version=reply.version, cluster=reply.cluster, identity=reply.identity,
                                   caller=reply.caller, callerSource=reply.caller_source, sni=reply.sni, attempt=reply.attempt,
                                   inflight=reply.inflight, fault=reply.fault, method=reply.method,
                                   requestPayloadBytes=reply.request_payload_bytes, payloadBytes=len(reply.payload))
    elif kind in ("health", "watch"):
        request = health_pb2.HealthCheckRequest(service=call["service"])
        if kind == "watch":
            result = {}
            try:
                next(iter(health.Watch(request, timeout=10)))
                result["code"] = "OK"
            except grpc.RpcError as error:
                result.update(code=error.code().name, details=error.details())
        else:
            response, result = outcome(health.Check, request, call)
            if response is not None:
                result["status"] = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    elif kind == "raw":
        unary = channel.unary_unary(call["method"], request_serializer=lambda b: b, response_deserializer=lambda b: b)
        _, result = outcome(unary, b"", call)
    elif kind == "fault":
        status, body = http("POST", "/.meshprobe/faults", call["body"])
        result = {"status": status, "fault": json.loads(body)}
    elif kind == "clear":
        status, body = http("DELETE", "/.meshprobe/faults")
        result = {"status": status}
    elif kind == "http":
        status, body = http("GET", call["path"])
        result = {"status": status}
    print(json.dumps(result), flush=True)
"""#
}
