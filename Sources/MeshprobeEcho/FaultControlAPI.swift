import Foundation
import MeshprobeEchoAPI
import MeshprobeIdentity
import NIOCore

/// The echo's control API for game days, under `/.meshprobe/faults`: set, list and clear faults on a running echo.
///
/// Only mTLS callers whose SPIFFE ID (from the verified client certificate, never from a header) is on the allow
/// list may use it; without an allow list it answers 404. Refusals and changes are logged. Control requests are
/// never subject to faults.
struct FaultControlAPI: Sendable {
    static let prefix = FaultControlJSON.apiPath
    static let maxBodyBytes = 64 * 1024

    let faults: FaultControl
    /// SPIFFE IDs that may use the API; empty: the API is disabled.
    let allowList: Set<String>
    let limits: FaultSpec.Limits
    let log: (@Sendable (String) -> Void)?

    struct Response {
        var status: Int
        var body: String
    }

    /// True for `/.meshprobe/faults` and `/.meshprobe/faults/...`, with or without a query.
    static func isControlPath(_ path: String) -> Bool {
        guard path.hasPrefix(prefix) else { return false }
        let rest = path.dropFirst(prefix.count)
        return rest.isEmpty || rest.hasPrefix("/") || rest.hasPrefix("?")
    }

    func respond(to request: EchoRequest, now: NIODeadline = .now()) -> Response {
        let bare = request.path.firstIndex(of: "?").map { String(request.path[..<$0]) } ?? request.path
        guard !allowList.isEmpty else {
            return problem(404, "the control API is disabled: this echo has no control allow list (--control-allow)")
        }
        guard let caller = request.peerSPIFFEID, !caller.isEmpty else {
            record("refused", caller: "no client certificate", request, bare, note: "needs an mTLS client SPIFFE ID")
            return problem(403, "the control API needs an mTLS client certificate whose SPIFFE ID is on the echo's allow list")
        }
        guard allowList.contains(caller) else {
            record("refused", caller: caller, request, bare, note: "not on the allow list")
            return problem(403, "\(caller) is not on this echo's control allow list")
        }
        let id = bare.dropFirst(Self.prefix.count).drop(while: { $0 == "/" })
        var label: String?
        if id.isEmpty && (request.method == "GET" || request.method == "DELETE") {
            do {
                label = try Self.labelParameter(request.path, refusingOthers: request.method == "DELETE")
            } catch {
                return problem(400, error.description, field: error.field)
            }
        }
        switch (request.method, id.isEmpty) {
        case ("GET", true):
            return encode(200, FaultControlJSON.List(faults: faults.list(label: label, now: now).map { $0.json(now: now) }))
        case ("GET", false):
            guard let fault = faults.list(now: now).first(where: { $0.id == id }) else { return problem(404, "no active fault \(id)") }
            return encode(200, fault.json(now: now))
        case ("POST", true):
            let settings: FaultSettings
            do {
                settings = try FaultSettings(Self.decode(request.body), limits: limits)
            } catch {
                return problem(400, error.description, field: error.field)
            }
            guard let fault = faults.add(settings, setBy: caller, now: now) else {
                return problem(409, "\(FaultControl.maxActive) faults are active already: clear some first")
            }
            let json = fault.json(now: now)
            record("set fault \(fault.id)", caller: caller, request, bare, note: json.summary)
            return encode(201, json)
        case ("DELETE", true):
            let cleared = faults.clear(label: label, now: now)
            record("cleared \(cleared) fault(s)", caller: caller, request, bare, note: label.map { "label \($0)" })
            return encode(200, FaultControlJSON.Cleared(cleared: cleared))
        case ("DELETE", false):
            guard faults.clear(id: String(id), now: now) == 1 else { return problem(404, "no active fault \(id)") }
            record("cleared fault \(id)", caller: caller, request, bare, note: nil)
            return encode(200, FaultControlJSON.Cleared(cleared: 1))
        default:
            return problem(405, "\(request.method) \(bare): use GET, POST or DELETE on \(Self.prefix), GET or DELETE on \(Self.prefix)/ID")
        }
    }

    /// The collection's one query parameter, `label`: nil without one. With `refusingOthers` (a `DELETE`), any other
    /// parameter is refused, so that a mistyped `DELETE ?lable=run-1` cannot clear every fault; a `GET` ignores them,
    /// as it always has.
    static func labelParameter(_ path: String, refusingOthers: Bool = true) throws(FaultControlError) -> String? {
        guard let mark = path.firstIndex(of: "?") else { return nil }
        var label: String?
        for pair in path[path.index(after: mark)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0])
            guard name == "label" else {
                guard !refusingOthers else {
                    throw FaultControlError(field: FaultControlJSON.printable(name), reason: "unknown query parameter; the one parameter is label")
                }
                continue
            }
            let value = parts.count > 1 ? String(parts[1]) : ""
            guard label == nil else { throw FaultControlError(field: "label", reason: "given twice") }
            guard FaultSettings.isValidLabel(value) else { throw FaultControlError(field: "label", reason: FaultSettings.labelRule) }
            label = value
        }
        return label
    }

    /// Reads a `POST` body: a JSON object with only known fields, each of the right type.
    static func decode(_ body: ByteBuffer?) throws(FaultControlError) -> FaultControlJSON.NewFault {
        guard let body, body.readableBytes > 0 else { throw FaultControlError(field: "body", reason: "expected a JSON object, got an empty body") }
        guard body.readableBytes <= maxBodyBytes else {
            throw FaultControlError(field: "body", reason: "larger than \(maxBodyBytes / 1024) KiB")
        }
        let object: [String: JSONScalar]
        do {
            object = try JSONDecoder().decode([String: JSONScalar].self, from: Data(body.readableBytesView))
        } catch DecodingError.typeMismatch {
            throw FaultControlError(field: "body", reason: "expected a JSON object such as {\"status\":503,\"durationSeconds\":30}")
        } catch {
            throw FaultControlError(field: "body", reason: "not valid JSON")
        }
        typealias Key = FaultControlJSON.NewFault.CodingKeys
        let known = Key.allCases.map(\.rawValue)
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw FaultControlError(field: unknown, reason: "unknown field; the fields are \(known.joined(separator: ", "))")
        }
        func number(_ key: Key) throws(FaultControlError) -> Double? {
            switch object[key.rawValue] {
            case nil, .null?: return nil
            case .number(let n)?: return n
            case let other?: throw FaultControlError(key, "must be a number, got \(other.kind)")
            }
        }
        var request = FaultControlJSON.NewFault()
        if let status = try number(.status) {
            guard status == status.rounded(), abs(status) < 1e6 else { throw FaultControlError(.status, "must be a whole number, got \(numberText(status))") }
            request.status = Int(status)
        }
        request.statusShare = try number(.statusShare)
        request.delayMs = try number(.delayMs)
        request.delayShare = try number(.delayShare)
        request.resetShare = try number(.resetShare)
        request.durationSeconds = try number(.durationSeconds)
        switch object[Key.grpcStatus.rawValue] {
        case nil, .null?: break
        case .string(let name)?: request.grpcStatus = name
        case .number(let n)?: request.grpcStatus = numberText(n)
        case let other?: throw FaultControlError(.grpcStatus, "must be a gRPC status name or number, got \(other.kind)")
        }
        switch object[Key.path.rawValue] {
        case nil, .null?: break
        case .string(let path)?: request.path = path
        case let other?: throw FaultControlError(.path, "must be a string, got \(other.kind)")
        }
        switch object[Key.label.rawValue] {
        case nil, .null?: break
        case .string(let label)?: request.label = label
        case let other?: throw FaultControlError(.label, "must be a string, got \(other.kind)")
        }
        return request
    }

    /// One JSON value of the request object, typed loosely enough to say what a wrong one was.
    enum JSONScalar: Decodable {
        case null, bool(Bool), number(Double), string(String), composite

        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() { self = .null }
            else if let b = try? c.decode(Bool.self) { self = .bool(b) }
            else if let n = try? c.decode(Double.self) { self = .number(n) }
            else if let s = try? c.decode(String.self) { self = .string(s) }
            else { self = .composite }
        }

        var kind: String {
            switch self {
            case .null: return "null"
            case .bool(let b): return "\(b)"
            case .number(let n): return numberText(n)
            case .string(let s): return "the string \(jsonString(s))"
            case .composite: return "an object or array"
            }
        }
    }

    /// One log line: time, outcome, caller, method, path.
    private func record(_ outcome: String, caller: String, _ request: EchoRequest, _ path: String, note: String?) {
        guard let log else { return }
        let time = Date().formatted(.iso8601)
        log("\(time) control \(outcome): caller \(caller) \(request.method) \(path)" + (note.map { " (\($0))" } ?? ""))
    }

    private func problem(_ status: Int, _ message: String, field: String? = nil) -> Response {
        encode(status, FaultControlJSON.Problem(error: message, field: field))
    }

    private func encode(_ status: Int, _ value: some Encodable) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(status: status, body: String(decoding: data, as: UTF8.self) + "\n")
    }
}

