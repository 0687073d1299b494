import MeshprobeIdentity

/// An address to listen on or send to, `HOST:PORT`: a name, an IPv4 address, or an IPv6 address in brackets
/// (`[::1]:8443`); an empty host is every interface (`:9464`, `0.0.0.0`).
public struct HostPort: Sendable, Equatable, CustomStringConvertible {
    /// Without brackets.
    public let host: String
    public let port: Int
    /// As written.
    public let text: String

    /// Parses `HOST:PORT`, the port 0 to 65535 (0: any free port, for a listener).
    public init(parsing text: String) throws(InputValueError) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw InputValueError("'\(text)': expected HOST:PORT, e.g. 0.0.0.0:9464")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host.isEmpty ? "0.0.0.0" : host
        self.port = port
        self.text = text
    }

    public var description: String { text }
}
