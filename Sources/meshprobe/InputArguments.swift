import ArgumentParser
import MeshprobeIdentity
import MeshprobeSpec
import MeshprobeYAML

/// Flag values read by the inputs' one parse functions (the same that read scenario and policy files), so a refused
/// value is reported by swift-argument-parser at parse time, naming the flag as typed, with the type's message:
/// `The value '10' is invalid for '-d <duration>': '10' has no unit: ...`.
///
/// These go to `@Option(transform:)`: an `ExpressibleByArgument` conformance's `init?(argument:)` can only fail, and
/// swift-argument-parser then says "invalid" without the reason. A `transform` option shows no default in the help,
/// so an option with one names it through `ArgumentHelp.defaulted`.
enum InputArgument {
    /// A positive duration.
    static let duration: @Sendable (String) throws -> TimeSpan = { text in try TimeSpan(parsing: text) }
    /// A duration that may be 0 (a warm-up, a think time).
    static let durationOrZero: @Sendable (String) throws -> TimeSpan = { text in try TimeSpan(parsing: text, allowZero: true) }
    /// A certificate's validity: a positive duration, or whole days (`7d`), which no other input takes.
    static let validity: @Sendable (String) throws -> TimeSpan = { text in
        guard text.hasSuffix("d") else { return try TimeSpan(parsing: text) }
        guard let days = Double(text.dropLast()), days > 0 else {
            throw InputValueError("'\(text)': expected a number of days such as 7d, or a duration such as 24h")
        }
        return try TimeSpan(parsing: "\(days * 24)h")
    }
    static let rate: @Sendable (String) throws -> Rate = { text in try Rate(parsing: text) }
    static let stage: @Sendable (String) throws -> LoadStage = { text in try LoadStage(parsing: text) }
    static let churn: @Sendable (String) throws -> ConnectionChurn = { text in try ConnectionChurn(parsing: text) }
    static let httpVersion: @Sendable (String) throws -> HTTPVersionPreference = { text in try HTTPVersionPreference(parsing: text) }
    static let meshALPN: @Sendable (String) throws -> MeshALPN = { text in try MeshALPN(parsing: text) }
    static let arrivals: @Sendable (String) throws -> ArrivalProcess = { text in try ArrivalProcess(parsing: text) }
    static let guardAction: @Sendable (String) throws -> GuardAction = { text in try GuardAction(parsing: text) }
    static let errorRateGuard: @Sendable (String) throws -> LoadGuard = { text in try LoadGuard.errorRate(parsing: text) }
    static let p99Guard: @Sendable (String) throws -> LoadGuard = { text in try LoadGuard.p99(parsing: text) }
    static let threshold: @Sendable (String) throws -> LoadThreshold = { text in try LoadThreshold(parsing: text) }
    static let trustBundle: @Sendable (String) throws -> TrustBundleSource = { text in try TrustBundleSource(parsing: text) }
    static let spiffeID: @Sendable (String) throws -> SPIFFEID = { text in try SPIFFEID(parsing: text) }
    /// A trust domain (`example.org`), checked as a SPIFFE ID's.
    static let trustDomain: @Sendable (String) throws -> String = { text in
        try TrustBundleSource.checkTrustDomain(text)
        return text
    }
    /// A target URL, checked as a file's is and kept as typed (it replaces the file's text).
    static let targetURL: @Sendable (String) throws -> String = { text in
        do { _ = try LoadTarget(parsing: text) } catch let error as LoadPlanError { throw InputValueError("'\(text)': \(error.reason)") }
        return text
    }
    /// `FIELD=VALUE` for a file's field (`--set`).
    static let fieldAssignment: @Sendable (String) throws -> YAMLOverride = { text in try YAMLOverride(assignment: text) }
    static let peerExpectation: @Sendable (String) throws -> PeerExpectation = { text in try PeerExpectation(parsing: text) }
    static let method: @Sendable (String) throws -> String = { text in try HTTPMethod.parse(text) }
    static let header: @Sendable (String) throws -> HeaderField = { text in try HeaderField(parsing: text) }
    static let hostPort: @Sendable (String) throws -> HostPort = { text in try HostPort(parsing: text) }
    /// `-o`: json or junit.
    static let resultFormat: @Sendable (String) throws -> ResultFormat = { text in try ResultFormat(parsing: text) }
    /// Seconds; 0 (or `off`) turns coalescing off.
    static let coalesceWindow: @Sendable (String) throws -> Double = { text in try CoalesceWindow.seconds(parsing: text) }
}

extension ArgumentHelp {
    /// `abstract` followed by the default as swift-argument-parser shows it for an option without `transform`.
    static func defaulted(_ abstract: String, _ value: some CustomStringConvertible) -> ArgumentHelp {
        ArgumentHelp("\(abstract) (default: \(value))")
    }
}
