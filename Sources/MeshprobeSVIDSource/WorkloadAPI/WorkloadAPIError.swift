import MeshprobeIdentity

/// Why the Workload API gave no SVID, each with what to do about it.
public indirect enum WorkloadAPIError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Nothing at the socket path.
    case socketMissing(path: String)
    /// The path exists but nothing accepts on it (an agent that has stopped).
    case connectionRefused(path: String)
    case connectFailed(path: String, reason: String)
    /// The agent answered the call with a gRPC status other than OK.
    case status(GRPCStatusCode, message: String?)
    /// The stream ended with OK, or the connection closed under it.
    case streamEnded(reason: String)
    /// A response that is not a Workload API answer.
    case badResponse(String)
    /// An X509SVIDResponse whose SVID cannot be used.
    case unusableSVID(String)
    /// No SVID with the SPIFFE ID asked for.
    case noSVIDWithID(requested: String, offered: [String])
    /// No SVID arrived before the deadline; `last` is the last failure seen.
    case timedOut(seconds: Double, last: WorkloadAPIError?)

    /// Retrying cannot help: the request itself is wrong (go-spiffe stops on InvalidArgument too).
    public var isFinal: Bool {
        if case .status(.invalidArgument, _) = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .socketMissing(let path):
            return "no such socket \(path) (is the SPIRE agent running, and its socket mounted there?)"
        case .connectionRefused(let path):
            return "connection refused on \(path) (the socket exists but no agent is listening)"
        case .connectFailed(let path, let reason):
            return "cannot connect to \(path): \(reason)"
        case .status(.permissionDenied, let message):
            return "PermissionDenied: the agent has no identity for this workload: check its registration entries/selectors" + Self.detail(message)
        case .status(.invalidArgument, let message):
            return "InvalidArgument: the agent refused the request (a Workload API call needs the header workload.spiffe.io: true)" + Self.detail(message)
        case .status(.unavailable, let message):
            return "Unavailable: the agent is not ready" + Self.detail(message)
        case .status(let code, let message):
            return "the agent answered \(code.name)" + Self.detail(message)
        case .streamEnded(let reason):
            return "the X.509-SVID stream ended: \(reason)"
        case .badResponse(let reason):
            return "not a Workload API answer: \(reason)"
        case .unusableSVID(let reason):
            return "unusable X.509-SVID: \(reason)"
        case .noSVIDWithID(let requested, let offered):
            return "no SVID with the SPIFFE ID \(requested): the agent offers \(offered.isEmpty ? "none" : offered.joined(separator: ", "))"
        case .timedOut(let seconds, let last):
            let waited = seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)
            return "no X.509-SVID within \(waited)s" + (last.map { ": \($0)" } ?? "")
        }
    }

    private static func detail(_ message: String?) -> String {
        guard let message, !message.isEmpty else { return "" }
        return " (agent: \(PrintableText.replacingControls(message)))"
    }
}
