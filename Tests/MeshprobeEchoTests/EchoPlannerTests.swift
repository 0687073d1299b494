import MeshprobeIdentity
import NIOCore
import Testing
@testable import MeshprobeEcho

@Suite struct EchoPlannerTests {
    let planner = EchoPlanner(
        identity: EchoIdentity(workload: "reviews", version: "v2", cluster: "east", namespace: "bookinfo", pod: "reviews-v2-abc",
                               spiffeID: "spiffe://cluster.local/ns/bookinfo/sa/reviews"),
        limits: .init())

    func plan(_ path: String, method: String = "GET", headers: [(String, String)] = [], peer: String? = nil, body: String? = nil,
              with planner: EchoPlanner? = nil) -> EchoPlan {
        var rng = SystemRandomNumberGenerator()
        let request = EchoRequest(method: method, path: path, headers: headers.map { (name: $0.0, value: $0.1) },
                                  bodyLength: body?.utf8.count ?? 0, peerSPIFFEID: peer, body: body.map { ByteBuffer(string: $0) })
        return (planner ?? self.planner).plan(request, inFlight: 3, allocator: ByteBufferAllocator(), random: &rng)
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

    @Test func controlAPITrustsOnlyTheMTLSPeerNeverForwardedIdentityHeaders() {
        let ops = "spiffe://cluster.local/ns/ops/sa/gameday"
        let planner = EchoPlanner(identity: self.planner.identity, limits: .init(), controlAllowList: [ops])
        let body = #"{"status":503,"durationSeconds":60}"#
        let xfcc = plan("/.meshprobe/faults", method: "POST", headers: [("x-forwarded-client-cert", "URI=\(ops)")], body: body, with: planner)
        #expect(xfcc.status == 403)
        let linkerd = plan("/.meshprobe/faults", method: "POST", headers: [("l5d-client-id", ops)], body: body, with: planner)
        #expect(linkerd.status == 403)
        #expect(plan("/", with: planner).status == 200)
        let set = plan("/.meshprobe/faults", method: "POST", peer: ops, body: body, with: planner)
        #expect(set.status == 201)
        #expect(header(set, EchoStamp.workload) == "reviews")
        let faulted = plan("/reviews/1", with: planner)
        #expect(faulted.status == 503)
        #expect(header(faulted, EchoStamp.fault) == "status=503;control=f1")
        // Control requests are never faulted, by the control API's faults or the query's.
        #expect(plan("/.meshprobe/faults?status=500", peer: ops, with: planner).status == 200)
        #expect(plan("/.meshprobe/faults/f9", method: "DELETE", peer: ops, with: planner).status == 404)
        #expect(plan("/.meshprobe/faults", method: "PUT", peer: ops, with: planner).status == 405)
    }

    @Test func controlAPIIsNotFoundWithoutAnAllowList() {
        let p = plan("/.meshprobe/faults", peer: "spiffe://cluster.local/ns/ops/sa/gameday")
        #expect(p.status == 404)
        #expect(String(buffer: p.body).contains("--control-allow"))
        #expect(plan("/.meshprobe/faultsx").status == 200)
    }

    @Test func attemptStampCountsRequestsPerRequestID() {
        #expect(header(plan("/"), EchoStamp.attempt) == nil)
        #expect(header(plan("/", headers: [("x-request-id", "r-1")]), EchoStamp.attempt) == "1")
        #expect(header(plan("/?status=503", headers: [("x-request-id", "r-1")]), EchoStamp.attempt) == "2")
        #expect(header(plan("/", headers: [("x-request-id", "r-2")]), EchoStamp.attempt) == "1")
    }
}
