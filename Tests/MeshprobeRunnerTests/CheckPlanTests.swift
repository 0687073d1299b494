import Foundation
import MeshprobeLoad
import MeshprobePolicy
import Testing
@testable import MeshprobeRunner

/// What `--check` prints: the identity's files named as not read, the checks a policy declares, the fields the
/// command line changed marked.
@Suite struct CheckPlanTests {
    @Test func aPolicysPlanNamesTheIdentityUnreadAndEveryCheck() throws {
        let policy = try loadPolicy("""
            identity: {svidDir: /var/run/secrets/nowhere, trustBundles: {east.example: /nowhere/east.pem}}
            expect:
              routes:
                - {name: jason, match: {headers: {end-user: jason}}, split: {v2: 100}}
                - {name: rest, split: {v1: 90, v2: 10}}
              mtls: required
              slo: {successRate: 0.99, p99: 250ms}
              clusters: {reach: [east]}
            """)
        let lines = CheckPlan.lines(policy: policy, manifests: [], configuration: LoadConfiguration(plan: policy.scenario.plan))
        #expect(lines.contains("  identity: svidDir /var/run/secrets/nowhere, trustBundles east.example=/nowhere/east.pem (not read: --check)"), "\(lines)")
        #expect(lines.contains("    split 'jason' (header end-user = jason): v2 100") && lines.contains("    split 'rest': v1 90, v2 10"), "\(lines)")
        #expect(lines.contains("    mTLS: every response's caller is the prober's own SPIFFE ID"), "\(lines)")
        #expect(lines.contains("    SLO: success rate >= 0.99; p99 <= 250 ms") && lines.contains("    clusters: reach east"), "\(lines)")
        #expect(!lines.joined().contains("(from "), "\(lines)")
    }
}
