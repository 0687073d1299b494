import MeshprobeIdentity
import NIOCore
import Testing
@testable import MeshprobeEcho

@Suite struct EchoPlannerTests {
    let planner = EchoPlanner(
        identity: EchoIdentity(workload: "reviews", version: "v2", cluster: "east", namespace: "bookinfo", pod: "reviews-v2-abc",
                               spiffeID: "spiffe://cluster.local/ns/bookinfo/sa/reviews"),
        limits: .init())

    func plan(_ path: String, headers: [(String, String)] = [], peer: String? = nil) -> EchoPlan {
        var rng = SystemRandomNumberGenerator()
        let request = EchoRequest(method: "GET", path: path, headers: headers.map { (name: $0.0, value: $0.1) },
                                  bodyLength: 0, peerSPIFFEID: peer)
        return planner.plan(request, inFlight: 3, allocator: ByteBufferAllocator(), random: &rng)
    }

    func header(_ plan: EchoPlan, _ name: String) -> String? {
        plan.headers.first(where: { $0.name == name })?.value
    }

    @Test func stampsIdentityAndInFlightOnEveryResponse() {
        let p = plan("/")
        #expect(p.status == 200)
        #expect(header(p, EchoStamp.workload) == "reviews")
        #expect(header(p, EchoStamp.version) == "v2")
        #expect(header(p, EchoStamp.cluster) == "east")
        #expect(header(p, EchoStamp.identity) == "spiffe://cluster.local/ns/bookinfo/sa/reviews")
        #expect(header(p, EchoStamp.inFlight) == "3")
        let body = String(buffer: p.body)
        #expect(body.contains("\"version\":\"v2\""))
        #expect(body.contains("\"inflight\":3"))
    }

    @Test func callerComesFromMTLSBeforeXFCCBeforeLinkerd() {
        let xfcc = "By=spiffe://cluster.local/ns/bookinfo/sa/reviews;Hash=abc;Subject=\"\";URI=spiffe://cluster.local/ns/bookinfo/sa/productpage"
        let mtls = plan("/", headers: [("x-forwarded-client-cert", xfcc)], peer: "spiffe://td/ns/a/sa/mtls")
        #expect(header(mtls, EchoStamp.caller) == "spiffe://td/ns/a/sa/mtls")
        #expect(header(mtls, EchoStamp.callerSource) == "mtls")
        let envoy = plan("/", headers: [("x-forwarded-client-cert", xfcc), ("l5d-client-id", "x.y.serviceaccount.identity.linkerd.cluster.local")])
        #expect(header(envoy, EchoStamp.caller) == "spiffe://cluster.local/ns/bookinfo/sa/productpage")
        #expect(header(envoy, EchoStamp.callerSource) == "xfcc")
        let linkerd = plan("/", headers: [("l5d-client-id", "web.emojivoto.serviceaccount.identity.linkerd.cluster.local")])
        #expect(header(linkerd, EchoStamp.caller) == "web.emojivoto.serviceaccount.identity.linkerd.cluster.local")
        #expect(header(linkerd, EchoStamp.callerSource) == "l5d-client-id")
        let none = plan("/")
        #expect(header(none, EchoStamp.callerSource) == "none")
    }

    @Test func xfccTakesTheNearestHopsURI() {
        let value = "By=spiffe://a/x;URI=spiffe://a/first,By=spiffe://a/y;Subject=\"CN=x,O=y\";URI=spiffe://a/second"
        #expect(EchoPlanner.xfccURI(value) == "spiffe://a/second")
        #expect(EchoPlanner.xfccURI("By=spiffe://a/x;Hash=1") == nil)
    }

    @Test func injectsStatusAndPadsBodyToTheRequestedSize() {
        let p = plan("/?status=503&size=2000")
        #expect(p.status == 503)
        #expect(header(p, EchoStamp.fault) == "status=503")
        #expect(p.body.readableBytes == 2000)
        #expect(String(buffer: p.body).hasSuffix("\"}"))
    }

    @Test func malformedFaultIsA400NamingTheParameter() {
        let p = plan("/?delay=soon")
        #expect(p.status == 400)
        #expect(String(buffer: p.body).contains("delay=soon"))
    }

    @Test func resetFaultAt100PercentAlwaysResets() {
        #expect(plan("/?close=100").action == .reset)
    }
}
