import MeshprobeIdentity

/// A gate on a finished load, as k6 has them: `p95<250ms`, `p99.9<1s`, `mean<=80ms`, `error_rate<0.01`, `rps>=900`,
/// and for the responses of one identity `version=v2:p99<300ms` (also `workload=`, `cluster=`, `identity=` a SPIFFE
/// ID). A load with thresholds fails (exit 1) when one does not hold.
///
/// Latency limits need a unit (`250ms`, `0.25s`), like every duration; an error rate is a fraction (`0.01`) or a
/// percentage (`1%`); a rate is requests per second.
public struct LoadThreshold: Sendable, Equatable, CustomStringConvertible {
    /// What is compared.
    public enum Metric: Sendable, Equatable {
        /// The latency at this percentile, 0 < p < 100 (`p50`, `p95`, `p99.9`; `p999` is 99.9 as in Prometheus).
        case percentile(Double)
        case mean
        case max
        /// Failed requests over requests (errors and responses other than 2xx and 3xx).
        case errorRate
        /// Responses per second over the measured time.
        case rps

        public var isLatency: Bool {
            switch self {
            case .percentile, .mean, .max: true
            case .errorRate, .rps: false
            }
        }
    }

    public enum Comparison: String, Sendable, CaseIterable {
        case below = "<", atMost = "<=", above = ">", atLeast = ">="

        public func holds(_ observed: Double, _ limit: Double) -> Bool {
            switch self {
            case .below: observed < limit
            case .atMost: observed <= limit
            case .above: observed > limit
            case .atLeast: observed >= limit
            }
        }
    }

    /// The responses a threshold is about: those of one identity, by one of the echo's stamps.
    public struct Selector: Sendable, Equatable {
        public enum Field: String, Sendable, CaseIterable {
            case version, workload, cluster, identity
        }

        public var field: Field
        public var value: String

        public init(field: Field, value: String) {
            self.field = field
            self.value = value
        }
    }

    public var selector: Selector?
    public var metric: Metric
    public var comparison: Comparison
    /// Seconds for latency, a fraction for the error rate, per second for `rps`.
    public var limit: Double
    /// As written, without spaces: the name of its verdict in every report.
    public var text: String

    public var description: String { text }

    static let metricsText = "p50, p95, p99, p99.9 (any percentile), mean, max, error_rate or rps"

    /// Parses `[FIELD=VALUE:]METRIC OP LIMIT`.
    public init(parsing input: String) throws(InputValueError) {
        let text = String(input.filter { !$0.isWhitespace })
        var expression = Substring(text)
        // The selector ends at the last colon (a SPIFFE ID has colons of its own; a metric has none).
        if let colon = text.lastIndex(of: ":"), text[..<colon].contains("=") {
            let part = text[..<colon]
            let equals = part.firstIndex(of: "=")!
            let name = String(part[..<equals]).lowercased()
            let value = String(part[part.index(after: equals)...])
            guard let field = Selector.Field(rawValue: name) else {
                throw InputValueError("'\(input)': '\(name)' is not an identity field: expected version, workload, cluster or identity (version=v2:p99<300ms)")
            }
            guard !value.isEmpty else { throw InputValueError("'\(input)': \(name)= needs a value (version=v2:p99<300ms)") }
            selector = Selector(field: field, value: value)
            expression = text[text.index(after: colon)...]
        }
        guard let opStart = expression.firstIndex(where: { $0 == "<" || $0 == ">" || $0 == "=" || $0 == "!" }) else {
            throw InputValueError("'\(input)': expected METRIC<LIMIT such as p95<250ms, error_rate<0.01 or rps>=900")
        }
        let name = expression[..<opStart].lowercased()
        var rest = expression[opStart...]
        let op = rest.hasPrefix("<=") || rest.hasPrefix(">=") ? String(rest.prefix(2)) : String(rest.prefix(1))
        guard let comparison = Comparison(rawValue: op) else {
            // `version=v1 p99<1s`: a selector without its colon reads as a metric named `version` and an `=`.
            if selector == nil, op == "=", Selector.Field(rawValue: name) != nil {
                throw InputValueError("'\(input)': a selector ends with a colon: \(name)=VALUE:METRIC OP LIMIT (version=v2:p99<300ms)")
            }
            throw InputValueError("'\(input)': compare with <, <=, > or >= (not '\(rest.prefix(2))')")
        }
        rest = rest.dropFirst(op.count)
        let value = String(rest)
        guard !value.isEmpty else { throw InputValueError("'\(input)': no limit after '\(op)'") }
        let metric = try Self.metric(name, input: input)
        switch metric {
        case .percentile, .mean, .max:
            limit = try TimeSpan(parsing: value, allowZero: true).seconds
        case .errorRate:
            let number = value.hasSuffix("%") ? Double(value.dropLast()).map { $0 / 100 } : Double(value)
            guard let number, number >= 0, number <= 1 else {
                throw InputValueError("'\(input)': an error rate is a fraction from 0 to 1 (0.01) or a percentage (1%)")
            }
            limit = number
        case .rps:
            guard let number = Double(value), number.isFinite, number >= 0 else {
                throw InputValueError("'\(input)': expected requests per second, a number such as 900")
            }
            limit = number
        }
        self.metric = metric
        self.comparison = comparison
        self.text = text
    }

    /// A metric's name: `pN` (`p999` is 99.9, `p9999` 99.99), `mean` (or `avg`), `max`, `error_rate`, `rps`.
    static func metric(_ name: String, input: String) throws(InputValueError) -> Metric {
        switch name {
        case "mean", "avg": return .mean
        case "max": return .max
        case "med": return .percentile(50)
        case "error_rate", "errors": return .errorRate
        case "rps": return .rps
        default: break
        }
        if let percentile = Self.percentile(name) { return .percentile(percentile) }
        throw InputValueError("'\(input)': unknown metric '\(name)': expected \(metricsText)")
    }

    /// The percentile a name such as `p95`, `p99.9` or `p999` gives, strictly between 0 and 100; nil otherwise.
    public static func percentile(_ name: String) -> Double? {
        guard name.hasPrefix("p") else { return nil }
        let digits = name.dropFirst()
        guard !digits.isEmpty, digits.allSatisfy({ $0.isNumber || $0 == "." }), digits.first != "." else { return nil }
        let value: Double?
        if digits.contains(".") || digits.count <= 2 {
            value = Double(digits)
        } else if digits.hasPrefix("99") {
            value = Double("99." + digits.dropFirst(2))
        } else {
            value = nil
        }
        guard let value, value > 0, value < 100 else { return nil }
        return value
    }
}
