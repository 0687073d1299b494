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
            let read = ok ? expectation.recognizer.destination(of: identity) : nil
            return lock.withLock {
                guard ok else {
                    unsuccessful += 1
                    return false
                }
                let name = read.map { expectation.mapping[$0] ?? $0 } ?? "(unrecognised: no \(expectation.recognizer))"
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
            outcomes.append(try await run(route, file: policy.file, configuration: configuration, group: group))
        }
        return outcomes
    }

    public static func run(_ route: SplitExpectation, file: String, configuration: LoadConfiguration,
                           group: any EventLoopGroup) async throws -> Outcome {
        let test: SplitTest
        do {
            test = try SplitTest(weights: route.weights, configuration: route.statistics)
        } catch {
            throw LoadConfigurationError(field: "expect", value: file, reason: error.description)
        }
        let shared = SharedTest(test, expectation: route)
        var configuration = configuration
        // Requests that take this route: its headers replace any of the same name; its path replaces the target's.
        let names = Set(route.matchHeaders.map(\.name))
        configuration.headers = configuration.headers.filter { !names.contains($0.name.lowercased()) } + route.matchHeaders
        if let path = route.matchPath {
            for i in configuration.targets.indices { configuration.targets[i].path = path }
        }
        configuration.responseObserver = { identity, status in shared.observe(identity, status: status) }
        let result = try await LoadGenerator(configuration: configuration, group: group).run()
        let (verdict, unsuccessful) = shared.snapshot
        return Outcome(route: route, verdict: verdict, result: result, unsuccessful: unsuccessful)
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

/// Service-level objectives over all the requests a verification sent: success rate and latency percentiles
/// (point estimates from the merged histograms, not a statistical test).
public struct SLOCheck: Sendable {
    public var name: String
    public var passed: Bool
    public var observed: Double
    public var limit: Double
    public var reason: String?

    public static func evaluate(_ outcomes: [PolicyVerification.Outcome], policy: Policy) -> [SLOCheck] {
        var merged = LoadResult()
        for outcome in outcomes { merged.merge(outcome.result) }
        var checks: [SLOCheck] = []
        if let minimum = policy.minimumSuccessRate {
            let total = max(1, merged.succeeded + merged.failed)
            let rate = Double(merged.succeeded) / Double(total)
            checks.append(SLOCheck(name: String(format: "success rate >= %g", minimum), passed: rate >= minimum, observed: rate,
                                   limit: minimum, reason: rate >= minimum ? nil : String(format: "%.4f of %d requests succeeded", rate, total)))
        }
        for (percentile, ceiling) in policy.latencyCeilings {
            let micros = merged.latency.totalCount > 0 ? merged.latency.valueAtPercentile(percentile) : 0
            let seconds = Double(micros) / 1e6
            let label = percentile == 99.9 ? "p99.9" : "p\(Int(percentile))"
            checks.append(SLOCheck(name: String(format: "%@ latency <= %g ms", label, ceiling * 1000), passed: seconds <= ceiling,
                                   observed: seconds, limit: ceiling,
                                   reason: seconds <= ceiling ? nil : String(format: "%@ was %.1f ms over %d responses", label, seconds * 1000, merged.responses)))
        }
        return checks
    }
}
