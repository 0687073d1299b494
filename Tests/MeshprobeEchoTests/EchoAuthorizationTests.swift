import MeshprobeEchoAPI
import MeshprobeIdentity
import MeshprobeYAML
import NIOCore
import Testing
@testable import MeshprobeEcho

/// `meshprobe echo --authorize FILE`: an allow list matched as Istio matches an ALLOW policy, and denials answered as
/// Envoy's HTTP RBAC filter answers them.
@Suite struct EchoAuthorizationTests {
    let frontend = "spiffe://lab.test/ns/web/sa/frontend"

    func allowList() throws -> EchoAuthorization {
        try EchoAuthorization.parse("""
            rules:
              - principals: [\(frontend)]
                methods: [get]
                paths: [/reviews/*, /health]
              - principals: ["spiffe://lab.test/ns/ops/*"]
              - paths: [/public*]
            """, file: "allow.yaml")
    }

    @Test func aRequestPassesWhenOneRuleMatchesIt() throws {
        let a = try allowList()
        #expect(a.allows(principal: frontend, method: "GET", path: "/reviews/1?x=1"))
        #expect(a.allows(principal: frontend, method: "GET", path: "/health"))
        #expect(!a.allows(principal: frontend, method: "POST", path: "/reviews/1"))
        #expect(!a.allows(principal: frontend, method: "GET", path: "/healthz"))
        #expect(a.allows(principal: "spiffe://lab.test/ns/ops/sa/tool", method: "DELETE", path: "/admin"))
        #expect(!a.allows(principal: "spiffe://lab.test/ns/web/sa/batch", method: "GET", path: "/reviews/1"))
        // A rule without principals matches any caller, one without a certificate too.
        #expect(a.allows(principal: nil, method: "GET", path: "/public/index.html"))
        #expect(!a.allows(principal: nil, method: "GET", path: "/reviews/1"))
    }

    @Test func aDenialIsEnvoysRBACAnswerWithoutTheWorkloadsStamps() throws {
        var planner = EchoPlanner(identity: EchoIdentity(workload: "reviews", version: "v1", cluster: "", namespace: "", pod: "p"),
                                  limits: .init())
        planner.authorization = try allowList()
        var rng = SystemRandomNumberGenerator()
        let denied = planner.plan(EchoRequest(method: "POST", path: "/reviews/1", headers: [], bodyLength: 0, peerSPIFFEID: frontend),
                                  inFlight: 1, allocator: ByteBufferAllocator(), random: &rng)
        #expect(denied.status == 403)
        #expect(String(buffer: denied.body) == "RBAC: access denied")
        #expect(denied.headers.map(\.name) == ["content-type", "server"])
        #expect(denied.headers.map(\.value) == ["text/plain", "envoy"])
        // meshprobe reads it as Envoy's RBAC denial.
        let failure = SignatureTable().classify(status: denied.status, headers: denied.headers, body: String(buffer: denied.body), stamped: false)
        #expect(failure == FailureClass(origin: .proxy, reason: FailureClass.Reason.accessDenied, proxy: "envoy", flag: "RBAC"))
        let allowed = planner.plan(EchoRequest(method: "GET", path: "/reviews/1", headers: [], bodyLength: 0, peerSPIFFEID: frontend),
                                   inFlight: 1, allocator: ByteBufferAllocator(), random: &rng)
        #expect(allowed.status == 200 && allowed.headers.contains { $0.name == EchoStamp.version && $0.value == "v1" })
    }

    @Test func mistakesAreNamedWithTheirLine() {
        let cases: [(String, String)] = [
            ("rules: [{principals: [frontend]}]", "allow.yaml:1:23: rules[0].principals[0]: 'frontend': a principal is a SPIFFE ID (spiffe://...), PREFIX*, *SUFFIX or *"),
            ("rules: [{paths: [reviews]}]", "allow.yaml:1:18: rules[0].paths[0]: 'reviews': a path starts with / (or is *SUFFIX)"),
            ("rules: [{methods: []}]", "allow.yaml:1:19: rules[0].methods: methods is empty: leave it out to match any"),
            ("allow: []", "allow.yaml:1:1: allow: unknown field; expected one of: rules"),
        ]
        for (text, message) in cases {
            #expect(throws: YAMLInputError.self) { try EchoAuthorization.parse(text, file: "allow.yaml") }
            do { _ = try EchoAuthorization.parse(text, file: "allow.yaml") } catch { #expect(error.description == message, "\(text)") }
        }
    }
}
