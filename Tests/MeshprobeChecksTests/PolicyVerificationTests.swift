import MeshprobeLoad
import MeshprobePolicy
import MeshprobeSpec
import Testing
@testable import MeshprobeChecks

@Suite struct PolicyVerificationTests {
    @Test func aRouteRequestCarriesItsHeadersPathAndMethod() throws {
        var route = SplitExpectation(name: "r", weights: ["v1": 100], recognizer: .version, statistics: .init())
        route.conditions = [MatchCondition(subject: .header("end-user"), match: .exact("jason"), sent: "jason"),
                            MatchCondition(subject: .path, match: .prefix("/api"), sent: "/api"),
                            MatchCondition(subject: .method, match: .exact("PUT"), sent: "PUT")]
        var base = LoadConfiguration(targets: [try LoadTarget(parsing: "http://127.0.0.1:1/reviews")])
        base.plan.headers = [HTTP2HeaderPair("End-User", "someone"), HTTP2HeaderPair("x-other", "1")]
        let configured = PolicyVerification.configuration(base, for: route)
        #expect(configured.plan.headers.map(\.name) == ["x-other", "end-user"])
        #expect(configured.plan.headers.map(\.value) == ["1", "jason"])
        #expect(configured.plan.targets[0].path == "/api")
        #expect(configured.plan.method == "PUT")
    }
}
