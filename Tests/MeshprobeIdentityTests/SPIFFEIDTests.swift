import Testing
@testable import MeshprobeIdentity

@Suite struct SPIFFEIDTests {
    @Test func parsesIstioStyleID() throws {
        let id = try SPIFFEID(parsing: "spiffe://cluster.local/ns/bookinfo/sa/reviews")
        #expect(id.trustDomain == "cluster.local")
        #expect(id.path == "/ns/bookinfo/sa/reviews")
        #expect(id.istioNamespaceAndServiceAccount?.namespace == "bookinfo")
        #expect(id.istioNamespaceAndServiceAccount?.serviceAccount == "reviews")
        #expect(id.description == "spiffe://cluster.local/ns/bookinfo/sa/reviews")
    }

    @Test(arguments: [
        "http://cluster.local/x", "spiffe://", "spiffe://Cluster.local/x", "spiffe://td:8080/x",
        "spiffe://user@td/x", "spiffe://td/a//b", "spiffe://td/a/", "spiffe://td/./a", "spiffe://td/../a",
        "spiffe://td/a?b", "spiffe://td/a#b", "spiffe://td/a b", "SPIFFE://td/a",
    ])
    func rejectsMalformedIDs(_ input: String) {
        #expect(throws: SPIFFEIDError.self) { try SPIFFEID(parsing: input) }
    }

    @Test func peerExpectationDistinguishesIDFromTrustDomain() throws {
        let exact = try PeerExpectation(parsing: "spiffe://td/ns/a/sa/b")
        let domain = try PeerExpectation(parsing: "td")
        let domainURI = try PeerExpectation(parsing: "spiffe://td")
        let a = try SPIFFEID(parsing: "spiffe://td/ns/a/sa/b")
        let b = try SPIFFEID(parsing: "spiffe://td/ns/a/sa/c")
        let other = try SPIFFEID(parsing: "spiffe://other/ns/a/sa/b")
        #expect(exact.matches(a))
        #expect(!exact.matches(b))
        #expect(domain.matches(b))
        #expect(!domain.matches(other))
        #expect(domainURI == domain)
    }
}
