import Foundation
import MeshprobeEchoAPI
import MeshprobeGRPC
import MeshprobeIdentity
import NIOCore
import SwiftProtobuf

/// What the echo does with one gRPC call: the answer, the metadata it carries, and when it leaves.
struct GRPCEchoPlan: Equatable {
    enum Answer: Equatable {
        /// HEADERS (200, `content-type: application/grpc`, the metadata), the reply, trailers `grpc-status: 0`.
        case reply(Meshprobe_Echo_V1_CallReply)
        case health(Grpc_Health_V1_HealthCheckResponse)
        /// Trailers-only: one HEADERS frame with END_STREAM carrying the metadata, `grpc-status` and `grpc-message`.
        case status(GRPCStatusCode, message: String)
        /// This HTTP status without `grpc-status` (an HTTP fault on a gRPC call: a proxy's answer).
        case http(Int)
        /// RST_STREAM INTERNAL_ERROR.
        case reset
    }

    var answer: Answer
    /// Response metadata: the stamps (none on an authorization denial), `grpc-accept-encoding` when the request's
    /// compression was refused.
    var metadata: [(name: String, value: String)]
    var delayNanoseconds: UInt64 = 0
    /// Which try of its request id this is (0 without an `x-request-id`).
    var attempt = 0

    static func == (lhs: GRPCEchoPlan, rhs: GRPCEchoPlan) -> Bool {
        lhs.answer == rhs.answer && lhs.delayNanoseconds == rhs.delayNanoseconds && lhs.attempt == rhs.attempt
            && lhs.metadata.map(\.name) == rhs.metadata.map(\.name) && lhs.metadata.map(\.value) == rhs.metadata.map(\.value)
    }
}

/// The gRPC methods the echo serves.
enum EchoGRPCMethod {
    static let call = "/meshprobe.echo.v1.Echo/Call"
    static let healthCheck = "/grpc.health.v1.Health/Check"
    static let healthWatch = "/grpc.health.v1.Health/Watch"
    /// The services the health service knows, all SERVING: the server as a whole ("") and the echo service.
    static let servingServices: Set<String> = ["", "meshprobe.echo.v1.Echo"]
    /// The largest request message read (before and after inflating).
    static let maxRequestMessageBytes = 4 << 20
    /// Sent with UNIMPLEMENTED when a request's compression is not one of these (gRPC's compression spec).
    static let acceptEncoding = "identity,gzip"

    /// Whether a request is a gRPC call: its content-type is `application/grpc` or `application/grpc+...`.
    static func isGRPC(contentType: String) -> Bool {
        guard contentType.hasPrefix(GRPCMetadata.contentType) else { return false }
        let next = contentType.utf8.dropFirst(GRPCMetadata.contentType.utf8.count).first
        return next == nil || next == UInt8(ascii: "+") || next == UInt8(ascii: ";")
    }
}

extension EchoPlanner {
    /// Plans a gRPC call, in the order a gRPC server behind Envoy would decide it: the allow list (Envoy's RBAC filter
    /// answers PERMISSION_DENIED), the HTTP method, the route, the request message, its knobs, the faults, the
    /// answer; and the deadline (`grpc-timeout`) over whatever delay the faults add.
    func planGRPC(_ request: EchoRequest, inFlight: Int, random: inout some RandomNumberGenerator) -> GRPCEchoPlan {
        if let authorization, !authorization.allows(principal: request.peerSPIFFEID, method: request.method, path: request.path) {
            // Envoy's local reply to a gRPC request is trailers-only with the HTTP status mapped (403: 7).
            return GRPCEchoPlan(answer: .status(.permissionDenied, message: EchoAuthorization.denial.body), metadata: [])
        }
        let stamped = stamps(request, inFlight: inFlight)
        var plan = GRPCEchoPlan(answer: .status(.ok, message: ""), metadata: stamped.stamps, attempt: stamped.attempt)
        func fail(_ code: GRPCStatusCode, _ message: String) -> GRPCEchoPlan {
            plan.answer = .status(code, message: message)
            return plan
        }
        guard request.method == "POST" else { return fail(.internal, "a gRPC call is a POST request, not \(request.method)") }
        switch request.path {
        case EchoGRPCMethod.call, EchoGRPCMethod.healthCheck: break
        case EchoGRPCMethod.healthWatch:
            return fail(.unimplemented, "meshprobe echo does not implement grpc.health.v1.Health/Watch; use Check")
        default:
            return fail(.unimplemented, "unknown method \(request.path): meshprobe echo serves \(EchoGRPCMethod.call) and \(EchoGRPCMethod.healthCheck)")
        }

        let message: ByteBuffer
        switch Self.requestMessage(request) {
        case .success(let one): message = one
        case .failure(let refusal):
            if refusal.code == .unimplemented { plan.metadata.append(("grpc-accept-encoding", EchoGRPCMethod.acceptEncoding)) }
            return fail(refusal.code, refusal.message)
        }

        var spec = FaultSpec()
        var healthService: String?
        var callRequest = Meshprobe_Echo_V1_CallRequest()
        do {
            if request.path == EchoGRPCMethod.call {
                callRequest = try Meshprobe_Echo_V1_CallRequest(serializedBytes: Array(message.readableBytesView))
            } else {
                healthService = try Grpc_Health_V1_HealthCheckRequest(serializedBytes: Array(message.readableBytesView)).service
            }
        } catch {
            return fail(.internal, "the request message is not a valid \(request.path == EchoGRPCMethod.call ? "meshprobe.echo.v1.CallRequest" : "grpc.health.v1.HealthCheckRequest")")
        }
        if healthService == nil {
            do throws(GRPCEchoRefusal) {
                spec = try Self.faultSpec(of: callRequest, limits: limits)
            } catch {
                return fail(error.code, error.message)
            }
        }
        if let controlled = control.faults.spec(forPath: request.path, grpc: true) { spec.append(controlled) }

        let roll = Self.roll(spec, random: &random)
        if roll.reset {
            plan.answer = .reset
            plan.delayNanoseconds = roll.delayNanoseconds
            return plan
        }
        if !roll.applied.isEmpty { plan.metadata.append((EchoStamp.fault, roll.applied.joined(separator: ";"))) }
        plan.delayNanoseconds = roll.delayNanoseconds
        if let status = roll.status {
            if let code = ResponseCode.grpcStatus(status) {
                plan.answer = .status(code, message: "fault injected by meshprobe echo")
            } else {
                plan.answer = .http(status)
            }
        } else if let healthService {
            if EchoGRPCMethod.servingServices.contains(healthService) {
                var response = Grpc_Health_V1_HealthCheckResponse()
                response.status = .serving
                plan.answer = .health(response)
            } else {
                plan.answer = .status(.notFound, message: "unknown service \(healthService)")
            }
        } else {
            plan.answer = .reply(reply(to: callRequest, request, stamped.caller, inFlight: inFlight, attempt: stamped.attempt,
                                       fault: roll.applied.joined(separator: ";"), bodyBytes: message.readableBytes))
        }

        if let timeout = Self.timeoutNanoseconds(request), plan.delayNanoseconds > timeout {
            plan.delayNanoseconds = timeout
            plan.answer = .status(.deadlineExceeded, message: "the echo's delay of \(roll.delayNanoseconds / 1000)us is longer than the call's grpc-timeout")
        }
        return plan
    }

    /// The reply with the stamps as fields (`retries_inflight` is the responder's, set as the call is counted in).
    private func reply(to callRequest: Meshprobe_Echo_V1_CallRequest, _ request: EchoRequest, _ caller: (identity: String, source: String),
                       inFlight: Int, attempt: Int, fault: String, bodyBytes: Int) -> Meshprobe_Echo_V1_CallReply {
        var reply = Meshprobe_Echo_V1_CallReply()
        reply.workload = identity.workload
        reply.version = identity.version
        reply.cluster = identity.cluster
        reply.namespace = identity.namespace
        reply.pod = identity.pod
        reply.identity = identity.spiffeID
        reply.caller = caller.identity
        reply.callerSource = caller.source
        reply.inflight = UInt32(clamping: inFlight)
        reply.sni = request.serverName ?? ""
        reply.fault = fault
        reply.attempt = UInt32(clamping: attempt)
        reply.connectionRequest = UInt32(clamping: request.connectionRequest)
        reply.method = request.path
        reply.requestPayloadBytes = UInt32(clamping: callRequest.payload.count)
        reply.payload = Data(repeating: UInt8(ascii: "x"), count: Int(callRequest.replySize))
        return reply
    }

    /// The one message of a unary call, inflated when compressed.
    static func requestMessage(_ request: EchoRequest) -> Result<ByteBuffer, GRPCEchoRefusal> {
        let encoding = request.headers.first(where: { $0.name == "grpc-encoding" })?.value
        let messages: [ByteBuffer]
        do throws(GRPCFramingError) {
            messages = try GRPCMessageFraming.messages(in: request.body ?? ByteBuffer(), encoding: encoding,
                                                       limit: EchoGRPCMethod.maxRequestMessageBytes)
        } catch {
            if case .compressedWithout(let name?) = error, GRPCCompression(rawValue: name) == nil {
                return .failure(GRPCEchoRefusal(.unimplemented, "grpc-encoding \(name) is not supported: identity, gzip"))
            }
            return .failure(GRPCEchoRefusal(.internal, "malformed request body: \(error.description)"))
        }
        guard messages.count == 1 else {
            return .failure(GRPCEchoRefusal(.internal, "a unary call carries one request message, this one \(messages.count)"))
        }
        return .success(messages[0])
    }

    /// The call's knobs as faults (the query string's, in gRPC form); out-of-range values are INVALID_ARGUMENT.
    static func faultSpec(of call: Meshprobe_Echo_V1_CallRequest, limits: FaultSpec.Limits) throws(GRPCEchoRefusal) -> FaultSpec {
        func share(_ value: Double, _ field: String) throws(GRPCEchoRefusal) -> Double {
            guard value >= 0, value <= 100 else { throw GRPCEchoRefusal(.invalidArgument, "\(field) must be a percentage 0-100, got \(numberText(value))") }
            return value == 0 ? 100 : value
        }
        var spec = FaultSpec()
        guard Int(call.replySize) <= limits.maxBodySize else {
            throw GRPCEchoRefusal(.invalidArgument, "reply_size \(call.replySize) is more than the echo's maximum of \(limits.maxBodySize)")
        }
        if call.grpcStatus != 0 {
            guard let code = GRPCStatusCode(rawValue: Int(call.grpcStatus)) else {
                throw GRPCEchoRefusal(.invalidArgument, "grpc_status \(call.grpcStatus) is not a gRPC status code 1-16")
            }
            spec.statuses = [.init(value: ResponseCode.grpc(code), percent: try share(call.statusPercent, "status_percent"))]
        }
        if call.hasDelay {
            let delay = call.delay
            guard delay.seconds >= 0, delay.nanos >= 0,
                  Double(delay.seconds) + Double(delay.nanos) / 1e9 <= Double(limits.maxDelayNanoseconds) / 1e9 else {
                throw GRPCEchoRefusal(.invalidArgument, "delay must be 0 to the echo's maximum delay of \(limits.maxDelayNanoseconds / 1_000_000)ms")
            }
            let nanoseconds = UInt64(delay.seconds) * 1_000_000_000 + UInt64(delay.nanos)
            if nanoseconds > 0 { spec.delays = [.init(value: nanoseconds, percent: try share(call.delayPercent, "delay_percent"))] }
        }
        guard call.resetPercent >= 0, call.resetPercent <= 100 else {
            throw GRPCEchoRefusal(.invalidArgument, "reset_percent must be a percentage 0-100, got \(numberText(call.resetPercent))")
        }
        spec.resetPercent = call.resetPercent
        return spec
    }

    /// The call's `grpc-timeout` in nanoseconds; nil without one (or a malformed one, which gRPC servers ignore).
    static func timeoutNanoseconds(_ request: EchoRequest) -> UInt64? {
        guard let text = request.headers.first(where: { $0.name == "grpc-timeout" })?.value,
              let seconds = GRPCMetadata.parseTimeout(text) else { return nil }
        return seconds >= 1e9 ? UInt64.max : UInt64(seconds * 1e9)
    }
}

/// Why the echo refuses a call: the status and `grpc-message`.
struct GRPCEchoRefusal: Error, Equatable {
    var code: GRPCStatusCode
    var message: String

    init(_ code: GRPCStatusCode, _ message: String) {
        self.code = code
        self.message = message
    }
}
