internal import COpenSSL
import MeshprobeIdentity
import NIOCore

/// One TLS connection: owns the `SSL*` and its two memory BIOs, freed in `deinit`.
///
/// Used only on the channel's event loop. OpenSSL callbacks find this object through the `SSL`'s ex_data
/// (an unretained pointer, valid because callbacks only run inside calls this object makes).
final class TLSConnection {
    let ssl: OpaquePointer
    /// Ciphertext from the network, read by OpenSSL.
    private let inbound: OpaquePointer
    /// Ciphertext from OpenSSL, to send to the network.
    private let outbound: OpaquePointer
    let context: TLSContext

    /// A verification or negotiation failure recorded by a callback; reported instead of OpenSSL's generic error.
    var recordedFailure: TLSError?
    /// The peer's SPIFFE ID as our verify callback accepted it.
    var verifiedPeerID: SPIFFEID?
    /// Client: the server asked for a certificate and we have none.
    var certificateRequestedButNoneConfigured = false

    init(context: TLSContext, serverName: String?) throws(TLSError) {
        guard let ssl = SSL_new(context.sslContext.pointer) else { throw TLSError.configuration("cannot create an OpenSSL connection") }
        guard let inbound = BIO_new(BIO_s_mem()), let outbound = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw TLSError.configuration("cannot create memory BIOs")
        }
        // An empty memory BIO means "no data yet", not end of file.
        _ = mp_BIO_set_mem_eof_return(inbound, -1)
        _ = mp_BIO_set_mem_eof_return(outbound, -1)
        SSL_set_bio(ssl, inbound, outbound)  // SSL now owns both BIOs
        self.ssl = ssl
        self.inbound = inbound
        self.outbound = outbound
        self.context = context
        SSL_set_ex_data(ssl, TLSContext.connectionIndex, Unmanaged.passUnretained(self).toOpaque())

        switch context.configuration.role {
        case .client:
            SSL_set_connect_state(ssl)
            if let serverName { _ = mp_SSL_set_tlsext_host_name(ssl, serverName) }
            if context.configuration.sessionResumption { context.applyLastSession(to: ssl) }
        case .server:
            SSL_set_accept_state(ssl)
        }
    }

    deinit {
        SSL_set_ex_data(ssl, TLSContext.connectionIndex, nil)
        SSL_free(ssl)
    }

    static func from(_ ssl: OpaquePointer?) -> TLSConnection? {
        guard let ssl, let raw = SSL_get_ex_data(ssl, TLSContext.connectionIndex) else { return nil }
        return Unmanaged<TLSConnection>.fromOpaque(raw).takeUnretainedValue()
    }

    var role: TLSConfiguration.Role { context.configuration.role }

    // MARK: Callbacks

    static func verifyCallback(storeContext: OpaquePointer) -> Int32 {
        guard let raw = X509_STORE_CTX_get_ex_data(storeContext, mp_SSL_get_ex_data_X509_STORE_CTX_idx()),
              let connection = from(OpaquePointer(raw)) else {
            return 0
        }
        return connection.verifyPeer(storeContext: storeContext)
    }

    private func verifyPeer(storeContext: OpaquePointer) -> Int32 {
        let configuration = context.configuration
        if role == .client && !configuration.verifyPeer { return 1 }
        guard let leaf = X509_STORE_CTX_get0_cert(storeContext) else {
            recordedFailure = TLSError(kind: .tlsNoPeerCertificate, message: "\(context.verifier.peerName) sent no certificate")
            X509_STORE_CTX_set_error(storeContext, X509_V_ERR_UNSPECIFIED)
            return 0
        }
        switch context.verifier.verify(leaf: leaf, untrusted: X509_STORE_CTX_get0_untrusted(storeContext)) {
        case .accepted(let id):
            verifiedPeerID = id
            X509_STORE_CTX_set_error(storeContext, X509_V_OK)
            return 1
        case .rejected(let error, let x509Error):
            recordedFailure = error
            X509_STORE_CTX_set_error(storeContext, x509Error)
            return 0
        }
    }

    /// Server ALPN: the first of our protocols that the client offers.
    func selectApplicationProtocol(offered: UnsafeBufferPointer<UInt8>,
                                   out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
                                   outLength: UnsafeMutablePointer<UInt8>?) -> Int32 {
        let ours = context.alpnWire
        var oursIndex = 0
        while oursIndex < ours.count {
            let length = Int(ours[oursIndex])
            let candidate = ours[(oursIndex + 1)..<(oursIndex + 1 + length)]
            var index = 0
            while index < offered.count {
                let offeredLength = Int(offered[index])
                let end = index + 1 + offeredLength
                guard end <= offered.count else { break }
                if offeredLength == length && offered[(index + 1)..<end].elementsEqual(candidate) {
                    out?.pointee = UnsafePointer(offered.baseAddress! + index + 1)
                    outLength?.pointee = UInt8(length)
                    return SSL_TLSEXT_ERR_OK
                }
                index = end
            }
            oursIndex += 1 + length
        }
        recordedFailure = TLSError(
            kind: .tlsALPNMismatch,
            message: "the client offered ALPN \(Self.protocolNames(offered)), this server speaks \(context.configuration.applicationProtocols)")
        return SSL_TLSEXT_ERR_ALERT_FATAL
    }

    static func protocolNames(_ wire: UnsafeBufferPointer<UInt8>) -> [String] {
        var names: [String] = []
        var index = 0
        while index < wire.count {
            let end = index + 1 + Int(wire[index])
            guard end <= wire.count else { break }
            names.append(String(decoding: wire[(index + 1)..<end], as: UTF8.self))
            index = end
        }
        return names
    }

    // MARK: I/O

    /// Hands ciphertext from the network to OpenSSL.
    func feed(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { bytes in
            guard let base = bytes.baseAddress, bytes.count > 0 else { return }
            _ = BIO_write(inbound, base, Int32(bytes.count))
        }
    }

    var pendingCiphertext: Int { Int(mp_BIO_ctrl_pending(outbound)) }

    /// Moves all ciphertext OpenSSL produced into `buffer`.
    func drainCiphertext(into buffer: inout ByteBuffer) {
        let pending = pendingCiphertext
        guard pending > 0 else { return }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: pending) { bytes in
            Int(max(0, BIO_read(outbound, bytes.baseAddress, Int32(pending))))
        }
    }

    enum HandshakeResult { case complete, wantRead, failed(TLSError) }

    func handshake() -> HandshakeResult {
        let result = SSL_do_handshake(ssl)
        if result == 1 { return .complete }
        let code = SSL_get_error(ssl, result)
        switch code {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return .wantRead
        default: return .failed(classifyFailure(code, duringHandshake: true))
        }
    }

    enum ReadResult { case wouldBlock, bufferFull, closeNotify, failed(TLSError) }

    /// Decrypts as much as is available into `buffer` (up to about `limit` bytes).
    func readPlaintext(into buffer: inout ByteBuffer, limit: Int) -> ReadResult {
        while buffer.readableBytes < limit {
            var result: Int32 = 0
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 16_384) { bytes in
                result = SSL_read(ssl, bytes.baseAddress, Int32(min(bytes.count, Int(Int32.max))))
                return result > 0 ? Int(result) : 0
            }
            if result > 0 { continue }
            let code = SSL_get_error(ssl, result)
            switch code {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return .wouldBlock
            case SSL_ERROR_ZERO_RETURN: return .closeNotify
            default: return .failed(classifyFailure(code, duringHandshake: false))
            }
        }
        return .bufferFull
    }

    /// Encrypts all of `buffer`; the ciphertext waits in the outbound BIO.
    func write(_ buffer: ByteBuffer) -> TLSError? {
        buffer.withUnsafeReadableBytes { bytes -> TLSError? in
            var offset = 0
            while offset < bytes.count {
                let chunk = Int32(min(bytes.count - offset, Int(Int32.max)))
                let written = SSL_write(ssl, bytes.baseAddress! + offset, chunk)
                if written > 0 {
                    offset += Int(written)
                    continue
                }
                let code = SSL_get_error(ssl, written)
                if code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE {
                    // Cannot happen with an unbounded memory BIO and no renegotiation; report rather than spin.
                    return TLSError(kind: .connectionLost, message: "TLS write stalled (OpenSSL wants to read first)")
                }
                return classifyFailure(code, duringHandshake: false)
            }
            return nil
        }
    }

    /// Queues close_notify in the outbound BIO.
    func shutdown() {
        _ = SSL_shutdown(ssl)
        OpenSSLErrorQueue.clear()
    }

    // MARK: Results

    func handshakeCompleted(startedAt start: NIODeadline) -> TLSHandshakeCompleted {
        var alpn: UnsafePointer<UInt8>?
        var alpnLength: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &alpn, &alpnLength)
        let negotiated = alpn.flatMap { alpnLength > 0 ? String(decoding: UnsafeBufferPointer(start: $0, count: Int(alpnLength)), as: UTF8.self) : nil }
        let version = SSL_get_version(ssl).map { String(cString: $0) } ?? "unknown"
        let cipher = SSL_get_current_cipher(ssl).flatMap { SSL_CIPHER_get_name($0) }.map { String(cString: $0) } ?? "unknown"
        let elapsed = NIODeadline.now() - start
        return TLSHandshakeCompleted(
            negotiatedProtocol: negotiated,
            version: version,
            cipher: cipher,
            resumed: SSL_session_reused(ssl) == 1,
            peer: peerCertificate.map { PeerCertificateInfo(certificate: $0, verifiedID: verifiedPeerID) },
            handshakeNanoseconds: UInt64(max(0, elapsed.nanoseconds)),
            serverName: SSL_get_servername(ssl, Int32(TLSEXT_NAMETYPE_host_name)).map { String(cString: $0) })
    }

    var peerCertificate: X509Certificate? {
        SSL_get0_peer_certificate(ssl).map { X509Certificate(borrowing: $0) }
    }

    var resumed: Bool { SSL_session_reused(ssl) == 1 }

    /// The peer speaks plaintext where TLS was expected: OpenSSL found no TLS record header (a client reading an
    /// HTTP answer or HTTP/2 frames: "wrong version number", "packet length too long"; a server reading an HTTP
    /// request: "http request"). Nil for any other reason.
    private func plaintextPeer(_ packed: UInt) -> TLSError? {
        switch mp_ERR_GET_REASON(packed) {
        case SSL_R_WRONG_VERSION_NUMBER, SSL_R_PACKET_LENGTH_TOO_LONG, SSL_R_HTTP_REQUEST, SSL_R_HTTPS_PROXY_REQUEST:
            let what = ERR_reason_error_string(packed).map { String(cString: $0) } ?? "no TLS record"
            if role == .client {
                return TLSError(kind: .wrongScheme,
                                message: "\(context.verifier.peerName) answered in plaintext, not TLS (OpenSSL: \(what)): use http://, the URL says https://")
            }
            return TLSError(kind: .wrongScheme,
                            message: "\(context.verifier.peerName) spoke plaintext, not TLS (OpenSSL: \(what)): this port needs https://, its URL says http://")
        default:
            return nil
        }
    }

    /// Turns an OpenSSL failure into a TLSError, preferring what our callbacks recorded.
    func classifyFailure(_ code: Int32, duringHandshake: Bool) -> TLSError {
        let codes = OpenSSLErrorQueue.drainCodes()
        if let recordedFailure { return recordedFailure }
        let detail = codes.isEmpty ? "" : " (OpenSSL: \(codes.map(OpenSSLErrorQueue.text(of:)).joined(separator: "; ")))"
        let peer = context.verifier.peerName
        for packed in codes {
            let reason = mp_ERR_GET_REASON(packed)
            if let plaintext = plaintextPeer(packed) { return plaintext }
            if reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE {
                return TLSError(kind: .tlsNoPeerCertificate,
                                message: "\(peer) sent no certificate; this server requires one (it has a trust bundle for client certificates; the echo's --no-client-cert turns that off)")
            }
            guard reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256 else { continue }
            let alert = reason - SSL_AD_REASON_OFFSET
            // OpenSSL 3.0 names TLS 1.3's certificate_required (116) 'unknown': the RFC 8446 name instead.
            let name = alert == TLS13_AD_CERTIFICATE_REQUIRED ? "certificate required" : String(cString: SSL_alert_desc_string_long(alert))
            switch alert {
            case SSL3_AD_BAD_CERTIFICATE, SSL3_AD_UNSUPPORTED_CERTIFICATE, SSL3_AD_CERTIFICATE_REVOKED,
                 SSL3_AD_CERTIFICATE_EXPIRED, SSL3_AD_CERTIFICATE_UNKNOWN, TLS1_AD_UNKNOWN_CA,
                 TLS13_AD_CERTIFICATE_REQUIRED, TLS1_AD_ACCESS_DENIED:
                let ours = role == .client ? "our client certificate" : "our server certificate"
                let hint = certificateRequestedButNoneConfigured ? " (it asked for a client certificate and none is configured)" : ""
                return TLSError(kind: .tlsPeerRejectedCertificate, message: "\(peer) rejected \(ours): alert '\(name)'\(hint)")
            case SSL3_AD_HANDSHAKE_FAILURE where certificateRequestedButNoneConfigured:
                return TLSError(kind: .tlsPeerRejectedCertificate,
                                message: "\(peer) asked for a client certificate, none is configured, and it ended the handshake: alert '\(name)'")
            case TLS1_AD_NO_APPLICATION_PROTOCOL:
                return TLSError(kind: .tlsALPNMismatch,
                                message: "\(peer) supports none of the offered ALPN protocols \(context.configuration.applicationProtocols)")
            default:
                return TLSError(kind: duringHandshake ? .tlsHandshakeFailed : .connectionLost,
                                message: "\(peer) sent TLS alert '\(name)'\(detail)")
            }
        }
        if code == SSL_ERROR_SYSCALL || code == SSL_ERROR_ZERO_RETURN || codes.isEmpty {
            return TLSError(kind: duringHandshake ? .tlsHandshakeFailed : .connectionLost,
                            message: duringHandshake ? "connection closed during the TLS handshake" : "TLS connection failed\(detail)")
        }
        return TLSError(kind: duringHandshake ? .tlsHandshakeFailed : .connectionLost,
                        message: "TLS \(duringHandshake ? "handshake" : "connection") failed\(detail)")
    }
}
