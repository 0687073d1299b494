import Foundation
import MeshprobeSpec
import MeshprobeYAML
import Testing
@testable import MeshprobePolicy

/// The access matrix's open cells decided from Istio's and Linkerd's authorization manifests: each cell's decision and
/// the resource that made it, or not checked with why.
@Suite struct AccessImporterTests {
    static func fixture(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/\(name)").path
    }

    /// Every caller with every request, no cell decided: what a policy's `callers` and `requests` leave to manifests.
    static func matrix(_ callers: [AccessCaller], _ requests: [AccessRequest]) -> AccessExpectation {
        AccessExpectation(cells: callers.flatMap { c in requests.map { AccessCell(caller: c, request: $0, expected: nil, source: "policy.yaml:9 expect.access") } },
                          source: "policy.yaml:9 expect.access")
    }

    /// Decides `access` from `files` for the service at `url` (offering Istio's ALPN with `meshALPN`); returns the notes.
    static func decide(_ access: inout AccessExpectation, files: [String], service: String?, url: String, meshALPN: Bool = false) throws -> [String] {
        var notes: [String] = []
        let documents = try ManifestImporter.documents(files: files)
        var target = try LoadTarget(parsing: url)
        if meshALPN { target.meshALPN = .istio }
        try AccessImporter.decide(&access, documents: documents, target: AccessTarget(service: service.map { ServiceHost($0) }, url: target),
                                  notes: { notes.append($0) })
        return notes
    }

    static func decide(_ access: inout AccessExpectation, yaml: String, service: String?, url: String, meshALPN: Bool = false) throws -> [String] {
        let path = try writeTemporaryYAML(yaml)
        defer { removeTemporary(path) }
        return try decide(&access, files: [path], service: service, url: url, meshALPN: meshALPN)
    }

    /// bookinfo's reviews Service, its port declared HTTP by its name.
    static let reviewsService = """
        apiVersion: v1
        kind: Service
        metadata: {name: reviews, namespace: bookinfo}
        spec: {selector: {app: reviews}, ports: [{name: http, port: 9080}]}
        ---

        """

    /// A cell's outcome in words: `allow`, `deny` or `not checked`, and its source or why.
    static func outcome(_ access: AccessExpectation, _ caller: AccessCaller, _ request: AccessRequest) -> (String, String) {
        guard let cell = access.cells.first(where: { $0.caller == caller && $0.request == request }) else { return ("missing", "") }
        if let e = cell.expected { return (e.rawValue, cell.source) }
        return ("not checked", cell.notChecked ?? "")
    }

    /// Checks every row: the decision, and a part of its source or reason.
    static func expectMatrix(_ access: AccessExpectation, _ rows: [(AccessCaller, AccessRequest, String, String)],
                             sourceLocation: SourceLocation = #_sourceLocation) {
        for (caller, request, decision, words) in rows {
            let (got, why) = outcome(access, caller, request)
            #expect(got == decision && why.contains(words), "\(caller) -> \(request): \(got): \(why)", sourceLocation: sourceLocation)
        }
        #expect(access.decidedByManifests.isEmpty, "open cells left: \(access.decidedByManifests.map(\.name))", sourceLocation: sourceLocation)
    }

    static let productpage = AccessCaller.spiffe("spiffe://cluster.local/ns/bookinfo/sa/bookinfo-productpage")
    static let ratings = AccessCaller.spiffe("spiffe://cluster.local/ns/bookinfo/sa/bookinfo-ratings")
    static let opsTool = AccessCaller.spiffe("spiffe://cluster.local/ns/ops/sa/ops-tool")

    @Test func istioBookinfoDecidesCustomThenDenyThenAllowBehindStrictMTLS() throws {
        let get = AccessRequest(path: "/reviews/1"), post = AccessRequest(method: "POST", path: "/admin/x"), health = AccessRequest(path: "/health")
        let callers: [AccessCaller] = [Self.productpage, Self.ratings, Self.opsTool, .anonymous, .plaintext]
        var access = Self.matrix(callers, [get, post, health])
        let file = Self.fixture("istio/reviews-authz.yaml")
        let notes = try Self.decide(&access, files: [file], service: "reviews.bookinfo", url: "https://reviews.bookinfo.svc.cluster.local:9080/")
        let strict = "\(file):54 PeerAuthentication bookinfo/default (STRICT)"
        Self.expectMatrix(access, [
            (Self.productpage, get, "allow", "\(file):63 AuthorizationPolicy bookinfo/reviews-viewer: an ALLOW rule matches"),
            // The CUSTOM rule matches /admin/x, but DENY denies it anyway: a request passes only when every stage allows it.
            (Self.productpage, post, "deny", "\(file):95 AuthorizationPolicy bookinfo/admin-only-ops: a DENY rule matches"),
            (Self.productpage, health, "not checked", "rules[2].from[0].source requestPrincipals: request.auth.principal needs a validated JWT"),
            (Self.ratings, get, "deny", "\(file):63 AuthorizationPolicy bookinfo/reviews-viewer: no ALLOW rule matches"),
            (Self.ratings, post, "deny", "AuthorizationPolicy bookinfo/admin-only-ops: a DENY rule matches"),
            (Self.ratings, health, "not checked", "requestPrincipals"),
            (Self.opsTool, get, "deny", "no ALLOW rule matches"),
            // ops passes DENY and ALLOW: the external authorizer has the last word.
            (Self.opsTool, post, "not checked", "AuthorizationPolicy bookinfo/admin-ext-authz: CUSTOM: the provider opa-ext-authz decides this request"),
            (Self.opsTool, health, "not checked", "requestPrincipals"),
            (.anonymous, get, "deny", "\(strict): STRICT requires a client certificate"),
            (.anonymous, post, "deny", "\(strict): STRICT requires a client certificate"),
            (.anonymous, health, "deny", "\(strict): STRICT requires a client certificate"),
            (.plaintext, get, "deny", "\(strict): STRICT refuses plaintext"),
            (.plaintext, post, "deny", "\(strict): STRICT refuses plaintext"),
            (.plaintext, health, "deny", "\(strict): STRICT refuses plaintext"),
        ])
        // Nothing dropped silently: CUSTOM, AUDIT and the JWT rule are listed; ratings' policy is noted as another's.
        #expect(access.notChecked.contains { $0.contains("AuthorizationPolicy bookinfo/admin-ext-authz: CUSTOM (provider opa-ext-authz)") }, "\(access.notChecked)")
        #expect(access.notChecked.contains { $0.contains("AuthorizationPolicy bookinfo/audit-writes: AUDIT") }, "\(access.notChecked)")
        #expect(access.notChecked.contains { $0.contains("reviews-viewer rules[2].from[0].source requestPrincipals") }, "\(access.notChecked)")
        #expect(notes.contains { $0.contains("not checked: AuthorizationPolicy bookinfo/ratings-viewer: selector app=ratings does not select the target reviews") }, "\(notes)")
    }

    @Test func istioPortLevelMTLSNamesTheWorkloadsPortNotTheServices() throws {
        let main = AccessRequest(path: "/"), metrics = AccessRequest(path: "/", port: 9081)
        var access = Self.matrix([Self.productpage, .anonymous, .plaintext], [main, metrics])
        let file = Self.fixture("istio/reviews-mtls-ports.yaml")
        _ = try Self.decide(&access, files: [file], service: "reviews.bookinfo", url: "https://reviews.bookinfo.svc.cluster.local:9080/")
        Self.expectMatrix(access, [
            (Self.productpage, main, "allow", "default allow (no ALLOW policy applies to reviews)"),
            (.anonymous, main, "deny", "\(file):19 PeerAuthentication bookinfo/default (STRICT): STRICT requires a client certificate"),
            (.plaintext, main, "deny", "STRICT refuses plaintext"),
            // Service port 9081 is the workload's 8081, PERMISSIVE: plaintext reaches authorization (no policy: allowed).
            (.plaintext, metrics, "allow", "default allow"),
            (Self.productpage, metrics, "not checked", "\(file):28 PeerAuthentication bookinfo/reviews-metrics (portLevelMtls 8081: PERMISSIVE): PERMISSIVE terminates TLS only for clients offering Istio's ALPN"),
            (.anonymous, metrics, "not checked", "PERMISSIVE terminates TLS only"),
        ])
    }

    @Test func istioWithoutPeerAuthenticationIsPermissiveAndNegativeMTLSFieldsMatchPlaintext() throws {
        // Istio's advisory ISTIO-SECURITY-2021-004: notNamespaces compares plaintext's empty namespace, so it matches.
        var access = Self.matrix([.plaintext, Self.opsTool], [AccessRequest(path: "/")])
        _ = try Self.decide(&access, yaml: """
            apiVersion: security.istio.io/v1beta1
            kind: AuthorizationPolicy
            metadata: {name: allow-ns-not-ops, namespace: bookinfo}
            spec:
              rules:
              - from: [{source: {notNamespaces: [ops]}}]
            """, service: "reviews.bookinfo", url: "https://reviews.bookinfo:9080/")
        Self.expectMatrix(access, [
            (.plaintext, AccessRequest(path: "/"), "allow", "AuthorizationPolicy bookinfo/allow-ns-not-ops: an ALLOW rule matches"),
            (Self.opsTool, AccessRequest(path: "/"), "not checked", "Istio's default PERMISSIVE (no PeerAuthentication applies)"),
        ])
    }

    @Test func istioRulesOfEveryKindAreMatchedAsEnvoyMatchesThem() throws {
        let yaml = Self.reviewsService + """
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: default, namespace: istio-system}
            spec: {mtls: {mode: STRICT}}
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: deny-debug, namespace: istio-system}
            spec:
              action: DENY
              rules:
              - to: [{operation: {paths: ["/debug/{*}/vars"]}}]
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: reviews, namespace: bookinfo}
            spec:
              rules:
              - from: [{source: {serviceAccounts: [bookinfo-productpage]}}]
                to: [{operation: {hosts: ["reviews.bookinfo*"], ports: ["9080"], notMethods: [DELETE]}}]
                when:
                - {key: "request.headers[x-tenant]", values: ["team-*"]}
              - from: [{source: {trustDomains: ["cluster.*"], principals: ["*/sa/ops-tool"]}}]
                when:
                - {key: destination.port, values: ["9080"]}
            """
        let tenant = AccessRequest(path: "/reviews", headers: ["x-tenant": "team-a"])
        let noTenant = AccessRequest(path: "/reviews"), delete = AccessRequest(method: "DELETE", path: "/reviews", headers: ["x-tenant": "team-a"])
        let debug = AccessRequest(path: "/debug/pprof/vars"), deeper = AccessRequest(path: "/debug/a/b/vars")
        var access = Self.matrix([Self.productpage, Self.opsTool, Self.ratings], [tenant, noTenant, delete, debug, deeper])
        _ = try Self.decide(&access, yaml: yaml, service: "reviews.bookinfo", url: "https://reviews.bookinfo:9080/")
        Self.expectMatrix(access, [
            (Self.productpage, tenant, "allow", "bookinfo/reviews: an ALLOW rule matches"),
            (Self.productpage, noTenant, "deny", "no ALLOW rule matches"),
            (Self.productpage, delete, "deny", "no ALLOW rule matches"),
            (Self.opsTool, noTenant, "allow", "bookinfo/reviews"),
            (Self.ratings, tenant, "deny", "no ALLOW rule matches"),
            // The mesh-wide DENY in the root namespace: `{*}` is one path segment.
            (Self.opsTool, debug, "deny", "AuthorizationPolicy istio-system/deny-debug: a DENY rule matches"),
            (Self.opsTool, deeper, "allow", "bookinfo/reviews"),
        ])
    }

    @Test func istioSelectorsTheManifestsCannotResolveLeaveTheCellsTheyDecideOpen() throws {
        // Two versions behind the Service: a policy selecting version v1 decides for some pods only.
        let yaml = """
            apiVersion: v1
            kind: Service
            metadata: {name: reviews, namespace: bookinfo}
            spec: {selector: {app: reviews}, ports: [{name: http-web, port: 9080}]}
            ---
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: reviews-v1, namespace: bookinfo}
            spec: {template: {metadata: {labels: {app: reviews, version: v1}}}}
            ---
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: reviews-v2, namespace: bookinfo}
            spec: {template: {metadata: {labels: {app: reviews, version: v2}}}}
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: v1-deny-writes, namespace: bookinfo}
            spec:
              selector: {matchLabels: {version: v1}}
              action: DENY
              rules: [{to: [{operation: {methods: [POST]}}]}]
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: waypoint-only, namespace: bookinfo}
            spec:
              targetRefs: [{kind: Service, group: "", name: reviews}]
              action: DENY
              rules: [{to: [{operation: {methods: [PUT]}}]}]
            ---
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: default, namespace: bookinfo}
            spec: {mtls: {mode: STRICT}}
            """
        let get = AccessRequest(path: "/"), post = AccessRequest(method: "POST", path: "/"), put = AccessRequest(method: "PUT", path: "/")
        var access = Self.matrix([Self.productpage], [get, post, put])
        _ = try Self.decide(&access, yaml: yaml, service: "reviews.bookinfo", url: "https://reviews.bookinfo:9080/")
        Self.expectMatrix(access, [
            (Self.productpage, get, "allow", "default allow"),
            (Self.productpage, post, "not checked", "version=v1 selects Deployment bookinfo/reviews-v1 but not Deployment bookinfo/reviews-v2"),
            (Self.productpage, put, "not checked", "a waypoint enforces it, a sidecar ignores it"),
        ])
        #expect(access.notChecked.contains { $0.contains("waypoint-only: targetRefs: enforced by a waypoint only") }, "\(access.notChecked)")
    }

    @Test func istioFilterChainsFollowThePortsProtocolAndTheProbersALPN() throws {
        // A port whose protocol is detected: mTLS without Istio's ALPN reaches the TCP chain, where the ALLOW rule
        // on a path is left out and the DENY rule on a method matches every connection; with `meshAlpn: istio`, the
        // HTTP chain judges the request. Plaintext HTTP/1.1 is detected as HTTP.
        let yaml = """
            apiVersion: v1
            kind: Service
            metadata: {name: reviews, namespace: bookinfo}
            spec: {selector: {app: reviews}, ports: [{name: web, port: 9080}]}
            ---
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: default, namespace: bookinfo}
            spec: {mtls: {mode: PERMISSIVE}}
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: reviews-read, namespace: bookinfo}
            spec:
              rules:
              - from: [{source: {principals: ["cluster.local/ns/bookinfo/sa/bookinfo-productpage"]}}]
                to: [{operation: {paths: ["/reviews*"]}}]
              - to: [{operation: {ports: ["9080"], methods: [GET]}}]
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: no-deletes, namespace: bookinfo}
            spec: {action: DENY, rules: [{to: [{operation: {methods: [DELETE]}}]}]}
            """
        let read = AccessRequest(path: "/reviews/1")
        var direct = Self.matrix([Self.productpage, .anonymous, .plaintext], [read])
        _ = try Self.decide(&direct, yaml: yaml, service: "reviews.bookinfo", url: "https://reviews.bookinfo:9080/")
        Self.expectMatrix(direct, [
            (Self.productpage, read, "not checked", "PERMISSIVE terminates TLS only for clients offering Istio's ALPN: give the target meshAlpn: istio"),
            (.anonymous, read, "not checked", "give the target meshAlpn: istio"),
            (.plaintext, read, "allow", "bookinfo/reviews-read: an ALLOW rule matches"),
        ])
        var mesh = Self.matrix([Self.productpage, .anonymous], [read])
        _ = try Self.decide(&mesh, yaml: yaml, service: "reviews.bookinfo", url: "https://reviews.bookinfo:9080/", meshALPN: true)
        Self.expectMatrix(mesh, [
            (Self.productpage, read, "allow", "bookinfo/reviews-read: an ALLOW rule matches"),
            (.anonymous, read, "deny", "the mTLS filter chain Istio's ALPN reaches requires a client certificate"),
        ])
        var strict = Self.matrix([Self.productpage], [read])
        _ = try Self.decide(&strict, yaml: yaml.replacingOccurrences(of: "PERMISSIVE", with: "STRICT"), service: "reviews.bookinfo",
                            url: "https://reviews.bookinfo:9080/")
        Self.expectMatrix(strict, [(Self.productpage, read, "deny", "bookinfo/no-deletes: a DENY rule matches")])
    }

    @Test func istioAllowNothingDeniesAndAnEmptyRuleAllowsEverything() throws {
        var access = Self.matrix([Self.productpage], [AccessRequest(path: "/")])
        _ = try Self.decide(&access, yaml: """
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: default, namespace: bookinfo}
            spec: {mtls: {mode: STRICT}}
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: allow-nothing, namespace: bookinfo}
            spec: {}
            """, service: "reviews.bookinfo", url: "https://reviews.bookinfo:9080/")
        Self.expectMatrix(access, [(Self.productpage, AccessRequest(path: "/"), "deny", "bookinfo/allow-nothing: no ALLOW rule matches")])
        var all = Self.matrix([.plaintext], [AccessRequest(path: "/")])
        _ = try Self.decide(&all, yaml: """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: allow-all, namespace: bookinfo}
            spec: {rules: [{}]}
            """, service: "reviews.bookinfo", url: "https://reviews.bookinfo:9080/")
        Self.expectMatrix(all, [(.plaintext, AccessRequest(path: "/"), "allow", "bookinfo/allow-all: an ALLOW rule matches")])
    }

    @Test func istioMeshWideDisableDryRunAndPathsIstioWouldNormalize() throws {
        let yaml = Self.reviewsService + """
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: default, namespace: istio-system}
            spec: {mtls: {mode: DISABLE}}
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata:
              name: trial-deny-all
              namespace: bookinfo
              annotations: {istio.io/dry-run: "true"}
            spec: {action: DENY, rules: [{}]}
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: no-private, namespace: bookinfo}
            spec:
              action: DENY
              rules: [{to: [{operation: {paths: ["/private*"]}}]}]
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: other-namespace, namespace: ratings}
            spec: {}
            """
        let root = AccessRequest(path: "/"), sneaky = AccessRequest(path: "//private/x"), query = AccessRequest(path: "/private?x=1")
        var access = Self.matrix([.plaintext, Self.productpage], [root, sneaky, query])
        let notes = try Self.decide(&access, yaml: yaml, service: "reviews.bookinfo", url: "https://reviews.bookinfo:9080/")
        Self.expectMatrix(access, [
            (.plaintext, root, "allow", "default allow"),
            (.plaintext, sneaky, "not checked", "Istio normalizes the path //private/x"),
            (.plaintext, query, "deny", "bookinfo/no-private: a DENY rule matches"),
            (Self.productpage, root, "not checked", "PeerAuthentication istio-system/default (DISABLE): the sidecar does not terminate TLS"),
        ])
        #expect(access.notChecked.contains { $0.contains("AuthorizationPolicy bookinfo/trial-deny-all: istio.io/dry-run: true: not enforced") }, "\(access.notChecked)")
        #expect(notes.contains { $0.contains("AuthorizationPolicy ratings/other-namespace: namespace ratings is not the target's (bookinfo)") }, "\(notes)")
    }

    static let webapp = AccessCaller.spiffe("spiffe://cluster.local/ns/booksapp/sa/webapp")
    static let books = AccessCaller.spiffe("spiffe://cluster.local/ns/booksapp/sa/books")

    @Test func linkerdBooksappPerRoutePolicyServerAuthorizationAndNetworkAuthentication() throws {
        let read = AccessRequest(path: "/authors.json"), delete = AccessRequest(method: "DELETE", path: "/authors/1")
        let ping = AccessRequest(path: "/ping"), other = AccessRequest(path: "/books"), admin = AccessRequest(path: "/admin", port: 9990)
        var access = Self.matrix([Self.webapp, Self.books, Self.opsTool, .anonymous, .plaintext], [read, delete, ping, other, admin])
        let file = Self.fixture("linkerd/authors-authz.yaml")
        let notes = try Self.decide(&access, files: [file], service: "authors.booksapp", url: "https://authors.booksapp.svc.cluster.local:7001/")
        let get = "\(file):128 AuthorizationPolicy booksapp/authors-get-policy"
        let noRoute = "\(file):41 Server booksapp/authors-server: no HTTPRoute matches GET /books (the proxy answers 404)"
        let probe = "\(file):178 AuthorizationPolicy booksapp/authors-probe-policy"
        let modifyDenied = "\(file):87 HTTPRoute booksapp/authors-modify-route: no authorization of the route or of Server authors-server admits the caller"
        let adminDenied = "\(file):54 Server booksapp/authors-admin: no authorization admits the caller"
        Self.expectMatrix(access, [
            (Self.webapp, read, "allow", get),
            // identityRefs name webapp's ServiceAccount as Linkerd's DNS identity; the SVID's SPIFFE ID is not it.
            (Self.webapp, delete, "not checked", "as spiffe://cluster.local/ns/booksapp/sa/webapp it is denied"),
            (Self.webapp, ping, "allow", probe),
            (Self.webapp, other, "deny", noRoute),
            (Self.webapp, admin, "deny", adminDenied),
            (Self.books, read, "allow", get),
            (Self.books, delete, "deny", modifyDenied),
            (Self.books, ping, "allow", probe),
            (Self.books, admin, "deny", adminDenied),
            (Self.opsTool, read, "deny", "\(file):67 HTTPRoute booksapp/authors-get-route: no authorization of the route"),
            (Self.opsTool, delete, "deny", modifyDenied),
            (Self.opsTool, ping, "allow", probe),
            (Self.opsTool, other, "deny", noRoute),
            (Self.opsTool, admin, "allow", "\(file):203 ServerAuthorization booksapp/authors-admin-ops"),
            (.anonymous, read, "deny", "authors-get-route: no authorization"),
            (.anonymous, delete, "deny", modifyDenied),
            (.anonymous, ping, "allow", probe),
            (.anonymous, other, "deny", noRoute),
            (.anonymous, admin, "deny", adminDenied),
            (.plaintext, read, "deny", "authors-get-route: no authorization"),
            (.plaintext, delete, "deny", modifyDenied),
            (.plaintext, ping, "allow", probe),
            (.plaintext, other, "deny", noRoute),
            (.plaintext, admin, "deny", adminDenied),
        ])
        // The books Server is another workload's; the CIDR network is not checkable and listed.
        #expect(notes.contains { $0.contains("not checked: Server booksapp/books-server: its podSelector does not select the target authors") }, "\(notes)")
        #expect(access.notChecked.contains { $0.contains("NetworkAuthentication booksapp/cluster-network: networks 10.0.0.0/8") }, "\(access.notChecked)")
    }

    @Test func linkerdServerWithoutAuthorizationDeniesAndDefaultPoliciesDecideTheRest() throws {
        let yaml = """
            apiVersion: v1
            kind: Namespace
            metadata:
              name: booksapp
              annotations: {config.linkerd.io/default-inbound-policy: all-authenticated}
            ---
            apiVersion: policy.linkerd.io/v1beta3
            kind: Server
            metadata: {name: authors-admin, namespace: booksapp}
            spec:
              podSelector: {matchLabels: {app: authors}}
              port: 9990
            """
        let main = AccessRequest(path: "/"), admin = AccessRequest(path: "/", port: 9990)
        var access = Self.matrix([Self.webapp, .anonymous, .plaintext], [main, admin])
        let notes = try Self.decide(&access, yaml: yaml, service: "authors.booksapp", url: "https://authors.booksapp:7001/")
        Self.expectMatrix(access, [
            (Self.webapp, admin, "deny", "Server booksapp/authors-admin: no authorization, so all its traffic is denied"),
            (.plaintext, admin, "deny", "no authorization, so all its traffic is denied"),
            // all-authenticated admits DNS identities only (Linkerd matches `*` against DNS names): the SVID's
            // SPIFFE ID is denied, the service account's DNS name would not be.
            (Self.webapp, main, "not checked", "Linkerd names a client by its certificate's first SAN"),
            (.anonymous, main, "deny", "config.linkerd.io/default-inbound-policy: all-authenticated"),
            (.plaintext, main, "deny", "all-authenticated"),
        ])
        #expect(notes.contains { $0.hasPrefix("no Service authors in the manifests") }, "\(notes)")
        // Without annotations the cluster default is assumed, and said so.
        var open = Self.matrix([.plaintext], [main])
        _ = try Self.decide(&open, yaml: "apiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {name: other, namespace: booksapp}\nspec: {podSelector: {matchLabels: {app: books}}, port: 7001}\n",
                            service: "authors.booksapp", url: "https://authors.booksapp:7001/")
        Self.expectMatrix(open, [(.plaintext, main, "allow", "Linkerd's cluster default all-unauthenticated (assumed")])
    }

    @Test func linkerdUnknownNetworksQueryMatchesAndUnauthenticatedTLS() throws {
        let yaml = """
            apiVersion: policy.linkerd.io/v1beta3
            kind: Server
            metadata: {name: web, namespace: emojivoto}
            spec: {podSelector: {matchLabels: {app: web}}, port: 8080, proxyProtocol: HTTP/2}
            ---
            apiVersion: policy.linkerd.io/v1beta3
            kind: HTTPRoute
            metadata: {name: search, namespace: emojivoto}
            spec:
              parentRefs: [{name: web, kind: Server, group: policy.linkerd.io}]
              rules:
              - matches: [{path: {type: PathPrefix, value: /api}, queryParams: [{name: q, value: emoji}]}]
            ---
            apiVersion: policy.linkerd.io/v1alpha1
            kind: AuthorizationPolicy
            metadata: {name: search-any-tls, namespace: emojivoto}
            spec:
              targetRef: {group: policy.linkerd.io, kind: HTTPRoute, name: search}
              requiredAuthenticationRefs: [{name: office, kind: NetworkAuthentication, group: policy.linkerd.io}]
            ---
            apiVersion: policy.linkerd.io/v1alpha1
            kind: NetworkAuthentication
            metadata: {name: office, namespace: emojivoto}
            spec: {networks: [{cidr: 192.168.0.0/16}]}
            ---
            apiVersion: policy.linkerd.io/v1beta1
            kind: ServerAuthorization
            metadata: {name: web-tls, namespace: emojivoto}
            spec:
              server: {name: web}
              client: {meshTLS: {unauthenticatedTLS: true}}
            """
        let search = AccessRequest(path: "/api/list?q=emoji"), wrongQuery = AccessRequest(path: "/api/list?q=other")
        var access = Self.matrix([.anonymous, .plaintext], [search, wrongQuery])
        _ = try Self.decide(&access, yaml: yaml, service: "web.emojivoto", url: "https://web.emojivoto:8080/")
        Self.expectMatrix(access, [
            // Any TLS client passes the Server's ServerAuthorization, which every route takes too.
            (.anonymous, search, "allow", "ServerAuthorization emojivoto/web-tls"),
            (.plaintext, search, "not checked", "NetworkAuthentication emojivoto/office: networks 192.168.0.0/16: the prober's address is not known here"),
            (.anonymous, wrongQuery, "deny", "Server emojivoto/web: no HTTPRoute matches GET /api/list"),
        ])
    }

    @Test func withoutAuthorizationManifestsTheCellsStayOpenAndBothMeshesAreRefused() throws {
        var access = Self.matrix([.plaintext], [AccessRequest(path: "/")])
        let notes = try Self.decide(&access, yaml: "apiVersion: v1\nkind: Service\nmetadata: {name: reviews}\nspec: {selector: {app: reviews}}\n",
                                    service: "reviews.bookinfo", url: "https://reviews.bookinfo:9080/")
        #expect(access.decidedByManifests.count == 1)
        #expect(notes.contains { $0.hasPrefix("no authorization manifest") }, "\(notes)")
        #expect(throws: YAMLInputError.self) {
            try Self.decide(&access, yaml: """
                apiVersion: security.istio.io/v1
                kind: PeerAuthentication
                metadata: {name: default}
                spec: {mtls: {mode: STRICT}}
                ---
                apiVersion: policy.linkerd.io/v1beta3
                kind: Server
                metadata: {name: web}
                spec: {podSelector: {matchLabels: {app: reviews}}, port: 9080}
                """, service: "reviews.bookinfo", url: "https://reviews.bookinfo:9080/")
        }
    }

    @Test func foreignIsRefusedAtTLSUnderStrictAndAnUnknownActionIsAnErrorAtItsLine() throws {
        var access = AccessExpectation(cells: [AccessCell(caller: .foreign, request: AccessRequest(path: "/"), expected: nil, source: "p.yaml:3 expect.access")],
                                       source: "p.yaml:3 expect.access")
        let notes = try Self.decide(&access, yaml: "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: bookinfo}\nspec: {mtls: {mode: STRICT}}\n",
                                    service: "reviews.bookinfo", url: "https://reviews.bookinfo:9080/")
        Self.expectMatrix(access, [(.foreign, AccessRequest(path: "/"), "deny", "another trust domain's SVID is refused at TLS (no federation assumed)")])
        #expect(notes.contains { $0.hasPrefix("foreign: judged refused at the TLS handshake") }, "\(notes)")
        #expect {
            var again = Self.matrix([.plaintext], [AccessRequest(path: "/")])
            _ = try Self.decide(&again, yaml: "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: x}\nspec:\n  action: REJECT\n",
                                service: "reviews.bookinfo", url: "https://reviews.bookinfo:9080/")
        } throws: { error in
            guard let e = error as? YAMLInputError else { return false }
            return e.line == 5 && e.field == "spec.action" && e.message.contains("expected ALLOW, DENY, AUDIT or CUSTOM")
        }
    }
}
