internal import COpenSSL
import MeshprobeIdentity

/// A TLS or SPIFFE verification failure, classified by `kind`.
///
/// `message` says in plain words what was expected and what was presented. It never contains key material.
public struct TLSError: Error, Sendable, CustomStringConvertible, Hashable {
    /// The classification, as counted in the results.
    public var kind: ErrorKind
    /// What was expected, what was presented, and what to do about it.
    public var message: String

    public init(kind: ErrorKind, message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { "\(kind.rawValue): \(message)" }
}

/// The calling thread's OpenSSL error queue.
enum OpenSSLErrorQueue {
    /// Removes every queued error and returns their packed codes, oldest first.
    static func drainCodes() -> [UInt] {
        var codes: [UInt] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { return codes }
            codes.append(code)
        }
    }

    /// A human-readable text for one packed error code (library, reason).
    static func text(of code: UInt) -> String {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 256) { buffer in
            ERR_error_string_n(code, buffer.baseAddress, buffer.count)
            return String(cString: buffer.baseAddress!)
        }
    }

    /// Drains the queue into one line such as `error:0A000086:SSL routines::certificate verify failed`.
    ///
    /// OpenSSL's error strings name routines and reasons only, never key bytes.
    static func drainText() -> String {
        let codes = drainCodes()
        if codes.isEmpty { return "no further detail from OpenSSL" }
        return codes.map(text(of:)).joined(separator: "; ")
    }

    /// Empties the queue before an SSL call (so that SSL_get_error reads only that call's errors). Peeking first
    /// is much cheaper than ERR_clear_error, which resets every slot of the thread's queue, and the queue is
    /// empty on the hot path.
    static func clear() {
        if ERR_peek_error() != 0 { ERR_clear_error() }
    }
}

extension TLSError {
    /// An error for a file-loading or configuration step, with OpenSSL's error queue appended.
    static func configuration(_ message: String, drainingOpenSSL: Bool = true) -> TLSError {
        if drainingOpenSSL {
            let detail = OpenSSLErrorQueue.drainText()
            return TLSError(kind: .tlsHandshakeFailed, message: "\(message) (OpenSSL: \(detail))")
        }
        return TLSError(kind: .tlsHandshakeFailed, message: message)
    }
}
