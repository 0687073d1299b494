import MeshprobeLoad
import MeshprobePolicy
import MeshprobeSpec
import NIOCore

/// Sends requests through the proxy, a few at a time, and reads the echo's `x-meshprobe-connection-request` stamp
/// (which request this is on the connection it came on): no upstream connection may carry more than the limit.
/// Per proxy, like every connection-pool setting.
public enum ConnectionReuseCheck {
    public struct Outcome: Sendable {
        public var expectation: ConnectionReuseExpectation
        public var check: ProcedureCheck
        public var result: LoadResult
    }

    public static func run(_ e: ConnectionReuseExpectation, configuration base: LoadConfiguration, group: any EventLoopGroup) async throws -> Outcome {
        var c = base
        c.plan.model = .closed(concurrency: nil, thinkTime: 0)
        c.plan.connections = 1
        c.plan.streamsPerConnection = 4
        c.plan.requests = e.requests
        c.plan.duration = nil
        c.plan.warmup = 0
        c.plan.churn = .reuse
        c.responseObserver = nil
        let result = try await LoadGenerator(configuration: c, group: group).run()
        return Outcome(expectation: e, check: evaluate(e, result: result), result: result)
    }

    static func evaluate(_ e: ConnectionReuseExpectation, result: LoadResult) -> ProcedureCheck {
        let peak = result.upstreamPeakConnectionRequests
        return CircuitBreakerCheck.peakCheck(
            name: "upstream connections carried at most \(e.maxRequestsPerConnection) requests each", peak: peak, limit: e.maxRequestsPerConnection,
            result: result,
            unstamped: "no response carried the echo's x-meshprobe-connection-request stamp (\(result.succeeded) succeeded): the target is not the meshprobe echo, so the upstream's view is unknown",
            over: "an upstream connection carried \(peak) requests, more than the limit of \(e.maxRequestsPerConnection): the proxy reuses connections longer than declared",
            evidence: ["peak_requests_per_connection": Double(peak), "limit": Double(e.maxRequestsPerConnection),
                       "requests": Double(result.totalRequests), "succeeded": Double(result.succeeded)])
    }
}
