import Foundation
import MeshprobeIdentity
import MeshprobeYAML

/// What a declared `retryOn` retries: which statuses, and whether a try that times out is tried again.
///
/// The vocabulary is Envoy's (Istio's `retryOn` is a comma-separated list of Envoy retry policies and status codes)
/// plus Linkerd's ranges (`500-504`): `5xx` (every 5xx, and a try that timed out or was reset), `gateway-error`
/// (502, 503, 504, and timeouts), `reset` (timeouts and resets, no status), `retriable-4xx` (409), a status code
/// (`503`), a range (`500-504`), gRPC's `cancelled`, `deadline-exceeded`, `internal`, `resource-exhausted` and
/// `unavailable` (a gRPC call answered with that `grpc-status` in its response headers, a trailers-only answer; Envoy
/// never reads the status from trailers, and its HTTP conditions compare `:status`, which is 200 on a gRPC answer),
/// and conditions that no injected status or delay can trigger (`connect-failure`, `refused-stream`,
/// `retriable-status-codes`, `retriable-headers`, `envoy-ratelimited`, ...), accepted and not exercised.
public struct RetryConditions: Sendable, Equatable, CustomStringConvertible {
    /// The conditions as declared, in order.
    public var declared: [String]
    /// HTTP statuses a proxy retries.
    public var statuses: Set<Int>
    /// gRPC statuses a proxy retries (its gRPC conditions).
    public var grpcStatuses: Set<GRPCStatusCode> = []
    /// A try that ends on the per-try timeout is retried (Envoy: `5xx`, `gateway-error`, `reset`; Linkerd: always,
    /// its `retry.linkerd.io/timeout` is a retry timeout).
    public var retriesTimeouts: Bool

    public init(declared: [String], statuses: Set<Int>, grpcStatuses: Set<GRPCStatusCode> = [], retriesTimeouts: Bool) {
        self.declared = declared
        self.statuses = statuses
        self.grpcStatuses = grpcStatuses
        self.retriesTimeouts = retriesTimeouts
    }

    /// Istio's retry policy when a route's `retries` gives no `retryOn`:
    /// `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes` with 503 as the retriable status.
    public static let istioDefault = RetryConditions(
        declared: ["connect-failure", "refused-stream", "unavailable", "cancelled", "retriable-status-codes", "503"],
        statuses: [503], grpcStatuses: [.unavailable, .cancelled], retriesTimeouts: false)

    /// Conditions that neither a status nor a delay from the echo can trigger; accepted, not exercised.
    static let notExercised: Set<String> = [
        "connect-failure", "refused-stream", "retriable-status-codes", "retriable-headers", "envoy-ratelimited",
        "http3-post-connect-failure", "reset-before-request",
    ]

    /// Envoy's gRPC retry conditions (`retry_on`, `x-envoy-retry-grpc-on`), each the status it retries.
    public static let grpcConditions: [String: GRPCStatusCode] = [
        "cancelled": .cancelled, "deadline-exceeded": .deadlineExceeded, "internal": .internal,
        "resource-exhausted": .resourceExhausted, "unavailable": .unavailable,
    ]

    /// Parses one condition list (`5xx,reset,503` split at the commas, or the items of a YAML list).
    public static func parse(_ items: [String]) throws(RetryConditionError) -> RetryConditions {
        var out = RetryConditions(declared: [], statuses: [], retriesTimeouts: false)
        for raw in items {
            let item = raw.trimmingCharacters(in: .whitespaces)
            guard !item.isEmpty else { continue }
            out.declared.append(item)
            switch item {
            case "5xx":
                out.statuses.formUnion(500...599)
                out.retriesTimeouts = true
            case "gateway-error":
                out.statuses.formUnion([502, 503, 504])
                out.retriesTimeouts = true
            case "reset":
                out.retriesTimeouts = true
            case "retriable-4xx":
                out.statuses.insert(409)
            case _ where notExercised.contains(item):
                break
            case _ where grpcConditions[item] != nil:
                out.grpcStatuses.insert(grpcConditions[item]!)
            default:
                let bounds = item.split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
                guard bounds.count <= 2, bounds.allSatisfy({ $0 != nil }), let low = bounds.first!, let high = bounds.last!,
                      (100...599).contains(low), (100...599).contains(high), low <= high else {
                    throw RetryConditionError(condition: item)
                }
                out.statuses.formUnion(low...high)
            }
        }
        if out.declared.isEmpty { throw RetryConditionError(condition: "") }
        return out
    }

    /// The status the attempts check injects: 503 when it is retried (the usual case), else the lowest retried 5xx,
    /// else the lowest retried status.
    public var retryableStatus: Int? {
        if statuses.contains(503) { return 503 }
        return statuses.filter { (500...599).contains($0) }.min() ?? statuses.filter { $0 >= 200 }.min()
    }

    /// A client-error status that is not retried, for the check that nothing else is.
    public var nonRetryableStatus: Int? {
        [404, 400, 403, 422, 418].first { !statuses.contains($0) }
    }

    /// The server errors a proxy is most likely to retry beyond a declaration (500, and the gateway errors 502 and 504)
    /// that are not retried, for the checks that it does not (Envoy's `5xx` or `gateway-error` against a declared `503`).
    public var nonRetriedServerErrors: [Int] {
        [500, 502, 504].filter { !statuses.contains($0) }
    }

    /// The declared conditions that no injected status or delay triggers (`connect-failure`, `refused-stream`, ...).
    public var unexercisedConditions: [String] { declared.filter { Self.notExercised.contains($0) } }

    /// The retried HTTP statuses other than `injected`, as ranges (`409, 500-502, 504-599`); empty when there are none.
    public func otherStatuses(than injected: Int) -> String {
        var runs: [ClosedRange<Int>] = []
        for status in statuses.subtracting([injected]).sorted() {
            if let last = runs.last, last.upperBound + 1 == status {
                runs[runs.count - 1] = last.lowerBound...status
            } else {
                runs.append(status...status)
            }
        }
        return runs.map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }.joined(separator: ", ")
    }

    /// The gRPC status the attempts check injects into gRPC calls: UNAVAILABLE when it is retried (the usual case, and
    /// Istio's default), else the retried one with the lowest code; nil when no gRPC condition is declared.
    public var retryableGRPCStatus: GRPCStatusCode? {
        grpcStatuses.contains(.unavailable) ? .unavailable : grpcStatuses.min()
    }

    /// The status each check injects, as a `ResponseCode`: an HTTP status for HTTP requests, a gRPC status for gRPC
    /// calls (whose HTTP status is 200 whatever the call's outcome, so the HTTP conditions never match them). A gRPC
    /// status not retried is NOT_FOUND, which no retry condition names.
    public func injected(retried: Bool, grpc: Bool) -> Int? {
        guard grpc else { return retried ? retryableStatus : nonRetryableStatus }
        guard retried else { return ResponseCode.grpc(.notFound) }
        return retryableGRPCStatus.map(ResponseCode.grpc)
    }

    public var description: String { declared.joined(separator: ",") }
}

public struct RetryConditionError: Error, Sendable, CustomStringConvertible {
    public var condition: String
    public var description: String {
        condition.isEmpty
            ? "retryOn names no condition"
            : "unknown retry condition '\(condition)'; expected 5xx, gateway-error, reset, retriable-4xx, connect-failure, "
              + "refused-stream, retriable-status-codes, a status code (503), a range (500-504) or a gRPC condition (cancelled, "
              + "deadline-exceeded, internal, resource-exhausted, unavailable)"
    }
}

/// A declared retry and timeout policy for one route (Istio VirtualService `retries` and `timeout`, Linkerd's
/// `retry.linkerd.io/*` and `timeout.linkerd.io/request`, or a policy's `retries`).
public struct RetryExpectation: Sendable, Equatable {
    /// Retries after the first try (Istio `retries.attempts`, Envoy `num_retries`, Linkerd
    /// `retry.linkerd.io/limit`): a request is tried at most `attempts + 1` times. Nil: retries not declared, only
    /// the timeout is checked.
    public var attempts: Int?
    /// Each try's timeout (Istio `perTryTimeout`, Linkerd `retry.linkerd.io/timeout`).
    public var perTryTimeout: Double?
    /// What is retried.
    public var retryOn: RetryConditions = .istioDefault
    /// The whole request's timeout, retries included (Istio route `timeout`, Linkerd `timeout.linkerd.io/request`).
    public var timeout: Double?
    /// Requests in each phase of the check.
    public var requests: Int = 20
    /// What makes a request take the route (an imported route's first match); empty: the policy's requests.
    public var conditions: [MatchCondition] = []
    /// Where the policy came from (file and line, or the manifest and route), for the verdict.
    public var source: String
    /// The earliest a slow request may end when that is not known exactly: Gateway API's `backendRequest` with `retry`
    /// (whether a try it cuts is retried is left to the implementation), so a slow request ends between one try and
    /// the route `timeout`. Nil: the timing check expects `expectedEnd` alone.
    public var earliestEnd: Double?

    public init(attempts: Int?, perTryTimeout: Double? = nil, timeout: Double? = nil, source: String) {
        self.attempts = attempts
        self.perTryTimeout = perTryTimeout
        self.timeout = timeout
        self.source = source
    }

    /// What is declared, as the plan and the run say it: `2 retries on unavailable,cancelled, per-try timeout 0.3s,
    /// timeout 2s`.
    public var summary: String {
        [attempts.map { "\($0) retr\($0 == 1 ? "y" : "ies") on \(retryOn)" },
         perTryTimeout.map { "per-try timeout \(YAMLValue.format($0))s" },
         timeout.map { "timeout \(YAMLValue.format($0))s" },
         earliestEnd.map { "a slow request ending from \(YAMLValue.format($0))s (one try)" }].compactMap { $0 }.joined(separator: ", ")
    }

    /// Tries a request whose every try outlasts the per-try timeout gets: all of them when timeouts are retried.
    public var triesOnTimeout: Int {
        guard let attempts, perTryTimeout != nil, retryOn.retriesTimeouts else { return 1 }
        return attempts + 1
    }

    /// When a request whose every try is slow should end, and which timeout ends it: the per-try timeouts added
    /// up, unless the route timeout comes first. Nil when neither is declared.
    public var expectedEnd: (seconds: Double, by: TimeoutKind)? {
        switch (perTryTimeout, timeout) {
        case let (perTry?, route?):
            let tries = Double(triesOnTimeout) * perTry
            return tries <= route ? (tries, .perTry) : (route, .route)
        case let (perTry?, nil): return (Double(triesOnTimeout) * perTry, .perTry)
        case let (nil, route?): return (route, .route)
        case (nil, nil): return nil
        }
    }

    public enum TimeoutKind: Sendable { case perTry, route }

    /// The delay the echo adds to every try in the timing check: clearly longer than the timeout that should cut it
    /// (half as long again, at least 200 ms and at most 1 s more).
    public var injectedDelay: Double? {
        guard let cut = perTryTimeout ?? timeout else { return nil }
        return cut + min(1, max(0.2, cut / 2))
    }
}

extension RetryExpectation {
    /// A policy's `retries: {attempts: 2, perTryTimeout: 200ms, retryOn: "5xx,reset", timeout: 1s, requests: 20}`.
    init(policy value: YAMLValue) throws(YAMLInputError) {
        let m = try value.mapping(allowed: ["attempts", "perTryTimeout", "retryOn", "timeout", "requests"])
        self.init(attempts: nil, source: "\(value.file):\(value.line) \(value.path)")
        if let a = m["attempts"] { attempts = try Self.checkable(attempts: a) }
        if let v = m["perTryTimeout"] { perTryTimeout = try Self.checkable(try v.duration(), at: v) }
        if let v = m["timeout"] { timeout = try Self.checkable(try v.duration(), at: v) }
        if let on = m["retryOn"] { retryOn = try Self.conditions(on) }
        if attempts == nil && (perTryTimeout != nil || m["retryOn"] != nil) {
            throw value.error("retries needs attempts (retries after the first try) with perTryTimeout or retryOn")
        }
        if attempts == nil && timeout == nil { throw value.error("give attempts (retries after the first try), timeout, or both") }
        if let r = m["requests"] {
            let n = try r.int(minimum: 1)
            guard n <= 1000 else { throw r.error("at most 1000 requests per phase") }
            requests = n
        }
    }

    /// A number of retries the check can drive: 0 to 10.
    static func checkable(attempts value: YAMLValue) throws(YAMLInputError) -> Int {
        let n = try value.int(minimum: 0)
        guard n <= 10 else { throw value.error("at most 10 retries (each request of the check is tried attempts + 1 times)") }
        return n
    }

    /// A timeout the check can wait for: at most 60 s.
    static func checkable(_ seconds: Double, at value: YAMLValue) throws(YAMLInputError) -> Double {
        guard seconds <= 60 else { throw value.error("at most 60s: the check holds every request longer than this") }
        return seconds
    }

    /// `retryOn` as Istio writes it (`"5xx,reset,503"`) or as a YAML list.
    static func conditions(_ value: YAMLValue) throws(YAMLInputError) -> RetryConditions {
        let items: [String]
        if case .scalar = value.node {
            items = try value.string().split(separator: ",").map(String.init)
        } else {
            items = try value.list().map { v throws(YAMLInputError) in try v.string() }
        }
        do { return try RetryConditions.parse(items) } catch { throw value.error(error.description) }
    }
}
