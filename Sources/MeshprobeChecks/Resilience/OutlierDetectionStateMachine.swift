import Foundation
import MeshprobeIdentity
import MeshprobePolicy
import MeshprobeSpec
import MeshprobeYAML

extension OutlierDetectionCheck {
    /// One response the check saw: `at` seconds after its phase began, from the workload its stamp names (nil: no
    /// recognisable stamp), with its status.
    public struct Response: Sendable, Equatable {
        public var at: Double
        public var destination: String?
        public var status: Int

        public init(at: Double, destination: String?, status: Int) {
            self.at = at
            self.destination = destination
            self.status = status
        }
    }

    /// Responses the baseline waits for before the fault: a second's worth at the check's rate, 20 to 100.
    static func baselineCount(_ e: OutlierExpectation) -> Int { max(20, min(100, Int(e.rate))) }

    /// How long the baseline may wait for its responses (a busy machine may take seconds to start the load).
    static let baselineSeconds = 10.0

    /// Consecutive errors after which a workload still receiving requests counts as not ejected.
    static func errorLimit(_ e: OutlierExpectation) -> Int { max(3 * e.consecutiveErrors, e.consecutiveErrors + 20) }

    /// How long after its ejection an endpoint may take to come back before it counts as not back.
    static func returnWait(_ e: OutlierExpectation) -> Double { e.ejectionWindow.latest + max(5, e.baseEjectionTime) }

    /// Each destination's share of the responses that carried one.
    static func shareByDestination(_ responses: [Response]) -> [String: Double] {
        var counts: [String: Int] = [:]
        for r in responses { if let d = r.destination { counts[d, default: 0] += 1 } }
        let total = Double(counts.values.reduce(0, +))
        return counts.mapValues { Double($0) / total }
    }

    /// The first phase's decisions: one workload made to fail, whether the proxy ejects it after the declared errors
    /// and brings it back after the ejection time.
    ///
    /// Events in (responses, the fault set, the end of a wait), decisions out: whether the current wait is over, the
    /// timeline's findings and the checks. Time is the responses' `at` and the `now` given, so it runs under any clock.
    /// The owner (`OutlierDetectionCheck.run`) runs the load, sets and clears the fault, and feeds what it sees.
    public struct EjectionStateMachine: Sendable {
        public enum Stage: Sendable, Equatable {
            /// Before the fault: every destination's share of a healthy service.
            case baseline
            /// The fault is set: who fails, and whether it stops receiving requests.
            case ejection
            /// The victim was ejected: when it receives a request again.
            case awaitingReturn
            case done
        }

        /// Why the check cannot judge before any fault is set.
        public enum BaselineProblem: Sendable, Equatable {
            case noResponse
            case noDestination
            case failing(Int)
        }

        public let expectation: OutlierExpectation
        public private(set) var stage = Stage.baseline
        public private(set) var baseline: [Response] = []
        public private(set) var shares: [String: Double] = [:]
        /// The first destination that answered the injected status.
        public private(set) var victim: String?
        public private(set) var firstError: Double?
        /// The code of the victim's first error (`ResponseCode`: 503, or UNAVAILABLE for a gRPC call).
        var firstErrorCode: Int?
        /// The victim's consecutive errors so far.
        public private(set) var errors = 0
        /// When the victim last answered.
        public private(set) var lastVictim: Double?
        /// Responses after the victim's last.
        public private(set) var sinceVictim = 0
        /// The longest the victim went without a response once it had made the declared errors, with another
        /// workload answering meanwhile (seconds): an ejection the silence rule could not confirm (the others too slow
        /// to show enough responses in it) may hide in such a gap.
        public private(set) var gapAfterDeclared = 0.0
        public private(set) var ejected = false
        /// When the victim answered again after its ejection.
        public private(set) var backAt: Double?
        /// When the last response (from any destination) was seen.
        public private(set) var lastAt: Double?
        /// From the victim's ejection to its return, the most a response came later than the check's pace (seconds
        /// past the gap between requests): how late the machine ran (the generator, the proxy) while the return was
        /// timed.
        public private(set) var returnStall = 0.0

        public init(_ expectation: OutlierExpectation) {
            self.expectation = expectation
        }

        public var errorLimit: Int { OutlierDetectionCheck.errorLimit(expectation) }

        /// The load's duration cap: the baseline, the errors at a quarter of the rate, and the ejection and return.
        public var loadCap: Double {
            let e = expectation
            return 10 + Double(errorLimit) / e.rate * 4 + e.ejectionWindow.latest + max(5, e.baseEjectionTime) + 1
        }

        /// When the wait for an ejection ends, given when the fault was set.
        public func ejectionDeadline(faultSetAt: Double) -> Double { faultSetAt + 2 + Double(errorLimit) / expectation.rate * 4 }

        /// When the wait for the victim's return ends (its last response plus the longest return), nil before.
        public var returnDeadline: Double? { lastVictim.map { $0 + OutlierDetectionCheck.returnWait(expectation) } }

        /// Adds responses before the fault; true once the baseline has enough.
        public mutating func observeBaseline(_ responses: some Sequence<Response>) -> Bool {
            precondition(stage == .baseline)
            baseline += responses
            return baseline.count >= OutlierDetectionCheck.baselineCount(expectation)
        }

        /// Ends the baseline: each destination's share, and why the check cannot judge (nil: it can).
        public mutating func endBaseline() -> BaselineProblem? {
            precondition(stage == .baseline)
            shares = OutlierDetectionCheck.shareByDestination(baseline)
            let failing = baseline.filter { !ResponseCode.succeeded($0.status) }.count
            if baseline.isEmpty { return .noResponse }
            if failing > 0 { return .failing(failing) }
            if shares.isEmpty { return .noDestination }
            return nil
        }

        /// The UNDECIDED check for a baseline problem; `failures` is the load's failure summary (may be empty),
        /// `absence` what a response lacks that no destination could be told.
        public func baselineCheck(_ problem: BaselineProblem, failures: String, absence: String, requests: Int) -> ProcedureCheck {
            let failing: Int
            let reason: String
            switch problem {
            case .noResponse:
                failing = 0
                reason = "no response before the fault\(failures): the service is unreachable"
            case .failing(let n):
                failing = n
                reason = "\(n) of \(baseline.count) responses failed before any fault was set\(failures): the service must be healthy for this check"
            case .noDestination:
                failing = 0
                reason = "no response carried the \(absence): the workloads behind the proxy cannot be told apart"
            }
            let requests = max(baseline.count, requests)
            return ProcedureCheck(name: "healthy before the fault", passed: false, decided: false, reason: reason,
                                  evidence: ["requests": Double(requests), "failed": Double(failing)], requests: requests)
        }

        /// The fault is asked for: the responses fed from now on count as answered under it.
        public mutating func faultRequested() {
            precondition(stage == .baseline)
            stage = .ejection
        }

        /// Adds responses after the fault; true once decided (the victim ejected, or still receiving at the limit).
        public mutating func observeAfterFault(_ responses: some Sequence<Response>) -> Bool {
            precondition(stage == .ejection)
            for r in responses {
                lastAt = r.at
                // A gRPC call's injected UNAVAILABLE is the 503 (Envoy maps a status in the headers to it).
                if victim == nil, let d = r.destination, ResponseCode.httpEquivalent(r.status) == expectation.injectedStatus {
                    victim = d
                    firstError = r.at
                    firstErrorCode = r.status
                }
                guard let v = victim else { continue }
                if r.destination == v {
                    if errors >= expectation.consecutiveErrors, sinceVictim > 0, let last = lastVictim {
                        gapAfterDeclared = max(gapAfterDeclared, r.at - last)
                    }
                    errors = expectation.counts(r.status) ? errors + 1 : 0
                    lastVictim = r.at
                    sinceVictim = 0
                } else {
                    sinceVictim += 1
                }
            }
            guard let v = victim else { return false }
            if sinceVictim >= OutlierDetectionCheck.silenceThreshold(share: shares[v] ?? 0.5) {
                ejected = true
                return true
            }
            return errors >= errorLimit
        }

        /// Ends the wait for an ejection at `now`: the timeline's findings. Without a victim the check is over.
        public mutating func endEjection(now: Double) -> [Event] {
            precondition(stage == .ejection)
            guard let victim else {
                stage = .done
                return []
            }
            var events: [Event] = []
            let e = expectation
            if let firstError { events.append(Event(at: firstError, what: "\(victim) answers \(ResponseCode.text(firstErrorCode ?? e.injectedStatus)): its first error")) }
            if ejected {
                events.append(Event(at: lastVictim ?? now, what: "\(victim) ejected after \(errors) consecutive errors (its last response)"))
                stage = .awaitingReturn
            } else {
                events.append(Event(at: now, what: errors > e.consecutiveErrors
                    ? "\(victim) still receiving requests after \(errors) consecutive errors"
                    : "no ejection of \(victim) seen after its \(errors) consecutive error\(errors == 1 ? "" : "s") (the wait ended)"))
                stage = .done
            }
            return events
        }

        /// Adds responses after the ejection; true once the victim answered again.
        public mutating func observeReturn(_ responses: some Sequence<Response>) -> Bool {
            precondition(stage == .awaitingReturn)
            guard backAt == nil, let victim else { return backAt != nil }
            for r in responses {
                if let lastAt { returnStall = max(returnStall, r.at - lastAt - 1 / expectation.rate) }
                lastAt = r.at
                if r.destination == victim {
                    backAt = r.at
                    break
                }
            }
            return backAt != nil
        }

        /// Ends the wait for the victim's return at `now`: the timeline's finding.
        public mutating func endReturn(now: Double) -> [Event] {
            precondition(stage == .awaitingReturn)
            stage = .done
            guard let victim else { return [] }
            if let backAt, let lastVictim {
                return [Event(at: backAt, what: String(format: "%@ back after %.3f s", victim, backAt - lastVictim))]
            }
            return [Event(at: now, what: "\(victim) not back")]
        }

        /// The phase's checks, each with the phase's `requests`: an UNDECIDED one when no workload was seen failing,
        /// else the error count, the quiet time and the return. `lag` (seconds) is the generator's own worst timer lag
        /// in the phase; the machine's lag is the larger of it and `returnStall`.
        public func checks(requests: Int, lag: Double = 0) -> [ProcedureCheck] {
            let e = expectation
            guard let victim else {
                return [ProcedureCheck(name: "the failing workload is seen", passed: false, decided: false,
                                       reason: "no response carried the injected \(e.injectedStatus) (UNAVAILABLE for a gRPC call) from a recognisable workload: the fault target is not behind this proxy, or its replies carry no stamp",
                                       evidence: ["requests": Double(requests)], requests: requests)]
            }
            let resolution = 1 / (e.rate * max(shares[victim] ?? 0.5, 0.01))
            let ejectedFor = backAt.flatMap { back in lastVictim.map { back - $0 } }
            return OutlierDetectionCheck.evaluateEjection(e, victim: victim, errors: errors, ejected: ejected, ejectedFor: ejectedFor,
                                                          resolution: resolution, lag: max(lag, returnStall),
                                                          gapAfterDeclared: gapAfterDeclared).map { check in
                var c = check
                c.requests = requests
                return c
            }
        }
    }

    /// The second phase's decisions: every fault target fails at once, and no more endpoints may be ejected at the
    /// same time than the declared percent allows. Events in, decisions out, as `EjectionStateMachine`.
    public struct MaxEjectionStateMachine: Sendable {
        public enum Stage: Sendable, Equatable {
            case baseline
            /// Every target fails: how many endpoints are silent at once.
            case failing
            /// The faults are cleared: whether every endpoint answers again.
            case recovering
        }

        public let expectation: OutlierExpectation
        /// Workloads made to fail.
        public let failing: Int
        public private(set) var stage = Stage.baseline
        public private(set) var baseline: [Response] = []
        public private(set) var shares: [String: Double] = [:]
        /// Per destination: consecutive errors, and the position (among the responses after the faults) of its last
        /// response.
        var errors: [String: Int] = [:]
        var last: [String: Int] = [:]
        /// Responses after the faults.
        var seen = 0
        /// The most endpoints silent at once, and which.
        public private(set) var maxEjected = 0
        public private(set) var ejectedNames: Set<String> = []
        /// Endpoints that answered 2xx/3xx after the faults were cleared.
        public private(set) var back: Set<String> = []

        public init(_ expectation: OutlierExpectation, failing: Int) {
            self.expectation = expectation
            self.failing = failing
        }

        public var endpoints: Int { shares.count }

        /// How long every target fails: its errors up to the limit, at half the rate, for each target.
        public var window: Double { 3 + Double(OutlierDetectionCheck.errorLimit(expectation) * failing) / expectation.rate * 2 }

        /// The load's duration cap: the baseline, the window, then the wait for every endpoint to come back.
        public var loadCap: Double { 10 + window + OutlierDetectionCheck.returnWait(expectation) + 1 }

        /// Adds responses before the faults; true once the baseline has enough.
        public mutating func observeBaseline(_ responses: some Sequence<Response>) -> Bool {
            precondition(stage == .baseline)
            baseline += responses
            return baseline.count >= OutlierDetectionCheck.baselineCount(expectation)
        }

        /// The faults are asked for: the baseline's shares are the endpoints, and the responses fed from now on count as answered under them.
        public mutating func faultsRequested() {
            precondition(stage == .baseline)
            shares = OutlierDetectionCheck.shareByDestination(baseline)
            stage = .failing
        }

        /// Adds responses while every target fails; true once each endpoint is ejected or failed far past the limit.
        public mutating func observeFailing(_ responses: some Sequence<Response>) -> Bool {
            precondition(stage == .failing)
            for r in responses {
                defer { seen += 1 }
                guard let d = r.destination else { continue }
                errors[d] = expectation.counts(r.status) ? errors[d, default: 0] + 1 : 0
                last[d] = seen
            }
            let newest = seen - 1
            // An endpoint not heard from since the faults counts from the first response after them.
            let silent = shares.keys.filter { d in newest - last[d, default: 0] >= OutlierDetectionCheck.silenceThreshold(share: shares[d]!) }
            if silent.count > maxEjected {
                maxEjected = silent.count
                ejectedNames = Set(silent)
            }
            let limit = OutlierDetectionCheck.errorLimit(expectation)
            return shares.keys.allSatisfy { d in silent.contains(d) || errors[d, default: 0] >= limit }
        }

        /// The faults are cleared: the timeline's finding.
        public mutating func faultsCleared() -> String {
            precondition(stage == .failing)
            stage = .recovering
            return "\(maxEjected) of \(endpoints) endpoints ejected at once\(ejectedNames.isEmpty ? "" : " (\(ejectedNames.sorted().joined(separator: ", ")))"); faults cleared"
        }

        /// Adds responses after the faults were cleared; true once every endpoint answered again.
        public mutating func observeRecovery(_ responses: some Sequence<Response>) -> Bool {
            precondition(stage == .recovering)
            for r in responses where ResponseCode.succeeded(r.status) { if let d = r.destination { back.insert(d) } }
            return back.isSuperset(of: shares.keys)
        }

        /// The timeline's finding at the end of the wait for every endpoint.
        public var recovery: String {
            let missing = Set(shares.keys).subtracting(back)
            return missing.isEmpty ? "all \(endpoints) endpoints back" : "not back: \(missing.sorted().joined(separator: ", "))"
        }

        /// The maximum-percent check, with the phase's `requests`.
        public func check(requests: Int) -> ProcedureCheck {
            let e = expectation
            let allowed = e.maxEjected(of: endpoints)
            let expected = min(allowed, failing)
            var reason: String?
            if maxEjected > expected {
                reason = "\(maxEjected) of \(endpoints) endpoints were ejected at once; \(YAMLValue.format(e.maxEjectionPercent))% allows \(allowed): the proxy's maximum is looser"
            } else if maxEjected < expected {
                reason = "only \(maxEjected) of the \(failing) failing endpoints were ejected at once; \(YAMLValue.format(e.maxEjectionPercent))% of \(endpoints) allows \(allowed)"
            }
            return ProcedureCheck(name: "at most \(YAMLValue.format(e.maxEjectionPercent))% ejected at once (\(allowed) of \(endpoints))",
                                  passed: reason == nil, reason: reason,
                                  evidence: ["ejected_at_once": Double(maxEjected), "allowed": Double(allowed), "endpoints": Double(endpoints),
                                             "failing": Double(failing)], requests: requests)
        }
    }
}
