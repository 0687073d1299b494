/// One check of a resilience procedure as it was judged: a connection-pool limit (circuit breaker, concurrent retries,
/// requests per connection), a retry or timeout, a step of outlier detection. Every procedure reports its checks as
/// this one type, and the verify result turns each into one verdict.
public struct ProcedureCheck: Sendable {
    /// The verdict's kind, for a procedure that judges more than one (`retries` or `timeout`); nil: the procedure's
    /// own kind.
    public var kind: String? = nil
    public var name: String
    public var passed: Bool
    /// False when the check could not judge (nothing reached the upstream, no stamps, the service was not healthy, the
    /// fault reached no workload): `reason` says why.
    public var decided = true
    public var reason: String?
    public var evidence: [String: Double]
    /// The requests the check judged (for outlier detection: those of the phase it judged).
    public var requests = 0
    /// Where a limit was checked (`service`, `endpoint`); nil when it does not apply.
    public var scope: String? = nil

    /// A check that cannot judge, with why.
    public static func undecided(_ name: String, reason: String, evidence: [String: Double], requests: Int) -> ProcedureCheck {
        ProcedureCheck(name: name, passed: false, decided: false, reason: reason, evidence: evidence, requests: requests)
    }
}
