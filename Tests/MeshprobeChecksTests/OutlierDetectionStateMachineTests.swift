import MeshprobeIdentity
import MeshprobePolicy
import Testing
@testable import MeshprobeChecks

/// A proxy's answers as the outlier-detection check sees them, one request at a time at the check's pace: time is a
/// virtual clock that advances one gap per response.
struct SyntheticResponses {
    typealias Response = OutlierDetectionCheck.Response
    let gap: Double
    private(set) var sent = 0

    init(rate: Double) { gap = 1 / rate }

    var now: Double { Double(sent) * gap }

    mutating func next(_ destination: String?, _ status: Int = 200) -> Response {
        sent += 1
        return Response(at: now, destination: destination, status: status)
    }

    /// `rounds` rounds of the destinations in turn, each answering `status(destination)`.
    mutating func roundRobin(_ rounds: Int, _ destinations: [String?], status: (String?) -> Int = { _ in 200 }) -> [Response] {
        (0..<rounds).flatMap { _ in destinations.map { next($0, status($0)) } }
    }

    /// Answers from `destination` until `seconds` have passed on the clock.
    mutating func until(_ seconds: Double, from destination: String?, _ status: Int = 200) -> [Response] {
        var responses: [Response] = []
        while now + gap < seconds - gap / 2 { responses.append(next(destination, status)) }
        return responses
    }
}

@Suite struct OutlierEjectionStateMachineTests {
    typealias Machine = OutlierDetectionCheck.EjectionStateMachine

    /// Declared as the lab's HAProxy is configured: 5 errors, 1 s ejection, a 0.5 s sweep, 200 requests/s.
    func declared(errors: Int = 5, base: Double = 1, interval: Double = 0.5) -> OutlierExpectation {
        var e = OutlierExpectation(consecutiveErrors: errors, source: "test")
        e.baseEjectionTime = base
        e.interval = interval
        e.maxEjectionPercent = 100
        return e
    }

    /// A healthy baseline over v1 and v2, then the fault asked for.
    func afterBaseline(_ e: OutlierExpectation, _ clock: inout SyntheticResponses) -> Machine {
        var machine = Machine(e)
        let responses = clock.roundRobin(50, ["v1", "v2"])
        let early = machine.observeBaseline(responses.dropLast())
        #expect(!early, "99 responses are not yet a baseline")
        let enough = machine.observeBaseline(responses.suffix(1))
        #expect(enough)
        let r1 = machine.endBaseline()
        #expect(r1 == nil)
        #expect(machine.shares == ["v1": 0.5, "v2": 0.5])
        machine.faultRequested()
        return machine
    }

    /// v1 fails `errors` times in turn with v2, then only v2 answers until v1 is taken as ejected.
    func eject(after errors: Int, _ machine: inout Machine, _ clock: inout SyntheticResponses) {
        let r2 = machine.observeAfterFault(clock.roundRobin(errors, ["v1", "v2"]) { $0 == "v1" ? 503 : 200 })
        #expect(!r2)
        // Silent for 20 responses at a share of a half (the last round's v2 and 19 more): ejected with probability
        // above 1 - 10^-6.
        for i in 1...19 {
            let decided = machine.observeAfterFault([clock.next("v2")])
            #expect(decided == (i == 19), "decided after \(i + 1) responses from elsewhere")
        }
        #expect(machine.ejected && machine.errors == errors && machine.victim == "v1")
    }

    /// A gRPC call's UNAVAILABLE is the fault's 503 (Envoy counts it so): the victim is found by it, and its errors
    /// count toward ejection whether 5xx or gateway errors are counted.
    @Test func aGRPCUnavailableIsTheInjectedErrorAndCounts() {
        for counted in [OutlierExpectation.Counted.serverErrors, .gatewayErrors] {
            var e = declared()
            e.counted = counted
            var clock = SyntheticResponses(rate: 200)
            var machine = afterBaseline(e, &clock)
            _ = machine.observeAfterFault(clock.roundRobin(5, ["v1", "v2"]) { $0 == "v1" ? ResponseCode.grpc(.unavailable) : ResponseCode.grpc(.ok) })
            #expect(machine.victim == "v1" && machine.errors == 5, "\(counted)")
        }
        // A gRPC status Envoy maps to a 4xx is no 5xx.
        #expect(!declared().counts(ResponseCode.grpc(.notFound)) && declared().counts(ResponseCode.grpc(.internal)))
    }

    /// Only v2 answers until `seconds` after v1's last response, then v1 does.
    func returnAfter(_ seconds: Double, _ machine: inout Machine, _ clock: inout SyntheticResponses) {
        let ejectedAt = machine.lastVictim!
        let r3 = machine.observeReturn(clock.until(ejectedAt + seconds, from: "v2"))
        #expect(!r3)
        let r4 = machine.observeReturn([clock.next("v1")])
        #expect(r4)
        _ = machine.endReturn(now: clock.now)
    }

    /// v1 ejected after the declared 5 errors, and the wait for its return begun.
    func ejectedV1() -> (Machine, SyntheticResponses) {
        var clock = SyntheticResponses(rate: 200)
        var machine = afterBaseline(declared(), &clock)
        eject(after: 5, &machine, &clock)
        _ = machine.endEjection(now: clock.now)
        return (machine, clock)
    }

    /// The checks of a run where v1 is ejected after `errors` and answers again `backAfter` seconds after its last
    /// response.
    func judged(ejectedAfter errors: Int, backAfter seconds: Double) -> [ProcedureCheck] {
        var clock = SyntheticResponses(rate: 200)
        var machine = afterBaseline(declared(), &clock)
        eject(after: errors, &machine, &clock)
        _ = machine.endEjection(now: clock.now)
        returnAfter(seconds, &machine, &clock)
        return machine.checks(requests: clock.sent)
    }

    func summary(_ checks: [ProcedureCheck]) -> String {
        checks.map { "\($0.passed ? "PASS" : "FAIL") \($0.name): \($0.reason ?? "") \($0.evidence)" }.joined(separator: "\n")
    }

    @Test func anEjectionAsDeclaredPassesEveryCheck() {
        var clock = SyntheticResponses(rate: 200)
        var machine = afterBaseline(declared(), &clock)
        eject(after: 5, &machine, &clock)
        let findings = machine.endEjection(now: clock.now)
        #expect(findings.map(\.what) == ["v1 answers 503: its first error", "v1 ejected after 5 consecutive errors (its last response)"])
        #expect(machine.stage == .awaitingReturn)
        #expect(machine.returnDeadline == machine.lastVictim! + 6.5, "the ejection time, the sweep, then 5 s")
        returnAfter(1.2, &machine, &clock)
        let checks = machine.checks(requests: clock.sent)
        #expect(checks.map(\.name) == ["ejected after 5 consecutive 5xx", "received nothing while ejected (1.000 s)",
                                       "back after the ejection time (by 1.500 s)"])
        #expect(checks.allSatisfy { $0.passed && $0.decided && $0.reason == nil }, "\(summary(checks))")
        #expect(checks.allSatisfy { $0.requests == clock.sent })
        #expect(checks[2].evidence["ejected_for_s"] == 1.2, "\(summary(checks))")
    }

    @Test func aWorkloadThatKeepsReceivingRequestsFailsEveryCheck() {
        var clock = SyntheticResponses(rate: 200)
        var machine = afterBaseline(declared(), &clock)
        // 25 errors (the limit: 5 + 20) with v2 answering in between: never silent long enough.
        let r5 = machine.observeAfterFault(clock.roundRobin(24, ["v1", "v2"]) { $0 == "v1" ? 503 : 200 })
        #expect(!r5)
        let r6 = machine.observeAfterFault([clock.next("v1", 503)])
        #expect(r6, "decided at the error limit")
        #expect(!machine.ejected && machine.errors == 25)
        let findings = machine.endEjection(now: clock.now)
        #expect(findings.last?.what == "v1 still receiving requests after 25 consecutive errors")
        #expect(machine.stage == .done)
        let checks = machine.checks(requests: clock.sent)
        // One failure: the checks that time an ejection have nothing to time and are not judged (no knock-on FAILs).
        #expect(checks.count == 3 && !checks[0].passed && checks[0].decided, "\(summary(checks))")
        #expect(checks[0].reason == "v1 kept receiving requests after 25 consecutive errors (declared: ejected after 5): outlier detection is looser, or off")
        #expect(checks.dropFirst().allSatisfy { !$0.passed && !$0.decided && $0.reason == "not judged: no ejection of v1 was seen (see the check above)" },
                "\(summary(checks))")
    }

    /// The phase ended (its wait ran out) before the victim made the declared errors: nothing shows it was not
    /// ejected (the trial's slow neighbour held the check's one request at a time).
    @Test func fewerErrorsThanDeclaredAndNoEjectionIsUndecided() {
        var clock = SyntheticResponses(rate: 200)
        var machine = afterBaseline(declared(), &clock)
        _ = machine.observeAfterFault(clock.roundRobin(4, ["v1", "v2"]) { $0 == "v1" ? 503 : 200 })
        _ = machine.endEjection(now: clock.now)
        let checks = machine.checks(requests: clock.sent)
        #expect(!checks[0].passed && !checks[0].decided, "\(summary(checks))")
        #expect(checks[0].reason?.hasPrefix("v1 made 4 consecutive errors before the phase ended (declared: ejected after 5): too few requests") == true,
                "\(summary(checks))")
    }

    /// After the declared errors the victim went half the ejection time without a request while the other workload
    /// answered (too slowly to reach the silence threshold): it may have been ejected and returned. UNDECIDED, not
    /// "looser" on the errors counted across the gap.
    @Test func aLongGapAfterTheDeclaredErrorsIsUndecidedNotLooser() {
        var clock = SyntheticResponses(rate: 200)
        var machine = afterBaseline(declared(), &clock)
        _ = machine.observeAfterFault(clock.roundRobin(5, ["v1", "v2"]) { $0 == "v1" ? 503 : 200 })
        // One slow answer from v2, 0.6 s later (the clock jumps: one response), then v1 fails again, 5 more times.
        var slow = clock.next("v2")
        slow.at += 0.6
        _ = machine.observeAfterFault([slow])
        let later = (0..<5).flatMap { _ in [OutlierDetectionCheck.Response(at: slow.at + 0.01, destination: "v1", status: 503),
                                            OutlierDetectionCheck.Response(at: slow.at + 0.02, destination: "v2", status: 200)] }
        _ = machine.observeAfterFault(later)
        _ = machine.endEjection(now: slow.at + 1)
        let checks = machine.checks(requests: clock.sent)
        #expect(machine.errors == 10 && !machine.ejected)
        #expect(!checks[0].passed && !checks[0].decided, "\(summary(checks))")
        #expect(checks[0].reason?.contains("received none for 0.6") == true && checks[0].reason?.contains("may have been ejected and returned") == true,
                "\(summary(checks))")
        #expect(checks[0].evidence["longest_gap_after_declared_s"] ?? 0 >= 0.6, "\(summary(checks))")
    }

    @Test func aSilenceShorterThanTheThresholdIsNoEjection() {
        var clock = SyntheticResponses(rate: 200)
        var machine = afterBaseline(declared(), &clock)
        _ = machine.observeAfterFault(clock.roundRobin(5, ["v1", "v2"]) { $0 == "v1" ? 503 : 200 })
        // The round's last v2 and 18 more: 19 responses from elsewhere, one short of the threshold.
        let r7 = machine.observeAfterFault((0..<18).map { _ in clock.next("v2") })
        #expect(!r7)
        #expect(machine.sinceVictim == 19)
        // v1 answers again: its count goes on, and the silence starts over.
        let r8 = machine.observeAfterFault([clock.next("v1", 503)])
        #expect(!r8)
        #expect(!machine.ejected && machine.errors == 6 && machine.sinceVictim == 0)
    }

    @Test func anEjectionAfterMoreOrFewerErrorsFailsNamingTheLimit() {
        for (errors, word) in [(10, "looser"), (3, "tighter")] {
            let checks = judged(ejectedAfter: errors, backAfter: 1.2)
            #expect(!checks[0].passed && checks[0].evidence == ["consecutive_errors": Double(errors), "declared": 5], "\(summary(checks))")
            #expect(checks[0].reason == "v1 was ejected after \(errors) consecutive errors, not 5: the proxy's limit is \(word)")
            #expect(checks[1].passed && checks[2].passed, "\(summary(checks))")
        }
    }

    @Test func aReturnBeforeTheEjectionTimeFailsTheQuietCheck() {
        let checks = judged(ejectedAfter: 5, backAfter: 0.5)
        #expect(checks[0].passed && checks[2].passed, "\(summary(checks))")
        #expect(!checks[1].passed && checks[1].decided, "\(summary(checks))")
        #expect(checks[1].reason == "v1 received a request 0.500 s after its ejection, before the ejection time of 1.000 s")
    }

    @Test func aReturnLaterThanTheEjectionTimeAndSweepFailsTheReturnCheck() {
        let checks = judged(ejectedAfter: 5, backAfter: 3)
        #expect(checks[0].passed && checks[1].passed, "\(summary(checks))")
        #expect(!checks[2].passed && checks[2].reason == "v1 came back after 3.000 s, later than the ejection time plus one interval (1.500 s)",
                "\(summary(checks))")
        #expect(checks[2].evidence["slack_s"] == 0.11, "a tenth of the ejection time and one gap between v1's requests")
    }

    /// Timed on a machine that ran late, a return outside its window by no more than the lag is no evidence: the
    /// check is UNDECIDED and names the lag; outside by more, it still fails.
    @Test func aReturnOutsideItsWindowByLessThanTheMachinesLagIsUndecided() {
        var (machine, clock) = ejectedV1()
        returnAfter(1.8, &machine, &clock)
        // Past the window (1.5 s and 0.11 s of slack) by 0.19 s.
        let late = machine.checks(requests: clock.sent, lag: 0.25)
        #expect(late[0].passed && late[1].passed, "\(summary(late))")
        #expect(!late[2].passed && !late[2].decided, "\(summary(late))")
        #expect(late[2].reason == "v1 came back after 1.800 s, later than the ejection time plus one interval (1.500 s) while this machine ran up to 250 ms late: too busy a machine to tell a late return from a late request",
                "\(summary(late))")
        #expect(late[2].evidence["machine_lag_s"] == 0.25)
        let lagging = machine.checks(requests: clock.sent, lag: 0.1)
        #expect(!lagging[2].passed && lagging[2].decided, "a lag shorter than the overrun: \(summary(lagging))")
        let early = judged(ejectedAfter: 5, backAfter: 3).map { $0.decided }
        #expect(early == [true, true, true], "no lag: decided")
    }

    @Test func aReturnBeforeTheEjectionTimeByLessThanTheMachinesLagIsUndecided() {
        var (machine, clock) = ejectedV1()
        returnAfter(0.8, &machine, &clock)
        let checks = machine.checks(requests: clock.sent, lag: 0.3)
        #expect(!checks[1].passed && !checks[1].decided, "\(summary(checks))")
        #expect(checks[1].reason?.hasSuffix("while this machine ran up to 300 ms late: too busy a machine to tell an early return from a late reading") == true,
                "\(summary(checks))")
        let decided = machine.checks(requests: clock.sent, lag: 0.1)
        #expect(!decided[1].passed && decided[1].decided, "\(summary(decided))")
    }

    /// The machine's lag is also what the responses show: a stall in them while the return is timed (no request
    /// went out for 0.4 s) widens the window as the generator's own timer lag does.
    @Test func aStallInTheResponsesWhileTheReturnIsTimedCountsAsLag() {
        var (machine, clock) = ejectedV1()
        let ejectedAt = machine.lastVictim!
        let before = machine.observeReturn(clock.until(ejectedAt + 1.4, from: "v2"))
        #expect(!before)
        // 80 requests' time without a response, then v1 at 1.8 s.
        for _ in 0..<80 { _ = clock.next(nil) }
        let back = machine.observeReturn([clock.next("v1")])
        #expect(back)
        #expect(abs(machine.returnStall - 0.4) < 0.006, "\(machine.returnStall)")
        let checks = machine.checks(requests: clock.sent)
        #expect(!checks[2].passed && !checks[2].decided && checks[2].reason?.contains("ran up to 400 ms late") == true, "\(summary(checks))")
    }

    @Test func aReturnWithinTheSlackPasses() {
        let checks = judged(ejectedAfter: 5, backAfter: 1.6)
        #expect(checks.allSatisfy { $0.passed }, "\(summary(checks))")
    }

    @Test func aWorkloadThatNeverComesBackFailsTheReturnCheck() {
        var clock = SyntheticResponses(rate: 200)
        var machine = afterBaseline(declared(), &clock)
        eject(after: 5, &machine, &clock)
        _ = machine.endEjection(now: clock.now)
        let deadline = machine.returnDeadline!
        let r9 = machine.observeReturn(clock.until(deadline, from: "v2"))
        #expect(!r9)
        let r10 = machine.endReturn(now: clock.now)
        #expect(r10.map(\.what) == ["v1 not back"])
        let checks = machine.checks(requests: clock.sent)
        #expect(checks[0].passed && checks[1].passed, "\(summary(checks))")
        #expect(!checks[2].passed && checks[2].reason == "v1 did not come back within 6.5 s of its ejection (the fault was cleared)")
        #expect(checks[2].evidence["ejected_for_s"] == nil)
    }

    @Test func gatewayErrorsCountOnlyGatewayStatuses() {
        var e = declared()
        e.counted = .gatewayErrors
        var clock = SyntheticResponses(rate: 200)
        var machine = afterBaseline(e, &clock)
        _ = machine.observeAfterFault(clock.roundRobin(4, ["v1", "v2"]) { $0 == "v1" ? 503 : 200 })
        #expect(machine.errors == 4)
        _ = machine.observeAfterFault([clock.next("v1", 500)])
        #expect(machine.errors == 0, "a 500 is not a gateway error: the run of errors starts over")
        #expect(machine.checks(requests: 0)[0].name == "ejected after 5 consecutive gateway errors")
    }

    @Test func noResponseBeforeTheFaultIsUndecided() {
        var machine = Machine(declared())
        let enough = machine.observeBaseline([])
        #expect(!enough)
        let r11 = machine.endBaseline()
        #expect(r11 == .noResponse)
        let check = machine.baselineCheck(.noResponse, failures: ": connection refused", absence: "version stamp", requests: 3)
        #expect(!check.decided && !check.passed && check.name == "healthy before the fault")
        #expect(check.reason == "no response before the fault: connection refused: the service is unreachable")
        #expect(check.requests == 3 && check.evidence == ["requests": 3, "failed": 0])
    }

    @Test func failuresBeforeTheFaultAreUndecided() {
        var clock = SyntheticResponses(rate: 200)
        var machine = Machine(declared())
        _ = machine.observeBaseline(clock.roundRobin(49, ["v1", "v2"]) + [clock.next("v1"), clock.next("v2", 502)])
        let r12 = machine.endBaseline()
        #expect(r12 == .failing(1))
        let check = machine.baselineCheck(.failing(1), failures: "", absence: "version stamp", requests: 0)
        #expect(!check.decided)
        #expect(check.reason == "1 of 100 responses failed before any fault was set: the service must be healthy for this check")
        #expect(check.requests == 100 && check.evidence["failed"] == 1, "at least the baseline's responses")
    }

    @Test func responsesThatNameNoWorkloadAreUndecided() {
        var clock = SyntheticResponses(rate: 200)
        var machine = Machine(declared())
        _ = machine.observeBaseline(clock.roundRobin(100, [nil]))
        let r13 = machine.endBaseline()
        #expect(r13 == .noDestination)
        let check = machine.baselineCheck(.noDestination, failures: "", absence: "version stamp", requests: 100)
        #expect(!check.decided)
        #expect(check.reason == "no response carried the version stamp: the workloads behind the proxy cannot be told apart")
    }

    @Test func aFaultNoResponseShowsIsUndecided() {
        var clock = SyntheticResponses(rate: 200)
        var machine = afterBaseline(declared(), &clock)
        // The fault's workload is not behind this proxy: everyone keeps answering 200.
        let r14 = machine.observeAfterFault(clock.roundRobin(200, ["v1", "v2"]))
        #expect(!r14)
        let r15 = machine.endEjection(now: clock.now)
        #expect(r15.isEmpty && machine.stage == .done)
        let checks = machine.checks(requests: clock.sent)
        #expect(checks.count == 1 && !checks[0].decided && checks[0].name == "the failing workload is seen")
        #expect(checks[0].reason == "no response carried the injected 503 (UNAVAILABLE for a gRPC call) from a recognisable workload: the fault target is not behind this proxy, or its replies carry no stamp")
        #expect(checks[0].evidence == ["requests": Double(clock.sent)])
    }

    @Test func theSilenceThresholdGrowsAsTheShareShrinks() {
        #expect(OutlierDetectionCheck.silenceThreshold(share: 0.5) == 20)
        #expect(OutlierDetectionCheck.silenceThreshold(share: 0.1) == 132)
        #expect(OutlierDetectionCheck.silenceThreshold(share: 0.9) == 10, "never fewer than 10")
        #expect(OutlierDetectionCheck.silenceThreshold(share: 1) == 20, "a lone destination: 20")
    }
}

@Suite struct MaxEjectionStateMachineTests {
    typealias Machine = OutlierDetectionCheck.MaxEjectionStateMachine

    func declared(maxPercent: Double) -> OutlierExpectation {
        var e = OutlierExpectation(consecutiveErrors: 5, source: "test")
        e.baseEjectionTime = 1
        e.interval = 0.5
        e.maxEjectionPercent = maxPercent
        return e
    }

    /// Both workloads fail after a healthy baseline; `proxy` answers for the faults' phase.
    func failBoth(maxPercent: Double, _ proxy: (inout SyntheticResponses, inout Machine) -> Void) -> (Machine, SyntheticResponses) {
        var clock = SyntheticResponses(rate: 200)
        var machine = Machine(declared(maxPercent: maxPercent), failing: 2)
        let r16 = machine.observeBaseline(clock.roundRobin(50, ["v1", "v2"]))
        #expect(r16)
        machine.faultsRequested()
        #expect(machine.endpoints == 2)
        proxy(&clock, &machine)
        return (machine, clock)
    }

    @Test func ejectingBothWhenHalfIsAllowedFailsAsLooser() {
        var (machine, clock) = failBoth(maxPercent: 50) { clock, machine in
            let r17 = machine.observeFailing(clock.roundRobin(5, ["v1", "v2"]) { _ in 503 })
            #expect(!r17)
            // Both ejected: the proxy answers for itself, with no workload's stamp.
            let r18 = machine.observeFailing((0..<19).map { _ in clock.next(nil, 503) })
            #expect(!r18)
            let r19 = machine.observeFailing([clock.next(nil, 503)])
            #expect(r19, "both silent for 20 responses")
        }
        let r20 = machine.faultsCleared()
        #expect(r20 == "2 of 2 endpoints ejected at once (v1, v2); faults cleared")
        let r21 = machine.observeRecovery([clock.next("v1")])
        #expect(!r21)
        #expect(machine.recovery == "not back: v2")
        let r22 = machine.observeRecovery([clock.next("v2")])
        #expect(r22)
        #expect(machine.recovery == "all 2 endpoints back")
        let check = machine.check(requests: clock.sent)
        #expect(check.name == "at most 50% ejected at once (1 of 2)")
        #expect(!check.passed && check.reason == "2 of 2 endpoints were ejected at once; 50% allows 1: the proxy's maximum is looser")
        #expect(check.evidence == ["ejected_at_once": 2, "allowed": 1, "endpoints": 2, "failing": 2])
    }

    @Test func ejectingOneWhenHalfIsAllowedPasses() {
        let (machine, clock) = failBoth(maxPercent: 50) { clock, machine in
            _ = machine.observeFailing(clock.roundRobin(5, ["v1", "v2"]) { _ in 503 })
            // v1 ejected; v2 keeps failing until the error limit (25).
            let r23 = machine.observeFailing((0..<19).map { _ in clock.next("v2", 503) })
            #expect(!r23)
            let r24 = machine.observeFailing([clock.next("v2", 503)])
            #expect(r24, "v1 silent, v2 at the limit")
        }
        #expect(machine.maxEjected == 1 && machine.ejectedNames == ["v1"])
        let check = machine.check(requests: clock.sent)
        #expect(check.passed && check.reason == nil, "\(check)")
    }

    @Test func ejectingNoneFailsNamingWhatIsAllowed() {
        let (machine, clock) = failBoth(maxPercent: 50) { clock, machine in
            let r25 = machine.observeFailing(clock.roundRobin(24, ["v1", "v2"]) { _ in 503 })
            #expect(!r25)
            let r26 = machine.observeFailing(clock.roundRobin(1, ["v1", "v2"]) { _ in 503 })
            #expect(r26, "both at the error limit")
        }
        let check = machine.check(requests: clock.sent)
        #expect(!check.passed && check.reason == "only 0 of the 2 failing endpoints were ejected at once; 50% of 2 allows 1")
    }

    @Test func theMostEjectedAtOnceIsKeptWhenEndpointsComeBack() {
        var (machine, _) = failBoth(maxPercent: 100) { clock, machine in
            _ = machine.observeFailing(clock.roundRobin(5, ["v1", "v2"]) { _ in 503 })
            _ = machine.observeFailing((0..<20).map { _ in clock.next(nil, 503) })
            // Back, and failing again: the two at once stays the maximum.
            _ = machine.observeFailing(clock.roundRobin(2, ["v1", "v2"]) { _ in 503 })
        }
        #expect(machine.maxEjected == 2)
        #expect(machine.check(requests: 0).passed)
        _ = machine.faultsCleared()
        let back = machine.observeRecovery([OutlierDetectionCheck.Response(at: 9, destination: "v1", status: 503)])
        #expect(!back, "an error is not a return")
    }
}
