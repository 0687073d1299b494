import Foundation
import MeshprobeEcho
import MeshprobeLoad
import MeshprobeScenario
import MeshprobeTLS
import MeshprobeYAML
import NIOPosix
import Testing

extension EndToEnd {
    /// Several clusters in one run: two mTLS echo workloads stand for the east and west clusters' gateways, each with its
    /// own trust domain and reached with its own SNI (`targets: [{url, sni}]`), the prober trusting both domains.
    @Suite(.timeLimit(.minutes(2))) struct MultiClusterTests {
    @Test func perTargetSNIAndTrustDomainsReportByCluster() async throws {
        let pki = try LabPKIFixture(trustDomain: "east.test")
        let eastSVID = try pki.svid("east", uris: ["spiffe://east.test/ns/bookinfo/sa/reviews"])
        let westSVID = try pki.svid("west", uris: ["spiffe://west.test/ns/bookinfo/sa/reviews"])
        let client = try pki.svid("prober", uris: ["spiffe://east.test/ns/ops/sa/prober"])
        func echo(_ svid: (cert: String, key: String), cluster: String) async throws -> EchoServer {
            var configuration = EchoConfiguration(identity: EchoIdentity(workload: "reviews", version: "v1", cluster: cluster,
                                                                         namespace: "bookinfo", pod: "reviews-\(cluster)-0"))
            configuration.port = 0
            configuration.tls = try pki.serverTLS(svid)
            return try await EchoServer.start(configuration, group: MultiThreadedEventLoopGroup.singleton)
        }
        let east = try await echo(eastSVID, cluster: "east"), west = try await echo(westSVID, cluster: "west")
        defer { Task { await east.close(); await west.close() } }
        let scenario = try Scenario.parse("""
            targets:
              - {url: "https://127.0.0.1:\(east.port)/reviews", sni: reviews.east.global}
              - {url: "https://127.0.0.1:\(west.port)/reviews", sni: reviews.west.global}
            load: {requests: 200, connections: 4, streams: 5}
            """, file: "multi.yaml", baseDirectory: URL(fileURLWithPath: "/tmp"))
        var configuration = LoadConfiguration(plan: scenario.plan)
        #expect(configuration.plan.targets.map(\.serverName) == ["reviews.east.global", "reviews.west.global"])
        // One bundle per trust domain (the lab signs both with one CA): each gateway's SVID verifies in its own domain.
        var tls = TLSConfiguration(role: .client)
        tls.certificateChainFile = client.cert
        tls.privateKeyFile = client.key
        tls.applicationProtocols = ["h2"]
        try tls.trustBundles.add(pemFile: pki.caFile, trustDomain: "east.test")
        try tls.trustBundles.add(pemFile: pki.caFile, trustDomain: "west.test")
        configuration.tls = try TLSContext(configuration: tls)
        let result = try await LoadGenerator(configuration: configuration, group: MultiThreadedEventLoopGroup.singleton).run()
        #expect(result.succeeded == 200, "\(result.errors)")
        // By cluster: both answered, and each gateway saw only its own SNI.
        let byCluster = Dictionary(result.identities.map { ($0.key.cluster, $0.value.requests) }, uniquingKeysWith: +)
        #expect(Set(byCluster.keys) == ["east", "west"] && byCluster.values.allSatisfy { $0 > 0 }, "\(byCluster)")
        #expect(result.serverNamesSeen["reviews.east.global"] == east.requestsServed, "\(result.serverNamesSeen)")
        #expect(result.serverNamesSeen["reviews.west.global"] == west.requestsServed, "\(result.serverNamesSeen)")
        #expect(result.identities.keys.map(\.identity).sorted()
            == ["spiffe://east.test/ns/bookinfo/sa/reviews", "spiffe://west.test/ns/bookinfo/sa/reviews"])
    }

    @Test func anSNIOnAPlaintextTargetIsRefusedWithItsLine() throws {
        #expect {
            try Scenario.parse("targets:\n  - {url: \"http://127.0.0.1:1/\", sni: reviews.east.global}\nload: {requests: 1}\n",
                               file: "bad.yaml", baseDirectory: URL(fileURLWithPath: "/tmp"))
        } throws: { error in
            guard let e = error as? YAMLInputError else { return false }
            return e.line == 2 && e.message.contains("sni needs an https:// target")
        }
    }
    }
}
