import Foundation
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobePolicy
import MeshprobeSpec
import MeshprobeStatistics
import NIOCore

/// Tolerances of the timing check, stated once (docs/resilience.md: retries and timeouts).
public enum RetryTolerance {
    /// A request may end this much earlier or later than expected: max(50 ms, 10%).
    public static func timing(expected: Double) -> Double { max(0.05, expected * 0.1) }

    /// Extra time a proxy may spend between tries: Envoy's default back-off is fully jittered exponential from
    /// 25 ms, so retry N waits up to (2^N - 1) x 25 ms, at most 250 ms.
    public static func backoff(retries: Int) -> Double {
        guard retries > 0 else { return 0 }
        return (1...retries).reduce(0.0) { $0 + min(0.25, 0.025 * (pow(2, Double($1)) - 1)) }
    }
}

/// Verifies a route's retries and timeouts with faults the echo injects per request (its query string, or for gRPC
/// calls its `CallRequest` knobs: no control API and no allow list needed), one upstream endpoint behind the proxy:
///
/// 1. attempts: every request gets a fresh `x-request-id` and a retryable status on every try (for gRPC calls a retried
///    gRPC status, trailers-only); the echo counts the tries per id and stamps the count on its answer
///    (`x-meshprobe-attempt`), so the final response must say `attempts + 1`: fewer is retries looser or missing, more
///    is retries beyond the declared number;
/// 2. a status that is not retried (404 when retryOn does not name it; NOT_FOUND for gRPC calls) must come back after
///    one try;
/// 3. timing: every try is delayed beyond the per-try timeout (or the route timeout); the request must end at about
///    the per-try timeout times the tries (or the route timeout, if that comes first), with a proxy's reply, never
///    the application's.
///
/// With several upstream endpoints each counts its own tries (Envoy retries another host when it can), so the
/// attempts check is exact with one endpoint; the verdict says what it saw.
public enum RetryCheck {
    public struct Outcome: Sendable {
        public var expectation: RetryExpectation
        public var checks: [ProcedureCheck]
        /// What the procedure could not exercise, in plain words.
        public var notes: [String]
    }

    /// The header the echo counts tries by.
    static let requestIDHeader = "x-request-id"
    /// Requests in flight at once in each phase.
    static let concurrency = 10

    public static func run(_ expectation: RetryExpectation, configuration base: LoadConfiguration,
                           group: any EventLoopGroup) async throws -> Outcome {
        var base = base
        if !expectation.conditions.isEmpty {
            // Requests that take the route: its headers, path and method.
            var route = SplitExpectation(name: expectation.source, weights: [:], recognizer: .version, statistics: SplitTestConfiguration())
            route.conditions = expectation.conditions
            base = PolicyVerification.configuration(base, for: route)
        }
        base.plan.warmup = 0
        base.plan.churn = .reuse
        base.responseObserver = nil
        base.plan.guards = []
        base.plan.requests = expectation.requests
        base.plan.headers.removeAll { $0.name.lowercased() == requestIDHeader }
        base.plan.headers.append(HTTP2HeaderPair(requestIDHeader, "{{uuid}}"))
        let inFlight = min(concurrency, expectation.requests)
        base.plan.connections = min(2, inFlight)
        base.plan.streamsPerConnection = (inFlight + base.plan.connections - 1) / base.plan.connections
        base.plan.model = .closed(concurrency: .constant(Double(inFlight)), thinkTime: 0)
        base.countsPods = true

        let grpc = base.plan.grpc != nil
        func phase(status: Int? = nil, delay: Double? = nil, seconds: Double) async throws -> LoadResult {
            var c = base
            // Fresh request ids every phase and every run: `{{uuid}}` follows the seed, and the echo remembers ids.
            c.plan.seed = UInt64.random(in: 1...UInt64.max)
            try EchoKnobs.set(status: status, delay: delay, in: &c.plan, check: "retries")
            // Bounded in time too: every request's worst case, in rounds of `inFlight`, with room to spare.
            let rounds = Double((expectation.requests + inFlight - 1) / inFlight)
            c.plan.requestTimeout = max(base.plan.requestTimeout, seconds * 2 + 2)
            c.plan.duration = rounds * (seconds * 2 + 2) + 5
            return try await LoadGenerator(configuration: c, group: group).run()
        }

        var checks: [ProcedureCheck] = []
        var notes: [String] = []
        if let attempts = expectation.attempts {
            if let status = expectation.retryOn.injected(retried: true, grpc: grpc) {
                let result = try await phase(status: status, seconds: 1)
                checks.append(evaluateTries(result, status: status, expected: attempts + 1,
                                            name: "a retried status (\(ResponseCode.text(status))) is tried \(times(attempts + 1)) (\(attempts) retr\(attempts == 1 ? "y" : "ies"))"))
            } else if grpc {
                // A verdict, not only a note: the declared attempts are not shown, and a result read by a machine must say so.
                checks.append(.undecided("the declared attempts (\(attempts) retr\(attempts == 1 ? "y" : "ies")) with gRPC calls",
                                         reason: "retryOn \(expectation.retryOn) names no gRPC condition (cancelled, deadline-exceeded, internal, resource-exhausted, unavailable): the number of attempts is not exercised with gRPC calls, whose failures come with HTTP status 200 and their grpc-status, which HTTP conditions never match",
                                         evidence: ["expected_tries": Double(attempts + 1)], requests: 0))
            } else {
                notes.append("retryOn \(expectation.retryOn) names no status: the number of attempts is not exercised")
            }
            // One retried status stands for the list: say which of the declared ones were not tried.
            if grpc, let injected = expectation.retryOn.retryableGRPCStatus, expectation.retryOn.grpcStatuses.count > 1 {
                let others = expectation.retryOn.grpcStatuses.subtracting([injected]).map { ResponseCode.text(ResponseCode.grpc($0)) }.sorted()
                notes.append("of the retried gRPC statuses, \(ResponseCode.text(ResponseCode.grpc(injected))) is injected: \(others.joined(separator: ", ")) "
                    + "\(others.count == 1 ? "is" : "are") not exercised")
            }
            if !grpc, let injected = expectation.retryOn.retryableStatus {
                let others = expectation.retryOn.otherStatuses(than: injected)
                if !others.isEmpty {
                    notes.append("of the retried statuses, \(injected) is injected: \(others) \(others.contains(where: { $0 == "," || $0 == "-" }) ? "are" : "is") not exercised")
                }
            }
            let untriggered = expectation.retryOn.unexercisedConditions
            if !untriggered.isEmpty {
                notes.append("retryOn \(untriggered.joined(separator: ", ")): no injected status or delay triggers \(untriggered.count == 1 ? "it" : "them"), not exercised")
            }
            if attempts > 0, let status = expectation.retryOn.injected(retried: false, grpc: grpc) {
                let result = try await phase(status: status, seconds: 1)
                checks.append(evaluateTries(result, status: status, expected: 1, name: "a status not retried (\(ResponseCode.text(status))) is tried once"))
            }
            // A proxy that retries every 5xx, or the gateway errors, where fewer are declared passes the two checks
            // above: each of those server errors outside the declared list must come back after one try too.
            if attempts > 0, !grpc, expectation.retryOn.retryableStatus != nil {
                for status in expectation.retryOn.nonRetriedServerErrors {
                    let result = try await phase(status: status, seconds: 1)
                    checks.append(evaluateTries(result, status: status, expected: 1, name: "a server error not retried (\(status)) is tried once"))
                }
            }
        }
        if let end = expectation.expectedEnd, let delay = expectation.injectedDelay {
            let result = try await phase(delay: delay, seconds: max(end.seconds, delay))
            checks.append(evaluateTiming(result, expectation: expectation, expected: end, delay: delay))
            if end.by == .perTry, let route = expectation.timeout {
                notes.append(String(format: "the route timeout (%@) is not reached: %d tries of %@ end first",
                                    milliseconds(route), expectation.triesOnTimeout, milliseconds(expectation.perTryTimeout ?? 0)))
            }
        }
        return Outcome(expectation: expectation, checks: checks, notes: notes)
    }

    static func times(_ n: Int) -> String { n == 1 ? "once" : n == 2 ? "twice" : "\(n) times" }

    static func milliseconds(_ seconds: Double) -> String { String(format: "%.0f ms", seconds * 1000) }

    /// The attempts check: every final response must carry the echo's attempt stamp `expected`, with the injected
    /// status.
    static func evaluateTries(_ result: LoadResult, status: Int, expected: Int, name: String) -> ProcedureCheck {
        let total = result.totalRequests
        let stamped = result.attemptsSeen.values.reduce(0, +)
        var evidence: [String: Double] = ["requests": Double(total), "expected_tries": Double(expected),
                                          "unstamped": Double(total - stamped)]
        if let grpc = ResponseCode.grpcStatus(status) {
            evidence["injected_grpc_status"] = Double(grpc.rawValue)
        } else {
            evidence["injected_status"] = Double(status)
        }
        let statusText = ResponseCode.text(status)
        for (tries, count) in result.attemptsSeen { evidence["tries_\(tries)"] = Double(count) }
        let fewer = result.attemptsSeen.filter { $0.key < expected }.values.reduce(0, +)
        let more = result.attemptsSeen.filter { $0.key > expected }.values.reduce(0, +)
        let seen = result.attemptsSeen.sorted { $0.key < $1.key }
            .map { "\($0.value) after \($0.key) tr\($0.key == 1 ? "y" : "ies")" }.joined(separator: ", ")
        var reasons: [String] = []
        if total == 0 {
            reasons.append("no request was sent")
        } else if stamped == 0 {
            let classes = result.failureClasses.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            reasons.append("no final response carried the echo's attempt stamp (x-meshprobe-attempt): the proxy answered itself or did not pass x-request-id on (\(classes.isEmpty ? "no failures" : classes))")
        } else {
            // Each echo counts the tries it received: a proxy that retries on other endpoints (Envoy's previous_hosts
            // predicate, Istio's default; HAProxy's redispatch) leaves each final echo fewer than it made.
            let workloads = result.identities.filter { !$0.key.workload.isEmpty || !$0.key.version.isEmpty }.keys.map(\.label)
            let pods = result.podsSeen?.keys.sorted() ?? []
            let endpoints = pods.count > workloads.count ? pods.map { "pod \($0)" } : workloads.sorted()
            evidence["endpoints"] = Double(endpoints.count)
            // So with several endpoints a final count is a lower bound: only more tries than declared decide (a FAIL);
            // as many or fewer may hide tries at the other endpoints (2 of 3 at the last, when the tries alternate).
            if more == 0, endpoints.count > 1 {
                return ProcedureCheck(kind: "retries", name: name, passed: false, decided: false,
                                      reason: "final responses: \(seen), but they came from \(endpoints.count) endpoints (\(endpoints.joined(separator: ", "))) and each echo counts only the tries it received: a proxy that retries on other endpoints (Istio's default) spreads them, so each count is a lower bound and only more than \(times(expected)) would decide. Check with one endpoint behind the route for an exact count",
                                      evidence: evidence)
            }
            if fewer > 0 {
                reasons.append("\(fewer) of \(total) requests were tried fewer than \(times(expected)) (final responses: \(seen)): the proxy retries less than declared, or not on \(statusText)")
            }
            if more > 0 {
                reasons.append("\(more) of \(total) requests were tried more than \(times(expected)) (final responses: \(seen)): the proxy retries more than declared")
            }
            if stamped < total {
                reasons.append("\(total - stamped) of \(total) final responses carried no attempt stamp (a proxy reply or a lost request)")
            }
        }
        let wrongStatus = total - (result.statuses[status] ?? 0)
        if stamped > 0 && wrongStatus > 0 {
            reasons.append("\(wrongStatus) of \(total) final responses were not the injected \(statusText)")
        }
        return ProcedureCheck(kind: "retries", name: name, passed: reasons.isEmpty, reason: reasons.isEmpty ? nil : reasons.joined(separator: "; "),
                              evidence: evidence)
    }

    /// The timing check: the median request ends within the tolerance of the expected end, and every request ends
    /// with a proxy's reply (none from the application, none without a response).
    static func evaluateTiming(_ result: LoadResult, expectation e: RetryExpectation, expected: (seconds: Double, by: RetryExpectation.TimeoutKind),
                               delay: Double) -> ProcedureCheck {
        let tolerance = RetryTolerance.timing(expected: expected.seconds)
        // The route timeout runs from the first try: back-off between tries cannot delay it.
        let backoff = expected.by == .route ? 0 : RetryTolerance.backoff(retries: e.triesOnTimeout - 1)
        // A range when the earliest end is not known exactly (`earliestEnd`): one try at the earliest.
        let low = e.earliestEnd.map { $0 - RetryTolerance.timing(expected: $0) } ?? expected.seconds - tolerance
        let high = expected.seconds + tolerance + backoff
        let total = result.totalRequests
        let responses = result.responses
        let seconds = { (micros: UInt64) in Double(micros) / 1_000_000 }
        let median = responses > 0 ? seconds(result.latency.valueAtPercentile(50)) : 0
        let application = result.succeeded + result.failedResponses.filter { $0.key.origin == .application }.values.reduce(0) { $0 + $1.count }
        let proxy = result.failedResponses.filter { $0.key.origin == .proxy }
        let timeouts = proxy.filter { $0.key.reason == FailureClass.Reason.upstreamTimeout }.values.reduce(0) { $0 + $1.count }
        let proxyReplies = proxy.values.reduce(0) { $0 + $1.count }
        let noResponse = result.errors.values.reduce(0, +)
        let ms = { (seconds: Double) in (seconds * 1_000_000).rounded() / 1000 }
        var evidence: [String: Double] = [
            "requests": Double(total), "expected_ms": ms(expected.seconds), "tolerance_ms": ms(tolerance),
            "backoff_allowance_ms": ms(backoff), "injected_delay_ms": ms(delay), "expected_tries": Double(e.triesOnTimeout),
            "p50_ms": ms(median), "application_replies": Double(application),
            "proxy_replies": Double(proxyReplies), "proxy_timeouts": Double(timeouts), "no_response": Double(noResponse),
            "unclassified_replies": Double(result.failedResponses.filter { $0.key.origin == .unknown }.values.reduce(0) { $0 + $1.count }),
        ]
        if responses > 0 {
            evidence["min_ms"] = ms(seconds(result.latency.min))
            evidence["max_ms"] = ms(seconds(result.latency.max))
        }
        if let earliest = e.earliestEnd { evidence["earliest_ms"] = ms(earliest) }
        let what = expected.by == .route
            ? "the route timeout (\(milliseconds(e.timeout ?? 0)))"
            : "\(e.triesOnTimeout) tr\(e.triesOnTimeout == 1 ? "y" : "ies") of the per-try timeout (\(milliseconds(e.perTryTimeout ?? 0)))"
        var reasons: [String] = []
        if total == 0 { reasons.append("no request was sent") }
        // The echo refuses a delay beyond its --max-delay: 400 to an HTTP request, INVALID_ARGUMENT to a gRPC call.
        let refusal = ["400", GRPCStatusCode.invalidArgument.name]
        let refused = result.failedResponses.filter { $0.key.origin == .application && refusal.contains($0.key.reason) }.values.reduce(0) { $0 + $1.count }
        if refused > 0 {
            reasons.append("the echo refused the injected delay of \(milliseconds(delay)) on \(refused) requests (400 or INVALID_ARGUMENT): it is longer than the echo's --max-delay (10 s by default)")
        } else if application > 0 {
            reasons.append("\(application) of \(total) requests were answered by the application (the echo held each try \(milliseconds(delay))): nothing timed out at \(milliseconds(expected.by == .route ? e.timeout ?? 0 : e.perTryTimeout ?? 0)), the proxy's timeout is looser or missing")
        }
        if noResponse > 0 {
            reasons.append("\(noResponse) of \(total) requests got no response (\(result.errors.keys.map(\.rawValue).sorted().joined(separator: ", ")))")
        }
        if responses > 0 && application == 0 {
            if median > high {
                reasons.append(String(format: "the requests ended after %.0f ms (median), later than %@ allows: %.0f ms, at most %.0f ms with the tolerance; the proxy's timeout is looser or it retries more",
                                      median * 1000, what, expected.seconds * 1000, high * 1000))
            } else if median < low {
                let allowed = e.earliestEnd.map { String(format: "one try of %.0f ms", $0 * 1000) } ?? String(format: "%@: %.0f ms", what, expected.seconds * 1000)
                reasons.append(String(format: "the requests ended after %.0f ms (median), earlier than %@ allows, at least %.0f ms with the tolerance; the proxy's timeout is tighter or it retries less",
                                      median * 1000, allowed, low * 1000))
            }
        }
        let name = e.earliestEnd.map { "a slow request ends between one try (\(milliseconds($0))) and the route timeout (\(milliseconds(expected.seconds)))" }
            ?? (expected.by == .route
            ? "the route timeout ends a slow request at \(milliseconds(expected.seconds))"
            : "a slow request ends after \(what): \(milliseconds(expected.seconds))")
        return ProcedureCheck(kind: expected.by == .route ? "timeout" : "retries", name: name, passed: reasons.isEmpty,
                              reason: reasons.isEmpty ? nil : reasons.joined(separator: "; "), evidence: evidence)
    }
}
