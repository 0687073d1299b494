import Foundation
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeTLS
import Testing

extension EndToEnd {
    /// Each X509-SVID failure is a distinct, named error kind, counted for every request it cost, and explained.
    @Suite(.timeLimit(.minutes(1))) struct CertificateErrorTests {
        let pki: LabPKIFixture
        let client: (cert: String, key: String)

        init() throws {
            pki = try LabPKIFixture()
            client = try pki.svid("productpage", uris: [pki.id("productpage")])
        }

        /// Loads 20 requests through a client expecting `expect` against an echo serving `server`.
        func outcome(server: (cert: String, key: String), expect: PeerExpectation? = nil, clientSVID: (cert: String, key: String)?? = nil,
                     bundle: String? = nil) async throws -> LoadResult {
            let echo = try await startEcho(version: "v1", tls: try pki.serverTLS(server))
            defer { Task { await echo.close() } }
            let tls = try pki.clientTLS(clientSVID ?? client, expect: expect, bundle: bundle, trustDomain: pki.trustDomain)
            return try await runLoad(["https://127.0.0.1:\(echo.port)/"], tls: tls, requests: 20, connections: 1, streams: 5)
        }

        func expectOnly(_ kind: ErrorKind, in result: LoadResult, mentioning words: [String]) {
            #expect(result.succeeded == 0)
            #expect(result.errors[kind] == 20, "errors: \(result.errors)")
            #expect(result.connectionFailures[kind, default: 0] >= 1)
            let why = result.errorExplanations[kind] ?? ""
            for word in words { #expect(why.contains(word), "explanation: \(why)") }
            #expect(!why.contains("PRIVATE KEY"))
        }

        @Test func expiredServerCertificate() async throws {
            let server = try pki.svid("expired", uris: [pki.id("reviews")], notBefore: Date() - 7200, notAfter: Date() - 3600)
            expectOnly(.tlsCertificateExpired, in: try await outcome(server: server), mentioning: [])
        }

        @Test func notYetValidServerCertificate() async throws {
            let server = try pki.svid("future", uris: [pki.id("reviews")], notBefore: Date() + 3600, notAfter: Date() + 7200)
            expectOnly(.tlsCertificateNotYetValid, in: try await outcome(server: server), mentioning: [])
        }

        @Test func serverFromAnUnknownCA() async throws {
            let other = try LabPKI.makeCA(trustDomain: pki.trustDomain)
            let server = try pki.svid("stranger", uris: [pki.id("reviews")], by: other)
            expectOnly(.tlsUnknownCA, in: try await outcome(server: server), mentioning: [])
        }

        @Test func wrongSPIFFEIDNamesExpectedAndPresented() async throws {
            let server = try pki.svid("ratings", uris: [pki.id("ratings")])
            let result = try await outcome(server: server, expect: .spiffeID(try SPIFFEID(parsing: pki.id("reviews"))))
            expectOnly(.tlsWrongSPIFFEID, in: result, mentioning: [pki.id("reviews"), pki.id("ratings")])
        }

        @Test func twoURISANsAreRejected() async throws {
            let server = try pki.svid("two", uris: [pki.id("reviews"), pki.id("ratings")])
            expectOnly(.tlsMultipleURISANs, in: try await outcome(server: server), mentioning: [])
        }

        @Test func leafThatIsACAIsRejected() async throws {
            let server = try pki.svid("leafca", uris: [pki.id("reviews")], isCA: true)
            expectOnly(.tlsLeafIsCA, in: try await outcome(server: server), mentioning: [])
        }

        @Test func missingClientCertificateIsRejectedByTheEcho() async throws {
            let server = try pki.svid("reviews", uris: [pki.id("reviews")])
            let result = try await outcome(server: server, clientSVID: .some(nil))
            #expect(result.succeeded == 0)
            #expect(result.errors[.tlsPeerRejectedCertificate] == 20, "errors: \(result.errors)")
        }
    }
}
