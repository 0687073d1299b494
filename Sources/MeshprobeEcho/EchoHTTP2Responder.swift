import MeshprobeGRPC
import MeshprobeHTTP2
import MeshprobeIdentity
import NIOCore
import SwiftProtobuf

/// Answers HTTP/2 requests on one connection: gRPC calls (content-type `application/grpc`) with `planGRPC`, the
/// rest with `plan`.
final class EchoHTTP2Responder: HTTP2Responder {
    private let state: EchoState
    private let peerSPIFFEID: String?
    private let serverName: String?
    private let allocator = ByteBufferAllocator()
    private var random = SystemRandomNumberGenerator()
    /// Requests received on this connection so far.
    private var requestsOnConnection = 0

    init(state: EchoState, peerSPIFFEID: String?, serverName: String?) {
        self.state = state
        self.peerSPIFFEID = peerSPIFFEID
        self.serverName = serverName
    }

    func respond(to request: HTTP2ServerRequest, writer: HTTP2ResponseWriter) {
        let inFlight = state.enter()
        requestsOnConnection += 1
        let echoRequest = EchoRequest(
            method: request.method,
            path: request.path,
            headers: request.headers.map { ($0.name, $0.value) },
            bodyLength: request.body.readableBytes,
            peerSPIFFEID: peerSPIFFEID,
            serverName: serverName,
            body: request.body,
            connectionRequest: requestsOnConnection
        )
        for header in request.headers where header.name == "content-type" {
            if EchoGRPCMethod.isGRPC(contentType: header.value) {
                respondGRPC(to: echoRequest, inFlight: inFlight, writer: writer)
                return
            }
        }
        var plan = state.planner.plan(echoRequest, inFlight: inFlight, allocator: allocator, random: &random)
        let retries = state.enterRetry(attempt: plan.attempt)
        if let retries { plan.headers.append((EchoStamp.retriesInFlight, String(retries))) }
        let state = self.state
        let finish: () -> Void = {
            // Out of flight before the answer leaves (see EchoHTTP1Handler).
            state.exit(retry: retries != nil)
            switch plan.action {
            case .reset:
                writer.reset(errorCode: 0x2)  // INTERNAL_ERROR, as a crashing upstream would
            case .respond:
                var headers = plan.headers.map { HTTP2Header($0.name, $0.value) }
                if plan.status != 204 && plan.status != 304 {
                    headers.append(HTTP2Header("content-length", String(plan.body.readableBytes)))
                }
                // A HEAD response has the GET's headers and no body (RFC 9110 9.3.2): DATA would be a protocol error.
                let head = request.method == "HEAD"
                writer.respond(status: plan.status, headers: headers, body: plan.body.readableBytes > 0 && !head ? plan.body : nil)
            }
        }
        after(plan.delayNanoseconds, writer: writer, finish)
    }

    private func respondGRPC(to request: EchoRequest, inFlight: Int, writer: HTTP2ResponseWriter) {
        var plan = state.planner.planGRPC(request, inFlight: inFlight, random: &random)
        let retries = state.enterRetry(attempt: plan.attempt)
        if let retries {
            plan.metadata.append((EchoStamp.retriesInFlight, String(retries)))
            if case .reply(var reply) = plan.answer {
                reply.retriesInflight = UInt32(clamping: retries)
                plan.answer = .reply(reply)
            }
        }
        let state = self.state
        let allocator = self.allocator
        let finish: () -> Void = {
            state.exit(retry: retries != nil)
            var headers = plan.metadata.map { HTTP2Header($0.name, $0.value) }
            func send(_ message: some SwiftProtobuf.Message) {
                guard let bytes: [UInt8] = try? message.serializedBytes() else {
                    writer.reset(errorCode: 0x2)
                    return
                }
                headers.insert(HTTP2Header("content-type", GRPCMetadata.contentType), at: 0)
                writer.respond(status: 200, headers: headers, body: GRPCMessageFraming.framed(allocator.buffer(bytes: bytes)),
                               trailers: [HTTP2Header("grpc-status", "0")])
            }
            switch plan.answer {
            case .reply(let reply): send(reply)
            case .health(let health): send(health)
            case .status(let code, let message):
                headers.insert(HTTP2Header("content-type", GRPCMetadata.contentType), at: 0)
                headers.append(HTTP2Header("grpc-status", String(code.rawValue)))
                if !message.isEmpty { headers.append(HTTP2Header("grpc-message", GRPCMetadata.percentEncode(message))) }
                writer.respond(status: 200, headers: headers, body: nil, trailers: [])
            case .http(let status):
                writer.respond(status: status, headers: headers, body: nil)
            case .reset:
                writer.reset(errorCode: 0x2)
            }
        }
        after(plan.delayNanoseconds, writer: writer, finish)
    }

    /// Runs `finish` now, or on the connection's loop after `nanoseconds`.
    private func after(_ nanoseconds: UInt64, writer: HTTP2ResponseWriter, _ finish: @escaping () -> Void) {
        if nanoseconds > 0 {
            writer.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(clamping: nanoseconds))) { finish() }
        } else {
            finish()
        }
    }
}
