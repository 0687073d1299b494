import MeshprobeSpec
import Testing

@Suite struct LoadTargetTests {
    @Test func parsesURLsWithDefaultsPortsAndIPv6() throws {
        let a = try LoadTarget(parsing: "https://reviews.bookinfo:9443/api/v1?x=1")
        #expect(a.scheme == .https && a.host == "reviews.bookinfo" && a.port == 9443 && a.path == "/api/v1?x=1")
        #expect(a.authority == "reviews.bookinfo:9443")
        let b = try LoadTarget(parsing: "http://127.0.0.1")
        #expect(b.port == 80 && b.path == "/" && b.hostIsIPLiteral)
        let c = try LoadTarget(parsing: "https://[::1]:8443/")
        #expect(c.host == "::1" && c.port == 8443 && c.authority == "[::1]:8443" && c.hostIsIPLiteral)
        #expect(try LoadTarget(parsing: "https://example.org").authority == "example.org")
    }

    @Test(arguments: ["127.0.0.1:80", "ftp://x/", "http://:80/", "http://h:0/", "http://h:99999/", "http://[::1/", "http://u@h/"])
    func rejectsBadURLs(_ url: String) {
        #expect(throws: LoadPlanError.self) { try LoadTarget(parsing: url) }
    }

    @Test func aPlanNeedsAnEndCondition() throws {
        var plan = LoadPlan(targets: [try LoadTarget(parsing: "http://127.0.0.1:1/")])
        #expect(throws: LoadPlanError.self) { try plan.validate() }
        plan.requests = 10
        try plan.validate()
        plan.streamsPerConnection = 0
        #expect(throws: LoadPlanError.self) { try plan.validate() }
    }
}
