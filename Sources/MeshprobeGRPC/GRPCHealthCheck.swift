import MeshprobeIdentity
import NIOCore
import SwiftProtobuf

/// The standard health service (grpc/grpc doc/health-checking.md, `grpc.health.v1`).
public enum GRPCHealthCheck {
    /// A `HealthCheckRequest` for `service` ('' for the server as a whole), in protobuf's binary encoding.
    public static func request(service: String) -> [UInt8] {
        let message = Grpc_Health_V1_HealthCheckRequest.with { $0.service = service }
        return (try? message.serializedBytes()) ?? []
    }

    /// The serving status (`HealthCheckResponse.ServingStatus`'s number: 0 UNKNOWN, 1 SERVING, 2 NOT_SERVING, 3
    /// SERVICE_UNKNOWN) of a reply in protobuf's binary encoding; nil when it does not decode.
    public static func servingStatus(reply: ByteBuffer) -> Int? {
        (try? Grpc_Health_V1_HealthCheckResponse(serializedBytes: Array(reply.readableBytesView)))?.status.rawValue
    }
}

/// The echo's per-call knobs in their gRPC form (`meshprobe.echo.v1.CallRequest`), what an HTTP request's query string
/// asks of it (`delay=`, `status=`, `size=`, `close=`).
public struct EchoCallKnobs: Sendable, Equatable {
    /// The echo service's unary method, the one call that reads the knobs.
    public static let method = "meshprobe.echo.v1.Echo/Call"

    public var delaySeconds: Double?
    /// The gRPC status every call is answered with (trailers-only), `status=` in gRPC's form.
    public var grpcStatus: GRPCStatusCode?
    public var replySize: Int?
    public var resetPercent: Double?

    public init(delaySeconds: Double? = nil, grpcStatus: GRPCStatusCode? = nil, replySize: Int? = nil, resetPercent: Double? = nil) {
        self.delaySeconds = delaySeconds
        self.grpcStatus = grpcStatus
        self.replySize = replySize
        self.resetPercent = resetPercent
    }

    /// The knobs as a `CallRequest` holding only them: appended to a call's message, protobuf's merge sets these fields
    /// and keeps the others (a message's encoding followed by another's reads as the two merged).
    public func serialized() -> [UInt8] {
        let message = Meshprobe_Echo_V1_CallRequest.with { request in
            if let delaySeconds {
                let nanos = (delaySeconds * 1e9).rounded()
                request.delay = Google_Protobuf_Duration(seconds: Int64(nanos / 1e9), nanos: Int32(nanos.truncatingRemainder(dividingBy: 1e9)))
            }
            if let grpcStatus { request.grpcStatus = UInt32(grpcStatus.rawValue) }
            if let replySize { request.replySize = UInt32(clamping: replySize) }
            if let resetPercent { request.resetPercent = resetPercent }
        }
        return (try? message.serializedBytes()) ?? []
    }
}
