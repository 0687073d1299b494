import MeshprobeIdentity
import MeshprobePolicy
import Testing
@testable import MeshprobeChecks
@testable import MeshprobeLoad

/// Each try of an access cell classified by who decided it, and the cell judged only when every try agrees.
@Suite struct AccessObservationTests {
    /// A cell's load: `ok` 200s and `statuses` answered by the stamped workload, `unstamped` answers without its
    /// stamp, failures by class, errors by kind.
    func result(ok: Int = 0, statuses: [Int: Int] = [:], unstamped: [Int: Int] = [:], failures: [FailureClass: Int] = [:],
                errors: [ErrorKind: Int] = [:], explanations: [ErrorKind: String] = [:]) -> LoadResult {
        var r = LoadResult()
        var workload = IdentityStats()
        for (status, n) in statuses.merging([200: ok], uniquingKeysWith: +) where n > 0 {
            r.statusCounts.add(status, n)
            workload.statusCounts.add(status, n)
            workload.requests += n
        }
        if workload.requests > 0 { r.identities[WorkloadIdentity(workload: "reviews", version: "v1")] = workload }
        var other = IdentityStats()
        for (status, n) in unstamped {
            r.statusCounts.add(status, n)
            other.statusCounts.add(status, n)
            other.requests += n
        }
        if other.requests > 0 { r.identities[WorkloadIdentity(identity: "spiffe://lab/ns/a/sa/proxy")] = other }
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
        let o = AccessObservation(result(ok: 1, statuses: [404: 1], failures: [rbac: 2, FailureClass(origin: .application, reason: "404"): 1],
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
        // Every try inconclusive: said as such.
        #expect(AccessCheck.judge(cell, AccessObservation(result(errors: [.requestTimeout: 3]))).reason == "undecided: no try decided (3 inconclusive (request_timeout))")
        // A proxy's 5xx is not a denial.
        let unavailable = AccessObservation(result(failures: [FailureClass(origin: .proxy, reason: FailureClass.Reason.noHealthyUpstream, proxy: "envoy"): 3]))
        #expect(unavailable.decision == nil)
        // This prober refusing the server decides nothing about the server's policy.
        #expect(AccessObservation(result(errors: [.tlsWrongSPIFFEID: 3])).decision == nil)
    }

    /// From a target that stamps its answers, a redirect without the workload's stamp is a proxy's (an auth proxy
    /// denies so), and a 2xx without it decides nothing; from a target that never stamps, both are its answers.
    @Test func unstampedAnswersAreJudgedByWhetherTheTargetStamps() {
        let redirect = AccessObservation(result(unstamped: [302: 3]), stampsExpected: true)
        #expect(redirect.decision == .deny)
        #expect(redirect.tries == [.init(kind: .deniedL7, origin: "a redirect (302) without the workload's stamp", count: 3)])
        #expect(AccessObservation(result(unstamped: [200: 3]), stampsExpected: true).decision == nil)
        #expect(AccessObservation(result(unstamped: [302: 3]), stampsExpected: false).decision == .allow)
        #expect(AccessObservation(result(unstamped: [200: 3]), stampsExpected: false).decision == .allow)
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
