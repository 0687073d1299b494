import Foundation
import MeshprobeEchoAPI
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobePolicy
import MeshprobeSpec
import MeshprobeTLS
import MeshprobeYAML
import NIOCore

/// Makes one workload fail through its echo control API and watches, request by request, what the proxy in front
/// of it does: whether it stops sending to it after the declared number of consecutive errors, sends it nothing
/// for the ejection time, brings it back after that time, and (when several workloads fail at once) ejects no
/// more than the declared percent.
///
/// Requests go one at a time at a fixed pace, so the errors before ejection are counted exactly. An endpoint counts
/// as ejected once so many responses came from elsewhere that, at its share before the fault, it would have
/// answered one of them with probability above 1 - 10^-6. Ejection is per client proxy, as connection-pool limits
/// are: a shared proxy (an ingress gateway) also counts other clients' errors.
public enum OutlierDetectionCheck {
    /// One thing that happened, `at` seconds after the check began.
    public struct Event: Sendable, Equatable {
        public var at: Double
        public var what: String
    }

    public struct Outcome: Sendable {
        public var expectation: OutlierExpectation
        public var checks: [ProcedureCheck]
        public var timeline: [Event]
        /// Requests the check sent (both phases).
        public var requests: Int
        /// Faults it set that it could not clear (they expire on their own at the time given).
        public var faultsLeft: [String]
    }

    /// Responses in arrival order, shared with the workers' event loops.
    // @unchecked: every access to the mutable state holds `lock`.
    final class Recorder: @unchecked Sendable {
        private let lock = NSLock()
        private let start: ContinuousClock.Instant
        private let recognizer: DestinationRecognizer
        private var responses: [Response] = []
        private var stopping = false

        init(start: ContinuousClock.Instant, recognizer: DestinationRecognizer) {
            self.start = start
            self.recognizer = recognizer
        }

        var now: Double { seconds(ContinuousClock.now - start) }

        func observe(_ identity: WorkloadIdentity, status: Int) -> Bool {
            let response = Response(at: now, destination: recognizer.destination(of: identity), status: status)
            return lock.withLock {
                responses.append(response)
                return stopping
            }
        }

        func stop() { lock.withLock { stopping = true } }

        /// Responses from index `from` on.
        func since(_ from: Int) -> ArraySlice<Response> { lock.withLock { responses[min(from, responses.count)...] } }

        var count: Int { lock.withLock { responses.count } }
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    /// Responses from elsewhere after which a destination with share `share` counts as ejected.
    static func silenceThreshold(share: Double) -> Int {
        guard share > 0, share < 1 else { return 20 }
        return max(10, Int((log(1e-6) / log(1 - share)).rounded(.up)))
    }

    /// A load that runs until told to stop (or its duration cap), one request at a time at the check's pace.
    static func startLoad(_ base: LoadConfiguration, expectation: OutlierExpectation, cap: Double, recorder: Recorder,
                          group: any EventLoopGroup) -> Task<LoadResult, any Error> {
        var c = base
        c.plan.model = .closed(concurrency: .constant(1), thinkTime: 1 / expectation.rate)
        c.plan.connections = 1
        c.plan.streamsPerConnection = 1
        c.plan.requests = nil
        c.plan.duration = cap
        c.plan.warmup = 0
        c.plan.churn = .reuse
        c.plan.guards = []
        c.responseObserver = { identity, status, _ in recorder.observe(identity, status: status) }
        return Task { try await LoadGenerator(configuration: c, group: group).run() }
    }

    /// Waits until `condition` holds (polling every 5 ms), the load ends, or `timeout` passes; true when it held.
    static func wait(until timeout: Double, recorder: Recorder, load: Task<LoadResult, any Error>, isDone: () -> Bool) async -> Bool {
        while recorder.now < timeout {
            if isDone() { return true }
            if Task.isCancelled { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return isDone()
    }

    /// - Parameter ledger: records every fault set and cleared, so a caller can clear what is left after an abort.
    public static func run(_ e: OutlierExpectation, configuration: LoadConfiguration, recognizer: DestinationRecognizer,
                           controlTLS: TLSContextSource?, ledger: FaultLedger = FaultLedger(), group: any EventLoopGroup) async throws -> Outcome {
        guard !e.faultTargets.isEmpty else {
            throw LoadPlanError(field: "outlierDetection.faultTargets", value: "",
                                         reason: "outlier detection needs the address of a workload to make fail")
        }
        var clients: [FaultClient] = []
        for url in e.faultTargets {
            do { clients.append(try FaultClient(url: url, tlsSource: controlTLS)) } catch {
                throw LoadPlanError(field: "outlierDetection.faultTargets", value: url, reason: error.description)
            }
        }
        let start = ContinuousClock.now
        var timeline: [Event] = []
        var leftBehind: [String] = []
        let recorder = Recorder(start: start, recognizer: recognizer)
        func note(_ what: String, at: Double? = nil) { timeline.append(Event(at: ((at ?? recorder.now) * 1000).rounded() / 1000, what: what)) }
        func note(_ events: [Event]) { for event in events { note(event.what, at: event.at) } }
        let faultSeconds = min(FaultSettings.maxDurationSeconds, (e.ejectionWindow.latest + 60).rounded(.up))
        // gRPC calls get the gRPC status (an echo answers a fault with only an HTTP status as a proxy would, without
        // grpc-status); HTTP requests keep the HTTP status, and an echo older than grpcStatus is never sent it.
        let grpcStatus = configuration.plan.grpc == nil ? nil : e.injectedGRPCStatus.name
        let fault = FaultControlJSON.NewFault(status: e.injectedStatus, grpcStatus: grpcStatus, statusShare: 100, path: "/", durationSeconds: faultSeconds)

        // Phase 1: one workload fails.
        var machine = EjectionStateMachine(e)
        let load = startLoad(configuration, expectation: e, cap: machine.loadCap, recorder: recorder, group: group)
        var checks: [ProcedureCheck] = []
        var victimFault: String?
        defer { recorder.stop() }
        do {
            // Baseline: everyone answers, and each destination's share.
            _ = await wait(until: baselineSeconds, recorder: recorder, load: load) { recorder.count >= baselineCount(e) }
            let baseline = recorder.since(0)
            _ = machine.observeBaseline(baseline)
            let problem = machine.endBaseline()
            note("baseline: \(baseline.count) responses from \(machine.shares.keys.sorted().joined(separator: ", "))")
            if let problem {
                recorder.stop()
                let result = try? await load.value
                let failures = result?.failureSummary().map { ": \($0)" } ?? ""
                let check = machine.baselineCheck(problem, failures: failures, absence: recognizer.absence, requests: result?.totalRequests ?? 0)
                return Outcome(expectation: e, checks: [check], timeline: timeline, requests: check.requests, faultsLeft: [])
            }
            // Counted from before the request: the fault is in force before its answer comes back. Noted at the time it
            // was asked for, so that its first error never comes before it on the timeline.
            var scanned = recorder.count
            let askedAt = recorder.now
            machine.faultRequested()
            let set = try await ledger.set(fault, on: clients[0], group: group)
            victimFault = set.id
            note("fault \(set.id) set on \(clients[0].url): \(grpcStatus ?? String(e.injectedStatus)) to every request", at: askedAt)

            // Who fails, and for how long it keeps receiving requests.
            _ = await wait(until: machine.ejectionDeadline(faultSetAt: recorder.now), recorder: recorder, load: load) {
                let fresh = recorder.since(scanned)
                scanned += fresh.count
                return machine.observeAfterFault(fresh)
            }
            let findings = machine.endEjection(now: recorder.now)
            if let id = victimFault {
                do {
                    try await ledger.clear(id, on: clients[0], group: group)
                    victimFault = nil
                    note("fault \(id) cleared")
                } catch {
                    leftBehind.append("\(id) on \(clients[0].url) (expires within \(Int(faultSeconds)) s): \(error)")
                }
            }
            note(findings)
            if machine.victim == nil {
                recorder.stop()
                _ = try? await load.value
                checks += machine.checks(requests: recorder.count)
                return Outcome(expectation: e, checks: checks, timeline: timeline, requests: recorder.count, faultsLeft: leftBehind)
            }
            // Back: the first response from the victim after its ejection.
            if machine.stage == .awaitingReturn, let deadline = machine.returnDeadline {
                _ = await wait(until: deadline, recorder: recorder, load: load) {
                    let fresh = recorder.since(scanned)
                    scanned += fresh.count
                    return machine.observeReturn(fresh)
                }
                note(machine.endReturn(now: recorder.now))
                if machine.backAt != nil { _ = await wait(until: recorder.now + 0.2, recorder: recorder, load: load) { false } }
            }
            recorder.stop()
            let result = try? await load.value
            checks += machine.checks(requests: recorder.count, lag: Double(result?.loopLag.max ?? 0) / 1e6)
        } catch {
            recorder.stop()
            if let id = victimFault { try? await ledger.clear(id, on: clients[0], group: group) }
            throw error
        }

        // Phase 2: every listed workload fails at once; no more than the declared percent may be ejected.
        var requests = recorder.count
        if clients.count >= 2 {
            let (check, events, sent, left) = try await maxEjectionPhase(e, clients: clients, fault: fault, configuration: configuration,
                                                                          recognizer: recognizer, ledger: ledger, group: group,
                                                                          offset: recorder.now)
            checks.append(check)
            timeline += events
            requests += sent
            leftBehind += left
        }
        timeline.sort { $0.at < $1.at }
        return Outcome(expectation: e, checks: checks, timeline: timeline, requests: requests, faultsLeft: leftBehind)
    }

    /// The checks of one ejection. The time the victim was ejected for is measured by this machine's clock, as late as
    /// the machine ran (`lag`, seconds): a time outside its window by no more than the lag is no evidence either way, so
    /// that check is UNDECIDED and names the lag; outside by more, it fails.
    ///
    /// Not ejected is a FAIL only when the victim made more errors than declared and kept receiving requests with no
    /// gap that could hold an ejection: fewer errors than declared show nothing (the phase ran out of requests), and a
    /// gap of half the ejection time or more after the declared errors, with other workloads answering, may be an
    /// ejection the silence rule could not confirm (see `EjectionStateMachine.gapAfterDeclared`).
    static func evaluateEjection(_ e: OutlierExpectation, victim: String, errors: Int, ejected: Bool, ejectedFor: Double?,
                                 resolution: Double, lag: Double = 0, gapAfterDeclared: Double = 0) -> [ProcedureCheck] {
        var checks: [ProcedureCheck] = []
        let n = e.consecutiveErrors
        var reason: String?
        var decided = true
        if !ejected && errors <= n {
            decided = false
            reason = "\(victim) made \(errors) consecutive error\(errors == 1 ? "" : "s") before the phase ended (declared: ejected after \(n)): too few requests reached it to tell (other workloads slow to answer hold this check's one request at a time)"
        } else if !ejected && gapAfterDeclared >= max(0.5 * e.baseEjectionTime, 10 * resolution) {
            decided = false
            reason = String(format: "%@ kept receiving requests after %d consecutive errors, but received none for %.3f s after its %dth while other workloads answered: it may have been ejected and returned (the others answered too slowly to show the silence); a longer baseEjectionTime or faster workloads decide it", victim, errors, gapAfterDeclared, n)
        } else if !ejected {
            reason = "\(victim) kept receiving requests after \(errors) consecutive errors (declared: ejected after \(n)): outlier detection is looser, or off"
        } else if errors > n {
            reason = "\(victim) was ejected after \(errors) consecutive errors, not \(n): the proxy's limit is looser"
        } else if errors < n {
            reason = "\(victim) was ejected after \(errors) consecutive errors, not \(n): the proxy's limit is tighter"
        }
        var ejectionEvidence = ["consecutive_errors": Double(errors), "declared": Double(n)]
        if !ejected, gapAfterDeclared > 0 { ejectionEvidence["longest_gap_after_declared_s"] = (gapAfterDeclared * 1000).rounded() / 1000 }
        checks.append(ProcedureCheck(name: "ejected after \(n) consecutive \(e.counted == .gatewayErrors ? "gateway errors" : "5xx")",
                                     passed: reason == nil, decided: decided, reason: reason, evidence: ejectionEvidence))
        let (earliest, latest) = e.ejectionWindow
        // The victim's return is seen at the next request it gets: allow the mean gap between its requests, and a
        // tenth of the ejection time (at least 100 ms) for timers.
        let slack = max(0.1, 0.1 * e.baseEjectionTime) + resolution
        var evidence: [String: Double] = ["earliest_s": earliest, "latest_s": latest, "slack_s": (slack * 1000).rounded() / 1000,
                                          "machine_lag_s": (lag * 1000).rounded() / 1000]
        if let ejectedFor { evidence["ejected_for_s"] = (ejectedFor * 1000).rounded() / 1000 }
        var quiet: String?
        var back: String?
        var quietDecided = true
        var backDecided = true
        let busy = String(format: "while this machine ran up to %.0f ms late: too busy a machine to tell", lag * 1000)
        if !ejected {
            // Nothing to time: these follow from an ejection, and the check above already failed for its absence.
            quiet = "not judged: no ejection of \(victim) was seen (see the check above)"
            back = quiet
            quietDecided = false
            backDecided = false
        } else if let ejectedFor {
            if ejectedFor < earliest - resolution {
                quiet = String(format: "%@ received a request %.3f s after its ejection, before the ejection time of %.3f s", victim, ejectedFor, earliest)
                if ejectedFor >= earliest - resolution - lag {
                    quietDecided = false
                    quiet! += " \(busy) an early return from a late reading"
                }
            }
            if ejectedFor > latest + slack {
                back = String(format: "%@ came back after %.3f s, later than the ejection time plus one interval (%.3f s)", victim, ejectedFor, latest)
                if ejectedFor <= latest + slack + lag {
                    backDecided = false
                    back! += " \(busy) a late return from a late request"
                }
            }
        } else {
            back = String(format: "%@ did not come back within %.1f s of its ejection (the fault was cleared)", victim, latest + max(5, e.baseEjectionTime))
        }
        checks.append(ProcedureCheck(name: String(format: "received nothing while ejected (%.3f s)", earliest), passed: quiet == nil,
                                     decided: quietDecided, reason: quiet, evidence: evidence))
        checks.append(ProcedureCheck(name: String(format: "back after the ejection time (by %.3f s)", latest), passed: back == nil,
                                     decided: backDecided, reason: back, evidence: evidence))
        return checks
    }

    /// Every fault target fails at once; counts how many destinations are ejected at the same time.
    static func maxEjectionPhase(_ e: OutlierExpectation, clients: [FaultClient], fault: FaultControlJSON.NewFault,
                                 configuration: LoadConfiguration, recognizer: DestinationRecognizer, ledger: FaultLedger,
                                 group: any EventLoopGroup, offset: Double) async throws -> (ProcedureCheck, [Event], Int, [String]) {
        let recorder = Recorder(start: .now, recognizer: recognizer)
        var events: [Event] = []
        func note(_ what: String, at: Double? = nil) {
            events.append(Event(at: ((offset + (at ?? recorder.now)) * 1000).rounded() / 1000, what: what))
        }
        var machine = MaxEjectionStateMachine(e, failing: clients.count)
        let load = startLoad(configuration, expectation: e, cap: machine.loadCap, recorder: recorder, group: group)
        var set: [(FaultClient, String)] = []
        var left: [String] = []
        func clearAll() async {
            for (client, id) in set {
                do {
                    try await ledger.clear(id, on: client, group: group)
                } catch {
                    left.append("\(id) on \(client.url) (expires on its own): \(error)")
                }
            }
            set = []
        }
        do {
            _ = await wait(until: baselineSeconds, recorder: recorder, load: load) { recorder.count >= baselineCount(e) }
            _ = machine.observeBaseline(recorder.since(0))
            var scanned = recorder.count
            let askedAt = recorder.now
            machine.faultsRequested()
            for client in clients {
                let fault = try await ledger.set(fault, on: client, group: group)
                set.append((client, fault.id))
            }
            note("faults set on all \(clients.count) workloads (\(machine.endpoints) endpoints answered before)", at: askedAt)
            _ = await wait(until: recorder.now + machine.window, recorder: recorder, load: load) {
                let fresh = recorder.since(scanned)
                scanned += fresh.count
                return machine.observeFailing(fresh)
            }
            await clearAll()
            note(machine.faultsCleared())
            // Leave the service as it was found: the checks that run next need every endpoint back.
            scanned = recorder.count
            _ = await wait(until: recorder.now + returnWait(e), recorder: recorder, load: load) {
                let fresh = recorder.since(scanned)
                scanned += fresh.count
                return machine.observeRecovery(fresh)
            }
            note(machine.recovery)
            recorder.stop()
            _ = try? await load.value
            return (machine.check(requests: recorder.count), events, recorder.count, left)
        } catch {
            recorder.stop()
            await clearAll()
            throw error
        }
    }
}
