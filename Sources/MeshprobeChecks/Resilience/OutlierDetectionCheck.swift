import Foundation
import MeshprobeEchoAPI
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobePolicy
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

    public struct Check: Sendable {
        public var name: String
        public var passed: Bool
        /// False when the check could not judge (the service was not healthy, the fault reached no workload).
        public var decided = true
        public var reason: String?
        public var evidence: [String: Double]
        /// The requests of the phase the check judged.
        public var requests = 0
    }

    public struct Outcome: Sendable {
        public var expectation: OutlierExpectation
        public var checks: [Check]
        public var timeline: [Event]
        /// Requests the check sent (both phases).
        public var requests: Int
        /// Faults it set that it could not clear (they expire on their own at the time given).
        public var faultsLeft: [String]
    }

    /// Responses in arrival order, shared with the workers' event loops.
    // @unchecked: every access to the mutable state holds `lock`.
    final class Recorder: @unchecked Sendable {
        struct Response {
            var at: Double
            var destination: String?
            var status: Int
        }

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
        c.model = .closed(concurrency: .constant(1), thinkTime: 1 / expectation.rate)
        c.connections = 1
        c.streamsPerConnection = 1
        c.requests = nil
        c.duration = cap
        c.warmup = 0
        c.churn = .reuse
        c.guards = []
        c.responseObserver = { identity, status in recorder.observe(identity, status: status) }
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
                           controlTLS: TLSContext?, ledger: FaultLedger = FaultLedger(), group: any EventLoopGroup) async throws -> Outcome {
        guard !e.faultTargets.isEmpty else {
            throw LoadConfigurationError(field: "outlierDetection.faultTargets", value: "",
                                         reason: "outlier detection needs the address of a workload to make fail")
        }
        var clients: [FaultClient] = []
        for url in e.faultTargets {
            do { clients.append(try FaultClient(url: url, tls: controlTLS)) } catch {
                throw LoadConfigurationError(field: "outlierDetection.faultTargets", value: url, reason: error.description)
            }
        }
        let start = ContinuousClock.now
        var timeline: [Event] = []
        var leftBehind: [String] = []
        let recorder = Recorder(start: start, recognizer: recognizer)
        func note(_ what: String, at: Double? = nil) { timeline.append(Event(at: ((at ?? recorder.now) * 1000).rounded() / 1000, what: what)) }
        let faultSeconds = min(FaultSettings.maxDurationSeconds, (e.ejectionWindow.latest + 60).rounded(.up))
        let fault = FaultControlJSON.NewFault(status: e.injectedStatus, statusShare: 100, path: "/", durationSeconds: faultSeconds)

        // Phase 1: one workload fails.
        let errorLimit = max(3 * e.consecutiveErrors, e.consecutiveErrors + 20)
        let phaseCap = 10 + Double(errorLimit) / e.rate * 4 + e.ejectionWindow.latest + max(5, e.baseEjectionTime) + 1
        let load = startLoad(configuration, expectation: e, cap: phaseCap, recorder: recorder, group: group)
        var checks: [Check] = []
        var victimFault: String?
        defer { recorder.stop() }
        do {
            // Baseline: everyone answers, and each destination's share.
            // A second's responses (20 to 100), or what came in 10 s (a busy machine may take seconds to start the load).
            let baselineCount = max(20, min(100, Int(e.rate)))
            _ = await wait(until: 10, recorder: recorder, load: load) { recorder.count >= baselineCount }
            let baseline = Array(recorder.since(0))
            let shares = shareByDestination(baseline)
            let failing = baseline.filter { !(200..<400).contains($0.status) }.count
            note("baseline: \(baseline.count) responses from \(shares.keys.sorted().joined(separator: ", "))")
            if baseline.isEmpty || failing > 0 || shares.isEmpty {
                recorder.stop()
                let result = try? await load.value
                let failures = result?.failureSummary().map { ": \($0)" } ?? ""
                let reason = baseline.isEmpty ? "no response before the fault\(failures): the service is unreachable"
                    : shares.isEmpty ? "no response carried the \(recognizer.absence): the workloads behind the proxy cannot be told apart"
                    : "\(failing) of \(baseline.count) responses failed before any fault was set\(failures): the service must be healthy for this check"
                let requests = max(baseline.count, result?.totalRequests ?? 0)
                return Outcome(expectation: e, checks: [Check(name: "healthy before the fault", passed: false, decided: false, reason: reason,
                                                               evidence: ["requests": Double(requests), "failed": Double(failing)],
                                                               requests: requests)],
                               timeline: timeline, requests: requests, faultsLeft: [])
            }
            // Counted from before the request: the fault is in force before its answer comes back. Noted at the time it
            // was asked for, so that its first error never comes before it on the timeline.
            let faultIndex = recorder.count
            let askedAt = recorder.now
            let set = try await ledger.set(fault, on: clients[0], group: group)
            victimFault = set.id
            note("fault \(set.id) set on \(clients[0].url): \(e.injectedStatus) to every request", at: askedAt)

            // Who fails, and for how long it keeps receiving requests.
            var victim: String?
            var errors = 0
            var lastVictim: Double?
            var lastVictimIndex = 0
            var ejected = false
            var firstError: Double?
            var scanned = faultIndex
            let phaseDeadline = recorder.now + 2 + Double(errorLimit) / e.rate * 4
            _ = await wait(until: phaseDeadline, recorder: recorder, load: load) {
                let fresh = recorder.since(scanned)
                for (offset, r) in zip(fresh.indices, fresh) {
                    if victim == nil, let d = r.destination, r.status == e.injectedStatus {
                        victim = d
                        firstError = r.at
                    }
                    guard let v = victim else { continue }
                    if r.destination == v {
                        errors = e.counts(r.status) ? errors + 1 : 0
                        lastVictim = r.at
                        lastVictimIndex = offset
                    }
                }
                scanned += fresh.count
                guard let v = victim else { return false }
                if recorder.count - 1 - lastVictimIndex >= silenceThreshold(share: shares[v] ?? 0.5) {
                    ejected = true
                    return true
                }
                return errors >= errorLimit
            }
            if let id = victimFault {
                do {
                    try await ledger.clear(id, on: clients[0], group: group)
                    victimFault = nil
                    note("fault \(id) cleared")
                } catch {
                    leftBehind.append("\(id) on \(clients[0].url) (expires within \(Int(faultSeconds)) s): \(error)")
                }
            }
            guard let victimName = victim else {
                recorder.stop()
                _ = try? await load.value
                checks.append(Check(name: "the failing workload is seen", passed: false, decided: false,
                                    reason: "no response carried the injected \(e.injectedStatus) from a recognisable workload: the fault target is not behind this proxy, or its replies carry no stamp",
                                    evidence: ["requests": Double(recorder.count)], requests: recorder.count))
                return Outcome(expectation: e, checks: checks, timeline: timeline, requests: recorder.count, faultsLeft: leftBehind)
            }
            let ejectedAt = lastVictim ?? recorder.now
            if let firstError { note("\(victimName) answers \(e.injectedStatus): its first error", at: firstError) }
            if ejected {
                note("\(victimName) ejected after \(errors) consecutive errors (its last response)", at: ejectedAt)
            } else {
                note("\(victimName) still receiving requests after \(errors) consecutive errors")
            }
            // Back: the first response from the victim after its ejection.
            var backAt: Double?
            if ejected {
                var scannedBack = lastVictimIndex + 1
                _ = await wait(until: ejectedAt + e.ejectionWindow.latest + max(5, e.baseEjectionTime), recorder: recorder, load: load) {
                    let fresh = recorder.since(scannedBack)
                    scannedBack += fresh.count
                    if let r = fresh.first(where: { $0.destination == victimName }) { backAt = r.at }
                    return backAt != nil
                }
                if let backAt {
                    note(String(format: "%@ back after %.3f s", victimName, backAt - ejectedAt), at: backAt)
                    _ = await wait(until: recorder.now + 0.2, recorder: recorder, load: load) { false }
                } else {
                    note("\(victimName) not back")
                }
            }
            recorder.stop()
            _ = try? await load.value
            let resolution = 1 / (e.rate * max(shares[victimName] ?? 0.5, 0.01))
            checks += evaluateEjection(e, victim: victimName, errors: errors, ejected: ejected, ejectedFor: backAt.map { $0 - ejectedAt },
                                       resolution: resolution).map { check in
                var c = check
                c.requests = recorder.count
                return c
            }
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

    static func shareByDestination(_ responses: [Recorder.Response]) -> [String: Double] {
        var counts: [String: Int] = [:]
        for r in responses { if let d = r.destination { counts[d, default: 0] += 1 } }
        let total = Double(counts.values.reduce(0, +))
        return counts.mapValues { Double($0) / total }
    }

    static func evaluateEjection(_ e: OutlierExpectation, victim: String, errors: Int, ejected: Bool, ejectedFor: Double?,
                                 resolution: Double) -> [Check] {
        var checks: [Check] = []
        let n = e.consecutiveErrors
        var reason: String?
        if !ejected {
            reason = "\(victim) kept receiving requests after \(errors) consecutive errors (declared: ejected after \(n)): outlier detection is looser, or off"
        } else if errors > n {
            reason = "\(victim) was ejected after \(errors) consecutive errors, not \(n): the proxy's limit is looser"
        } else if errors < n {
            reason = "\(victim) was ejected after \(errors) consecutive errors, not \(n): the proxy's limit is tighter"
        }
        checks.append(Check(name: "ejected after \(n) consecutive \(e.counted == .gatewayErrors ? "gateway errors" : "5xx")",
                            passed: reason == nil, reason: reason,
                            evidence: ["consecutive_errors": Double(errors), "declared": Double(n)]))
        let (earliest, latest) = e.ejectionWindow
        // The victim's return is seen at the next request it gets: allow the mean gap between its requests, and a
        // tenth of the ejection time (at least 100 ms) for timers.
        let slack = max(0.1, 0.1 * e.baseEjectionTime) + resolution
        var evidence: [String: Double] = ["earliest_s": earliest, "latest_s": latest, "slack_s": (slack * 1000).rounded() / 1000]
        if let ejectedFor { evidence["ejected_for_s"] = (ejectedFor * 1000).rounded() / 1000 }
        var quiet: String?
        var back: String?
        if !ejected {
            quiet = "never ejected"
            back = "never ejected"
        } else if let ejectedFor {
            if ejectedFor < earliest - resolution {
                quiet = String(format: "%@ received a request %.3f s after its ejection, before the ejection time of %.3f s", victim, ejectedFor, earliest)
            }
            if ejectedFor > latest + slack {
                back = String(format: "%@ came back after %.3f s, later than the ejection time plus one interval (%.3f s)", victim, ejectedFor, latest)
            }
        } else {
            back = String(format: "%@ did not come back within %.1f s of its ejection (the fault was cleared)", victim, latest + max(5, e.baseEjectionTime))
        }
        checks.append(Check(name: String(format: "received nothing while ejected (%.3f s)", earliest), passed: quiet == nil, reason: quiet,
                            evidence: evidence))
        checks.append(Check(name: String(format: "back after the ejection time (by %.3f s)", latest), passed: back == nil, reason: back,
                            evidence: evidence))
        return checks
    }

    /// Every fault target fails at once; counts how many destinations are ejected at the same time.
    static func maxEjectionPhase(_ e: OutlierExpectation, clients: [FaultClient], fault: FaultControlJSON.NewFault,
                                 configuration: LoadConfiguration, recognizer: DestinationRecognizer, ledger: FaultLedger,
                                 group: any EventLoopGroup, offset: Double) async throws -> (Check, [Event], Int, [String]) {
        let recorder = Recorder(start: .now, recognizer: recognizer)
        var events: [Event] = []
        func note(_ what: String, at: Double? = nil) {
            events.append(Event(at: ((offset + (at ?? recorder.now)) * 1000).rounded() / 1000, what: what))
        }
        let errorLimit = max(3 * e.consecutiveErrors, e.consecutiveErrors + 20)
        let window = 3 + Double(errorLimit * clients.count) / e.rate * 2
        // The baseline, the window, then the wait for every endpoint to come back.
        let load = startLoad(configuration, expectation: e, cap: 10 + window + e.ejectionWindow.latest + max(5, e.baseEjectionTime) + 1,
                             recorder: recorder, group: group)
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
            _ = await wait(until: 10, recorder: recorder, load: load) { recorder.count >= max(20, min(100, Int(e.rate))) }
            let shares = shareByDestination(Array(recorder.since(0)))
            let endpoints = shares.count
            let faultIndex = recorder.count
            let askedAt = recorder.now
            for client in clients {
                let fault = try await ledger.set(fault, on: client, group: group)
                set.append((client, fault.id))
            }
            note("faults set on all \(clients.count) workloads (\(endpoints) endpoints answered before)", at: askedAt)
            // Per destination: consecutive errors and the index of its last response.
            var errors: [String: Int] = [:]
            var last: [String: Int] = [:]
            var scanned = faultIndex
            var maxEjected = 0
            var ejectedNames: Set<String> = []
            _ = await wait(until: recorder.now + window, recorder: recorder, load: load) {
                let fresh = recorder.since(scanned)
                for (index, r) in zip(fresh.indices, fresh) {
                    guard let d = r.destination else { continue }
                    errors[d] = e.counts(r.status) ? errors[d, default: 0] + 1 : 0
                    last[d] = index
                }
                scanned += fresh.count
                let newest = recorder.count - 1
                let silent = shares.keys.filter { d in
                    guard let l = last[d] else { return newest - faultIndex >= silenceThreshold(share: shares[d]!) }
                    return newest - l >= silenceThreshold(share: shares[d]!)
                }
                if silent.count > maxEjected {
                    maxEjected = silent.count
                    ejectedNames = Set(silent)
                }
                // Decided when every destination is either ejected or has failed far past the limit.
                return shares.keys.allSatisfy { d in silent.contains(d) || errors[d, default: 0] >= errorLimit }
            }
            await clearAll()
            note("\(maxEjected) of \(endpoints) endpoints ejected at once (\(ejectedNames.sorted().joined(separator: ", "))); faults cleared")
            // Leave the service as it was found: the checks that run next need every endpoint back.
            let cleared = recorder.count
            var back: Set<String> = []
            _ = await wait(until: recorder.now + e.ejectionWindow.latest + max(5, e.baseEjectionTime), recorder: recorder, load: load) {
                for r in recorder.since(cleared) where (200..<400).contains(r.status) { if let d = r.destination { back.insert(d) } }
                return back.isSuperset(of: shares.keys)
            }
            let missing = Set(shares.keys).subtracting(back)
            note(missing.isEmpty ? "all \(endpoints) endpoints back" : "not back: \(missing.sorted().joined(separator: ", "))")
            recorder.stop()
            _ = try? await load.value
            let allowed = e.maxEjected(of: endpoints)
            let expected = min(allowed, clients.count)
            var reason: String?
            if maxEjected > expected {
                reason = "\(maxEjected) of \(endpoints) endpoints were ejected at once; \(YAMLValue.format(e.maxEjectionPercent))% allows \(allowed): the proxy's maximum is looser"
            } else if maxEjected < expected {
                reason = "only \(maxEjected) of the \(clients.count) failing endpoints were ejected at once; \(YAMLValue.format(e.maxEjectionPercent))% of \(endpoints) allows \(allowed)"
            }
            let check = Check(name: "at most \(YAMLValue.format(e.maxEjectionPercent))% ejected at once (\(allowed) of \(endpoints))",
                              passed: reason == nil, reason: reason,
                              evidence: ["ejected_at_once": Double(maxEjected), "allowed": Double(allowed), "endpoints": Double(endpoints),
                                         "failing": Double(clients.count)], requests: recorder.count)
            return (check, events, recorder.count, left)
        } catch {
            recorder.stop()
            await clearAll()
            throw error
        }
    }
}
