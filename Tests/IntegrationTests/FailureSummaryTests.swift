import Foundation
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeChecks
import MeshprobeTLS
import Testing

extension EndToEnd {
    /// `LoadResult.failureSummary`, which undecided and failed verdicts quote, names the dominant failure kind with its
    /// count and why, for each silent cause a new user meets: nothing listening, no client certificate, a client
    /// certificate the workload rejects, a wrong expectPeer. Real echo, real TLS.
    @Suite(.timeLimit(.minutes(1))) struct FailureSummaryTests {
        let lab: CertificateErrorTests
        let server: (cert: String, key: String)

        init() throws {
            lab = try CertificateErrorTests()
            server = try lab.pki.svid("reviews", uris: [lab.pki.id("reviews")])
        }

        @Test func aRefusedConnectionIsNamedWithItsCountAndWhy() async throws {
            let refused = try await runLoad(["http://127.0.0.1:\(try freePort())/"], requests: 20, connections: 1, streams: 5)
            let summary = refused.failureSummary() ?? ""
            #expect(summary.hasPrefix("connect_refused: 20 (127.0.0.1:") && summary.contains("refused the connection"), "\(summary)")
            #expect(refused.nothingSucceeded.hasPrefix("no request succeeded (20 failed: connect_refused: 20"), "\(refused.nothingSucceeded)")
        }

        @Test func noClientCertificateIsNamed() async throws {
            let result = try await lab.outcome(server: server, clientSVID: .some(nil))
            #expect(result.failureSummary()?.hasPrefix("tls_peer_rejected_certificate: 20") == true, "\(result.failureSummary() ?? "")")
        }

        @Test func aRejectedClientCertificateIsNamed() async throws {
            let other = try LabPKI.makeCA(trustDomain: lab.pki.trustDomain)
            let stranger = try lab.pki.svid("stranger-client", uris: [lab.pki.id("productpage")], by: other)
            let result = try await lab.outcome(server: server, clientSVID: stranger)
            #expect(result.failureSummary()?.hasPrefix("tls_peer_rejected_certificate: 20") == true, "\(result.failureSummary() ?? "")")
        }

        @Test func aWrongExpectPeerIsNamedWithBothIdentities() async throws {
            let result = try await lab.outcome(server: server, expect: .spiffeID(try SPIFFEID(parsing: lab.pki.id("ratings"))))
            let summary = result.failureSummary() ?? ""
            #expect(summary.hasPrefix("tls_wrong_spiffe_id: 20 (") && summary.contains(lab.pki.id("ratings")) && summary.contains(lab.pki.id("reviews")),
                    "\(summary)")
        }
    }
}
