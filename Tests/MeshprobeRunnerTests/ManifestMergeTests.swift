import Foundation
import MeshprobePolicy
import MeshprobeStatistics
import Testing
@testable import MeshprobeRunner

/// The rules that make one policy of a policy file and the manifests given with it, on in-memory imports.
@Suite struct ManifestMergeTests {
    /// A policy file whose routes come from manifests (`verify FILE MANIFEST...`), with `expect` as given.
    func policy(expect: String) throws -> Policy {
        try loadPolicy("expect:\n\(expect)", routesElsewhere: true)
    }

    func route(_ name: String, _ weights: [String: Double]) -> SplitExpectation {
        SplitExpectation(name: name, weights: weights, recognizer: .version, statistics: SplitTestConfiguration())
    }

    @Test func importedRoutesReplaceThePolicysAndTakeItsMappingAndRouting() throws {
        var policy = try policy(expect: "  map: {reviews-blue: v1, reviews-green: v2}\n  routing: per-request")
        var imported = ImportedRoutes()
        imported.routes = [route("default", ["v1": 90, "v2": 10])]
        var notes: [String] = []
        try ManifestMerge.merge(imported, into: &policy, manifests: ["vs.yaml"]) { notes.append($0) }
        #expect(policy.routes.map(\.name) == ["default"])
        #expect(policy.routes[0].mapping == ["reviews-blue": "v1", "reviews-green": "v2"])
        #expect(policy.routes[0].routing == .perRequest)
        #expect(notes.isEmpty)
    }

    @Test func resilienceSettingsAreAddedToThePolicysOwnAndTheImportersNotesComeFirst() throws {
        var policy = try policy(expect: "  circuitBreaker: {maxRequests: 4}")
        #expect(policy.circuitBreakers.count == 1)
        var imported = ImportedRoutes()
        imported.notes = ["vs.yaml: ignored kind Service"]
        imported.circuitBreakers = [CircuitBreakerExpectation(maxRequests: 10, maxPending: 2, source: "dr.yaml: reviews")]
        imported.connectionReuse = [ConnectionReuseExpectation(maxRequestsPerConnection: 5, source: "dr.yaml: reviews")]
        imported.maxRetries = [(limit: 3, source: "dr.yaml: reviews")]
        imported.retries = [RetryExpectation(attempts: 2, source: "vs.yaml: reviews")]
        imported.outlierDetections = [OutlierExpectation(consecutiveErrors: 5, source: "dr.yaml: reviews")]
        var notes: [String] = []
        try ManifestMerge.merge(imported, into: &policy, manifests: ["vs.yaml", "dr.yaml"]) { notes.append($0) }
        #expect(policy.circuitBreakers.map(\.maxRequests) == [4, 10])
        #expect(policy.connectionReuse.map(\.maxRequestsPerConnection) == [5])
        #expect(policy.maxRetries.map(\.limit) == [3])
        #expect(policy.retries.map(\.attempts) == [2])
        // No faultTargets in the policy: the declared outlier detection is named as not verified, after the import's notes.
        #expect(policy.outlierDetections.isEmpty)
        #expect(notes.count == 2)
        #expect(notes.first == "vs.yaml: ignored kind Service")
        #expect(notes.last?.hasPrefix("dr.yaml: reviews: outlier detection is not verified") == true)
        #expect(policy.routes.isEmpty)
    }

    @Test func outlierDetectionTakesThePolicysFaultTargetsAndRate() throws {
        var policy = try policy(expect: "  outlierDetection: {faultTargets: [https://127.0.0.1:9001, https://127.0.0.1:9002], rate: 50}")
        var imported = ImportedRoutes()
        imported.outlierDetections = [OutlierExpectation(consecutiveErrors: 5, source: "dr.yaml: reviews")]
        try ManifestMerge.merge(imported, into: &policy, manifests: ["dr.yaml"]) { Issue.record("unexpected note: \($0)") }
        #expect(policy.outlierDetections.count == 1)
        #expect(policy.outlierDetections[0].consecutiveErrors == 5)
        #expect(policy.outlierDetections[0].faultTargets == ["https://127.0.0.1:9001", "https://127.0.0.1:9002"])
        #expect(policy.outlierDetections[0].rate == 50)
    }

    @Test func manifestsWithNothingToCheckAreBadInputNamingThem() throws {
        var policy = try policy(expect: "  map: {reviews-blue: v1}")
        var imported = ImportedRoutes()
        // An outlier detection that cannot be verified does not count as something to check.
        imported.outlierDetections = [OutlierExpectation(consecutiveErrors: 5, source: "dr.yaml: reviews")]
        do {
            try ManifestMerge.merge(imported, into: &policy, manifests: ["a.yaml", "b.yaml"]) { _ in }
            Issue.record("merged nothing to check")
        } catch {
            #expect(error.exitCode == 2)
            #expect(error.message == "nothing to check in a.yaml, b.yaml: no http route, connection pool, outlier detection or retries")
        }
    }

    @Test func accessCellsTheRulesLeaveOpenAreDecidedByTheAuthorizationManifestsAndNothingElseIsNeeded() throws {
        var policy = try loadPolicy("""
            service: reviews.bookinfo
            expect:
              access:
                callers: [plaintext]
                requests: [{path: /reviews/1}, {method: POST, path: /admin/x}]
                rules: [{callers: [plaintext], requests: [{path: /reviews/1}], expect: deny}]
            """, routesElsewhere: true)
        let manifest = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-authz-\(UUID().uuidString).yaml").path
        try """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: no-admin-writes, namespace: bookinfo}
            spec:
              action: DENY
              rules: [{to: [{operation: {methods: [POST], paths: ["/admin*"]}}]}]
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: allow-all, namespace: bookinfo}
            spec: {rules: [{}]}
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: ratings, namespace: bookinfo}
            spec: {selector: {matchLabels: {app: ratings}}}
            """.write(toFile: manifest, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: manifest) }
        var notes: [String] = []
        // No route, pool or retry in the manifests: the access matrix is enough to check.
        try ManifestMerge.importManifests([manifest], into: &policy, policyFile: "policy.yaml") { notes.append($0) }
        let access = try #require(policy.access)
        try access.checkDecided()
        // The rule's cell keeps the rule's decision; the open one takes the DENY policy's, with its place.
        #expect(access.cells.map(\.expected) == [.deny, .deny])
        #expect(access.cells[0].source.contains("expect.access.rules[0]"), "\(access.cells[0].source)")
        #expect(access.cells[1].source == "\(manifest):1 AuthorizationPolicy bookinfo/no-admin-writes: a DENY rule matches", "\(access.cells[1].source)")
        #expect(notes.contains { $0.contains("not checked: AuthorizationPolicy bookinfo/ratings: selector app=ratings does not select the target reviews") }, "\(notes)")
        #expect(!notes.contains { $0.contains("no VirtualService, HTTPRoute or GRPCRoute found") }, "\(notes)")

        // The same manifests for a policy without expect.access: each is named as not checked.
        var plain = try self.policy(expect: "  map: {reviews-blue: v1}")
        notes = []
        #expect(throws: ExitError.self) {
            try ManifestMerge.importManifests([manifest], into: &plain, policyFile: "policy.yaml") { notes.append($0) }
        }
        #expect(notes.filter { $0.hasSuffix("the policy declares no expect.access") }.count == 3, "\(notes)")
    }

    @Test func skippingTheProceduresLeavesTheRoutesAndNamesEachProcedure() throws {
        var policy = try policy(expect: "  circuitBreaker: {maxRequests: 4}")
        var imported = ImportedRoutes()
        imported.routes = [route("default", ["v1": 100])]
        imported.retries = [RetryExpectation(attempts: 2, source: "vs.yaml: reviews")]
        try ManifestMerge.merge(imported, into: &policy, manifests: ["vs.yaml"]) { _ in }
        let notes = ManifestMerge.skipProcedures(&policy)
        #expect(policy.circuitBreakers.isEmpty && policy.retries.isEmpty)
        #expect(policy.routes.count == 1)
        #expect(notes.count == 2)
        #expect(notes.allSatisfy { $0.hasPrefix("not checked (--routes-only): ") })
        #expect(notes.last == "not checked (--routes-only): vs.yaml: reviews: retries and timeouts")
    }
}
