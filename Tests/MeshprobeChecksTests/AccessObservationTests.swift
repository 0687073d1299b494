import MeshprobeIdentity
import MeshprobePolicy
import Testing
@testable import MeshprobeChecks
@testable import MeshprobeLoad

/// Each try of an access cell classified by who decided it, and the cell judged only when every try agrees.
@Suite struct AccessObservationTests {
    func result(ok: Int = 0, failures: [FailureClass: Int] = [:], errors: [ErrorKind: Int] = [:],
                explanations: [ErrorKind: String] = [:]) -> LoadResult {
        var r = LoadResult()
        if ok > 0 {
            r.statusCounts.add(200, ok)
            r.identities[WorkloadIdentity(workload: "reviews", version: "v1")] = IdentityStats()
        }
        for (failure, n) in failures {
            var stats = FailureStats()
            stats.count = n
            r.failedResponses[failure] = stats
        }
        r.errors = errors
        r.errorExplanations = explanations
        return r
    }

    let cell = AccessCell(caller: .anonymous, request: AccessRequest(path: "/a"), expected: .deny, source: "p.yaml:9 expect.access.rules[0]")

    @Test func triesAreClassifiedByWhoDecided() {
        let rbac = FailureClass(origin: .proxy, reason: FailureClass.Reason.accessDenied, proxy: "envoy", flag: "RBAC")
        let o = AccessObservation(result(ok: 1, failures: [rbac: 2, FailureClass(origin: .application, reason: "404"): 1],
                                         errors: [.tlsPeerRejectedCertificate: 1, .connectionLost: 1, .requestTimeout: 1, .wrongScheme: 1],
                                         explanations: [.tlsPeerRejectedCertificate: "the server rejected our client certificate: alert 'certificate required'"]))
        let byKind = Dictionary(o.tries.map { ($0.kind, $0.count) }, uniquingKeysWith: +)
        #expect(byKind == [.allowed: 2, .deniedL7: 2, .refusedTLS: 2, .reset: 1, .inconclusive: 1])
        #expect(o.tries.contains(.init(kind: .deniedL7, origin: "envoy denial (RBAC)", count: 2)))
        #expect(o.tries.contains(.init(kind: .refusedTLS, origin: "TLS alert 'certificate required'", count: 1)))
        #expect(o.tries.contains(.init(kind: .refusedTLS, origin: "the port answered in TLS: plaintext refused", count: 1)))
        #expect(o.tries.contains(.init(kind: .allowed, origin: "the workload answered 404", count: 1)), "the mesh let it through")
        #expect(o.decision == nil, "mixed tries decide nothing")
    }

    @Test func aCellIsDecidedOnlyWhenEveryTryAgrees() {
        let denied = AccessObservation(result(errors: [.tlsPeerRejectedCertificate: 3]))
        #expect(denied.decision == .deny)
        #expect(AccessCheck.judge(cell, denied) == (true, true, nil))
        let allowed = AccessObservation(result(ok: 3))
        let contradicted = AccessCheck.judge(cell, allowed)
        #expect(contradicted.passed == false && contradicted.decided)
        #expect(contradicted.reason == "declared deny, but allowed: 3 allowed (the workload answered 200)")
        // One timeout among denials: not read as a decision.
        let flaky = AccessObservation(result(errors: [.tlsPeerRejectedCertificate: 2, .requestTimeout: 1]))
        let undecided = AccessCheck.judge(cell, flaky)
        #expect(!undecided.decided && !undecided.passed)
        #expect(undecided.reason?.hasPrefix("undecided: the tries do not show one decision (2 refused_tls") == true, "\(undecided)")
        // A proxy's 5xx is not a denial.
        let unavailable = AccessObservation(result(failures: [FailureClass(origin: .proxy, reason: FailureClass.Reason.noHealthyUpstream, proxy: "envoy"): 3]))
        #expect(unavailable.decision == nil)
        // This prober refusing the server decides nothing about the server's policy.
        #expect(AccessObservation(result(errors: [.tlsWrongSPIFFEID: 3])).decision == nil)
    }

    @Test func anUnidentifiedProxysDenialIsADenial() {
        let table = SignatureTableWithDenials.table
        let failure = table.classify(status: 403, headers: [], body: "forbidden", stamped: false)
        #expect(failure.reason == FailureClass.Reason.accessDenied && failure.proxy == "unidentified proxy")
        // The workload's own 403 (stamped) is the workload answering: allowed by the mesh.
        #expect(table.classify(status: 403, headers: [], body: "", stamped: true).origin == .application)
    }
}

private enum SignatureTableWithDenials {
    static var table: SignatureTable {
        var t = SignatureTable()
        t.signatures += AccessCheck.unidentifiedDenials
        return t
    }
}
