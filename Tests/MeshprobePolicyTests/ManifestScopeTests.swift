import Foundation
import MeshprobePolicy
import MeshprobeYAML
import Testing

/// Manifests are matched to the target's service by host; the rest is listed as not checked, never applied to the
/// target and never dropped silently.
@Suite struct ManifestScopeTests {
    /// Tests/Fixtures/istio/reviews-and-ratings.yaml: reviews' and ratings' VirtualServices and DestinationRules.
    static var twoServices: String {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/istio/reviews-and-ratings.yaml").path
        return (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }

    @Test(arguments: ["reviews", "reviews.bookinfo", "reviews.bookinfo.svc.cluster.local"])
    func onlyTheTargetsManifestsAreCheckedAndTheOthersAreListed(service: String) throws {
        let imported = try importManifests(Self.twoServices, service: service)
        #expect(imported.routes.count == 1 && imported.routes[0].weights == ["v1": 100], "\(imported.routes.map(\.weights))")
        #expect(imported.circuitBreakers.isEmpty && imported.outlierDetections.isEmpty
                && imported.connectionReuse.map(\.maxRequestsPerConnection) == [5],
                "the ratings DestinationRule's traffic policy is not applied to reviews")
        let notes = imported.notes.joined(separator: "\n")
        #expect(notes.contains("not checked: VirtualService ratings: host ratings.bookinfo.svc.cluster.local does not match the target reviews"), "\(notes)")
        #expect(notes.contains("not checked: DestinationRule ratings: host ratings does not match the target reviews"), "\(notes)")
    }

    @Test func hostsMatchByShortNameNamespaceAndFQDN() {
        let fqdn = ServiceHost("reviews.bookinfo.svc.cluster.local")
        #expect(fqdn.isNamed(by: "reviews", in: "bookinfo"))
        #expect(fqdn.isNamed(by: "reviews.bookinfo", in: nil))
        #expect(fqdn.isNamed(by: "Reviews.Bookinfo.svc.cluster.local.", in: "other"))
        #expect(fqdn.isNamed(by: "*.bookinfo.svc.cluster.local", in: nil) && fqdn.isNamed(by: "*", in: nil))
        #expect(!fqdn.isNamed(by: "reviews", in: "default"), "a short name is in the manifest's namespace")
        #expect(!fqdn.isNamed(by: "reviews.default.svc.cluster.local", in: nil))
        #expect(!fqdn.isNamed(by: "ratings", in: "bookinfo"))
        #expect(!fqdn.isNamed(by: "*.default.svc.cluster.local", in: nil))
        let short = ServiceHost("reviews")
        #expect(short.isNamed(by: "reviews.bookinfo.svc.cluster.local", in: nil), "an unknown namespace does not tell them apart")
        #expect(!ServiceHost("api.example.com").isNamed(by: "api", in: nil))
        #expect(ServiceHost("api.example.com").isNamed(by: "*.example.com", in: nil))
    }

    @Test func anAddressTargetTakesTheOneServiceTheManifestsName() throws {
        let parts = Self.twoServices.components(separatedBy: "\n---\n")
        let one = try importManifests(parts[0] + "\n---\n" + parts[2])
        #expect(one.service == ServiceHost("reviews", namespace: "bookinfo") && one.routes.count == 1)
        #expect {
            try importManifests(Self.twoServices)
        } throws: { error in
            guard let e = error as? YAMLInputError else { return false }
            return e.message.contains("several services (reviews.bookinfo, ratings.bookinfo)") && e.message.contains("service: in the policy")
        }
    }

    @Test func whatADestinationRuleDeclaresAndNoCheckExercisesIsListed() throws {
        let imported = try importManifests("""
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: reviews}
            spec:
              host: reviews
              trafficPolicy:
                loadBalancer: {simple: LEAST_REQUEST}
                portLevelSettings: [{port: {number: 9080}, connectionPool: {tcp: {maxConnections: 1}}}]
                tls: {mode: ISTIO_MUTUAL}
                connectionPool: {tcp: {maxConnections: 5, connectTimeout: 1s}, http: {http2MaxRequests: 10, idleTimeout: 1m}}
              subsets:
              - name: v1
                labels: {version: v1}
                trafficPolicy: {connectionPool: {http: {http2MaxRequests: 1}}}
            """, service: "reviews")
        #expect(imported.circuitBreakers.map(\.maxRequests) == [5])
        let notes = imported.notes.joined(separator: "\n")
        for words in ["trafficPolicy.loadBalancer", "trafficPolicy.portLevelSettings", "trafficPolicy.tls",
                      "trafficPolicy.connectionPool.tcp.connectTimeout", "trafficPolicy.connectionPool.http.idleTimeout", "subset v1's own trafficPolicy"] {
            #expect(notes.contains("not checked: DestinationRule reviews: \(words)"), "\(words): \(notes)")
        }
    }
}

extension ManifestScopeTests {
    /// An HTTPRoute in bookinfo whose one rule sends everything to `backend`; `parents` and `more` are spec lines.
    static func httpRoute(_ name: String, backend: String, parents: String, more: String = "") -> String {
        """
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: \(name), namespace: bookinfo}
        spec:
          parentRefs: \(parents)
        \(more.isEmpty ? "" : "  \(more)\n")  rules:
          - backendRefs: [{name: \(backend), port: 9080}]
        """
    }

    /// Mesh (GAMMA) routes: one attached to the reviews Service (Gateway API, with a port), one to ratings (Linkerd's
    /// `group: core`).
    static var twoMeshRoutes: String {
        httpRoute("reviews", backend: "reviews-v2", parents: #"[{group: "", kind: Service, name: reviews, port: 9080}]"#)
            + "\n---\n" + httpRoute("ratings", backend: "ratings-v1", parents: "[{group: core, kind: Service, name: ratings}]")
    }

    @Test(arguments: ["reviews", "reviews.bookinfo", "reviews.bookinfo.svc.cluster.local"])
    func onlyTheHTTPRouteWhoseParentServiceIsTheTargetIsChecked(service: String) throws {
        let imported = try importManifests(Self.twoMeshRoutes, service: service)
        #expect(imported.routes.map(\.weights) == [["reviews-v2": 100]])
        let notes = imported.notes.joined(separator: "\n")
        #expect(notes.contains("not checked: HTTPRoute ratings: parent Service ratings.bookinfo does not match the target \(ServiceHost(service))"), "\(notes)")
        #expect(notes.contains("HTTPRoute reviews: the parentRef's port 9080 is not compared with the target's"), "\(notes)")
        let elsewhere = try importManifests(Self.twoMeshRoutes, service: "reviews.default")
        #expect(elsewhere.routes.isEmpty, "a parent Service without namespace is in the route's namespace")
    }

    @Test func anAddressTargetTakesTheServiceTheMeshRoutesName() throws {
        let one = try importManifests(Self.twoMeshRoutes.components(separatedBy: "\n---\n")[0])
        #expect(one.service == ServiceHost("reviews", namespace: "bookinfo") && one.routes.count == 1)
        #expect(throws: YAMLInputError.self) { try importManifests(Self.twoMeshRoutes) }
    }

    @Test func aGatewayRouteWhoseHostnamesDoNotMatchTheTargetIsListed() throws {
        let imported = try importManifests(Self.httpRoute("shop", backend: "shop-v1", parents: "[{name: public}]", more: "hostnames: [shop.example.com]")
                                           + "\n---\n" + Self.httpRoute("any", backend: "reviews-v1", parents: "[{name: public}]"),
                                           service: "reviews.example.com")
        #expect(imported.routes.map(\.weights) == [["reviews-v1": 100]], "a Gateway route without hostnames serves every host")
        let notes = imported.notes.joined(separator: "\n")
        #expect(notes.contains("not checked: HTTPRoute shop: hostname shop.example.com (Gateway public) does not match the target reviews.example.com"), "\(notes)")
    }

    @Test(arguments: [("reviews.example.com", true), ("v2.reviews.example.com", true), ("example.com", false), ("reviews.example.org", false)])
    func aWildcardHostnameMatchesEveryHostBelowIt(service: String, checked: Bool) throws {
        let route = Self.httpRoute("wild", backend: "reviews-v1", parents: "[{group: gateway.networking.k8s.io, kind: Gateway, name: public}]",
                              more: #"hostnames: ["*.example.com"]"#)
        let imported = try importManifests(route, service: service)
        #expect(imported.routes.count == (checked ? 1 : 0))
        #expect(imported.notes.contains { $0.contains("not checked: HTTPRoute wild: hostname *.example.com") } == !checked, "\(imported.notes)")
    }

    @Test func aRouteWhoseParentsCannotBeJudgedIsListedAndOneWithoutParentsIsChecked() throws {
        let imported = try importManifests(Self.httpRoute("server", backend: "reviews-v1", parents: "[{group: policy.linkerd.io, kind: Server, name: web}]")
                                           + "\n---\n" + Self.httpRoute("nogroup", backend: "reviews-v1", parents: "[{kind: Service, name: reviews}]")
                                           + "\n---\n" + Self.httpRoute("orphan", backend: "reviews-v3", parents: "[]"),
                                           service: "reviews")
        #expect(imported.routes.map(\.weights) == [["reviews-v3": 100]])
        let notes = imported.notes.joined(separator: "\n")
        #expect(notes.contains("not checked: HTTPRoute server: parent policy.linkerd.io/Server web: cannot tell whether it routes the target"), "\(notes)")
        #expect(notes.contains("not checked: HTTPRoute nogroup: parent gateway.networking.k8s.io/Service reviews: cannot tell"), "\(notes)")
        #expect(notes.contains("HTTPRoute orphan names no parentRefs: its rules are checked against the target"), "\(notes)")
    }
}

/// A response the recogniser cannot read is named plainly: what is missing, without a stray article.
@Suite struct UnrecognisedResponseTests {
    @Test func aMissingHeaderOrStampIsNamedPlainly() {
        let header = SplitExpectation(name: "r", weights: ["a": 100], recognizer: .header("x-served-bye"), statistics: .init())
        #expect(header.destinationName(of: .unknown) == "(unrecognised: no x-served-bye header)")
        let version = SplitExpectation(name: "r", weights: ["v1": 100], recognizer: .version, statistics: .init())
        #expect(version.destinationName(of: .unknown) == "(unrecognised: no version stamp (x-meshprobe-version))")
    }
}
