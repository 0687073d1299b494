import MeshprobeIdentity

/// The JSON bodies of the echo's control API, shared by the echo and its clients (`meshprobe fault`, the checks,
/// game days).
public enum FaultControlJSON {
    /// Where the echo serves its control API: the collection; a fault is at `apiPath/ID`.
    public static let apiPath = "/.meshprobe/faults"

    /// The body of `POST /.meshprobe/faults`.
    public struct NewFault: Codable, Sendable, Equatable {
        public var status: Int?
        /// The gRPC status to answer gRPC calls with (a name such as `UNAVAILABLE`, or a number 1-16), as Envoy's
        /// fault filter's `abort.grpc_status`; HTTP requests get `status` (none without one).
        public var grpcStatus: String?
        /// Percent of matching requests answered with `status` or `grpcStatus` (default 100).
        public var statusShare: Double?
        public var delayMs: Double?
        /// Percent of matching requests delayed by `delayMs` (default 100).
        public var delayShare: Double?
        public var resetShare: Double?
        /// Path prefix the fault applies to (default "/": every path).
        public var path: String?
        /// How long the fault lasts (required, at most an hour).
        public var durationSeconds: Double?
        /// The setter's label (a game day's run id): `GET` and `DELETE ?label=` find every fault set with it.
        public var label: String?

        public enum CodingKeys: String, CodingKey, CaseIterable {
            case status, grpcStatus, statusShare, delayMs, delayShare, resetShare, path, durationSeconds, label
        }

        public init(status: Int? = nil, grpcStatus: String? = nil, statusShare: Double? = nil, delayMs: Double? = nil, delayShare: Double? = nil,
                    resetShare: Double? = nil, path: String? = nil, durationSeconds: Double? = nil, label: String? = nil) {
            self.status = status
            self.grpcStatus = grpcStatus
            self.statusShare = statusShare
            self.delayMs = delayMs
            self.delayShare = delayShare
            self.resetShare = resetShare
            self.path = path
            self.durationSeconds = durationSeconds
            self.label = label
        }
    }

    /// An active fault, as `GET` lists it and `POST` returns it.
    public struct Fault: Codable, Sendable, Equatable {
        public var id: String
        /// nil (JSON null) when the fault sets no status.
        public var status: Int?
        /// The gRPC status's canonical name (`UNAVAILABLE`); nil (JSON null) when none, and from an echo that predates
        /// gRPC.
        public var grpcStatus: String?
        public var statusShare: Double
        public var delayMs: Double
        public var delayShare: Double
        public var resetShare: Double
        public var path: String
        public var expiresInSeconds: Int
        public var setBy: String
        /// The label it was set with; nil (JSON null) when none, and from an echo that predates labels.
        public var label: String?

        enum CodingKeys: String, CodingKey {
            case id, status, grpcStatus, statusShare, delayMs, delayShare, resetShare, path, expiresInSeconds, setBy, label
        }

        package init(id: String, status: Int?, grpcStatus: String? = nil, statusShare: Double, delayMs: Double, delayShare: Double, resetShare: Double,
                     path: String, expiresInSeconds: Int, setBy: String, label: String?) {
            self.id = id
            self.status = status
            self.grpcStatus = grpcStatus
            self.statusShare = statusShare
            self.delayMs = delayMs
            self.delayShare = delayShare
            self.resetShare = resetShare
            self.path = path
            self.expiresInSeconds = expiresInSeconds
            self.setBy = setBy
            self.label = label
        }

        /// For example `status 503 for 50%, delay 200ms for 100% on /api, expires in 30s`.
        public var summary: String {
            let n = numberText
            var parts: [String] = []
            if let status { parts.append("status \(status) for \(n(statusShare))%") }
            if let grpcStatus { parts.append("grpc-status \(grpcStatus) for \(n(statusShare))%") }
            if delayMs > 0 { parts.append("delay \(n(delayMs))ms for \(n(delayShare))%") }
            if resetShare > 0 { parts.append("reset \(n(resetShare))%") }
            return parts.joined(separator: ", ") + " on \(path), expires in \(expiresInSeconds)s"
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id)
            try c.encode(status, forKey: .status)  // null rather than absent: every field is always there
            try c.encode(grpcStatus, forKey: .grpcStatus)
            try c.encode(statusShare, forKey: .statusShare)
            try c.encode(delayMs, forKey: .delayMs)
            try c.encode(delayShare, forKey: .delayShare)
            try c.encode(resetShare, forKey: .resetShare)
            try c.encode(path, forKey: .path)
            try c.encode(expiresInSeconds, forKey: .expiresInSeconds)
            try c.encode(setBy, forKey: .setBy)
            try c.encode(label, forKey: .label)
        }
    }

    /// The body of `GET /.meshprobe/faults`.
    public struct List: Codable, Sendable, Equatable {
        public var faults: [Fault]

        package init(faults: [Fault]) { self.faults = faults }
    }

    /// The body of a `DELETE`: how many active faults were removed.
    public struct Cleared: Codable, Sendable, Equatable {
        public var cleared: Int

        package init(cleared: Int) { self.cleared = cleared }
    }

    /// The body of every refusal (400, 403, 404, 405, 409): why, and for a 400 the field at fault.
    public struct Problem: Codable, Sendable, Equatable {
        public var error: String
        public var field: String?

        package init(error: String, field: String?) {
            self.error = error
            self.field = field
        }
    }
}

extension FaultControlJSON.Fault {
    /// Read by the control API's clients from whatever answers there: the text fields are made printable (a
    /// hostile answer's newlines or escape sequences would otherwise reach the terminal and the reports).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = FaultControlJSON.printable(try c.decode(String.self, forKey: .id))
        status = try c.decodeIfPresent(Int.self, forKey: .status)
        grpcStatus = try c.decodeIfPresent(String.self, forKey: .grpcStatus).map(FaultControlJSON.printable)
        statusShare = try c.decode(Double.self, forKey: .statusShare)
        delayMs = try c.decode(Double.self, forKey: .delayMs)
        delayShare = try c.decode(Double.self, forKey: .delayShare)
        resetShare = try c.decode(Double.self, forKey: .resetShare)
        path = FaultControlJSON.printable(try c.decode(String.self, forKey: .path))
        expiresInSeconds = try c.decode(Int.self, forKey: .expiresInSeconds)
        setBy = FaultControlJSON.printable(try c.decode(String.self, forKey: .setBy))
        label = try c.decodeIfPresent(String.self, forKey: .label).map(FaultControlJSON.printable)
    }
}

extension FaultControlJSON {
    /// Text from a control API answer made printable: control characters (newlines and escape sequences among
    /// them) become U+FFFD.
    public static func printable(_ text: String) -> String { PrintableText.replacingControls(text) }
}
