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
}
