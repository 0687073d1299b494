import MeshprobeIdentity
import MeshprobeLoad
import MeshprobePolicy
import MeshprobeSpec
import MeshprobeStatistics
import NIOCore

/// Every request fails (the echo answers the retried status after holding it 100 ms) at several times the limit in
/// concurrent requests, so the route's retries overlap; the echo stamps how many retries it has in flight
/// (`x-meshprobe-retries-inflight`: requests whose `x-request-id` it had seen before). The upstream must never have
/// had more retries in flight than the limit. Per client proxy, like every connection-pool limit; exact with one
/// upstream endpoint.
public enum RetryBudgetCheck {
    public struct Outcome: Sendable {
        public var expectation: RetryBudgetExpectation
        public var check: ProcedureCheck
        public var result: LoadResult
    }

    public static func run(_ e: RetryBudgetExpectation, configuration base: LoadConfiguration, group: any EventLoopGroup) async throws -> Outcome {
        var c = base
        if !e.route.conditions.isEmpty {
            var route = SplitExpectation(name: e.source, weights: [:], recognizer: .version, statistics: SplitTestConfiguration())
            route.conditions = e.route.conditions
            c = PolicyVerification.configuration(c, for: route)
        }
        let inFlight = e.concurrency
        c.plan.connections = min(4, inFlight)
        c.plan.streamsPerConnection = (inFlight + c.plan.connections - 1) / c.plan.connections
        c.plan.model = .closed(concurrency: .constant(Double(inFlight)), thinkTime: 0)
        c.plan.requests = 3 * inFlight
        c.plan.warmup = 0
        c.plan.churn = .reuse
        c.plan.guards = []
        c.responseObserver = nil
        c.plan.headers.removeAll { $0.name.lowercased() == RetryCheck.requestIDHeader }
        c.plan.headers.append(HTTP2HeaderPair(RetryCheck.requestIDHeader, "{{uuid}}"))
        // Fresh request ids every run: `{{uuid}}` follows the seed, and the echo remembers ids.
        c.plan.seed = UInt64.random(in: 1...UInt64.max)
        try EchoKnobs.set(status: e.status, delay: 0.1, in: &c.plan, check: "maxRetries")
        let tries = Double((e.route.attempts ?? 0) + 1)
        c.plan.requestTimeout = max(c.plan.requestTimeout, tries * 0.1 * 4 + 2)
        c.plan.duration = 3 * (tries * 0.1 * 4 + 2) + 10
        let result = try await LoadGenerator(configuration: c, group: group).run()
        return Outcome(expectation: e, check: evaluate(e, result: result), result: result)
    }

    static func evaluate(_ e: RetryBudgetExpectation, result: LoadResult) -> ProcedureCheck {
        let peak = result.upstreamPeakRetriesInFlight
        return CircuitBreakerCheck.peakCheck(
            name: "the upstream never had more than \(e.maxRetries) retries in flight", peak: peak, limit: e.maxRetries,
            result: result,
            unstamped: "no response carried the echo's stamps (x-meshprobe-attempt): \(result.failureSummary() ?? "nothing failed"); the target is not the meshprobe echo, so the upstream's view is unknown",
            // The echo answered (its attempt stamp came back), yet no retry reached it: the route does not retry.
            missing: result.attemptsSeen.isEmpty ? nil : "no retry reached the upstream (no x-meshprobe-retries-inflight stamp): the route does not retry \(ResponseCode.text(e.status)), so the limit cannot be seen",
            over: "the upstream had \(peak) retries in flight at once, more than the limit of \(e.maxRetries): the proxy's retry limit is looser, or not enforced",
            evidence: ["peak_retries_in_flight": Double(peak), "limit": Double(e.maxRetries), "concurrency": Double(e.concurrency),
                       "requests": Double(result.totalRequests), "not_retried": Double(result.attemptsSeen[1, default: 0])])
    }
}
