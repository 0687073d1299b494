import Foundation
import Testing

extension EndToEnd {
    /// `verify --check POLICY MANIFESTS` with an access matrix whose cells the mesh's authorization manifests decide:
    /// the plan shows every cell's decision and the resource that made it, or why it is not checked; the manifests'
    /// unrelated resources are notes; a matrix nothing decides is exit 2 naming its cells.
    @Suite(.timeLimit(.minutes(2))) struct AccessManifestCheckTests {
        let dir: URL
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

        init() throws {
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-access-check-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        }

        /// A policy for bookinfo's reviews whose matrix is left to the manifests but for one rule.
        func policy() throws -> String {
            let path = dir.appendingPathComponent("reviews-access.yaml").path
            try """
                policy: meshprobe.policy/v1
                name: reviews zero trust
                target: https://reviews.bookinfo.svc.cluster.local:9080/
                identity: {svidDir: /var/run/secrets/meshprobe-absent, expectPeer: cluster.local}
                identities:
                  spiffe://cluster.local/ns/bookinfo/sa/bookinfo-productpage: {svidDir: /var/run/secrets/productpage-absent}
                  spiffe://cluster.local/ns/ops/sa/ops-tool: {svidDir: /var/run/secrets/ops-absent}
                expect:
                  access:
                    callers: [spiffe://cluster.local/ns/bookinfo/sa/bookinfo-productpage, spiffe://cluster.local/ns/ops/sa/ops-tool, plaintext]
                    requests:
                    - {path: /reviews/1}
                    - {method: POST, path: /admin/x}
                    rules:
                    - {callers: [plaintext], requests: [{path: /reviews/1}], expect: deny}
                """.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        @Test func thePlanShowsEachCellsDecisionFromTheManifestsWithItsSource() async throws {
            defer { try? FileManager.default.removeItem(at: dir) }
            let file = try policy()
            let manifest = fixtures.appendingPathComponent("istio/reviews-authz.yaml").path
            let out = try await run(meshprobeBinary, ["verify", file, manifest, "--check"], timeout: 30)
            #expect(out.status == 0, "\(out.stderr)")
            let productpage = "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-productpage"
            for line in [
                "    access (6 cells, 3 tries each on fresh connections; \(file):10 expect.access):",
                "      \(productpage) -> GET /reviews/1: allow (\(manifest):63 AuthorizationPolicy bookinfo/reviews-viewer: an ALLOW rule matches)",
                "      \(productpage) -> POST /admin/x: deny (\(manifest):95 AuthorizationPolicy bookinfo/admin-only-ops: a DENY rule matches)",
                "      spiffe://cluster.local/ns/ops/sa/ops-tool -> GET /reviews/1: deny (\(manifest):63 AuthorizationPolicy bookinfo/reviews-viewer: no ALLOW rule matches)",
                "      spiffe://cluster.local/ns/ops/sa/ops-tool -> POST /admin/x: not checked: \(manifest):111 AuthorizationPolicy bookinfo/admin-ext-authz: CUSTOM: the provider opa-ext-authz decides this request",
                "      plaintext -> GET /reviews/1: deny (\(file):15 expect.access.rules[0])",
                "      plaintext -> POST /admin/x: deny (\(manifest):54 PeerAuthentication bookinfo/default (STRICT): STRICT refuses plaintext)",
            ] {
                #expect(out.stdout.contains(line + "\n"), "missing: \(line)\n\(out.stdout)")
            }
            #expect(out.stdout.contains("      not checked in the manifests: \(manifest):128 AuthorizationPolicy bookinfo/audit-writes: AUDIT"), "\(out.stdout)")
            #expect(out.stderr.contains("note: \(manifest):152: not checked: AuthorizationPolicy bookinfo/ratings-viewer"), "\(out.stderr)")
            // The Service and Deployments tell which workload the target is: no "ignored" note for them.
            #expect(!out.stderr.contains("ignored Service reviews") && !out.stderr.contains("ignored Deployment"), "\(out.stderr)")
        }

        @Test func aMatrixNoManifestDecidesIsExit2NamingItsCells() async throws {
            defer { try? FileManager.default.removeItem(at: dir) }
            let file = try policy()
            // Routing manifests only: nothing decides the open cells.
            let manifest = fixtures.appendingPathComponent("istio/reviews.yaml").path
            let out = try await run(meshprobeBinary, ["verify", file, manifest, "--check"], timeout: 30)
            #expect(out.status == 2, "\(out.stdout)\(out.stderr)")
            #expect(out.stderr.contains("\(file):10:1: expect.access: 5 cells of the matrix have no decision"), "\(out.stderr)")
            #expect(out.stderr.contains("note: no authorization manifest"), "\(out.stderr)")
        }
    }
}
