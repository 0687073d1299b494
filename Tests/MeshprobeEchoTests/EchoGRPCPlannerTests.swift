import MeshprobeEchoAPI
import MeshprobeGRPC
import MeshprobeIdentity
import NIOCore
import SwiftProtobuf
import Testing
@testable import MeshprobeEcho

/// `EchoPlanner.planGRPC`: a call in, what the echo answers out.
@Suite struct EchoGRPCPlannerTests {
    let planner = EchoPlanner(
        identity: EchoIdentity(workload: "reviews", version: "v2", cluster: "east", namespace: "bookinfo", pod: "reviews-v2-abc",
                               spiffeID: "spiffe://cluster.local/ns/bookinfo/sa/reviews"),
        limits: .init())

    func framed(_ message: some SwiftProtobuf.Message, gzip: Bool = false) throws -> ByteBuffer {
        GRPCMessageFraming.framed(ByteBuffer(bytes: try message.serializedBytes() as [UInt8]), compression: gzip ? .gzip : .identity)
    }

    func plan(_ path: String = EchoGRPCMethod.call, method: String = "POST", headers: [(String, String)] = [], body: ByteBuffer? = nil,
              peer: String? = nil, with planner: EchoPlanner? = nil) throws -> GRPCEchoPlan {
        var rng = SystemRandomNumberGenerator()
        let body = try body ?? framed(Meshprobe_Echo_V1_CallRequest())
        let request = EchoRequest(method: method, path: path, headers: [("content-type", "application/grpc")] + headers.map { (name: $0.0, value: $0.1) },
                                  bodyLength: body.readableBytes, peerSPIFFEID: peer, serverName: "reviews.test", body: body)
        return (planner ?? self.planner).planGRPC(request, inFlight: 4, random: &rng)
    }

    func metadata(_ plan: GRPCEchoPlan, _ name: String) -> String? {
        plan.metadata.first(where: { $0.name == name })?.value
    }

    @Test func aCallIsRepliedWithTheStampsInTheMessageAndAsMetadata() throws {
        var call = Meshprobe_Echo_V1_CallRequest()
        call.payload = .init(repeating: 1, count: 33)
        call.replySize = 100
        let p = try plan(headers: [("x-request-id", "r1")], body: try framed(call), peer: "spiffe://cluster.local/ns/web/sa/productpage")
        guard case .reply(let reply) = p.answer else {
            Issue.record("\(p.answer)")
            return
        }
        #expect(reply.workload == "reviews" && reply.version == "v2" && reply.cluster == "east")
        #expect(reply.identity == "spiffe://cluster.local/ns/bookinfo/sa/reviews")
        #expect(reply.caller == "spiffe://cluster.local/ns/web/sa/productpage" && reply.callerSource == "mtls")
        #expect(reply.inflight == 4 && reply.attempt == 1 && reply.sni == "reviews.test")
        #expect(reply.requestPayloadBytes == 33 && reply.payload.count == 100)
        #expect(metadata(p, EchoStamp.workload) == "reviews")
        #expect(metadata(p, EchoStamp.caller) == "spiffe://cluster.local/ns/web/sa/productpage")
        #expect(metadata(p, EchoStamp.inFlight) == "4")
        #expect(metadata(p, EchoStamp.attempt) == "1")
        #expect(p.delayNanoseconds == 0)
    }

    @Test func aGzipMessageIsInflated() throws {
        var call = Meshprobe_Echo_V1_CallRequest()
        call.payload = .init(repeating: 7, count: 5000)
        let p = try plan(headers: [("grpc-encoding", "gzip")], body: try framed(call, gzip: true))
        guard case .reply(let reply) = p.answer else {
            Issue.record("\(p.answer)")
            return
        }
        #expect(reply.requestPayloadBytes == 5000)
    }

    @Test func anUnknownCompressionIsUnimplementedNamingWhatIsAccepted() throws {
        var body = ByteBuffer(bytes: [1, 0, 0, 0, 2, 9, 9])
        let p = try plan(headers: [("grpc-encoding", "snappy")], body: body)
        #expect(p.answer == .status(.unimplemented, message: "grpc-encoding snappy is not supported: identity, gzip"))
        #expect(metadata(p, "grpc-accept-encoding") == "identity,gzip")
        body = ByteBuffer(bytes: [1, 0, 0, 0, 2, 9, 9])
        guard case .status(.internal, _) = try plan(body: body).answer else {
            Issue.record("a compressed message without grpc-encoding is INTERNAL")
            return
        }
    }

    @Test(arguments: [
        ([0, 0, 0, 0, 10, 1, 2] as [UInt8], "malformed request body: the body ends inside a message (7 of 15 bytes)"),
        ([2, 0, 0, 0, 0], "malformed request body: a message prefix with compressed flag 2 (must be 0 or 1)"),
        ([], "a unary call carries one request message, this one 0"),
        ([0, 0, 0, 0, 0, 0, 0, 0, 0, 0], "a unary call carries one request message, this one 2"),
        ([0, 0, 0, 0, 2, 0xFF, 0xFF], "the request message is not a valid meshprobe.echo.v1.CallRequest"),
    ])
    func aMalformedBodyIsInternalSayingWhatIsWrong(_ bytes: [UInt8], _ message: String) throws {
        #expect(try plan(body: ByteBuffer(bytes: bytes)).answer == .status(.internal, message: message))
    }

    @Test func aGETIsInternalAndUnknownMethodsAndWatchAreUnimplemented() throws {
        #expect(try plan(method: "GET").answer == .status(.internal, message: "a gRPC call is a POST request, not GET"))
        guard case .status(.unimplemented, let message) = try plan("/meshprobe.echo.v1.Echo/Other").answer else {
            Issue.record("an unknown method is UNIMPLEMENTED")
            return
        }
        #expect(message.contains("/meshprobe.echo.v1.Echo/Other"))
        guard case .status(.unimplemented, _) = try plan(EchoGRPCMethod.healthWatch).answer else {
            Issue.record("Watch is UNIMPLEMENTED")
            return
        }
    }

    @Test func healthIsServingForTheServerAndTheEchoAndNotFoundOtherwise() throws {
        func check(_ service: String) throws -> GRPCEchoPlan.Answer {
            var request = Grpc_Health_V1_HealthCheckRequest()
            request.service = service
            return try plan(EchoGRPCMethod.healthCheck, body: try framed(request)).answer
        }
        var serving = Grpc_Health_V1_HealthCheckResponse()
        serving.status = .serving
        #expect(try check("") == .health(serving))
        #expect(try check("meshprobe.echo.v1.Echo") == .health(serving))
        #expect(try check("other.v1.Service") == .status(.notFound, message: "unknown service other.v1.Service"))
    }

    @Test func theCallsKnobsAbortAndDelayAndOutOfRangeOnesAreInvalidArguments() throws {
        var call = Meshprobe_Echo_V1_CallRequest()
        call.grpcStatus = 14
        var p = try plan(body: try framed(call))
        #expect(p.answer == .status(.unavailable, message: "fault injected by meshprobe echo"))
        #expect(metadata(p, EchoStamp.fault) == "status=UNAVAILABLE")
        call = Meshprobe_Echo_V1_CallRequest()
        call.delay = .init(seconds: 0, nanos: 20_000_000)
        p = try plan(body: try framed(call))
        #expect(p.delayNanoseconds == 20_000_000)
        #expect(metadata(p, EchoStamp.fault) == "delay=20000us")
        for bad in [{ (c: inout Meshprobe_Echo_V1_CallRequest) in c.grpcStatus = 17 }, { $0.replySize = 2 << 20 },
                    { $0.delay = .init(seconds: 11, nanos: 0) }, { $0.resetPercent = 101 }, { $0.grpcStatus = 2; $0.statusPercent = -1 }] {
            var request = Meshprobe_Echo_V1_CallRequest()
            bad(&request)
            guard case .status(.invalidArgument, _) = try plan(body: try framed(request)).answer else {
                Issue.record("\(request) is INVALID_ARGUMENT")
                continue
            }
        }
        call = Meshprobe_Echo_V1_CallRequest()
        call.resetPercent = 100
        #expect(try plan(body: try framed(call)).answer == .reset)
    }

    @Test func aDelayBeyondTheCallsTimeoutIsDeadlineExceededAtTheDeadline() throws {
        var call = Meshprobe_Echo_V1_CallRequest()
        call.delay = .init(seconds: 2, nanos: 0)
        let late = try plan(headers: [("grpc-timeout", "150m")], body: try framed(call))
        #expect(late.delayNanoseconds == 150_000_000)
        guard case .status(.deadlineExceeded, _) = late.answer else {
            Issue.record("\(late.answer)")
            return
        }
        let inTime = try plan(headers: [("grpc-timeout", "3S")], body: try framed(call))
        #expect(inTime.delayNanoseconds == 2_000_000_000)
        guard case .reply = inTime.answer else {
            Issue.record("\(inTime.answer)")
            return
        }
    }

    @Test func controlFaultsGiveTheirGRPCStatusOrTheirHTTPStatusAsAProxyWould() throws {
        let planner = EchoPlanner(identity: self.planner.identity, limits: .init())
        let request = FaultControlJSON.NewFault(grpcStatus: "UNAVAILABLE", path: "/meshprobe.echo.v1.Echo/", durationSeconds: 60)
        _ = planner.control.faults.add(try FaultSettings(request, limits: .init()), setBy: "spiffe://t/ops")
        var p = try plan(with: planner)
        #expect(p.answer == .status(.unavailable, message: "fault injected by meshprobe echo"))
        #expect(metadata(p, EchoStamp.fault) == "status=UNAVAILABLE;control=f1")
        #expect(metadata(p, EchoStamp.workload) == "reviews", "a fault's answer is the workload's: stamped")
        var health = Grpc_Health_V1_HealthCheckRequest()
        health.service = ""
        guard case .health = try plan(EchoGRPCMethod.healthCheck, body: try framed(health), with: planner).answer else {
            Issue.record("the fault's path is the echo service only")
            return
        }
        _ = planner.control.faults.clear()
        _ = planner.control.faults.add(try FaultSettings(.init(status: 503, durationSeconds: 60), limits: .init()), setBy: "spiffe://t/ops")
        p = try plan(with: planner)
        #expect(p.answer == .http(503))
    }

    @Test func anAllowListDenialIsEnvoysPermissionDeniedWithoutStamps() throws {
        var planner = EchoPlanner(identity: self.planner.identity, limits: .init())
        planner.authorization = EchoAuthorization(rules: [.init(principals: ["spiffe://t/ns/a/sa/allowed"])])
        let denied = try plan(peer: "spiffe://t/ns/a/sa/other", with: planner)
        #expect(denied.answer == .status(.permissionDenied, message: "RBAC: access denied"))
        #expect(denied.metadata.isEmpty)
        guard case .reply = try plan(peer: "spiffe://t/ns/a/sa/allowed", with: planner).answer else {
            Issue.record("the allowed caller is answered")
            return
        }
    }

    @Test(arguments: [("application/grpc", true), ("application/grpc+proto", true), ("application/grpc;charset=utf-8", true),
                      ("application/grpc-web", false), ("application/json", false)])
    func grpcIsTheContentTypeApplicationGRPCAndItsSubtypes(_ contentType: String, _ isGRPC: Bool) {
        #expect(EchoGRPCMethod.isGRPC(contentType: contentType) == isGRPC)
    }
}
