/// A gRPC status code (grpc/grpc doc/statuscodes.md): the value of a response's `grpc-status`.
public enum GRPCStatusCode: Int, Sendable, Hashable, Codable, CaseIterable, Comparable, CustomStringConvertible {
    case ok = 0
    case cancelled = 1
    case unknown = 2
    case invalidArgument = 3
    case deadlineExceeded = 4
    case notFound = 5
    case alreadyExists = 6
    case permissionDenied = 7
    case resourceExhausted = 8
    case failedPrecondition = 9
    case aborted = 10
    case outOfRange = 11
    case unimplemented = 12
    case `internal` = 13
    case unavailable = 14
    case dataLoss = 15
    case unauthenticated = 16

    /// The canonical name, as gRPC and Envoy print it: `OK`, `UNAVAILABLE`, `RESOURCE_EXHAUSTED`.
    public var name: String {
        switch self {
        case .ok: "OK"
        case .cancelled: "CANCELLED"
        case .unknown: "UNKNOWN"
        case .invalidArgument: "INVALID_ARGUMENT"
        case .deadlineExceeded: "DEADLINE_EXCEEDED"
        case .notFound: "NOT_FOUND"
        case .alreadyExists: "ALREADY_EXISTS"
        case .permissionDenied: "PERMISSION_DENIED"
        case .resourceExhausted: "RESOURCE_EXHAUSTED"
        case .failedPrecondition: "FAILED_PRECONDITION"
        case .aborted: "ABORTED"
        case .outOfRange: "OUT_OF_RANGE"
        case .unimplemented: "UNIMPLEMENTED"
        case .internal: "INTERNAL"
        case .unavailable: "UNAVAILABLE"
        case .dataLoss: "DATA_LOSS"
        case .unauthenticated: "UNAUTHENTICATED"
        }
    }

    public var description: String { name }

    /// Envoy's retry-on spelling (`resource-exhausted`), also the lower-case form the docs and files use.
    public var retryConditionName: String { String(name.lowercased().map { $0 == "_" ? "-" : $0 }) }

    /// Reads a code by number (`14`), canonical name (`UNAVAILABLE`) or Envoy's spelling (`unavailable`,
    /// `resource-exhausted`); nil for anything else.
    public init?(parsing text: String) {
        if let n = Int(text) {
            guard let code = GRPCStatusCode(rawValue: n) else { return nil }
            self = code
            return
        }
        let key = String(text.uppercased().map { $0 == "-" ? "_" : $0 })
        guard let code = Self.allCases.first(where: { $0.name == key }) else { return nil }
        self = code
    }

    /// The status a client takes from an HTTP response that carried no `grpc-status` (grpc/grpc
    /// doc/http-grpc-status-mapping.md): 400 INTERNAL, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 UNIMPLEMENTED,
    /// 429, 502, 503 and 504 UNAVAILABLE, anything else UNKNOWN.
    public init(httpStatus: Int) {
        switch httpStatus {
        case 400: self = .internal
        case 401: self = .unauthenticated
        case 403: self = .permissionDenied
        case 404: self = .unimplemented
        case 429, 502, 503, 504: self = .unavailable
        default: self = .unknown
        }
    }

    /// The HTTP status Envoy counts a gRPC status as (its `Grpc::Utility::grpcToHttpStatus`), which its outlier
    /// detection's `consecutive_5xx` and `consecutive_gateway_failure` see for gRPC calls.
    public var httpEquivalent: Int {
        switch self {
        case .ok: 200
        case .cancelled: 499
        case .unknown: 500
        case .invalidArgument: 400
        case .deadlineExceeded: 504
        case .notFound: 404
        case .alreadyExists: 409
        case .permissionDenied: 403
        case .resourceExhausted: 429
        case .failedPrecondition: 400
        case .aborted: 409
        case .outOfRange: 400
        case .unimplemented: 501
        case .internal: 500
        case .unavailable: 503
        case .dataLoss: 500
        case .unauthenticated: 401
        }
    }

    public static func < (lhs: GRPCStatusCode, rhs: GRPCStatusCode) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The response code a run counts a response by, one number for HTTP and gRPC: an HTTP status (100...999) as it came,
/// or a gRPC status as `1000 + code` (1000 is OK, 1014 UNAVAILABLE). A gRPC call's code is its `grpc-status`; a gRPC
/// call answered without one (a proxy's plain 503, a 404) keeps the HTTP status when it is an error status (400 and
/// above), and is INTERNAL otherwise (a 200 without trailers, a redirect: not a gRPC answer). The two ranges never
/// meet, so one key carries both, and a success is the same test for both: 200...399, or gRPC OK.
public enum ResponseCode {
    public static let grpcBase = 1000
    /// A health check (`grpc.health.v1.Health/Check`) answered OK whose `HealthCheckResponse` says other than SERVING:
    /// `healthBase` + its serving status (0 UNKNOWN, 2 NOT_SERVING, 3 SERVICE_UNKNOWN). It fails, as Kubernetes' gRPC
    /// probe and grpc_health_probe count it; its gRPC status is OK.
    public static let healthBase = 1020
    /// The largest code a response can have (a health check's SERVICE_UNKNOWN); it fits the 10 bits a series key gives.
    public static let maximum = healthBase + 3

    /// The code of a gRPC status.
    @inline(__always) public static func grpc(_ status: GRPCStatusCode) -> Int { grpcBase + status.rawValue }

    /// The code of a health check's OK answer carrying `servingStatus` (the `HealthCheckResponse.ServingStatus` number):
    /// gRPC OK for SERVING (1), else `healthBase` + it (a number beyond the enum's counts as UNKNOWN).
    public static func health(servingStatus: Int) -> Int {
        switch servingStatus {
        case 1: grpc(.ok)
        case 2, 3: healthBase + servingStatus
        default: healthBase
        }
    }

    /// The serving status of a health check's failing answer (0 UNKNOWN, 2 NOT_SERVING, 3 SERVICE_UNKNOWN); nil for
    /// any other code.
    @inline(__always) public static func healthStatus(_ code: Int) -> Int? {
        code >= healthBase && code <= maximum ? code - healthBase : nil
    }

    static let healthNames = [0: "UNKNOWN", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"]

    /// The gRPC status a code stands for (OK for a health check's answer, whatever it says); nil for an HTTP status.
    @inline(__always) public static func grpcStatus(_ code: Int) -> GRPCStatusCode? {
        guard code >= grpcBase else { return nil }
        return code >= healthBase ? .ok : GRPCStatusCode(rawValue: code - grpcBase)
    }

    /// True when a response with this code succeeded: an HTTP 2xx or 3xx, or gRPC OK.
    @inline(__always) public static func succeeded(_ code: Int) -> Bool {
        (200..<400).contains(code) || code == grpcBase
    }

    /// The HTTP status a code counts as for a proxy's HTTP rules (outlier detection's 5xx): an HTTP status as it is, a
    /// gRPC status as Envoy maps it (`GRPCStatusCode.httpEquivalent`).
    public static func httpEquivalent(_ code: Int) -> Int {
        grpcStatus(code)?.httpEquivalent ?? code
    }

    /// How a report names a code: `503` for HTTP, `UNAVAILABLE` for gRPC, `health NOT_SERVING` for a health check's
    /// OK answer that says so.
    public static func text(_ code: Int) -> String {
        if let serving = healthStatus(code) { return "health " + (healthNames[serving] ?? "UNKNOWN") }
        return grpcStatus(code)?.name ?? String(code)
    }

    /// Reads a code as a report writes it (`text`): a number below 1000 is an HTTP status, a gRPC status name its code,
    /// `health NAME` a health check's answer.
    public static func parse(_ text: String) -> Int? {
        if let n = Int(text), (0..<grpcBase).contains(n) { return n }
        if text.hasPrefix("health "), let serving = healthNames.first(where: { "health " + $0.value == text })?.key {
            return healthBase + serving
        }
        if Int(text) == nil, let status = GRPCStatusCode(parsing: text) { return grpc(status) }
        return nil
    }
}
