import Testing
@testable import MeshprobeIdentity

/// The signature table against proxy replies. Envoy and Linkerd do not run in this project's tests: their replies
/// here are built from facts in their documentation (Envoy's response flags and local reply bodies, Linkerd's
/// `l5d-proxy-error` header), not captured from a running proxy. HAProxy's reply is checked for real in
/// `IntegrationTests/ClassificationTests`.
@Suite struct FailureClassTests {
    let table = SignatureTable()

    func classify(_ status: Int, _ headers: [(String, String)] = [], body: String = "", stamped: Bool = false) -> FailureClass {
        table.classify(status: status, headers: headers.map { (name: $0.0, value: $0.1) }, body: body, stamped: stamped)
    }

    @Test func envoyRepliesAreToldApartByHeaderAndBody() {
        typealias R = FailureClass.Reason
        let overflow = classify(503, [("x-envoy-overloaded", "true"), ("server", "envoy")],
                                body: "upstream connect error or disconnect/reset before headers. reset reason: overflow")
        #expect(overflow == FailureClass(origin: .proxy, reason: R.circuitBreakerOverflow, proxy: "envoy", flag: "UO"))
        #expect(overflow.isOverflow)
        #expect(classify(503, body: "no healthy upstream").flag == "UH")
        #expect(classify(504, body: "upstream request timeout").reason == R.upstreamTimeout)
        #expect(classify(503, body: "upstream connect error or disconnect/reset before headers. reset reason: connection failure").flag == "UF")
        #expect(classify(503, body: "upstream connect error or disconnect/reset before headers. reset reason: connection termination").flag == "UC")
        #expect(classify(429, [("x-envoy-ratelimited", "true")]).reason == R.rateLimited)
        #expect(classify(429, body: "local_rate_limited").flag == "RL")
    }

    @Test func linkerdRepliesAreReadFromTheProxyErrorHeader() {
        typealias R = FailureClass.Reason
        #expect(classify(503, [("l5d-proxy-error", "service in fail-fast")]).reason == R.failFast)
        #expect(classify(503, [("l5d-proxy-error", "service unavailable: load shed")]).reason == R.loadShed)
        #expect(classify(504, [("l5d-proxy-error", "request timed out")]).reason == R.upstreamTimeout)
        #expect(classify(502, [("l5d-proxy-error", "connect error: Connection refused (os error 111)")]).reason == R.upstreamConnectionFailure)
        let other = classify(500, [("l5d-proxy-error", "something new")])
        #expect(other.proxy == "linkerd" && other.reason == R.unrecognised)
    }

    @Test func theApplicationStampWinsAndUnstampedRepliesWithoutSignatureAreAProxys() {
        // The echo's 503 (stamped) is the application's even with a body a proxy might send.
        #expect(classify(503, body: "no healthy upstream", stamped: true) == FailureClass(origin: .application, reason: "503"))
        #expect(classify(500) == FailureClass(origin: .proxy, reason: FailureClass.Reason.unrecognised))
        // A target that never stamps: who answered cannot be told.
        #expect(table.classify(status: 500, headers: [], body: "", stamped: false, stampsExpected: false).origin == .unknown)
    }

    @Test func aUsersSignaturesComeFirst() {
        let custom = SignatureTable(extra: [ProxySignature(proxy: "nginx-ingress", reason: "overloaded", status: 503, bodyContains: "nginx")])
        let c = custom.classify(status: 503, headers: [], body: "<center>nginx</center>", stamped: false)
        #expect(c.proxy == "nginx-ingress" && c.reason == "overloaded")
        #expect(custom.classify(status: 503, headers: [], body: "no healthy upstream", stamped: false).proxy == "envoy")
        #expect(custom.headerNames.contains("x-envoy-overloaded") && custom.headerNames.contains("l5d-proxy-error"))
    }
}
