import MeshprobeGRPC
import MeshprobeHTTP2
import MeshprobeSpec
import NIOCore

/// What a gRPC call puts on the wire besides its path (PROTOCOL-HTTP2.md): the fixed headers and the framed message.
enum GRPCRequest {
    /// `content-type`, `te: trailers` (which gRPC servers require, to tell a proxy that strips trailers), the deadline
    /// as `grpc-timeout` (the run's request timeout, so the server gives up when meshprobe does), the encodings it
    /// reads, and `grpc-encoding: gzip` when the message goes compressed.
    static func headers(for call: GRPCCall, timeout: Double) -> [HTTP2Header] {
        var headers = [HTTP2Header("content-type", GRPCMetadata.contentType), HTTP2Header("te", "trailers")]
        if let value = GRPCMetadata.timeout(seconds: timeout) { headers.append(HTTP2Header("grpc-timeout", value)) }
        if call.gzip { headers.append(HTTP2Header("grpc-encoding", GRPCCompression.gzip.rawValue)) }
        headers.append(HTTP2Header("grpc-accept-encoding", "identity,gzip"))
        return headers
    }

    /// How long past a call's deadline meshprobe waits for the server's DEADLINE_EXCEEDED before it counts the call as
    /// its own `request_timeout`: a tenth of the deadline, at least 50 ms and at most 1 s.
    static func deadlineGrace(_ timeout: Double) -> Double { min(1, max(0.05, timeout / 10)) }

    /// The request body: the message, length-prefixed (compressed first when the call says gzip). Built once a run.
    static func body(for call: GRPCCall) -> ByteBuffer {
        GRPCMessageFraming.framed(ByteBuffer(bytes: call.message), compression: call.gzip ? .gzip : .identity)
    }
}
