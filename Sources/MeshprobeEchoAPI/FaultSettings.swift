import MeshprobeIdentity
/// What one game-day fault does, where, and for how long: a checked `POST /.meshprobe/faults` body.
public struct FaultSettings: Sendable, Equatable {
    /// The status to answer instead, for `statusShare` percent of the matching requests; gRPC calls get it too (as a
    /// proxy's answer: that HTTP status without `grpc-status`) unless `grpcStatus` is set.
    public var status: Int?
    /// The gRPC status to answer gRPC calls with instead (trailers-only), for `statusShare` percent of them; never
    /// OK. HTTP requests are not answered with it.
    public var grpcStatus: GRPCStatusCode?
    public var statusShare: Double = 0
    public var delayNanoseconds: UInt64 = 0
    public var delayShare: Double = 0
    /// Percent of the matching requests whose stream is reset (HTTP/1.1: whose connection is closed).
    public var resetShare: Double = 0
    /// Applies to request paths (without the query) that start with this; "/" is every path.
    public var pathPrefix: String = "/"
    public var durationSeconds: Double
    /// The setter's label (a run's id), for listing and clearing together every fault one run set.
    public var label: String?

    /// The longest a fault may last: a forgotten game-day fault must not outlive the game day by much.
    public static let maxDurationSeconds = 3600.0
    public static let maxPathLength = 1024
    public static let maxLabelLength = 64
    package static let labelRule = "must be 1 to \(maxLabelLength) characters: letters, digits, '.', '_' and '-'"

    /// A label is 1 to 64 ASCII letters, digits, '.', '_' and '-': safe in a query string as it is.
    public static func isValidLabel(_ label: String) -> Bool {
        !label.isEmpty && label.utf8.count <= maxLabelLength
            && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
    }

    /// Checks a request's values; errors name the JSON field.
    public init(_ request: FaultControlJSON.NewFault, limits: FaultLimits) throws(FaultControlError) {
        typealias Field = FaultControlJSON.NewFault.CodingKeys
        func percent(_ value: Double, _ field: Field) throws(FaultControlError) -> Double {
            guard value > 0, value <= 100 else { throw FaultControlError(field, "must be a percentage more than 0 and at most 100, got \(numberText(value))") }
            return value
        }
        func share(_ value: Double?, _ field: Field, of owner: Field, present: Bool) throws(FaultControlError) -> Double {
            guard let value else { return present ? 100 : 0 }
            guard present else { throw FaultControlError(field, "needs \(owner.rawValue): a share of what") }
            return try percent(value, field)
        }
        if let status = request.status {
            guard (200...599).contains(status) else { throw FaultControlError(.status, "must be an HTTP status code 200-599, got \(status)") }
        }
        self.status = request.status
        if let text = request.grpcStatus {
            guard let code = GRPCStatusCode(parsing: text), code != .ok else {
                throw FaultControlError(.grpcStatus, "must be a gRPC error status: a name such as UNAVAILABLE or a number 1-16, got \(PrintableText.replacingControls(text))")
            }
            grpcStatus = code
        }
        if let delay = request.delayMs {
            let maxMs = Double(limits.maxDelayNanoseconds) / 1e6
            guard delay > 0, delay <= maxMs else {
                throw FaultControlError(.delayMs, "must be more than 0 and at most the echo's maximum delay of \(Int(maxMs)) ms, got \(numberText(delay))")
            }
            delayNanoseconds = UInt64(delay * 1e6)
        }
        statusShare = try share(request.statusShare, .statusShare, of: .status, present: request.status != nil || grpcStatus != nil)
        delayShare = try share(request.delayShare, .delayShare, of: .delayMs, present: request.delayMs != nil)
        if let reset = request.resetShare { resetShare = try percent(reset, .resetShare) }
        if let path = request.path {
            guard path.hasPrefix("/"), path.utf8.count <= Self.maxPathLength,
                  !path.unicodeScalars.contains(where: { $0.value <= 0x20 || $0 == "?" || $0 == "#" }) else {
                throw FaultControlError(.path, "must be a path prefix starting with '/', without spaces, '?' or '#', at most \(Self.maxPathLength) bytes")
            }
            pathPrefix = path
        }
        guard let duration = request.durationSeconds else {
            throw FaultControlError(.durationSeconds, "is required: how many seconds the fault lasts (at most \(Int(Self.maxDurationSeconds)))")
        }
        guard duration > 0, duration <= Self.maxDurationSeconds else {
            throw FaultControlError(.durationSeconds, "must be more than 0 and at most \(Int(Self.maxDurationSeconds)) seconds, got \(numberText(duration))")
        }
        durationSeconds = duration
        if let label = request.label {
            guard Self.isValidLabel(label) else { throw FaultControlError(.label, Self.labelRule) }
            self.label = label
        }
        if status == nil && grpcStatus == nil && delayNanoseconds == 0 && resetShare == 0 {
            throw FaultControlError(field: "body", reason: "the fault does nothing: give status, grpcStatus, delayMs or resetShare")
        }
    }
}

/// An echo's bounds on what a fault may ask for: the longest delay, the largest padded body.
public struct FaultLimits: Sendable {
    public var maxDelayNanoseconds: UInt64 = 10_000_000_000
    public var maxBodySize: Int = 1 << 20
    public init() {}
}

/// A bad control request: names the JSON field (or `body`) and what was expected.
public struct FaultControlError: Error, Sendable, Equatable, CustomStringConvertible {
    public var field: String
    public var reason: String

    public init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }

    package init(_ field: FaultControlJSON.NewFault.CodingKeys, _ reason: String) {
        self.init(field: field.rawValue, reason: reason)
    }

    public var description: String { "\(field): \(reason)" }
}
