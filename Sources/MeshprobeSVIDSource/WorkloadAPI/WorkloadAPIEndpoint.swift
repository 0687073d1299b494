import MeshprobeIdentity

/// Where the SPIFFE Workload API listens: a Unix domain socket named `unix:///path` or `unix:/path`
/// (`SPIFFE_ENDPOINT_SOCKET`'s forms, SPIFFE Workload Endpoint section 4).
public struct WorkloadAPIEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// The standard environment variable.
    public static let environmentVariable = "SPIFFE_ENDPOINT_SOCKET"

    /// The socket's path.
    public var path: String
    /// As given.
    public var description: String

    /// Parses `unix:///path` or `unix:/path`; TCP endpoints (`tcp://`) are refused: the agent's socket is local.
    public init(parsing text: String) throws(InputValueError) {
        let path: Substring
        if text.hasPrefix("unix://") {
            path = text.dropFirst("unix://".count)
        } else if text.hasPrefix("unix:") {
            path = text.dropFirst("unix:".count)
        } else if text.hasPrefix("tcp:") {
            throw InputValueError("'\(text)': only unix: endpoints are supported (the Workload API is the agent's local socket)")
        } else {
            throw InputValueError("'\(text)': expected unix:///path/to/agent.sock")
        }
        guard path.hasPrefix("/"), path.count > 1 else {
            throw InputValueError("'\(text)': the socket path must be absolute (unix:///run/spire/sockets/agent.sock)")
        }
        guard !path.contains("?"), !path.contains("#") else {
            throw InputValueError("'\(text)': a socket path has no query or fragment")
        }
        self.path = String(path)
        self.description = text
    }
}
