import Foundation
import MeshprobeIdentity
import MeshprobeSpec
import NIOCore
import NIOPosix

extension LoadTarget {
    /// A failed connection to this target as a kind and a reason that names the target.
    package func connectFailure(_ error: any Error) -> (kind: ErrorKind, why: String) {
        // A connect by host name reports each address tried: the first one's error says why.
        if let e = error as? NIOConnectionError, let first = e.connectionErrors.first { return connectFailure(first.error) }
        if let e = error as? ChannelError, case .connectTimeout = e {
            return (.connectTimeout, "connecting to \(authority) timed out")
        }
        if let e = error as? IOError {
            if e.errnoCode == ECONNREFUSED { return (.connectRefused, "\(authority) refused the connection (nothing listening?)") }
            // A listener that accepts and resets at once (an L4 deny) can reset before the connect is seen done.
            if e.errnoCode == ECONNRESET { return (.connectionLost, "\(authority) reset the connection as it was made") }
            return (.connectFailed, "connecting to \(authority) failed: \(e)")
        }
        return (.connectFailed, "connecting to \(authority) failed: \(error)")
    }
}
