import Foundation
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobePolicy
import MeshprobeSpec
import MeshprobeStatistics
import NIOCore

/// Runs a policy's load and feeds each successful response to its split test, ending the load as soon as the
/// verdict is decided.
public enum PolicyVerification {
    public struct Outcome: Sendable {
        public var route: SplitExpectation
        public var verdict: SplitTest.Verdict?
        public var result: LoadResult
        /// Responses with a non-2xx/3xx status: not part of the split (the resilience checks look at them).
        public var unsuccessful: Int
        /// Of those, the ones whose response named a destination, by destination.
        public var unsuccessfulByDestination: [String: Int] = [:]
        /// The wait for the split to settle before the test, when the policy asks for one.
        public var propagation: PropagationOutcome?
        /// What the test saw, decided or not.
        public var evidence: SplitTest.SplitEvidence
        /// The requests each connection carried, phase by phase (0: the policy's own churn, `routing: per-request`).
        public var requestsPerConnection: [Int] = []
        /// Why the responses could not be judged at all (the recogniser does not fit the server).
        public var misconfiguration: String?
        /// `routing: per-request` was declared, but responses clustered by connection: the verdict is withheld.
        public var contradictsPerRequestRouting = false
        /// How the counts grew until the test decided (at most `SplitTrajectory.limit` points, the last the evidence's).
        public var trajectory: [SplitTrajectory.Point] = []
    }

    /// How the propagation wait went.
    public struct PropagationOutcome: Sendable {
        public var settled: Bool
        public var seconds: Double
        /// Successful responses during the wait (not part of the verdict).
        public var requests: Int
        public var connections: Int
        /// Counts by destination of the windows the wait looked at, oldest first (at most the last ten).
        public var windows: [[String: Int]]
    }

    /// Counts responses by destination in time windows, and says when the last few agree.
    // @unchecked: every access to the mutable state holds `lock`.
    final class PropagationWatcher: @unchecked Sendable {
        private let lock = NSLock()
        private let expectation: SplitExpectation
        private let wait: PropagationWait
        private let check: StabilityCheck
        private var start: ContinuousClock.Instant?
        private var windows: [[String: Int]] = []
        private var settled = false
        private var requests = 0

        init(expectation: SplitExpectation, wait: PropagationWait) {
            self.expectation = expectation
            self.wait = wait
            check = StabilityCheck(stableWindows: wait.stableWindows)
        }

        /// Records one response; true once the split has settled.
        func observe(_ identity: WorkloadIdentity, status: Int) -> Bool {
            guard ResponseCode.succeeded(status) else { return lock.withLock { settled } }
            let name = expectation.destinationName(of: identity)
            let now = ContinuousClock.now
            return lock.withLock {
                if settled { return true }
                let begin = start ?? now
                start = begin
                let index = Int((now - begin) / .seconds(wait.window))
                if index >= windows.count {
                    // A window closed: judge the complete ones (empty windows in between count as empty).
                    settled = check.settled(windows, declared: expectation.weights.mapValues { $0 / 100 },
                                            tolerance: expectation.statistics.tolerance)
                    if settled { return true }
                    windows += Array(repeating: [:], count: index + 1 - windows.count)
                }
                windows[index][name, default: 0] += 1
                requests += 1
                return false
            }
        }

        var snapshot: (settled: Bool, requests: Int, windows: [[String: Int]]) {
            lock.withLock {
                // Only complete windows are evidence; the one being filled when the run ended is left out.
                let complete = settled ? windows : Array(windows.dropLast())
                return (settled, requests, Array(complete.suffix(10)))
            }
        }
    }

    /// The split test, shared by the workers' event loops: sees responses by connection and feeds the test in the
    /// order connections were opened (the connection unit), or response by response (`routing: per-request`); feeds
    /// the SLO tracker the same way. Without an expectation it feeds the SLOs only.
    // @unchecked: every access to the mutable state holds `lock`.
    final class SharedTest: ConnectionObserver, @unchecked Sendable {
        private let lock = NSLock()
        let expectation: SplitExpectation?
        let slo: SLOTracker?
        private let routing: RoutingAssumption
        private var perRequest: SplitTest?
        private var perConnection: ConnectionSplitTest?
        /// Per-request routing: how responses clustered, to check the assumption.
        private var clustering = ConnectionClustering()
        private var queue = OpenOrderQueue()
        private var connectionsWithResponses = Set<Int>()
        private(set) var unsuccessful = 0
        private(set) var unsuccessfulByDestination: [String: Int] = [:]
        /// The judged responses by destination as they came, while the test was open.
        private var trajectory = SplitTrajectory()
        private var recognised = 0
        private var unrecognised = 0
        /// Set when the first responses could not be recognised at all: a configuration error, not a routing one.
        private(set) var misconfiguration: String?
        /// The requests per connection of the current phase (`routing: auto`); a different suggestion ends it.
        var requestsPerConnection = 0
        private(set) var phaseOver = false

        init(expectation: SplitExpectation?, routing: RoutingAssumption, slo: SLOTracker?) throws(SplitTestError) {
            self.expectation = expectation
            self.routing = routing
            self.slo = slo
            guard let expectation else { return }
            if routing == .perRequest {
                perRequest = try SplitTest(weights: expectation.weights, configuration: expectation.statistics)
            } else {
                // The load's request cap ends an undecided run; connections never reach it first.
                perConnection = try ConnectionSplitTest(weights: expectation.weights, configuration: expectation.statistics)
            }
        }

        /// Unrecognised responses this many in a row from the start: the recogniser is wrong for this server.
        static let unrecognisedLimit = 10
        /// Answers, none successful, after which a split stops: it cannot be measured on them.
        static let unsuccessfulLimit = 200

        /// An undeclared destination that the policy, not the mesh, most likely got wrong: a declared name spelt
        /// with other capitals, or the answer's other stamp (version, workload, SPIFFE ID) is a declared name (the
        /// wrong `recognise`). Either makes the split undecided, naming the fix, instead of failing the route.
        static func policyMistake(_ name: String, identity: WorkloadIdentity, in expectation: SplitExpectation) -> String? {
            if let declared = expectation.weights.keys.first(where: { $0.lowercased() == name.lowercased() }) {
                return "'\(name)' answered and the split declares '\(declared)': names are compared exactly; check expect.split's spelling"
            }
            for other in [DestinationRecognizer.version, .workload, .identity] where other != expectation.recognizer {
                guard let read = other.destination(of: identity) else { continue }
                let mapped = expectation.mapping[read] ?? read
                if expectation.weights[mapped] != nil {
                    return "'\(name)' answered (read from \(expectation.recognizer.description)), and \(other.description) of the same "
                        + "response is '\(read)', a declared destination: check expect.recognise"
                }
            }
            return nil
        }

        /// Whether the split still wants samples (decided, or misconfigured: no).
        private var splitOpen: Bool {
            expectation != nil && misconfiguration == nil && (perConnection?.currentVerdict ?? perRequest?.currentVerdict) == nil
        }

        /// The run may end: the split is decided (or cannot be) and so are the SLOs, or there is no split and the
        /// SLOs are decided.
        private var done: Bool {
            let sloDone = slo.map { $0.isEmpty || $0.decided } ?? true
            if expectation == nil { return sloDone }
            if misconfiguration != nil { return true }
            if perRequest != nil { return !splitOpen && perRequestAssumptionChecked }
            // The split decides the route's load; SLOs left open get a load of their own afterwards.
            return !splitOpen
        }

        func opened() -> Int { lock.withLock { queue.open() } }

        func response(_ identity: WorkloadIdentity, status: Int, latencyMicros: UInt64, connection: Int) -> Bool {
            let ok = ResponseCode.succeeded(status)
            let name = ok ? expectation.flatMap { e in e.recognizer.destination(of: identity).map { e.mapping[$0] ?? $0 } } : nil
            return lock.withLock {
                var tally = queue[connection]
                tally.responses += 1
                if ok { tally.succeeded += 1 } else { tally.failed += 1 }
                if let slo {
                    // Per request: the SLOs see it now; by connection: with the connection's tally, once it ends.
                    if routing == .perRequest {
                        _ = slo.record(succeeded: ok, latencyMicros: latencyMicros)
                    } else {
                        tally.count(within: slo.within(latencyMicros))
                    }
                }
                defer { queue[connection] = tally }
                guard ok else {
                    unsuccessful += 1
                    if let e = expectation, let read = e.recognizer.destination(of: identity) {
                        unsuccessfulByDestination[e.mapping[read] ?? read, default: 0] += 1
                    }
                    // Nothing answers the route's requests successfully (a gRPC method nobody serves, a path the
                    // proxy refuses): the split cannot be measured, and the rest of the cap would not change that.
                    // Its SLOs, if any, decide first.
                    if expectation != nil, misconfiguration == nil, recognised + unrecognised == 0, unsuccessful >= Self.unsuccessfulLimit,
                       slo.map({ $0.isEmpty || $0.decided }) ?? true {
                        misconfiguration = "none of the first \(unsuccessful) answers succeeded, so the split was not measured"
                        return true
                    }
                    return false
                }
                guard let expectation else { return false }
                let destination: String
                if let name {
                    recognised += 1
                    destination = name
                    if expectation.weights[name] == nil, let mistake = Self.policyMistake(name, identity: identity, in: expectation) {
                        misconfiguration = mistake
                        return true
                    }
                } else {
                    unrecognised += 1
                    if recognised == 0 {
                        if unrecognised >= Self.unrecognisedLimit {
                            misconfiguration = "none of the first \(unrecognised) successful responses carried \(expectation.recognizer.description): "
                                + "check expect.recognise (or map) against what the server sends"
                            return true
                        }
                        return false
                    }
                    destination = expectation.destinationName(of: identity)
                }
                connectionsWithResponses.insert(connection)
                tally.destinations[destination, default: 0] += 1
                // Per-request routing: the verdict waits until the assumption can be checked (see `ended`).
                if perRequest != nil {
                    if perRequest!.currentVerdict == nil { trajectory.add([destination: 1]) }
                    perRequest!.record(destination)
                }
                return false
            }
        }

        func failed(connection: Int) {
            lock.withLock {
                queue[connection].failed += 1
                if routing == .perRequest { _ = slo?.record(succeeded: false, latencyMicros: nil) }
            }
        }

        func ended(connection: Int) -> Bool {
            lock.withLock {
                for tally in queue.end(connection) {
                    feed(tally)
                    if phaseOver || done { return true }
                }
                return false
            }
        }

        private func feed(_ tally: ConnectionTally) {
            if routing != .perRequest, let slo { _ = slo.record(tally) }
            if perRequest != nil {
                clustering.add(tally.destinations)
                return
            }
            guard splitOpen, perConnection != nil else { return }
            trajectory.add(tally.destinations)
            perConnection!.record(connection: tally.destinations)
            if routing == .auto && splitOpen && perConnection!.suggestedRequestsPerConnection != requestsPerConnection {
                phaseOver = true
            }
        }

        /// Per-request routing is checked once per-request routing would have put requests of one connection on
        /// different destinations ten times (`ConnectionClustering.contradictsPerRequestRouting`).
        private var perRequestAssumptionChecked: Bool {
            (clustering.expectedMixedConnections ?? 0) >= 10 || clustering.contradictsPerRequestRouting()
        }

        /// Starts a new phase of the load.
        func beginPhase(requestsPerConnection m: Int) {
            lock.withLock {
                requestsPerConnection = m
                phaseOver = false
            }
        }

        /// Feeds what the run left (connections cut by the end of the run, in order): their responses are real
        /// samples, taken as far as they went.
        func finishRun() {
            lock.withLock {
                for tally in queue.drain() { feed(tally) }
            }
        }

        var suggestedRequestsPerConnection: Int {
            lock.withLock { perConnection?.suggestedRequestsPerConnection ?? 1 }
        }

        /// The trajectory up to what `evidence` judged.
        func trajectory(upTo evidence: SplitTest.SplitEvidence) -> [SplitTrajectory.Point] {
            lock.withLock { trajectory.upTo(samples: evidence.samples, counts: evidence.counts) }
        }

        var snapshot: (verdict: SplitTest.Verdict?, evidence: SplitTest.SplitEvidence?, unsuccessful: Int, misconfiguration: String?,
                       contradicted: Bool) {
            lock.withLock {
                if let test = perRequest {
                    var e = test.currentVerdict?.evidence ?? test.evidence
                    e.connections = connectionsWithResponses.count
                    e.clustering = clustering
                    e.effectiveSamples = clustering.effectiveSampleSize(requests: e.samples, connections: max(1, connectionsWithResponses.count))
                    let contradicted = clustering.contradictsPerRequestRouting()
                    return (contradicted ? nil : test.currentVerdict, e, unsuccessful, misconfiguration, contradicted)
                }
                guard let test = perConnection else { return (nil, nil, unsuccessful, misconfiguration, false) }
                return (test.currentVerdict, test.currentVerdict?.evidence ?? test.evidence, unsuccessful, misconfiguration, false)
            }
        }
    }

    /// Checks every route of the policy in turn: for each, a load whose requests match the route, ended by its
    /// verdict.
    public static func run(_ policy: Policy, configuration: LoadConfiguration, group: any EventLoopGroup) async throws -> [Outcome] {
        try await runWithObjectives(policy, configuration: configuration, group: group).outcomes
    }

    /// Checks every route, then the SLOs: decided on the routes' requests when they suffice, else on a load of their
    /// own (the last route's requests, one per connection with the connection as the unit) until they are decided or
    /// the policy's request cap is reached.
    public static func runWithObjectives(_ policy: Policy, configuration: LoadConfiguration,
                                         group: any EventLoopGroup) async throws -> (outcomes: [Outcome], slo: [SLOCheck], sloResult: LoadResult?) {
        let unit: SplitTest.SamplingUnit = policy.routing == .perRequest ? .request : .connection
        let tracker: SLOTracker
        do {
            tracker = try SLOTracker(policy: policy, unit: unit)
        } catch {
            throw LoadPlanError(field: "expect.slo", value: policy.file, reason: error.description)
        }
        let slo = tracker.isEmpty ? nil : tracker
        var outcomes: [Outcome] = []
        for route in policy.routes {
            outcomes.append(try await run(route, file: policy.file, propagation: policy.propagation, configuration: configuration,
                                          slo: slo, group: group))
        }
        guard let slo, !slo.decided, !Task.isCancelled else { return (outcomes, slo?.checks() ?? [], nil) }
        // A load of its own for the objectives, bounded by the policy's request cap.
        let shared = try SharedTest(expectation: nil, routing: policy.routing, slo: slo)
        var c = policy.routes.last.map { Self.configuration(configuration, for: $0) } ?? configuration
        c.connectionObserver = shared
        c.responseObserver = nil
        if policy.routing != .perRequest { c.plan.churn = .perRequest }
        let used = outcomes.reduce(0) { $0 + $1.result.requestsSent }
        c.plan.requests = max(0, policy.statistics.maxSamples - used)
        if c.plan.requests == 0 { return (outcomes, slo.checks(), nil) }
        let result = try await LoadGenerator(configuration: c, group: group).run()
        shared.finishRun()
        return (outcomes, slo.checks(), result)
    }

    /// The load for one route: its headers replace any of the same name, its path the targets', its method the
    /// scenario's. A gRPC run keeps its method when the route's path condition takes it (a service prefix,
    /// `/pkg.Svc/`), and calls the route's when that is a method path; a gRPC call is always a POST.
    static func configuration(_ configuration: LoadConfiguration, for route: SplitExpectation) -> LoadConfiguration {
        var configuration = configuration
        let names = Set(route.matchHeaders.map(\.name))
        configuration.plan.headers = configuration.plan.headers.filter { !names.contains($0.name.lowercased()) } + route.matchHeaders
        if var path = route.matchPath {
            if var call = configuration.plan.grpc {
                let condition = route.conditions.first { $0.subject == .path }
                if condition?.match.matches(call.path) != true, let method = try? GRPCCall.parseMethod(path) { call.method = method }
                path = call.path
                configuration.plan.grpc = call
            }
            for i in configuration.plan.targets.indices { configuration.plan.targets[i].path = path }
        }
        if let method = route.matchMethod, configuration.plan.grpc == nil { configuration.plan.method = method }
        return configuration
    }

    /// Sends the route's requests until the split settles (or the wait's timeout): the time the policy needs to
    /// reach every proxy.
    static func awaitPropagation(_ route: SplitExpectation, wait: PropagationWait, configuration: LoadConfiguration,
                                 group: any EventLoopGroup) async throws -> PropagationOutcome {
        let watcher = PropagationWatcher(expectation: route, wait: wait)
        var configuration = configuration
        configuration.plan.duration = wait.timeout
        configuration.plan.requests = nil
        configuration.plan.warmup = 0
        configuration.responseObserver = { identity, status, _ in watcher.observe(identity, status: status) }
        let started = ContinuousClock.now
        let result = try await LoadGenerator(configuration: configuration, group: group).run()
        let elapsed = ContinuousClock.now - started
        let snapshot = watcher.snapshot
        return PropagationOutcome(settled: snapshot.settled, seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
                                  requests: snapshot.requests, connections: result.connectionsEstablished, windows: snapshot.windows)
    }

    public static func run(_ route: SplitExpectation, file: String, propagation: PropagationWait? = nil,
                           configuration: LoadConfiguration, group: any EventLoopGroup) async throws -> Outcome {
        try await run(route, file: file, propagation: propagation, configuration: configuration, slo: nil, group: group)
    }

    static func run(_ route: SplitExpectation, file: String, propagation: PropagationWait?,
                    configuration: LoadConfiguration, slo: SLOTracker?, group: any EventLoopGroup) async throws -> Outcome {
        let shared: SharedTest
        do {
            shared = try SharedTest(expectation: route, routing: route.routing, slo: slo)
        } catch {
            throw LoadPlanError(field: "expect", value: file, reason: error.description)
        }
        var configuration = Self.configuration(configuration, for: route)
        var waited: PropagationOutcome?
        if let propagation {
            waited = try await awaitPropagation(route, wait: propagation, configuration: configuration, group: group)
        }
        configuration.connectionObserver = shared
        // The load ends at the test's verdict, at the policy's request cap or duration, or (routing: auto) when the
        // test asks for another number of requests per connection: then a new phase starts with what is left.
        var result = LoadResult()
        var phases: [Int] = []
        let cap = configuration.plan.requests
        let duration = configuration.plan.duration
        while true {
            var phase = configuration
            let m: Int
            switch route.routing {
            case .perRequest:
                m = 0
            case .perConnection:
                m = 1
            case .auto:
                m = shared.suggestedRequestsPerConnection
            }
            if m > 0 { phase.plan.churn = .every(m) }
            phases.append(m)
            shared.beginPhase(requestsPerConnection: m)
            if let cap { phase.plan.requests = max(0, cap - result.requestsSent) }
            if let duration { phase.plan.duration = max(0, duration - result.elapsedSeconds) }
            let part = try await LoadGenerator(configuration: phase, group: group).run()
            shared.finishRun()
            let elapsed = result.elapsedSeconds + part.elapsedSeconds
            let cpu = result.cpuSeconds + part.cpuSeconds
            result.merge(part)
            result.elapsedSeconds = elapsed
            result.cpuSeconds = cpu
            let snapshot = shared.snapshot
            let budgetLeft = (cap.map { result.requestsSent < $0 } ?? true) && (duration.map { result.elapsedSeconds < $0 } ?? true)
            guard snapshot.verdict == nil, snapshot.misconfiguration == nil, shared.phaseOver, budgetLeft, !part.aborted,
                  !Task.isCancelled, phases.count < 8 else { break }
        }
        let snapshot = shared.snapshot
        var evidence = snapshot.evidence ?? SplitTest.SplitEvidence(samples: 0, counts: [:], declared: [:])
        if snapshot.verdict == nil, let cap, result.requestsSent >= cap { evidence.truncated = true }
        var outcome = Outcome(route: route, verdict: snapshot.verdict, result: result, unsuccessful: snapshot.unsuccessful,
                              propagation: waited, evidence: evidence, requestsPerConnection: phases,
                              misconfiguration: snapshot.misconfiguration, contradictsPerRequestRouting: snapshot.contradicted,
                              trajectory: shared.trajectory(upTo: evidence))
        outcome.unsuccessfulByDestination = shared.unsuccessfulByDestination
        return outcome
    }
}

/// The mTLS check: every response's caller, as the workload saw it, is the expected identity.
public struct CallerCheck: Sendable {
    public var expected: String
    public var passed: Bool
    /// False when the responses cannot tell (no caller stamps at all, or too few samples to rule out a leak).
    public var decided = true
    /// Callers seen, by identity ("" for responses without the stamp or without a caller).
    public var seen: [String: Int]
    public var responses: Int
    public var reason: String?

    /// Evaluates the outcomes of a verify run against `expected`. Every response must show it; a PASS also needs
    /// enough samples (connections with the connection as the unit) that a caller other than `expected` on a share
    /// of them as large as the tolerance would have shown at the miss rate: `ln(missRate) / ln(1 - tolerance)`.
    /// `prober` is this prober's own SPIFFE ID, to tell it from a proxy's when it is the only caller seen.
    public static func evaluate(_ outcomes: [PolicyVerification.Outcome], expected: String, prober: String? = nil,
                                statistics: SplitTestConfiguration = .init()) -> CallerCheck {
        var seen: [String: Int] = [:]
        var responses = 0
        var samples = 0
        var unit = "responses"
        for outcome in outcomes {
            seen.merge(outcome.result.callersSeen, uniquingKeysWith: +)
            responses += outcome.result.responses
            if outcome.evidence.unit == .connection {
                samples += outcome.evidence.connections
                unit = "connections"
            } else {
                samples += outcome.result.responses
            }
        }
        let stamped = seen.values.reduce(0, +)
        if stamped < responses { seen["", default: 0] += responses - stamped }
        let matching = seen[expected, default: 0]
        let needed = Int((log(statistics.missRate) / log(1 - statistics.tolerance)).rounded(.up))
        var check = CallerCheck(expected: expected, passed: false, seen: seen, responses: responses, reason: nil)
        if expected.isEmpty {
            check.reason = "the prober has no SPIFFE ID to compare with (give --svid-dir/--cert, or mtls: {caller: ...})"
        } else if responses > 0 && stamped == 0 {
            check.decided = false
            check.reason = "undecided: no response carried x-meshprobe-caller: the target is not the meshprobe echo (or strips its stamps), "
                + "so the caller it saw is unknown"
        } else if matching != responses || responses == 0 {
            let others = seen.filter { $0.key != expected }.sorted { $0.value > $1.value }
                .map { "\($0.key.isEmpty ? "(none)" : $0.key): \($0.value)" }.joined(separator: ", ")
            check.reason = "\(responses - matching) of \(responses) responses came from a caller other than \(expected) (\(others))"
            // One other caller on every response: something between the prober and the workload speaks for it.
            let callers = seen.filter { $0.value > 0 }
            if matching == 0, callers.count == 1, let only = callers.first?.key {
                check.reason! += only == prober
                    ? ": the workload saw this prober's own SVID on every one, so nothing between them spoke for another caller"
                    : only.isEmpty
                    ? ": the workload saw no client certificate on any of them: a proxy between the prober and the workload "
                        + "ended this prober's TLS and forwarded without mTLS, or the workload does not ask for a certificate"
                    : ": one caller for every response, as when a proxy between the prober and the workload (a sidecar, an L7 "
                        + "proxy re-originating mTLS) ends this prober's TLS and calls the workload as itself; if that is the "
                        + "design, declare mtls: {caller: \(only)}"
            }
            if responses == 0 {
                check.decided = false
                check.reason = "undecided: no response to judge"
            }
        } else if samples < needed {
            check.decided = false
            check.reason = "undecided: every response showed the caller, but " + counted(samples, unit == "connections" ? "connection" : "response")
                + String(format: " cannot rule out another caller on %g%% of them (%d needed for miss <= %g)",
                         statistics.tolerance * 100, needed, statistics.missRate)
        } else {
            check.passed = true
        }
        return check
    }
}

/// Clusters that must answer and clusters that must not, from the echo's cluster stamp on every response.
public struct ClusterCheck: Sendable {
    public var passed: Bool
    /// Responses by cluster ("" for responses without a cluster stamp).
    public var seen: [String: Int]
    public var reach: [String]
    public var avoid: [String]
    public var reason: String?

    public static func evaluate(_ outcomes: [PolicyVerification.Outcome], reach: [String], avoid: [String]) -> ClusterCheck {
        var seen: [String: Int] = [:]
        for outcome in outcomes {
            for (identity, stats) in outcome.result.identities { seen[identity.cluster, default: 0] += stats.statuses.values.reduce(0, +) }
        }
        var problems: [String] = []
        let missing = reach.filter { seen[$0, default: 0] == 0 }
        if !missing.isEmpty { problems.append("no response from \(missing.joined(separator: ", "))") }
        let reached = avoid.filter { seen[$0, default: 0] > 0 }
        if !reached.isEmpty {
            problems.append(reached.map { "\(seen[$0, default: 0]) responses from \($0)" }.joined(separator: ", ") + " (declared: nothing)")
        }
        if !problems.isEmpty, let unstamped = seen[""], unstamped > 0 {
            problems.append("\(unstamped) responses carried no x-meshprobe-cluster stamp")
        }
        return ClusterCheck(passed: problems.isEmpty, seen: seen, reach: reach, avoid: avoid,
                            reason: problems.isEmpty ? nil : problems.joined(separator: "; "))
    }
}
