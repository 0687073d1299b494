import MeshprobeEchoAPI
import MeshprobeIdentity
import NIOCore

/// Who the echo workload is; stamped on every response.
public struct EchoIdentity: Sendable, Equatable {
    public var workload: String
    public var version: String
    public var cluster: String
    public var namespace: String
    public var pod: String
    /// The echo's own SPIFFE ID (its serving certificate's URI SAN), or "" without TLS.
    public var spiffeID: String

    public init(workload: String, version: String, cluster: String, namespace: String, pod: String, spiffeID: String = "") {
        self.workload = workload
        self.version = version
        self.cluster = cluster
        self.namespace = namespace
        self.pod = pod
        self.spiffeID = spiffeID
    }
}

/// A request as the echo sees it, whatever the protocol.
struct EchoRequest {
    var method: String
    var path: String
    var headers: [(name: String, value: String)]
    var bodyLength: Int
    /// The SPIFFE ID of the mTLS peer, if the connection was mTLS and the client sent an SVID.
    var peerSPIFFEID: String?
    /// The TLS server name (SNI) the client sent.
    var serverName: String?
    /// The request body; the HTTP/1.1 handler keeps it for control requests only.
    var body: ByteBuffer? = nil
    /// Which request this is on its connection (1 for the first).
    var connectionRequest: Int = 1
}

/// What the echo will do with one request.
struct EchoPlan {
    enum Action { case respond, reset }
    var action: Action = .respond
    var status: Int = 200
    var headers: [(name: String, value: String)] = []
    var body: ByteBuffer
    var delayNanoseconds: UInt64 = 0
    /// Which try of its request id this is (0 without an `x-request-id`).
    var attempt = 0
}

/// Turns requests into plans: stamps, caller identity, attempt counts, fault injection (from the query and from the
/// control API), and control requests. Shared by HTTP/2 and HTTP/1.1.
struct EchoPlanner: Sendable {
    var identity: EchoIdentity
    var limits: FaultSpec.Limits
    var control: FaultControlAPI
    var attempts: AttemptCounter
    /// The allow list of the workload's paths; nil lets every request through.
    var authorization: EchoAuthorization?

    init(identity: EchoIdentity, limits: FaultSpec.Limits, controlAllowList: Set<String> = [],
         log: (@Sendable (String) -> Void)? = nil, attempts: AttemptCounter = AttemptCounter()) {
        self.identity = identity
        self.limits = limits
        control = FaultControlAPI(faults: FaultControl(), allowList: controlAllowList, limits: limits, log: log)
        self.attempts = attempts
    }

    /// The caller identity by precedence: mTLS peer, then XFCC's URI (Envoy), then `l5d-client-id` (Linkerd).
    static func caller(of request: EchoRequest) -> (identity: String, source: String) {
        if let peer = request.peerSPIFFEID, !peer.isEmpty { return (peer, "mtls") }
        for (name, value) in request.headers where name == "x-forwarded-client-cert" {
            if let uri = xfccURI(value) { return (uri, "xfcc") }
        }
        for (name, value) in request.headers where name == "l5d-client-id" && !value.isEmpty {
            return (value, "l5d-client-id")
        }
        return ("", "none")
    }

    /// The `URI=` of the last element of an `x-forwarded-client-cert` value (the hop nearest to us).
    static func xfccURI(_ value: String) -> String? {
        // Elements are comma separated, fields semicolon separated; quoted values may hold either.
        var elements: [[Substring]] = [[]]
        var field = Substring()
        var start = value.startIndex
        var inQuotes = false
        var i = value.startIndex
        while i < value.endIndex {
            let c = value[i]
            if c == "\"" { inQuotes.toggle() }
            if !inQuotes && (c == ";" || c == ",") {
                field = value[start..<i]
                elements[elements.count - 1].append(field)
                if c == "," { elements.append([]) }
                start = value.index(after: i)
            }
            i = value.index(after: i)
        }
        elements[elements.count - 1].append(value[start...])
        for f in elements.last ?? [] {
            let trimmed = f.drop(while: { $0 == " " })
            if trimmed.lowercased().hasPrefix("uri=") {
                var uri = trimmed.dropFirst(4)
                if uri.hasPrefix("\""), uri.hasSuffix("\""), uri.count >= 2 { uri = uri.dropFirst().dropLast() }
                return uri.isEmpty ? nil : String(uri)
            }
        }
        return nil
    }

    /// The stamps every answer of the workload carries (HTTP headers, gRPC metadata), the caller, and the attempt
    /// (0 without an `x-request-id`; counted here, once per request).
    func stamps(_ request: EchoRequest, inFlight: Int) -> (stamps: [(name: String, value: String)], caller: (identity: String, source: String), attempt: Int) {
        let caller = Self.caller(of: request)
        var stamps: [(name: String, value: String)] = [
            (EchoStamp.workload, identity.workload),
            (EchoStamp.version, identity.version),
            (EchoStamp.cluster, identity.cluster),
            (EchoStamp.namespace, identity.namespace),
            (EchoStamp.pod, identity.pod),
            (EchoStamp.identity, identity.spiffeID),
            (EchoStamp.caller, caller.identity),
            (EchoStamp.callerSource, caller.source),
            (EchoStamp.inFlight, String(inFlight)),
            (EchoStamp.serverName, request.serverName ?? ""),
            (EchoStamp.connectionRequest, String(request.connectionRequest)),
        ]
        var attempt = 0
        if let requestID = request.headers.first(where: { $0.name == "x-request-id" })?.value {
            attempt = attempts.count(requestID)
            stamps.append((EchoStamp.attempt, String(attempt)))
        }
        return (stamps, caller, attempt)
    }

    /// What the faults of `spec` do to one request: each kind rolled once, in the order reset, status, delay. A reset
    /// comes after the delay rolled (as from an upstream that crashes after its work); it takes no status.
    static func roll(_ spec: FaultSpec, random: inout some RandomNumberGenerator) -> FaultRoll {
        var roll = FaultRoll()
        if spec.isEmpty { return roll }
        if spec.resetPercent > 0, Double.random(in: 0..<100, using: &random) < spec.resetPercent {
            roll.reset = true
            if let delay = spec.choice(spec.delays, roll: Double.random(in: 0..<100, using: &random)) {
                roll.delayNanoseconds = delay.value
            }
            return roll
        }
        var sources: [String] = []
        if let status = spec.choice(spec.statuses, roll: Double.random(in: 0..<100, using: &random)) {
            roll.status = status.value
            roll.applied.append("status=\(ResponseCode.text(status.value))")
            if let source = status.source { sources.append(source) }
        }
        if let delay = spec.choice(spec.delays, roll: Double.random(in: 0..<100, using: &random)) {
            roll.delayNanoseconds = delay.value
            roll.applied.append("delay=\(delay.value / 1000)us")
            if let source = delay.source, !sources.contains(source) { sources.append(source) }
        }
        // Which control-API faults applied, by id (the query string's have none).
        if !sources.isEmpty { roll.applied.append("control=\(sources.joined(separator: ","))") }
        return roll
    }

    func plan(_ request: EchoRequest, inFlight: Int, allocator: ByteBufferAllocator,
              random: inout some RandomNumberGenerator) -> EchoPlan {
        let stamped = stamps(request, inFlight: inFlight)
        var stamps = stamped.stamps
        let caller = stamped.caller
        if FaultControlAPI.isControlPath(request.path) {
            let response = control.respond(to: request)
            stamps.append(("content-type", "application/json"))
            return EchoPlan(status: response.status, headers: stamps, body: allocator.buffer(string: response.body))
        }
        if let authorization, !authorization.allows(principal: request.peerSPIFFEID, method: request.method, path: request.path) {
            // Denied as Envoy's RBAC filter denies: its answer, without the workload's stamps.
            let denial = EchoAuthorization.denial
            return EchoPlan(status: denial.status, headers: denial.headers, body: allocator.buffer(string: denial.body))
        }
        var spec: FaultSpec
        do {
            spec = try FaultSpec.parse(path: request.path, limits: limits)
        } catch {
            var body = allocator.buffer(capacity: 128)
            body.writeString("{\"error\":\(jsonString(error.description))}\n")
            stamps.append(("content-type", "application/json"))
            return EchoPlan(status: 400, headers: stamps, body: body)
        }

        if let controlled = control.faults.spec(forPath: request.path) { spec.append(controlled) }

        var plan = EchoPlan(body: allocator.buffer(capacity: 0))
        plan.attempt = stamped.attempt
        let roll = Self.roll(spec, random: &random)
        if roll.reset {
            plan.action = .reset
            plan.delayNanoseconds = roll.delayNanoseconds
            return plan
        }
        if let status = roll.status { plan.status = status }
        plan.delayNanoseconds = roll.delayNanoseconds
        let faults = roll.applied
        if !faults.isEmpty { stamps.append((EchoStamp.fault, faults.joined(separator: ";"))) }

        var body = allocator.buffer(capacity: 512)
        body.writeString("{\"workload\":\(jsonString(identity.workload)),\"version\":\(jsonString(identity.version)),")
        body.writeString("\"cluster\":\(jsonString(identity.cluster)),\"namespace\":\(jsonString(identity.namespace)),")
        body.writeString("\"pod\":\(jsonString(identity.pod)),\"identity\":\(jsonString(identity.spiffeID)),")
        body.writeString("\"caller\":\(jsonString(caller.identity)),\"caller_source\":\"\(caller.source)\",")
        body.writeString("\"sni\":\(jsonString(request.serverName ?? "")),\"inflight\":\(inFlight),\"status\":\(plan.status),\"method\":\(jsonString(request.method)),")
        body.writeString("\"path\":\(jsonString(request.path)),\"request_body_bytes\":\(request.bodyLength)")
        if !faults.isEmpty { body.writeString(",\"fault\":\(jsonString(faults.joined(separator: ";")))") }
        body.writeString("}")
        if let size = spec.pick(spec.sizes, roll: Double.random(in: 0..<100, using: &random)), size > body.readableBytes + 1 {
            // Pad inside the JSON so the body stays valid: "pad":"xxxx".
            body.moveWriterIndex(to: body.writerIndex - 1)
            let overhead = ",\"pad\":\"\"}".utf8.count
            let padding = max(0, size - body.readableBytes - overhead)
            body.writeString(",\"pad\":\"")
            body.writeRepeatingByte(UInt8(ascii: "x"), count: padding)
            body.writeString("\"}")
        } else {
            body.writeString("\n")
        }
        if plan.status == 204 || plan.status == 304 {
            // These statuses carry no body (RFC 9110): the stamps stay in the headers.
            body.clear()
        } else {
            stamps.append(("content-type", "application/json"))
        }
        plan.headers = stamps
        plan.body = body
        return plan
    }
}

/// What a request's faults came to.
struct FaultRoll {
    /// Reset the stream (HTTP/1.1: close the connection) instead of answering.
    var reset = false
    /// The status to answer with (a `ResponseCode` for a gRPC call).
    var status: Int?
    var delayNanoseconds: UInt64 = 0
    /// The `x-meshprobe-fault` stamp's parts (`status=503`, `delay=20000us`, `control=f1`).
    var applied: [String] = []
}

/// A JSON string literal with the required escapes.
func jsonString(_ s: String) -> String {
    var out = "\""
    out.reserveCapacity(s.utf8.count + 2)
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    out += "\""
    return out
}
