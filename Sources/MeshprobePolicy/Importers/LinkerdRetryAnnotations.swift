import Foundation
import MeshprobeYAML

/// Linkerd's retry and timeout annotations (Linkerd 2.16 and later, on a Service) as a policy to verify.
///
/// From Linkerd's reference (retries, timeouts):
/// - `retry.linkerd.io/http`: the HTTP statuses to retry, a comma-separated list of codes (`504`), ranges
///   (`500-504`), `gateway-error` (502-504) or `5xx`; without it Linkerd retries no HTTP response;
/// - `retry.linkerd.io/grpc`: the gRPC statuses to retry, a comma-separated list of `cancelled`, `deadline-exceeded`,
///   `internal`, `resource-exhausted`, `unavailable` (Envoy's names for the same conditions);
/// - `retry.linkerd.io/limit`: the most retries of one request (default 1): `attempts`;
/// - `retry.linkerd.io/timeout`: a try that takes longer is cancelled and retried (if the limit allows): the per-try
///   timeout, so timeouts are always retried;
/// - `timeout.linkerd.io/request`: the whole request-response stream's limit, not retried: the route timeout.
/// `timeout.linkerd.io/response` and `timeout.linkerd.io/idle` are reported as not checked.
public enum LinkerdRetryAnnotations {
    static let http = "retry.linkerd.io/http"
    static let grpc = "retry.linkerd.io/grpc"
    static let limit = "retry.linkerd.io/limit"
    static let retryTimeout = "retry.linkerd.io/timeout"
    static let requestTimeout = "timeout.linkerd.io/request"

    static func expectation(_ annotations: YAMLValue, resource: String) throws(YAMLInputError) -> (RetryExpectation?, [String]) {
        var values: [String: YAMLValue] = [:]
        var notes: [String] = []
        for (key, _, at) in try annotations.stringMap() where key.hasPrefix("retry.linkerd.io/") || key.hasPrefix("timeout.linkerd.io/") {
            if [http, grpc, limit, retryTimeout, requestTimeout].contains(key) {
                values[key] = at
            } else {
                notes.append("\(at.file):\(at.line): \(resource): \(key) is not checked")
            }
        }
        var e = RetryExpectation(attempts: nil, source: "\(annotations.file):\(annotations.line) \(resource) (Linkerd annotations)")
        if values[http] != nil || values[grpc] != nil {
            var conditions = RetryConditions(declared: [], statuses: [], retriesTimeouts: true)
            if let codes = values[http] {
                conditions = try RetryExpectation.conditions(codes)
                conditions.retriesTimeouts = true
            }
            if let codes = values[grpc] {
                for item in try codes.string().split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
                    guard let status = RetryConditions.grpcConditions[item] else {
                        throw codes.error("\(grpc): unknown gRPC status '\(item)'; Linkerd retries cancelled, deadline-exceeded, internal, "
                                          + "resource-exhausted, unavailable")
                    }
                    conditions.declared.append(item)
                    conditions.grpcStatuses.insert(status)
                }
            }
            e.retryOn = conditions
            e.attempts = try values[limit].map { v throws(YAMLInputError) in try RetryExpectation.checkable(attempts: v) } ?? 1
            if let v = values[retryTimeout] { e.perTryTimeout = try RetryExpectation.checkable(try v.duration(), at: v) }
        } else if let v = values[limit] ?? values[retryTimeout] {
            notes.append("\(v.file):\(v.line): \(resource): \(limit) and \(retryTimeout) without \(http) or \(grpc): Linkerd retries no response, not checked")
        }
        if let v = values[requestTimeout] { e.timeout = try RetryExpectation.checkable(try v.duration(), at: v) }
        guard e.attempts != nil || e.timeout != nil else { return (nil, notes) }
        return (e, notes)
    }
}
