import Foundation
import MeshprobeYAML
import Testing
@testable import MeshprobePolicy

/// `expect.access` and `identities`: the matrix to try, the rules that decide its cells, and what is refused.
@Suite struct AccessExpectationTests {
    let frontend = "spiffe://lab.test/ns/web/sa/frontend"
    let batch = "spiffe://lab.test/ns/jobs/sa/batch"

    func policy(_ access: String, identities: String? = nil) throws -> Policy {
        let path = try writeTemporaryYAML("""
            policy: meshprobe.policy/v1
            target: https://127.0.0.1:8443/
            identity: {svidDir: svids/prober}
            \(identities ?? "identities:\n  \(frontend): {svidDir: svids/frontend}\n  \(batch): {cert: b.pem, key: b-key.pem}\n  foreign: {svidDir: svids/other}")
            expect:
              access:
            \(access)
            """)
        defer { removeTemporary(path) }
        return try Policy.load(path: path, environment: [:])
    }

    @Test func theMatrixIsCallersByRequestsWithTheRulesDecisions() throws {
        let p = try policy("""
                attempts: 5
                callers: [\(frontend), anonymous, plaintext]
                requests: [{path: /reviews/1}, {method: post, path: /admin, headers: {X-User: a}}]
                rules:
                  - {callers: \(frontend), requests: {path: /reviews/1}, expect: allow}
                  - {callers: [\(frontend), anonymous, plaintext, foreign], requests: [{method: POST, path: /admin, headers: {x-user: a}}], expect: deny}
                  - {callers: [anonymous, plaintext, \(batch)], requests: [{path: /reviews/1}], expect: deny}
            """.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
        let access = try #require(p.access)
        #expect(access.attempts == 5)
        // 3 callers x 2 requests, then foreign's and the batch's cells from the rules.
        #expect(access.cells.count == 8)
        let get = AccessRequest(method: "GET", path: "/reviews/1")
        let admin = AccessRequest(method: "POST", path: "/admin", headers: ["x-user": "a"])
        func decision(_ caller: AccessCaller, _ request: AccessRequest) -> AccessDecision? {
            access.cells.first { $0.caller == caller && $0.request == request }?.expected
        }
        #expect(decision(.spiffe(frontend), get) == .allow)
        #expect(decision(.spiffe(frontend), admin) == .deny, "method and header names are normalised")
        #expect(decision(.foreign, admin) == .deny)
        #expect(decision(.spiffe(batch), get) == .deny)
        #expect(access.callers == [.spiffe(batch), .spiffe(frontend), .foreign, .anonymous, .plaintext])
        #expect(admin.description == "POST /admin [x-user: a]")
        #expect(p.identities.map(\.caller) == [.spiffe(frontend), .spiffe(batch), .foreign])
        #expect(p.identities[0].tls.svidDir?.hasSuffix("/svids/frontend") == true, "relative to the policy's directory")
    }

    @Test func aCellDeclaredBothWaysIsRefusedAtTheSecondRule() throws {
        let error = try #require(try inputError(policy: """
            target: https://127.0.0.1:8443/
            identity: {ca: ca.pem}
            expect:
              access:
                rules:
                  - {callers: [anonymous], requests: [{path: /a}], expect: deny}
                  - {callers: [anonymous, plaintext], requests: [{path: /a}], expect: allow}
            """))
        #expect(error.line == 7 && error.field == "expect.access.rules[1]", "\(error)")
        #expect(error.message.hasPrefix("anonymous -> GET /a is declared deny at "), "\(error)")
    }

    @Test func rulesDecideAndTheirCellsJoinTheMatrix() throws {
        let p = try policy("""
                callers: [\(frontend), anonymous]
                requests: [{path: /reviews/1}]
                rules:
                  - {callers: [\(frontend)], requests: [{path: /reviews/1}], expect: allow}
                  - {callers: [anonymous, plaintext], requests: [{path: /reviews/1}], expect: deny}
            """.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
        let access = try #require(p.access)
        let cells = access.cells.map { "\($0.caller) \($0.request) \($0.expected?.rawValue ?? "-")" }
        #expect(cells == ["\(frontend) GET /reviews/1 allow", "anonymous GET /reviews/1 deny", "plaintext GET /reviews/1 deny"])
        #expect(access.callers == [.spiffe(frontend), .anonymous, .plaintext])
        #expect(access.cells[0].name == "access: \(frontend) -> GET /reviews/1")
        #expect(access.cells[0].source.hasSuffix(" expect.access.rules[0]"))
    }

    @Test func openCellsNeedManifestsOrRules() throws {
        let error = try #require(try inputError(policy: """
            target: https://127.0.0.1:8443/
            identity: {ca: ca.pem}
            expect:
              access:
                callers: [anonymous, plaintext]
                requests: [{path: /a}]
                rules:
                  - {callers: [anonymous], requests: [{path: /a}], expect: deny}
            """))
        #expect(error.field == "expect.access", "\(error)")
        #expect(error.message.hasPrefix("1 cell of the matrix have no decision (plaintext -> GET /a): add rules for them, or give the mesh's authorization manifests"), "\(error)")
    }

    @Test func mistakesAreNamed() throws {
        let cases: [(String, String)] = [
            ("      rules: [{callers: [nobody], requests: [{path: /a}], expect: deny}]", "'nobody': a caller is a SPIFFE ID (spiffe://TRUST_DOMAIN/PATH), anonymous, plaintext or foreign"),
            ("      rules: [{callers: [foreign], requests: [{path: /a}], expect: deny}]", "foreign needs identities.foreign: {svidDir: DIR} (an SVID of another trust domain)"),
            ("      rules: [{callers: [anonymous], requests: [{path: a}], expect: deny}]", "'a': a path starts with / and has no spaces"),
            ("      rules: [{callers: [anonymous], requests: [{path: /a}], expect: maybe}]", "expected allow or deny, got 'maybe'"),
            ("      rules: [{callers: [anonymous], requests: [{path: /a}]}]", "a rule needs callers, requests and expect"),
            ("      callers: [anonymous]", "callers and requests go together: the matrix to try is every caller with every request"),
            ("      attempts: 50\n      rules: [{callers: [anonymous], requests: [{path: /a}], expect: deny}]", "at most 20 tries per cell"),
        ]
        for (access, message) in cases {
            let error = try inputError(policy: "target: https://127.0.0.1:8443/\nidentity: {ca: ca.pem}\nexpect:\n  access:\n\(access)\n")
            #expect(error?.message == message, "\(access): \(String(describing: error))")
        }
        let identities = try inputError(policy: """
            target: https://127.0.0.1:8443/
            identity: {ca: ca.pem}
            identities:
              anonymous: {svidDir: x}
              spiffe://lab.test/ns/a/sa/b: {svidDir: x, cert: c.pem}
            expect:
              access: {rules: [{callers: [anonymous], requests: [{path: /a}], expect: deny}]}
            """)
        let messages = identities?.all.map(\.message) ?? []
        #expect(messages.contains("'anonymous' holds no SVID: it is a caller of expect.access without an entry here"), "\(messages)")
    }
}
