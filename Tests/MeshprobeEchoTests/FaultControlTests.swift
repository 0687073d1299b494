import MeshprobeEchoAPI
import MeshprobeIdentity
import NIOCore
import Testing
@testable import MeshprobeEcho

@Suite struct FaultControlTests {
    let ops = "spiffe://lab.test/ns/ops/sa/gameday"

    func settings(_ json: String, limits: FaultSpec.Limits = .init()) throws(FaultControlError) -> FaultSettings {
        try FaultSettings(FaultControlAPI.decode(ByteBuffer(string: json)), limits: limits)
    }

    func field(ofError json: String) -> String? {
        do {
            _ = try settings(json)
            return nil
        } catch {
            return error.field
        }
    }

    @Test func readsEveryFieldWithSharesDefaultingTo100() throws {
        let s = try settings(#"{"status":503,"delayMs":200,"delayShare":25,"resetShare":10,"path":"/api","durationSeconds":30}"#)
        #expect(s.status == 503)
        #expect(s.statusShare == 100)
        #expect(s.delayNanoseconds == 200_000_000)
        #expect(s.delayShare == 25)
        #expect(s.resetShare == 10)
        #expect(s.pathPrefix == "/api")
        #expect(s.durationSeconds == 30)
        #expect(try settings(#"{"resetShare":5,"durationSeconds":1}"#).pathPrefix == "/")
    }

    @Test(arguments: [
        (#"{"status":503}"#, "durationSeconds"), (#"{"status":503,"durationSeconds":0}"#, "durationSeconds"),
        (#"{"status":503,"durationSeconds":86400}"#, "durationSeconds"), (#"{"status":503,"durationSeconds":"30s"}"#, "durationSeconds"),
        (#"{"status":99,"durationSeconds":5}"#, "status"), (#"{"status":503.5,"durationSeconds":5}"#, "status"),
        (#"{"status":true,"durationSeconds":5}"#, "status"), (#"{"status":503,"statusShare":0,"durationSeconds":5}"#, "statusShare"),
        (#"{"status":503,"statusShare":101,"durationSeconds":5}"#, "statusShare"), (#"{"statusShare":50,"resetShare":1,"durationSeconds":5}"#, "statusShare"),
        (#"{"delayMs":20000,"durationSeconds":5}"#, "delayMs"), (#"{"delayMs":-1,"durationSeconds":5}"#, "delayMs"),
        (#"{"delayShare":5,"status":503,"durationSeconds":5}"#, "delayShare"), (#"{"resetShare":200,"durationSeconds":5}"#, "resetShare"),
        (#"{"status":503,"path":"api","durationSeconds":5}"#, "path"), (#"{"status":503,"path":["/"],"durationSeconds":5}"#, "path"),
        (#"{"status":503,"durationSeconds":5,"color":"red"}"#, "color"), (#"{"durationSeconds":5}"#, "body"),
        (#"{"status":503,"durationSeconds":5"#, "body"), (#"[{"status":503}]"#, "body"), ("", "body"),
        (#"{"status":503,"durationSeconds":5,"label":""}"#, "label"), (#"{"status":503,"durationSeconds":5,"label":"run 1"}"#, "label"),
        (#"{"status":503,"durationSeconds":5,"label":"run%201"}"#, "label"), (#"{"status":503,"durationSeconds":5,"label":7}"#, "label"),
        ("{\"status\":503,\"durationSeconds\":5,\"label\":\"\(String(repeating: "a", count: 65))\"}", "label"),
        (#"{"grpcStatus":"OK","durationSeconds":5}"#, "grpcStatus"), (#"{"grpcStatus":0,"durationSeconds":5}"#, "grpcStatus"),
        (#"{"grpcStatus":17,"durationSeconds":5}"#, "grpcStatus"), (#"{"grpcStatus":"BUSY","durationSeconds":5}"#, "grpcStatus"),
        (#"{"grpcStatus":true,"durationSeconds":5}"#, "grpcStatus"),
    ])
    func badBodiesNameTheField(_ json: String, _ expected: String) {
        #expect(field(ofError: json) == expected)
    }

    @Test func grpcStatusIsReadByNameNumberOrEnvoysSpellingAndListedByName() throws {
        #expect(try settings(#"{"grpcStatus":"UNAVAILABLE","durationSeconds":5}"#).grpcStatus == .unavailable)
        #expect(try settings(#"{"grpcStatus":14,"durationSeconds":5}"#).grpcStatus == .unavailable)
        let both = try settings(#"{"grpcStatus":"resource-exhausted","status":429,"statusShare":30,"durationSeconds":5}"#)
        #expect(both.grpcStatus == .resourceExhausted)
        #expect(both.statusShare == 30)
        let control = FaultControl()
        let now = NIODeadline.now()
        let fault = try #require(control.add(both, setBy: ops, now: now))
        #expect(fault.json(now: now).grpcStatus == "RESOURCE_EXHAUSTED")
        #expect(fault.json(now: now).summary == "status 429 for 30%, grpc-status RESOURCE_EXHAUSTED for 30% on /, expires in 5s")
    }

    @Test func aGRPCCallGetsTheFaultsGRPCStatusAndAnHTTPRequestItsHTTPStatus() throws {
        let control = FaultControl()
        let now = NIODeadline.now()
        _ = try #require(control.add(try settings(#"{"grpcStatus":"UNAVAILABLE","status":503,"durationSeconds":10}"#), setBy: ops, now: now))
        _ = try #require(control.add(try settings(#"{"status":502,"durationSeconds":10}"#), setBy: ops, now: now))
        _ = try #require(control.add(try settings(#"{"grpcStatus":"ABORTED","durationSeconds":10}"#), setBy: ops, now: now))
        #expect(control.spec(forPath: "/x", grpc: true, now: now)?.statuses.map(\.value) == [ResponseCode.grpc(.unavailable), 502, ResponseCode.grpc(.aborted)])
        #expect(control.spec(forPath: "/x", now: now)?.statuses.map(\.value) == [503, 502])
    }

    @Test func activeFaultsBecomeASpecForMatchingPathsOnly() throws {
        let control = FaultControl()
        let now = NIODeadline.now()
        #expect(control.spec(forPath: "/", now: now) == nil)
        let fault = try #require(control.add(try settings(#"{"status":503,"statusShare":40,"path":"/api","durationSeconds":10}"#),
                                             setBy: ops, now: now))
        #expect(fault.id == "f1")
        #expect(control.spec(forPath: "/other", now: now) == nil)
        let spec = try #require(control.spec(forPath: "/api/items?x=1", now: now))
        #expect(spec.statuses == [.init(value: 503, percent: 40, source: "f1")])
        #expect(spec.choice(spec.statuses, roll: 39.9)?.source == "f1")
        #expect(spec.choice(spec.statuses, roll: 40) == nil)
    }

    /// Faults set one after another (two game days, two steps' faults on one workload) apply each on its own, as
    /// separate fault filters would: two 50% aborts fail 75% of requests (the second trial saw 100%).
    @Test func faultsApplyIndependently() throws {
        let control = FaultControl()
        let now = NIODeadline.now()
        _ = control.add(try settings(#"{"status":503,"statusShare":50,"resetShare":50,"durationSeconds":10}"#), setBy: ops, now: now)
        _ = control.add(try settings(#"{"status":500,"statusShare":50,"resetShare":50,"durationSeconds":10}"#), setBy: ops, now: now)
        let spec = try #require(control.spec(forPath: "/", now: now))
        #expect(spec.statuses.map(\.percent) == [50, 25] && spec.statuses.map(\.value) == [503, 500])
        #expect(spec.choice(spec.statuses, roll: 49.9)?.value == 503 && spec.choice(spec.statuses, roll: 74.9)?.value == 500)
        #expect(spec.choice(spec.statuses, roll: 75) == nil, "a quarter of requests meet neither")
        #expect(spec.resetPercent == 75)
    }

    @Test func expiredFaultsStopApplyingAndLeaveTheList() throws {
        let control = FaultControl()
        let start = NIODeadline.now()
        _ = control.add(try settings(#"{"status":503,"durationSeconds":1}"#), setBy: ops, now: start)
        _ = control.add(try settings(#"{"resetShare":5,"durationSeconds":60}"#), setBy: ops, now: start)
        #expect(control.list(now: start).map { $0.json(now: start).expiresInSeconds } == [1, 60])
        let later = start + .milliseconds(1001)
        #expect(control.spec(forPath: "/", now: later)?.statuses.isEmpty == true)
        #expect(control.list(now: later).map(\.id) == ["f2"])
    }

    @Test func clearsOneOrAll() throws {
        let control = FaultControl()
        for _ in 0..<3 { _ = control.add(try settings(#"{"status":500,"durationSeconds":60}"#), setBy: ops) }
        #expect(control.clear(id: "f2") == 1)
        #expect(control.clear(id: "f2") == 0)
        #expect(control.list().map(\.id) == ["f1", "f3"])
        #expect(control.clear() == 2)
        #expect(control.spec(forPath: "/") == nil)
    }

    @Test func aLabelListsAndClearsOnlyTheFaultsSetWithIt() throws {
        let control = FaultControl()
        let run = try settings(#"{"status":500,"durationSeconds":60,"label":"gameday-0123abcd"}"#)
        #expect(run.label == "gameday-0123abcd")
        _ = control.add(run, setBy: ops)
        _ = control.add(try settings(#"{"status":500,"durationSeconds":60}"#), setBy: ops)
        _ = control.add(run, setBy: ops)
        let now = NIODeadline.now()
        #expect(control.list(label: "gameday-0123abcd").map { $0.json(now: now).label } == ["gameday-0123abcd", "gameday-0123abcd"])
        #expect(control.list().map { $0.json(now: now).label } == ["gameday-0123abcd", nil, "gameday-0123abcd"])
        #expect(control.clear(label: "gameday-other") == 0)
        #expect(control.clear(label: "gameday-0123abcd") == 2)
        #expect(control.list().map(\.id) == ["f2"])
    }

    @Test(arguments: [
        ("/.meshprobe/faults", nil, nil), ("/.meshprobe/faults?label=run-1.a_b", "run-1.a_b", nil), ("/.meshprobe/faults?", nil, nil),
        ("/.meshprobe/faults?lable=run-1", nil, "lable"), ("/.meshprobe/faults?label=", nil, "label"),
        ("/.meshprobe/faults?label=run%201", nil, "label"), ("/.meshprobe/faults?label=a&label=b", nil, "label"),
        ("/.meshprobe/faults?label=a&force=1", nil, "force"),
    ] as [(String, String?, String?)])
    func aDeleteTakesOnlyALabelParameter(_ path: String, _ label: String?, _ refusedField: String?) {
        do {
            #expect(try FaultControlAPI.labelParameter(path) == label)
            #expect(refusedField == nil)
        } catch {
            #expect(error.field == refusedField, "\(error)")
        }
    }

    @Test func aListIgnoresOtherParametersButNotABadLabel() throws {
        #expect(try FaultControlAPI.labelParameter("/.meshprobe/faults?status=500&label=run-1", refusingOthers: false) == "run-1")
        #expect(try FaultControlAPI.labelParameter("/.meshprobe/faults?status=500", refusingOthers: false) == nil)
        #expect(throws: FaultControlError.self) { try FaultControlAPI.labelParameter("/.meshprobe/faults?label=a%20b", refusingOthers: false) }
    }

    @Test func controlAndQueryFaultsCombineWithTheQueryFirst() throws {
        var spec = try FaultSpec.parse(path: "/?status=502:30&close=10")
        spec.append(try FaultSpec.parse(path: "/?status=503:50&close=95"))
        #expect(spec.pick(spec.statuses, roll: 29) == 502)
        #expect(spec.pick(spec.statuses, roll: 79) == 503)
        #expect(spec.resetPercent == 100)
    }

    @Test func attemptCounterCountsPerIDAndForgetsTheOldestBeyondItsCapacity() {
        let counter = AttemptCounter(capacity: 2)
        #expect(counter.count("a") == 1)
        #expect(counter.count("a") == 2)
        #expect(counter.count("b") == 1)
        #expect(counter.count("c") == 1)  // evicts "a", the oldest
        #expect(counter.count("b") == 2)
        #expect(counter.count("a") == 1)
        let long = String(repeating: "x", count: 10_000)
        #expect(AttemptCounter.key(long).utf8.count <= AttemptCounter.maxKeyBytes)
        #expect(AttemptCounter.key(long) != AttemptCounter.key(long + "y"))
    }
}
