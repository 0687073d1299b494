import Foundation
import NIOCore

extension SocketAddress {
    /// The address as people write it: `127.0.0.1:9441`, `[::1]:9441`, a Unix socket's path.
    public var text: String {
        switch self {
        case .v4: return "\(ipAddress ?? ""):\(port ?? 0)"
        case .v6: return "[\(ipAddress ?? "")]:\(port ?? 0)"
        case .unixDomainSocket: return pathname ?? "unix socket"
        }
    }
}

/// Why a server could not listen, in one line (`cannot listen on 127.0.0.1:9441: in use by another process`), instead
/// of the socket call and errno the error describes itself with.
public func listenFailure(_ address: String, _ error: any Error) -> String {
    let why: String
    if let io = error as? IOError {
        switch io.errnoCode {
        case EADDRINUSE: why = "in use by another process"
        case EACCES: why = "permission denied (ports below 1024 need privileges)"
        case EADDRNOTAVAIL: why = "no interface of this machine has that address"
        default: why = String(cString: strerror(io.errnoCode))
        }
    } else {
        why = "\(error)"
    }
    return "cannot listen on \(address): \(why)"
}
