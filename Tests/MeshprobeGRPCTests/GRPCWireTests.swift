import MeshprobeGRPC
import MeshprobeIdentity
import NIOCore
import Testing

@Suite struct GRPCWireTests {
    @Test func framesAndReadsMessagesIdentityAndGzip() throws {
        var body = ByteBuffer()
        GRPCMessageFraming.write(ByteBuffer(string: "hello"), to: &body)
        GRPCMessageFraming.write(ByteBuffer(string: String(repeating: "z", count: 1000)), compression: .gzip, to: &body)
        GRPCMessageFraming.write(ByteBuffer(), to: &body)
        // The prefix: flag 0, length 5 big-endian.
        #expect(Array(body.readableBytesView.prefix(5)) == [0, 0, 0, 0, 5])
        let messages = try GRPCMessageFraming.messages(in: body, encoding: "gzip")
        #expect(messages.map { String(buffer: $0) } == ["hello", String(repeating: "z", count: 1000), ""])
        // The gzip message went out smaller than it came (the flag is set).
        #expect(body.readableBytes < 5 + 5 + 5 + 1000)
    }

    @Test func namesEveryBadBody() {
        var compressed = ByteBuffer()
        GRPCMessageFraming.write(ByteBuffer(string: "x"), compression: .gzip, to: &compressed)
        #expect(throws: GRPCFramingError.compressedWithout(encoding: nil)) { try GRPCMessageFraming.messages(in: compressed, encoding: nil) }
        #expect(throws: GRPCFramingError.compressedWithout(encoding: "snappy")) { try GRPCMessageFraming.messages(in: compressed, encoding: "snappy") }
        #expect(throws: GRPCFramingError.truncated(have: 3, need: 5)) { try GRPCMessageFraming.messages(in: ByteBuffer(bytes: [0, 0, 0]), encoding: nil) }
        #expect(throws: GRPCFramingError.truncated(have: 7, need: 9)) {
            try GRPCMessageFraming.messages(in: ByteBuffer(bytes: [0, 0, 0, 0, 4, 1, 2]), encoding: nil)
        }
        #expect(throws: GRPCFramingError.tooLarge(length: 1 << 24, limit: 1 << 20)) {
            try GRPCMessageFraming.messages(in: ByteBuffer(bytes: [0, 1, 0, 0, 0]), encoding: nil, limit: 1 << 20)
        }
        #expect(throws: GRPCFramingError.badFlag(2)) { try GRPCMessageFraming.messages(in: ByteBuffer(bytes: [2, 0, 0, 0, 0]), encoding: nil) }
        #expect(throws: GRPCFramingError.badCompressedPayload) {
            try GRPCMessageFraming.messages(in: ByteBuffer(bytes: [1, 0, 0, 0, 3, 1, 2, 3]), encoding: "gzip")
        }
    }

    @Test func readsMessagesAsTheyArrive() throws {
        var whole = ByteBuffer()
        for text in ["one", "two"] { GRPCMessageFraming.write(ByteBuffer(string: text), to: &whole) }
        var reader = GRPCMessageReader(encoding: nil)
        var arriving = ByteBuffer()
        var seen: [String] = []
        for byte in whole.readableBytesView {
            arriving.writeInteger(byte)
            while let message = try reader.next(from: &arriving) { seen.append(String(buffer: message)) }
        }
        #expect(seen == ["one", "two"])
        try reader.finish(remaining: arriving)
    }

    @Test func percentEncodingOfGRPCMessage() {
        #expect(GRPCMetadata.percentEncode("no healthy upstream") == "no healthy upstream")
        #expect(GRPCMetadata.percentEncode("50% done\n✓") == "50%25 done%0A%E2%9C%93")
        #expect(GRPCMetadata.percentDecode("50%25 done%0A%E2%9C%93") == "50% done\n✓")
        // A stray % stays; an invalid UTF-8 sequence is replaced, not a crash.
        #expect(GRPCMetadata.percentDecode("100%") == "100%")
        #expect(GRPCMetadata.percentDecode("%zz%4") == "%zz%4")
        #expect(GRPCMetadata.percentDecode("%FF") == "\u{FFFD}")
    }

    @Test func timeoutsFitEightDigitsAndRoundUp() {
        #expect(GRPCMetadata.timeout(seconds: 0.0015) == "1500000n")
        #expect(GRPCMetadata.timeout(seconds: 1) == "1000000u")
        #expect(GRPCMetadata.timeout(seconds: 30) == "30000000u")
        #expect(GRPCMetadata.timeout(seconds: 3600) == "3600000m")
        #expect(GRPCMetadata.timeout(seconds: 0) == nil)
        #expect(GRPCMetadata.parseTimeout("100m") == 0.1)
        #expect(GRPCMetadata.parseTimeout("2S") == 2)
        #expect(GRPCMetadata.parseTimeout("123456789S") == nil)
        #expect(GRPCMetadata.parseTimeout("5s") == nil)
        #expect(GRPCMetadata.parseTimeout("S") == nil)
        for seconds in [0.000_000_5, 0.25, 7.5, 86_400.0, 10_000_000.0] {
            let text = GRPCMetadata.timeout(seconds: seconds)!
            #expect(GRPCMetadata.parseTimeout(text)! >= seconds, "\(text)")
        }
    }

    @Test func responseCodeFromTrailersOrHTTPStatus() {
        func code(_ status: Int, _ headers: [(String, String)]) -> (Int, String?) {
            let r = GRPCMetadata.responseCode(httpStatus: status, headers: headers.map { (name: $0.0, value: $0.1) })
            return (r.code, r.message)
        }
        #expect(code(200, [("content-type", "application/grpc"), ("grpc-status", "0")]) == (1000, nil))
        #expect(code(200, [("grpc-status", "14"), ("grpc-message", "upstream%20down")]) == (1014, "upstream down"))
        #expect(code(200, [("grpc-status", "99")]) == (1002, nil))
        #expect(code(503, []) == (503, nil))
        #expect(code(200, []) == (1013, nil))
        #expect(code(302, [("location", "/")]) == (1013, nil))
    }

    @Test func statusCodesByEveryName() {
        #expect(GRPCStatusCode(parsing: "resource-exhausted") == .resourceExhausted)
        #expect(GRPCStatusCode(parsing: "UNAVAILABLE") == .unavailable)
        #expect(GRPCStatusCode(parsing: "4") == .deadlineExceeded)
        #expect(GRPCStatusCode(parsing: "17") == nil)
        #expect(GRPCStatusCode(parsing: "busy") == nil)
        #expect(GRPCStatusCode.deadlineExceeded.retryConditionName == "deadline-exceeded")
        #expect(GRPCStatusCode(httpStatus: 503) == .unavailable)
        #expect(GRPCStatusCode(httpStatus: 404) == .unimplemented)
        #expect(GRPCStatusCode(httpStatus: 500) == .unknown)
        #expect(ResponseCode.succeeded(1000) && ResponseCode.succeeded(204) && !ResponseCode.succeeded(1014) && !ResponseCode.succeeded(503))
        #expect(ResponseCode.httpEquivalent(1014) == 503 && ResponseCode.httpEquivalent(502) == 502)
        #expect(ResponseCode.text(1008) == "RESOURCE_EXHAUSTED" && ResponseCode.text(503) == "503")
        #expect(ResponseCode.parse("RESOURCE_EXHAUSTED") == 1008 && ResponseCode.parse("503") == 503 && ResponseCode.parse("1000") == nil)
    }

    /// A health check's OK answer by its serving status: SERVING is OK; NOT_SERVING, SERVICE_UNKNOWN and UNKNOWN (or a
    /// number the enum lacks) fail with a code of their own, whose gRPC status is OK (and HTTP 200, as a proxy sees it).
    @Test func healthAnswersCountByTheirServingStatus() throws {
        #expect(ResponseCode.health(servingStatus: 1) == ResponseCode.grpc(.ok))
        for (serving, text) in [(2, "health NOT_SERVING"), (3, "health SERVICE_UNKNOWN"), (0, "health UNKNOWN"), (9, "health UNKNOWN")] {
            let code = ResponseCode.health(servingStatus: serving)
            #expect(!ResponseCode.succeeded(code) && ResponseCode.text(code) == text && ResponseCode.parse(text) == code, "\(serving)")
            #expect(ResponseCode.grpcStatus(code) == .ok && ResponseCode.httpEquivalent(code) == 200 && code <= ResponseCode.maximum)
        }
        #expect(ResponseCode.healthStatus(ResponseCode.grpc(.unavailable)) == nil && ResponseCode.parse("health BUSY") == nil)
        // The reply as grpcio's health service sends it: field 1, varint.
        #expect(GRPCHealthCheck.servingStatus(reply: ByteBuffer(bytes: [0x08, 0x02])) == 2)
        #expect(GRPCHealthCheck.servingStatus(reply: ByteBuffer(bytes: [])) == 0)
    }
}

/// How a gRPC call a proxy failed is classified. Envoy does not run here: the replies are built from its documented
/// behaviour for gRPC requests (its local replies keep HTTP 200 and carry the status in grpc-status and the words of
/// the HTTP reply in grpc-message; `x-envoy-overloaded` marks a circuit breaker's overflow; the RBAC filter denies a
/// gRPC call with PERMISSION_DENIED and `RBAC: access denied`).
@Suite struct GRPCFailureClassificationTests {
    func classify(_ status: Int, _ headers: [(String, String)], stamped: Bool = false) -> FailureClass {
        let fields = headers.map { (name: $0.0, value: $0.1) }
        let (code, message) = GRPCMetadata.responseCode(httpStatus: status, headers: fields)
        return SignatureTable().classify(status: code, headers: fields, body: message ?? "", stamped: stamped)
    }

    @Test func envoysGRPCLocalRepliesAreItsSignatures() {
        let overflow = classify(200, [("grpc-status", "14"), ("grpc-message", "upstream connect error or disconnect/reset before headers. reset reason: overflow"),
                                      ("x-envoy-overloaded", "true")])
        #expect(overflow == FailureClass(origin: .proxy, reason: FailureClass.Reason.circuitBreakerOverflow, proxy: "envoy", flag: "UO"))
        #expect(overflow.isOverflow)
        #expect(classify(200, [("grpc-status", "14"), ("grpc-message", "no healthy upstream")]).reason == FailureClass.Reason.noHealthyUpstream)
        #expect(classify(200, [("grpc-status", "7"), ("grpc-message", "RBAC: access denied")])
                == FailureClass(origin: .proxy, reason: FailureClass.Reason.accessDenied, proxy: "envoy", flag: "RBAC"))
        // Linkerd's proxy answers a gRPC call it fails itself with HTTP 200, grpc-status in the headers, and the same
        // text in grpc-message and l5d-proxy-error (linkerd2-proxy, linkerd/app/core/src/errors/respond.rs,
        // `SyntheticHttpResponse::grpc_response`): UNAVAILABLE for fail-fast and bad gateways, DEADLINE_EXCEEDED for
        // timeouts, PERMISSION_DENIED for an authorization refusal.
        func linkerd(_ code: String, _ text: String) -> FailureClass {
            classify(200, [("content-type", "application/grpc"), ("grpc-status", code), ("grpc-message", text), ("l5d-proxy-error", text)])
        }
        #expect(linkerd("14", "service in fail-fast") == FailureClass(origin: .proxy, reason: FailureClass.Reason.failFast, proxy: "linkerd"))
        #expect(linkerd("4", "request timed out") == FailureClass(origin: .proxy, reason: FailureClass.Reason.upstreamTimeout, proxy: "linkerd"))
        #expect(linkerd("7", "client 10.0.0.1:40000: server: 10.0.0.2:8080: unauthorized request on route")
                == FailureClass(origin: .proxy, reason: FailureClass.Reason.accessDenied, proxy: "linkerd"))
        // HAProxy's overflow page reaches a gRPC call as HTTP 503 without grpc-status: kept as 503, its signature.
        #expect(classify(503, []).reason == FailureClass.Reason.unrecognised)
        // The application's own status, stamped: named by the status.
        #expect(classify(200, [("grpc-status", "8")], stamped: true) == FailureClass(origin: .application, reason: "RESOURCE_EXHAUSTED"))
    }
}
