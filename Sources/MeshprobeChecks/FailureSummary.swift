import MeshprobeIdentity
import MeshprobeLoad

extension LoadResult {
    /// The failures that dominate the run, most frequent first, with their counts and (for errors without a
    /// response) the first explanation seen: `connect_refused: 120 (127.0.0.1:1 refused the connection), proxy:
    /// no_server_available (haproxy): 3`. Nil when nothing failed.
    ///
    /// For verdict text: an undecided or failed verdict names its cause with this instead of leaving it to the JSON.
    public func failureSummary(top: Int = 3) -> String? {
        let ranked = failureClasses.sorted { ($0.value, $1.key) > ($1.value, $0.key) }
        guard !ranked.isEmpty else { return nil }
        var parts = ranked.prefix(max(1, top)).map { failure, count in
            guard failure.origin == .client, let kind = ErrorKind(rawValue: failure.reason) else { return "\(failure): \(count)" }
            let why = errorExplanations[kind].map { " (\(PrintableText.replacingControls(String($0.prefix(160)))))" } ?? ""
            return "\(kind.rawValue): \(count)\(why)"
        }
        if ranked.count > top { parts.append("\(ranked.count - top) other kinds: \(ranked.dropFirst(top).reduce(0) { $0 + $1.value })") }
        return parts.joined(separator: ", ")
    }

    /// Why a run gave nothing to judge, in words: `no request succeeded (400 failed: proxy: no_server_available
    /// (haproxy): 400)`.
    public var nothingSucceeded: String {
        "no request succeeded (\(failed) failed\(failureSummary().map { ": \($0)" } ?? ""))"
    }

    /// True when the failures are a proxy saying it has no endpoint to send to, or the upstream cannot be reached:
    /// not a limit, whatever the status.
    public var failuresAreNoEndpoint: Bool {
        let noEndpoint: Set<String> = [FailureClass.Reason.noServerAvailable, FailureClass.Reason.noHealthyUpstream,
                                       FailureClass.Reason.failFast, FailureClass.Reason.upstreamConnectionFailure]
        let classes = failureClasses
        guard !classes.isEmpty else { return false }
        return classes.allSatisfy { failure, _ in failure.origin == .client || (failure.origin == .proxy && noEndpoint.contains(failure.reason)) }
    }

    /// The connections were refused for what the server presented (its SPIFFE ID, its certificate, its ALPN): the
    /// traffic did not reach the declared workloads as declared, a decided failure of whatever was to be measured
    /// there. Nil when no such refusal happened.
    public var serverIdentityRefusal: String? {
        let refusals = connectionFailures.filter {
            $0.key.rawValue.hasPrefix("tls_") && !$0.key.isTransientConnectionFailure && $0.key != .tlsPeerRejectedCertificate
        }
        guard let (kind, count) = refusals.max(by: { ($0.value, $1.key.rawValue) < ($1.value, $0.key.rawValue) }) else { return nil }
        let why = errorExplanations[kind].map { ": \($0)" } ?? ""
        return "the server was refused on \(count) connection attempt\(count == 1 ? "" : "s") (\(kind.rawValue)\(why))"
    }

    /// The server refused this prober's client certificate on every connection: nothing reached the workloads, and
    /// whether the prober's identity is wrong or the mesh refuses it cannot be told from here, so nothing is decided.
    /// Nil when a response came or no such refusal happened. (With TLS 1.3 the client finishes its handshake before
    /// the server's alert: such connections count as established.)
    public var clientIdentityRefusal: String? {
        guard responses == 0, let count = connectionFailures[.tlsPeerRejectedCertificate], count > 0 else { return nil }
        let why = errorExplanations[.tlsPeerRejectedCertificate].map { ": \($0)" } ?? ""
        return "the server refused this prober's client certificate on \(count) connection attempt\(count == 1 ? "" : "s") "
            + "(\(ErrorKind.tlsPeerRejectedCertificate.rawValue)\(why)): either the prober's SVID is not one the mesh trusts "
            + "(identity.svidDir, its trust domain) or the mesh refuses it; nothing reached the workloads"
    }
}
