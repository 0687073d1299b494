import Foundation
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobePolicy
import MeshprobeScenario
import MeshprobeSpec
import MeshprobeYAML
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
        let lines = CheckPlan.lines(policy: policy, manifests: [], configuration: LoadConfiguration(plan: policy.scenario.plan),
                                    outputs: CheckPlan.Outputs(ReportOutputs(), json: nil, pushgateway: nil))
        #expect(lines.contains("  identity: svidDir /var/run/secrets/nowhere, trustBundles east.example=/nowhere/east.pem (not read: --check)"), "\(lines)")
        #expect(lines.contains("    split 'jason' (header end-user = jason): v2 100") && lines.contains("    split 'rest': v1 90, v2 10"), "\(lines)")
        #expect(lines.contains("    mTLS: every response's caller is the prober's own SPIFFE ID"), "\(lines)")
        #expect(lines.contains("    SLO: success rate >= 0.99; p99 <= 250 ms") && lines.contains("    clusters: reach east"), "\(lines)")
        #expect(!lines.joined().contains("(from "), "\(lines)")
        #expect(lines.contains("  outputs: none (the results are only printed)") && !lines.contains { $0.hasPrefix("  other changes") }, "\(lines)")
    }

    /// Each field a change reached is marked with that change's source, and only it: a route by its index, an SLO
    /// objective by its percentile, a declared procedure by its field; a change the plan shows nowhere is listed last.
    @Test func eachChangedFieldIsMarkedWithItsOwnSource() throws {
        let sets = ["expect.routes[1].split.v2=20", "expect.routes[1].split.v1=80", "expect.slo.p99=300ms", "expect.circuitBreaker.maxRequests=20",
                    "expect.missRate=0.02", "load.streams=3", "load.duration=20s", "expect.routing=per-connection"]
        let overrides = FileOverrides(svidDir: "/lab/prober", assignments: try sets.map { text throws(InputValueError) in try YAMLOverride(assignment: text) })
        let policy = try loadPolicy("""
            identity: {svidDir: /var/run/secrets/nowhere}
            expect:
              routes:
                - {name: jason, match: {headers: {end-user: jason}}, split: {v2: 100}}
                - {name: rest, split: {v1: 90, v2: 10}}
              slo: {successRate: 0.99, p99: 250ms}
              circuitBreaker: {maxRequests: 10}
            """, overrides: overrides)
        let outputs = CheckPlan.Outputs(ReportOutputs(junit: "-", html: "report.html", metricsListen: try HostPort(parsing: "127.0.0.1:9090")),
                                        json: "verdict.json", pushgateway: "http://pushgateway:9091")
        let lines = CheckPlan.lines(policy: policy, manifests: [], configuration: LoadConfiguration(plan: policy.scenario.plan), outputs: outputs)
        let text = lines.joined(separator: "\n")
        #expect(lines.contains("  identity: svidDir /lab/prober (from --svid-dir /lab/prober) (not read: --check)"), "\(text)")
        #expect(lines.contains("  load: closed: 1 connection x 3 streams (from --set load.streams=3); for 20s (from --set load.duration=20s)"), "\(text)")
        #expect(lines.contains("    split 'jason' (header end-user = jason): v2 100"), "\(text)")
        #expect(lines.contains("    split 'rest': v1 80, v2 20 (from --set expect.routes[1].split.v2=20, --set expect.routes[1].split.v1=80)"), "\(text)")
        #expect(lines.contains("    SLO: success rate >= 0.99; p99 <= 300 ms (from --set expect.slo.p99=300ms)"), "\(text)")
        #expect(lines.contains { $0.hasPrefix("    circuit breaker at 20 in flight (") && $0.hasSuffix(" expect.circuitBreaker) (from --set expect.circuitBreaker.maxRequests=20)") },
                "\(text)")
        #expect(text.contains("miss <= 0.02 (from --set expect.missRate=0.02)):"), "\(text)")
        #expect(lines.contains("  outputs: JSON to verdict.json, JUnit to standard output, HTML to report.html, live metrics at "
                               + "http://127.0.0.1:9090/metrics, metrics pushed to http://pushgateway:9091 (not written, served or pushed: --check)"), "\(text)")
        #expect(lines.last == "  other changes (not shown above): --set expect.routing=per-connection", "\(text)")
    }

    @Test func aPolicysPlanListsEveryAccessCellWithItsDecisionAndSourceOrWhyItIsNotChecked() throws {
        var policy = try loadPolicy("""
            expect:
              access:
                callers: [plaintext, anonymous]
                requests: [{path: /a}, {method: POST, path: /b}]
                rules: [{callers: [plaintext, anonymous], requests: [{path: /a}], expect: allow}]
            """, routesElsewhere: true)
        var access = try #require(policy.access)
        for i in access.cells.indices where access.cells[i].expected == nil {
            if access.cells[i].caller == .plaintext {
                (access.cells[i].expected, access.cells[i].source) = (.deny, "mesh.yaml:4 PeerAuthentication ns/default (STRICT): STRICT refuses plaintext")
            } else {
                access.cells[i].notChecked = "mesh.yaml:9 AuthorizationPolicy ns/ext: CUSTOM: the provider opa decides this request"
            }
        }
        access.notChecked = ["mesh.yaml:20 AuthorizationPolicy ns/audit: AUDIT marks requests for logging and decides nothing"]
        policy.access = access
        let lines = CheckPlan.lines(policy: policy, manifests: ["mesh.yaml"], configuration: LoadConfiguration(plan: policy.scenario.plan),
                                    outputs: CheckPlan.Outputs(ReportOutputs(), json: nil, pushgateway: nil))
        let first = try #require(lines.firstIndex { $0.hasPrefix("    access (4 cells, 3 tries each on fresh connections;") }, "\(lines)")
        // Matrix order: anonymous before plaintext, requests by name.
        #expect(Array(lines[(first + 1)...(first + 5)]) == [
            "      anonymous -> GET /a: allow (\(policy.file):7 expect.access.rules[0])",
            "      anonymous -> POST /b: not checked: mesh.yaml:9 AuthorizationPolicy ns/ext: CUSTOM: the provider opa decides this request",
            "      plaintext -> GET /a: allow (\(policy.file):7 expect.access.rules[0])",
            "      plaintext -> POST /b: deny (mesh.yaml:4 PeerAuthentication ns/default (STRICT): STRICT refuses plaintext)",
            "      not checked in the manifests: mesh.yaml:20 AuthorizationPolicy ns/audit: AUDIT marks requests for logging and decides nothing",
        ], "\(lines)")
    }

    /// A SPIFFE caller that `identities` does not give must be the identity section's own, which `--check` cannot read:
    /// the plan says so (a fresh-eyes trial's policy passed --check and was refused by the run).
    @Test func theAccessPlanNamesASPIFFECallerThatIdentitiesDoNotGive() throws {
        let policy = try loadPolicy("""
            identities:
              spiffe://lab.test/ns/web/sa/frontend: {svidDir: ./frontend}
            expect:
              access:
                rules: [{callers: [spiffe://lab.test/ns/web/sa/frontend, spiffe://lab.test/ns/web/sa/payments], requests: [{path: /a}], expect: deny}]
            """, routesElsewhere: false)
        let lines = CheckPlan.lines(policy: policy, manifests: [], configuration: LoadConfiguration(plan: policy.scenario.plan),
                                    outputs: CheckPlan.Outputs(ReportOutputs(), json: nil, pushgateway: nil))
        let notes = lines.filter { $0.hasPrefix("      note: ") }
        #expect(notes == ["      note: spiffe://lab.test/ns/web/sa/payments is not in identities: the run needs it to be the identity "
                          + "section's own SPIFFE ID (its certificate is not read: --check), else it refuses the cell (exit 2)"], "\(lines)")
    }

    /// With the Workload API the identity section's own SPIFFE ID is the SVID it picks: that caller needs no note,
    /// another of the agent's SVIDs is named as refused (the second trial of issue 20: it passed --check); without a
    /// pick, the note says the default SVID, which only the agent knows.
    @Test func theAccessPlanNamesTheWorkloadAPISVIDACallerMustBe() throws {
        let picked = """
            identity: {workloadApi: unix:///run/spire/agent.sock, workloadApiSvid: spiffe://lab.test/ns/web/sa/prober}
            expect:
              access:
                rules: [{callers: [spiffe://lab.test/ns/web/sa/prober, spiffe://lab.test/ns/web/sa/batch], requests: [{path: /a}], expect: deny}]
            """
        func notes(_ body: String) throws -> [String] {
            let policy = try loadPolicy(body, routesElsewhere: false)
            return CheckPlan.lines(policy: policy, manifests: [], configuration: LoadConfiguration(plan: policy.scenario.plan),
                                   outputs: CheckPlan.Outputs(ReportOutputs(), json: nil, pushgateway: nil)).filter { $0.hasPrefix("      note: ") }
        }
        #expect(try notes(picked) == ["      note: spiffe://lab.test/ns/web/sa/batch is not in identities: the run needs it to be the Workload API "
                                      + "SVID the identity section picks (spiffe://lab.test/ns/web/sa/prober), not another the agent offers, "
                                      + "else it refuses the cell (exit 2)"])
        let byDefault = picked.replacingOccurrences(of: ", workloadApiSvid: spiffe://lab.test/ns/web/sa/prober", with: "")
        #expect(try notes(byDefault).count == 2)
        #expect(try notes(byDefault).allSatisfy { $0.contains("the run needs it to be the Workload API's default SVID (not called: --check), not another the agent offers,") })
    }
}
