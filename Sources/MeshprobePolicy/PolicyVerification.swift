import Foundation
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeVerify
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
        /// The wait for the split to settle before the test, when the policy asks for one.
        public var propagation: PropagationOutcome?
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
            guard (200..<400).contains(status) else { return lock.withLock { settled } }
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

    /// The split test, shared by the workers' event loops.
    // @unchecked: every access to `test` and `unsuccessful` holds `lock`.
    final class SharedTest: @unchecked Sendable {
        private let lock = NSLock()
        private var test: SplitTest
        private var unsuccessful = 0
        let expectation: SplitExpectation

        init(_ test: SplitTest, expectation: SplitExpectation) {
            self.test = test
            self.expectation = expectation
        }

        /// Records one response; true once the verdict is decided.
        func observe(_ identity: WorkloadIdentity, status: Int) -> Bool {
            let ok = (200..<400).contains(status)
            let name = ok ? expectation.destinationName(of: identity) : ""
            return lock.withLock {
                guard ok else {
                    unsuccessful += 1
                    return false
                }
                return test.record(name) != nil
            }
        }

        var snapshot: (SplitTest.Verdict?, Int) { lock.withLock { (test.currentVerdict, unsuccessful) } }
    }

    /// Checks every route of the policy in turn: for each, a load whose requests match the route, ended by its
    /// verdict.
    public static func run(_ policy: Policy, configuration: LoadConfiguration, group: any EventLoopGroup) async throws -> [Outcome] {
        var outcomes: [Outcome] = []
        for route in policy.routes {
            outcomes.append(try await run(route, file: policy.file, propagation: policy.propagation, configuration: configuration, group: group))
        }
        return outcomes
    }

    /// The load for one route: its headers replace any of the same name, its path the targets', its method the
    /// scenario's.
    static func configuration(_ configuration: LoadConfiguration, for route: SplitExpectation) -> LoadConfiguration {
        var configuration = configuration
        let names = Set(route.matchHeaders.map(\.name))
        configuration.headers = configuration.headers.filter { !names.contains($0.name.lowercased()) } + route.matchHeaders
        if let path = route.matchPath {
            for i in configuration.targets.indices { configuration.targets[i].path = path }
        }
        if let method = route.matchMethod { configuration.method = method }
        return configuration
    }

    /// Sends the route's requests until the split settles (or the wait's timeout): the time the policy needs to
    /// reach every proxy.
    static func awaitPropagation(_ route: SplitExpectation, wait: PropagationWait, configuration: LoadConfiguration,
                                 group: any EventLoopGroup) async throws -> PropagationOutcome {
        let watcher = PropagationWatcher(expectation: route, wait: wait)
        var configuration = configuration
        configuration.duration = wait.timeout
        configuration.requests = nil
        configuration.warmup = 0
        configuration.responseObserver = { identity, status in watcher.observe(identity, status: status) }
        let started = ContinuousClock.now
        let result = try await LoadGenerator(configuration: configuration, group: group).run()
        let elapsed = ContinuousClock.now - started
        let snapshot = watcher.snapshot
        return PropagationOutcome(settled: snapshot.settled, seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
                                  requests: snapshot.requests, connections: result.connectionsEstablished, windows: snapshot.windows)
    }

    public static func run(_ route: SplitExpectation, file: String, propagation: PropagationWait? = nil,
                           configuration: LoadConfiguration, group: any EventLoopGroup) async throws -> Outcome {
        let test: SplitTest
        do {
            test = try SplitTest(weights: route.weights, configuration: route.statistics)
        } catch {
            throw LoadConfigurationError(field: "expect", value: file, reason: error.description)
        }
        let shared = SharedTest(test, expectation: route)
        var configuration = Self.configuration(configuration, for: route)
        var waited: PropagationOutcome?
        if let propagation {
            waited = try await awaitPropagation(route, wait: propagation, configuration: configuration, group: group)
        }
        configuration.responseObserver = { identity, status in shared.observe(identity, status: status) }
        let result = try await LoadGenerator(configuration: configuration, group: group).run()
        let (verdict, unsuccessful) = shared.snapshot
        return Outcome(route: route, verdict: verdict, result: result, unsuccessful: unsuccessful, propagation: waited)
    }
}

/// The mTLS check: every response's caller, as the workload saw it, is the expected identity.
public struct CallerCheck: Sendable {
    public var expected: String
    public var passed: Bool
    /// Callers seen, by identity ("" for responses without the stamp or without a caller).
    public var seen: [String: Int]
    public var responses: Int
    public var reason: String?

    /// Evaluates the outcomes of a verify run against `expected`.
    public static func evaluate(_ outcomes: [PolicyVerification.Outcome], expected: String) -> CallerCheck {
        var seen: [String: Int] = [:]
        var responses = 0
        for outcome in outcomes {
            seen.merge(outcome.result.callersSeen, uniquingKeysWith: +)
            responses += outcome.result.responses
        }
        let stamped = seen.values.reduce(0, +)
        if stamped < responses { seen["", default: 0] += responses - stamped }
        let matching = seen[expected, default: 0]
        var reason: String?
        if expected.isEmpty {
            reason = "the prober has no SPIFFE ID to compare with (give --svid-dir/--cert, or mtls: {caller: ...})"
        } else if matching != responses || responses == 0 {
            let others = seen.filter { $0.key != expected }.sorted { $0.value > $1.value }
                .map { "\($0.key.isEmpty ? "(none)" : $0.key): \($0.value)" }.joined(separator: ", ")
            reason = "\(responses - matching) of \(responses) responses came from a caller other than \(expected) (\(others))"
        }
        return CallerCheck(expected: expected, passed: reason == nil, seen: seen, responses: responses, reason: reason)
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

/// Service-level objectives over all the requests a verification sent: success rate and latency percentiles
/// (point estimates from the merged histograms, not a statistical test).
public struct SLOCheck: Sendable {
    public var name: String
    public var passed: Bool
    public var observed: Double
    public var limit: Double
    public var reason: String?
    /// The latency percentile the limit is for; nil for the success rate.
    public var percentile: Double? = nil

    public static func evaluate(_ outcomes: [PolicyVerification.Outcome], policy: Policy) -> [SLOCheck] {
        var merged = LoadResult()
        for outcome in outcomes { merged.merge(outcome.result) }
        return evaluate(merged, minimumSuccessRate: policy.minimumSuccessRate, latencyCeilings: policy.latencyCeilings)
    }

    /// The objectives over one result: a success rate and latency ceilings (seconds) by percentile.
    public static func evaluate(_ merged: LoadResult, minimumSuccessRate: Double?, latencyCeilings: [(percentile: Double, seconds: Double)]) -> [SLOCheck] {
        var checks: [SLOCheck] = []
        if let minimum = minimumSuccessRate {
            let total = max(1, merged.succeeded + merged.failed)
            let rate = Double(merged.succeeded) / Double(total)
            checks.append(SLOCheck(name: String(format: "success rate >= %g", minimum), passed: rate >= minimum, observed: rate,
                                   limit: minimum, reason: rate >= minimum ? nil : String(format: "%.4f of %d requests succeeded", rate, total)))
        }
        for (percentile, ceiling) in latencyCeilings {
            // As the results state percentiles (the highest value of the bucket), so a merge decides the same.
            let micros = merged.latency.highestEquivalentValue(atPercentile: percentile)
            let seconds = Double(micros) / 1e6
            let label = percentile == 99.9 ? "p99.9" : "p\(Int(percentile))"
            checks.append(SLOCheck(name: String(format: "%@ latency <= %g ms", label, ceiling * 1000), passed: seconds <= ceiling,
                                   observed: seconds, limit: ceiling,
                                   reason: seconds <= ceiling ? nil : String(format: "%@ was %.1f ms over %d responses", label, seconds * 1000, merged.responses),
                                   percentile: percentile))
        }
        return checks
    }
}
