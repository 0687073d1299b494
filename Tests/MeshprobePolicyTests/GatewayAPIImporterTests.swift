import Foundation
import MeshprobeStatistics
import MeshprobeYAML
import Testing
@testable import MeshprobePolicy

@Suite struct GatewayAPIImporterTests {
    var fixture: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/gateway-api/reviews.yaml").path
    }

    @Test func rulesBecomeRoutesMatchedRulesFirstWithRelativeWeightsAndWeightZero() throws {
        let imported = try ManifestImporter.importRoutes(files: [fixture], recognizer: .workload, statistics: .init())
        #expect(imported.routes.map(\.name) == ["jason", "canary"])
        #expect(imported.routes[0].matchHeaders.map(\.name) == ["end-user"])
        #expect(imported.routes[0].weights == ["reviews-v2": 100])
        #expect(imported.routes[1].weights == ["reviews-v1": 90, "reviews-v2": 10, "reviews-v3": 0])
    }

    @Test func grpcRouteMethodMatchesBecomePathConditions() throws {
        let path = try writeTemporaryYAML("""
            apiVersion: gateway.networking.k8s.io/v1
            kind: GRPCRoute
            metadata: {name: g}
            spec:
              rules:
              - name: exact
                matches: [{method: {service: shop.v1.Cart, method: Add}, headers: [{name: x-tier, value: gold}]}]
                backendRefs: [{name: cart-v2}]
              - name: service
                matches: [{method: {service: shop.v1.Orders}}]
                backendRefs: [{name: orders-v2}]
              - name: method only
                matches: [{method: {method: Get}}]
                backendRefs: [{name: any-v2}]
              - name: literal regex
                matches: [{method: {type: RegularExpression, service: Cart, method: Remove}}]
                backendRefs: [{name: cart-v3}]
              - name: regex with dots
                matches: [{method: {type: RegularExpression, service: shop.v1.Cart, method: Remove}}]
                backendRefs: [{name: cart-v3}]
              - backendRefs: [{name: cart-v1, weight: 9}, {name: cart-v2, weight: 1}]
            """)
        defer { removeTemporary(path) }
        let imported = try ManifestImporter.importRoutes(files: [path], recognizer: .workload, statistics: .init())
        #expect(imported.routes.map(\.name) == ["exact", "service", "literal regex", "g rules[5]"])
        #expect(imported.routes[0].conditions.map(\.match) == [.exact("/shop.v1.Cart/Add"), .exact("gold")])
        #expect(imported.routes[0].matchPath == "/shop.v1.Cart/Add" && imported.routes[0].matchHeaders.map(\.name) == ["x-tier"])
        #expect(imported.routes[1].conditions.first?.match == .prefix("/shop.v1.Orders/"))
        #expect(imported.routes[2].matchPath == "/Cart/Remove")
        #expect(imported.routes[3].weights == ["cart-v1": 90, "cart-v2": 10])
        // The method alone names no service to call: noted, not checked.
        #expect(imported.notes.contains { $0.contains("method only") && $0.contains("gRPC method regex needs an example value") }, "\(imported.notes)")
        // A regex whose dots match any character spells no one method.
        #expect(imported.notes.contains { $0.contains("regex with dots") }, "\(imported.notes)")
    }

    @Test func relativeWeightsAreNormalised() throws {
        let path = try writeTemporaryYAML("""
            apiVersion: gateway.networking.k8s.io/v1
            kind: HTTPRoute
            metadata: {name: r}
            spec:
              rules:
              - backendRefs:
                - {name: a, weight: 3}
                - {name: b, weight: 1}
            """)
        defer { removeTemporary(path) }
        let imported = try ManifestImporter.importRoutes(files: [path], recognizer: .workload, statistics: .init())
        #expect(imported.routes.first?.weights == ["a": 75, "b": 25])
    }

    @Test func regexMatchesAreExercisedWhenTheySpellALiteralAndNotedOtherwise() throws {
        let path = try writeTemporaryYAML("""
            apiVersion: gateway.networking.k8s.io/v1
            kind: HTTPRoute
            metadata: {name: r}
            spec:
              rules:
              - name: versioned
                matches:
                - path: {type: RegularExpression, value: "/v[0-9]+"}
                backendRefs:
                - {name: a}
              - name: literal
                matches:
                - path: {type: RegularExpression, value: "^/api/v3$"}
                  headers: [{type: RegularExpression, name: X-Group, value: 'beta\\.users'}]
                  method: POST
                backendRefs:
                - {name: b}
              - name: unknown
                matches:
                - path: {type: Glob, value: "/x"}
                backendRefs:
                - {name: c}
            """)
        defer { removeTemporary(path) }
        #expect {
            try ManifestImporter.importRoutes(files: [path], recognizer: .workload, statistics: .init())
        } throws: { error in
            guard let e = error as? YAMLInputError else { return false }
            return e.line == 20 && e.message.contains("Glob")
        }
        try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: "Glob", with: "Exact")
            .write(toFile: path, atomically: true, encoding: .utf8)
        let imported = try ManifestImporter.importRoutes(files: [path], recognizer: .workload, statistics: .init())
        #expect(imported.routes.map(\.name) == ["literal", "unknown"])
        #expect(imported.routes[0].matchPath == "/api/v3")
        #expect(imported.routes[0].matchHeaders.map(\.value) == ["beta.users"])
        #expect(imported.routes[0].matchMethod == "POST")
        #expect(imported.notes.contains { $0.contains("versioned: not checked: the path regex needs an example value") }, "\(imported.notes)")
    }
}

@Suite struct LinkerdAnnotationTests {
    @Test func retryAndTimeoutAnnotationsAreRecordedNotDropped() throws {
        // Linkerd's documented annotations for retries and timeouts on a Service, beside a policy.linkerd.io HTTPRoute.
        let path = try writeTemporaryYAML("""
            apiVersion: v1
            kind: Service
            metadata:
              name: reviews
              annotations:
                retry.linkerd.io/http: 5xx
                retry.linkerd.io/limit: "2"
                timeout.linkerd.io/request: 500ms
            spec:
              ports: [{port: 9080}]
            ---
            apiVersion: policy.linkerd.io/v1beta3
            kind: HTTPRoute
            metadata: {name: reviews}
            spec:
              rules:
              - backendRefs:
                - {name: reviews-v1, weight: 80}
                - {name: reviews-v2, weight: 20}
            """)
        defer { removeTemporary(path) }
        let imported = try ManifestImporter.importRoutes(files: [path], recognizer: .workload, statistics: .init())
        #expect(imported.routes.first?.weights == ["reviews-v1": 80, "reviews-v2": 20])
        #expect(imported.linkerdResilience.count == 1)
        #expect(imported.linkerdResilience.first?.annotations.sorted() == [
            "retry.linkerd.io/http=5xx", "retry.linkerd.io/limit=2", "timeout.linkerd.io/request=500ms",
        ])
        #expect(imported.notes.contains { $0.contains("recorded for the resilience checks") })
    }

    /// An HTTPRoute rule's timeouts and retry are the retry checks, on the rule's requests: `retry.codes` with
    /// `attempts` the attempts, `timeouts.request` the route timeout, `backendRequest` the one try's limit when the rule
    /// retries nothing; what the implementation decides is noted, not checked.
    @Test func ruleTimeoutsAndRetryBecomeRetryChecks() throws {
        let imported = try importManifests("""
            apiVersion: gateway.networking.k8s.io/v1
            kind: HTTPRoute
            metadata: {name: reviews}
            spec:
              rules:
              - matches: [{path: {type: PathPrefix, value: /api}}]
                backendRefs: [{name: reviews-v1}]
                timeouts: {request: 2s}
                retry: {attempts: 2, codes: [503, 504], backoff: 100ms}
              - name: slow
                matches: [{path: {type: PathPrefix, value: /slow}}]
                backendRefs: [{name: reviews-v1}]
                timeouts: {backendRequest: 500ms, request: 3s}
              - name: ambiguous
                matches: [{path: {type: PathPrefix, value: /both}}]
                backendRefs: [{name: reviews-v1}]
                timeouts: {backendRequest: 1s, request: 3s}
                retry: {codes: [503]}
            """)
        try #require(imported.retries.count == 3)
        let api = imported.retries[0]
        #expect(api.attempts == 2 && api.retryOn.statuses == [503, 504] && !api.retryOn.retriesTimeouts)
        #expect(api.timeout == 2 && api.perTryTimeout == nil)
        #expect(api.conditions.map(\.description) == imported.routes.first { $0.name == "reviews rules[0]" }?.conditions.map(\.description))
        #expect(api.source.hasSuffix(":6 HTTPRoute reviews rules[0]"), "\(api.source)")
        // No retry: the one try's limit ends the request, before the route's.
        let slow = imported.retries[1]
        #expect(slow.attempts == nil && slow.perTryTimeout == 0.5 && slow.timeout == 3)
        #expect(slow.expectedEnd?.seconds == 0.5)
        #expect(imported.notes.contains { $0.contains("HTTPRoute reviews rules[0]: retry.backoff is not checked") }, "\(imported.notes)")
        #expect(imported.notes.contains { $0.contains("HTTPRoute reviews ambiguous: retry without attempts") })
        // With retry, a try cut by backendRequest may or may not be retried: a slow request ends between one try and
        // the request's limit.
        let ambiguous = imported.retries[2]
        #expect(ambiguous.attempts == nil && ambiguous.timeout == 3 && ambiguous.earliestEnd == 1 && ambiguous.perTryTimeout == nil)
        #expect(ambiguous.summary == "timeout 3s, a slow request ending from 1s (one try)", "\(ambiguous.summary)")
    }

    @Test func aRuleRetryOfAStatusThatCannotBeRetriedIsRefusedAtItsLine() throws {
        #expect(ruleError("    retry: {attempts: 1, codes: [200]}") != nil)
        let codes = ruleError("    retry: {attempts: 1, codes: [503, 600]}")
        #expect(codes?.description.contains(":7:") == true && codes?.description.contains("600 is not a retriable status") == true, "\(String(describing: codes))")
        // Two errors: the first written is the one told (a trial's finding: the codes' was, a line below).
        let first = ruleError("""
                timeouts:
                  request: 70s
                retry:
                  attempts: -1
                  codes: [200, 503]
            """)
        #expect(first?.description.contains(":8:") == true, "\(String(describing: first))")
        // Gateway API refuses a backendRequest longer than the request: so does the import, at its line.
        let longer = ruleError("""
                timeouts:
                  request: 1s
                  backendRequest: 2s
            """)
        #expect(longer?.description.contains(":9:") == true && longer?.description.contains("is longer than timeouts.request") == true,
                "\(String(describing: longer))")
    }

    /// The error importing an HTTPRoute whose one rule (backendRefs on line 6) has `fields` (indented as rule fields,
    /// from line 7); nil, recorded as an issue, when it imports.
    func ruleError(_ fields: String) -> YAMLInputError? {
        do {
            _ = try importManifests("""
                apiVersion: gateway.networking.k8s.io/v1
                kind: HTTPRoute
                metadata: {name: reviews}
                spec:
                  rules:
                  - backendRefs: [{name: reviews-v1}]

                """ + fields)
            Issue.record("accepted: \(fields)")
        } catch let error as YAMLInputError {
            return error
        } catch {
            Issue.record("\(error)")
        }
        return nil
    }

    /// Linkerd's retry annotations on a route (2.16+) apply to its rules: checked on the first rule's requests.
    @Test func linkerdAnnotationsOnARouteAreCheckedOnItsFirstRule() throws {
        let imported = try importManifests("""
            apiVersion: gateway.networking.k8s.io/v1
            kind: HTTPRoute
            metadata:
              name: reviews
              annotations: {retry.linkerd.io/http: 5xx, retry.linkerd.io/limit: "2", timeout.linkerd.io/request: 3s}
            spec:
              rules:
              - matches: [{headers: [{name: x-canary, value: "1"}]}]
                backendRefs: [{name: reviews-v2}]
              - backendRefs: [{name: reviews-v1}]
            """)
        let retry = try #require(imported.retries.first)
        #expect(imported.retries.count == 1)
        #expect(retry.attempts == 2 && retry.retryOn.statuses.contains(503) && retry.timeout == 3)
        #expect(retry.conditions.map(\.description) == ["header x-canary = 1"], "\(retry.conditions)")
        #expect(retry.source.contains("HTTPRoute reviews (Linkerd annotations)"), "\(retry.source)")
    }

    @Test func aGRPCRouteRuleHasNoTimeoutsOrRetryToCheck() throws {
        let imported = try importManifests("""
            apiVersion: gateway.networking.k8s.io/v1
            kind: GRPCRoute
            metadata: {name: cart}
            spec:
              rules:
              - backendRefs: [{name: cart-v1}]
                timeouts: {request: 2s}
            """)
        #expect(imported.retries.isEmpty)
        #expect(imported.notes.contains { $0.contains("GRPCRoute cart rules[0]: timeouts and retry are not Gateway API fields of a GRPCRoute rule") },
                "\(imported.notes)")
    }
}
