import MeshprobeEchoAPI
import MeshprobeIdentity

/// Per-request fault injection, fortio style, from the request's query string.
///
/// - `status=503:50` answers 503 to 50% of requests; several codes may be listed: `status=503:20,502:10`;
///   a bare code (`status=418`) applies to every request.
/// - `delay=20ms:10` delays 10% of responses by 20 ms; units `us`, `ms`, `s`; a bare duration applies to all.
/// - `size=1024` sends a body padded to 1024 bytes (`size=1024:50` for half of the requests).
/// - `close=10` closes the connection instead of answering 10% of requests (HTTP/2: RST_STREAM).
///
/// Values are bounded by the echo's limits; anything malformed is a `FaultSpecError` (the echo answers 400).
public struct FaultSpec: Sendable, Equatable {
    public struct Choice<Value: Sendable & Equatable>: Sendable, Equatable {
        public var value: Value
        /// Percent of requests, 0...100.
        public var percent: Double
        /// The id of the control-API fault this choice came from; nil for the query string's.
        public var source: String? = nil
    }

    /// The statuses to answer with instead: HTTP statuses; for a gRPC call, `ResponseCode`s (a gRPC status as
    /// 1000 + code, answered trailers-only; an HTTP status answered as a proxy would, without `grpc-status`).
    public var statuses: [Choice<Int>] = []
    public var delays: [Choice<UInt64>] = []  // nanoseconds
    public var sizes: [Choice<Int>] = []
    public var resetPercent: Double = 0

    public init() {}

    /// The echo's bounds on what a fault may ask for (the control API's contract: `FaultLimits`).
    public typealias Limits = FaultLimits

    public var isEmpty: Bool { statuses.isEmpty && delays.isEmpty && sizes.isEmpty && resetPercent == 0 }

    /// Parses the query part of a request path (`/echo?status=503:50&delay=10ms`). Unknown parameters are ignored.
    public static func parse(path: String, limits: Limits = .init()) throws(FaultSpecError) -> FaultSpec {
        var spec = FaultSpec()
        guard let q = path.firstIndex(of: "?") else { return spec }
        let query = path[path.index(after: q)...]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { continue }
            let key = String(parts[0])
            let raw = String(parts[1]).removingPercentEncodingLite()
            switch key {
            case "status":
                spec.statuses = try parseChoices(raw, parameter: key) { text throws(FaultSpecError) in
                    guard let code = Int(text), (200...599).contains(code) else {
                        throw FaultSpecError(parameter: key, value: raw, reason: "'\(text)' is not a final HTTP status code 200-599")
                    }
                    return code
                }
            case "delay":
                spec.delays = try parseChoices(raw, parameter: key) { text throws(FaultSpecError) in
                    let ns: UInt64
                    do throws(DurationText.ParseError) { ns = try delayNanoseconds(text) } catch {
                        throw FaultSpecError(parameter: key, value: raw, reason: error.description)
                    }
                    guard ns <= limits.maxDelayNanoseconds else {
                        throw FaultSpecError(parameter: key, value: raw, reason: "'\(text)' is longer than the echo's maximum delay of \(limits.maxDelayNanoseconds / 1_000_000)ms")
                    }
                    return ns
                }
            case "size":
                spec.sizes = try parseChoices(raw, parameter: key) { text throws(FaultSpecError) in
                    guard let size = Int(text), size >= 0 else {
                        throw FaultSpecError(parameter: key, value: raw, reason: "'\(text)' is not a byte count")
                    }
                    guard size <= limits.maxBodySize else {
                        throw FaultSpecError(parameter: key, value: raw, reason: "\(size) bytes is more than the echo's maximum of \(limits.maxBodySize)")
                    }
                    return size
                }
            case "close":
                guard let percent = Double(raw), (0...100).contains(percent) else {
                    throw FaultSpecError(parameter: key, value: raw, reason: "expected a percentage 0-100")
                }
                spec.resetPercent = percent
            default:
                continue
            }
        }
        return spec
    }

    static func parseChoices<V>(
        _ raw: String, parameter: String, value: (String) throws(FaultSpecError) -> V
    ) throws(FaultSpecError) -> [Choice<V>] {
        var choices: [Choice<V>] = []
        var total = 0.0
        for item in raw.split(separator: ",", omittingEmptySubsequences: false) {
            let fields = item.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count == 1 || fields.count == 2, !fields[0].isEmpty else {
                throw FaultSpecError(parameter: parameter, value: raw, reason: "expected VALUE or VALUE:PERCENT, got '\(item)'")
            }
            let v = try value(String(fields[0]))
            var percent = 100.0
            if fields.count == 2 {
                guard let p = Double(fields[1]), p >= 0, p <= 100 else {
                    throw FaultSpecError(parameter: parameter, value: raw, reason: "'\(fields[1])' is not a percentage 0-100")
                }
                percent = p
            }
            total += percent
            choices.append(Choice(value: v, percent: percent))
        }
        guard total <= 100.000001 else {
            throw FaultSpecError(parameter: parameter, value: raw, reason: "the percentages add up to \(total), more than 100")
        }
        return choices
    }

    /// A delay (`20ms`, `1.5s`, `500us`: `DurationText`, so a number without a unit is refused) in nanoseconds.
    public static func delayNanoseconds(_ text: String) throws(DurationText.ParseError) -> UInt64 {
        let seconds = try DurationText.seconds(text)
        guard seconds >= 0, seconds < 1e9 else { throw DurationText.ParseError(kind: .notADuration, text: text) }
        return UInt64(seconds * 1e9)
    }

    /// Picks the outcome for one request with a uniform random number in [0, 100).
    public func pick<V>(_ choices: [Choice<V>], roll: Double) -> V? {
        choice(choices, roll: roll)?.value
    }

    /// The choice a uniform random number in [0, 100) falls on: shares count cumulatively in list order, so
    /// when they add up to more than 100 the first ones win.
    public func choice<V>(_ choices: [Choice<V>], roll: Double) -> Choice<V>? {
        var acc = 0.0
        for choice in choices {
            acc += choice.percent
            if roll < acc { return choice }
        }
        return nil
    }

    /// Adds `other`'s faults after this spec's own (which keep precedence); reset shares add up to at most 100.
    public mutating func append(_ other: FaultSpec) {
        statuses += other.statuses
        delays += other.delays
        sizes += other.sizes
        resetPercent = min(100, resetPercent + other.resetPercent)
    }
}

public struct FaultSpecError: Error, Sendable, CustomStringConvertible, Equatable {
    public var parameter: String
    public var value: String
    public var reason: String
    public var description: String { "bad fault parameter \(parameter)=\(value): \(reason)" }
}

extension String {
    /// Decodes `%XX` escapes; leaves malformed escapes as they are.
    func removingPercentEncodingLite() -> String {
        guard contains("%") else { return self }
        var bytes: [UInt8] = []
        var it = Array(utf8)[...]
        while let b = it.popFirst() {
            if b == UInt8(ascii: "%"), it.count >= 2,
               let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16) {
                bytes.append(v)
                it = it.dropFirst(2)
            } else {
                bytes.append(b)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
