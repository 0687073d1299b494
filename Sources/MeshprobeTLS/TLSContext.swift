internal import COpenSSL
import Foundation
import MeshprobeIdentity
import NIOCore

/// Owns an `SSL_CTX*`.
final class OwnedSSLContext {
    let pointer: OpaquePointer
    init(pointer: OpaquePointer) { self.pointer = pointer }
    deinit { SSL_CTX_free(pointer) }
}

/// Owns an `SSL_CTX` built from a configuration; shared by all connections to one target.
///
/// `@unchecked Sendable`: after `init` the `SSL_CTX` and the trust stores are only read, which OpenSSL
/// allows from many threads at once (`SSL_new`, `X509_verify_cert`); the one mutable field, the last
/// session, is guarded by `sessionLock`.
public final class TLSContext: @unchecked Sendable {
    public let configuration: TLSConfiguration
    /// The URI SAN of our own leaf certificate, if it is a SPIFFE ID.
    public let localIdentity: SPIFFEID?
    /// When our own leaf certificate expires (nil: no certificate, or no readable date).
    public let localNotAfter: Date?

    let sslContext: OwnedSSLContext
    let verifier: SPIFFEPeerVerifier
    /// Our ALPN list in wire format (length-prefixed), for the client offer and the server choice.
    let alpnWire: [UInt8]

    private let sessionLock = NSLock()
    /// The last session a server gave us (client only); guarded by `sessionLock`.
    private var lastSession: OpaquePointer?

    /// The `SSL` ex_data slot that holds the unretained ``TLSConnection``.
    static let connectionIndex: Int32 = mp_SSL_get_ex_new_index()

    /// Loads the files the configuration names; errors say which file and what is wrong.
    public init(configuration: TLSConfiguration) throws(TLSError) {
        OpenSSLErrorQueue.clear()
        self.configuration = configuration
        let method = configuration.role == .client ? TLS_client_method() : TLS_server_method()
        guard let ctx = SSL_CTX_new(method) else { throw TLSError.configuration("cannot create an OpenSSL context") }
        let owned = OwnedSSLContext(pointer: ctx)
        self.sslContext = owned

        guard configuration.minimumVersion.protocolVersion <= configuration.maximumVersion.protocolVersion else {
            throw TLSError(kind: .tlsHandshakeFailed,
                           message: "the minimum TLS version \(configuration.minimumVersion.rawValue) is above the maximum \(configuration.maximumVersion.rawValue)")
        }
        _ = mp_SSL_CTX_set_min_proto_version(ctx, configuration.minimumVersion.protocolVersion)
        _ = mp_SSL_CTX_set_max_proto_version(ctx, configuration.maximumVersion.protocolVersion)
        _ = mp_SSL_CTX_set_mode(ctx, Int(SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER))
        _ = SSL_CTX_set_options(ctx, mp_SSL_OP_NO_COMPRESSION_NO_RENEGOTIATION())
        guard SSL_CTX_set_cipher_list(ctx, configuration.tls12Ciphers) == 1 else {
            throw TLSError.configuration("OpenSSL knows none of the TLS 1.2 cipher suites '\(configuration.tls12Ciphers)'")
        }
        guard SSL_CTX_set_ciphersuites(ctx, configuration.tls13Ciphersuites) == 1 else {
            throw TLSError.configuration("OpenSSL knows none of the TLS 1.3 cipher suites '\(configuration.tls13Ciphersuites)'")
        }
        // Key sizes and signature algorithms for the handshake and our own certificate; the peer's chain gets the
        // same level in SPIFFEPeerVerifier. Set here so that a system openssl.cnf cannot lower it.
        let level = configuration.loosening.securityLevel
        guard (0...5).contains(level) else {
            throw TLSError(kind: .tlsHandshakeFailed, message: "the TLS security level \(level) is not one of OpenSSL's levels 0 to 5")
        }
        SSL_CTX_set_security_level(ctx, Int32(level))
        // Never prompt on the terminal for a key passphrase.
        SSL_CTX_set_default_passwd_cb(ctx) { _, _, _, _ in 0 }

        self.localIdentity = try Self.loadIdentity(into: ctx, configuration: configuration)
        self.localNotAfter = SSL_CTX_get0_certificate(ctx).flatMap { X509Certificate(borrowing: $0).notAfter }
        self.verifier = try SPIFFEPeerVerifier(configuration: configuration)
        self.alpnWire = try Self.wireFormat(configuration.applicationProtocols)

        // Peer verification: our SPIFFE check replaces OpenSSL's chain check.
        var mode = SSL_VERIFY_NONE
        switch configuration.role {
        case .client:
            if configuration.verifyPeer { mode = SSL_VERIFY_PEER }
            if configuration.certificateChainFile == nil && configuration.svidInMemory == nil {
                SSL_CTX_set_client_cert_cb(ctx) { ssl, _, _ in
                    TLSConnection.from(ssl)?.certificateRequestedButNoneConfigured = true
                    return 0
                }
            }
        case .server:
            if configuration.verifyPeer || configuration.requireClientCertificate { mode = SSL_VERIFY_PEER }
            if configuration.requireClientCertificate { mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT }
            if configuration.verifyPeer && configuration.trustBundles.isEmpty {
                throw TLSError(kind: .tlsHandshakeFailed,
                               message: "a server that verifies client certificates needs a trust bundle (--trust-bundle FILE or TD=FILE)")
            }
        }
        SSL_CTX_set_verify(ctx, mode, nil)
        SSL_CTX_set_cert_verify_callback(ctx, { storeContext, _ in
            guard let storeContext else { return 0 }
            return TLSConnection.verifyCallback(storeContext: storeContext)
        }, nil)

        // Session resumption: the client keeps the last session; the server issues tickets.
        let sessionContext: [UInt8] = Array("meshprobe".utf8)
        _ = SSL_CTX_set_session_id_context(ctx, sessionContext, UInt32(sessionContext.count))
        if configuration.role == .client {
            _ = mp_SSL_CTX_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE))
            if configuration.sessionResumption {
                SSL_CTX_sess_set_new_cb(ctx) { ssl, session in
                    guard let ssl, let session, let connection = TLSConnection.from(ssl) else { return 0 }
                    connection.context.storeSession(session)
                    return 1  // we keep the reference
                }
            }
        }

        // ALPN.
        if !alpnWire.isEmpty {
            switch configuration.role {
            case .client:
                let status = alpnWire.withUnsafeBufferPointer { SSL_CTX_set_alpn_protos(ctx, $0.baseAddress, UInt32($0.count)) }
                guard status == 0 else { throw TLSError.configuration("cannot set the ALPN protocols \(configuration.applicationProtocols)") }
            case .server:
                SSL_CTX_set_alpn_select_cb(ctx, { ssl, out, outLength, offered, offeredLength, _ in
                    guard let ssl, let connection = TLSConnection.from(ssl), let offered else { return SSL_TLSEXT_ERR_NOACK }
                    return connection.selectApplicationProtocol(
                        offered: UnsafeBufferPointer(start: offered, count: Int(offeredLength)), out: out, outLength: outLength)
                }, nil)
            }
        }
        OpenSSLErrorQueue.clear()
    }

    deinit {
        if let lastSession { SSL_SESSION_free(lastSession) }
    }

    /// A handler for one connection. `serverName` (else the configuration's) is sent as SNI unless it is an IP literal.
    public func makeHandler(serverName: String? = nil) -> TLSHandler {
        TLSHandler(context: self, serverName: Self.sniName(serverName ?? configuration.serverName))
    }

    /// A handler for a connection to `host`: SNI is the configuration's `serverName`, else `host` unless it is an IP literal.
    public func makeHandler(connectingTo host: String) -> TLSHandler {
        TLSHandler(context: self, serverName: Self.sniName(configuration.serverName ?? host))
    }

    static func sniName(_ name: String?) -> String? {
        guard let name, !name.isEmpty, configurationRoleAllowsSNI(name) else { return nil }
        return name
    }

    private static func configurationRoleAllowsSNI(_ name: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        let bare = name.hasPrefix("[") && name.hasSuffix("]") ? String(name.dropFirst().dropLast()) : name
        return inet_pton(AF_INET, bare, &v4) != 1 && inet_pton(AF_INET6, bare, &v6) != 1
    }

    func storeSession(_ session: OpaquePointer) {
        let old: OpaquePointer? = sessionLock.withLock {
            let old = lastSession
            lastSession = session
            return old
        }
        if let old { SSL_SESSION_free(old) }
    }

    /// Offers the last session on a new client connection.
    func applyLastSession(to ssl: OpaquePointer) {
        sessionLock.withLock {
            if let lastSession { _ = SSL_set_session(ssl, lastSession) }
        }
    }

    // MARK: Loading

    private static func loadIdentity(into ctx: OpaquePointer, configuration: TLSConfiguration) throws(TLSError) -> SPIFFEID? {
        if let svid = configuration.svidInMemory { return try loadIdentity(into: ctx, svid: svid) }
        switch (configuration.certificateChainFile, configuration.privateKeyFile) {
        case (nil, nil):
            if configuration.role == .server {
                throw TLSError(kind: .tlsHandshakeFailed, message: "a TLS server needs a certificate chain file and a private key file")
            }
            return nil
        case (.some(let chain), nil):
            throw TLSError(kind: .tlsHandshakeFailed, message: "certificate chain \(chain) is given without a private key file")
        case (nil, .some(let key)):
            throw TLSError(kind: .tlsHandshakeFailed, message: "private key \(key) is given without a certificate chain file")
        case (.some(let chainFile), .some(let keyFile)):
            let chainText = try readTextFile(chainFile, what: "certificate chain")
            let certificates = try X509Certificate.parseAll(pem: chainText, source: "certificate chain \(chainFile)")
            try useChain(certificates, in: ctx, source: "certificate chain \(chainFile)")
            let keyText = try readTextFile(keyFile, what: "private key")
            guard keyText.contains("-----BEGIN") && keyText.contains("PRIVATE KEY-----") else {
                throw TLSError(kind: .tlsHandshakeFailed,
                               message: "private key \(keyFile) is not a PEM private key: it has no '-----BEGIN ... PRIVATE KEY-----' line")
            }
            if keyText.contains("ENCRYPTED") {
                throw TLSError(kind: .tlsHandshakeFailed, message: "private key \(keyFile) is encrypted; meshprobe needs an unencrypted key")
            }
            guard let key = PrivateKey.parse(pem: keyText) else {
                throw TLSError.configuration("private key \(keyFile) does not parse as a PEM private key")
            }
            defer { EVP_PKEY_free(key) }
            guard SSL_CTX_use_PrivateKey(ctx, key) == 1, SSL_CTX_check_private_key(ctx) == 1 else {
                OpenSSLErrorQueue.clear()
                throw TLSError(kind: .tlsHandshakeFailed,
                               message: "private key \(keyFile) does not match the certificate in \(chainFile) ('\(certificates[0].subject)')")
            }
            return certificates[0].spiffeID
        }
    }

    /// Our certificate chain (leaf first) into `ctx`.
    private static func useChain(_ certificates: [X509Certificate], in ctx: OpaquePointer, source: String) throws(TLSError) {
        guard SSL_CTX_use_certificate(ctx, certificates[0].pointer) == 1 else {
            throw TLSError.configuration("\(source): OpenSSL refused the leaf certificate")
        }
        for intermediate in certificates.dropFirst() {
            X509_up_ref(intermediate.pointer)  // add0 takes ownership of one reference
            guard mp_SSL_CTX_add0_chain_cert(ctx, intermediate.pointer) == 1 else {
                X509_free(intermediate.pointer)
                throw TLSError.configuration("\(source): cannot add intermediate '\(intermediate.subject)'")
            }
        }
    }

    /// The in-memory SVID: DER chain (leaf first) and PKCS#8 DER key, held to the same pairing check as files.
    private static func loadIdentity(into ctx: OpaquePointer, svid: InMemorySVID) throws(TLSError) -> SPIFFEID? {
        let certificates = try X509Certificate.parseAll(der: svid.chainDER, source: "certificate chain of \(svid.source)")
        try useChain(certificates, in: ctx, source: "certificate chain of \(svid.source)")
        guard let key = PrivateKey.parse(der: svid.privateKeyDER) else {
            throw TLSError(kind: .tlsHandshakeFailed, message: "the private key of \(svid.source) does not parse as PKCS#8 DER")
        }
        defer { EVP_PKEY_free(key) }
        guard SSL_CTX_use_PrivateKey(ctx, key) == 1, SSL_CTX_check_private_key(ctx) == 1 else {
            OpenSSLErrorQueue.clear()
            throw TLSError(kind: .tlsHandshakeFailed,
                           message: "the private key of \(svid.source) does not match its certificate ('\(certificates[0].subject)')")
        }
        return certificates[0].spiffeID
    }

    static func wireFormat(_ protocols: [String]) throws(TLSError) -> [UInt8] {
        var wire: [UInt8] = []
        for name in protocols {
            let bytes = Array(name.utf8)
            guard !bytes.isEmpty, bytes.count <= 255 else {
                throw TLSError(kind: .tlsHandshakeFailed, message: "ALPN protocol '\(name)' must be 1 to 255 bytes long")
            }
            wire.append(UInt8(bytes.count))
            wire.append(contentsOf: bytes)
        }
        return wire
    }
}

extension TLSVersion {
    var protocolVersion: Int32 {
        switch self {
        case .tls12: return TLS1_2_VERSION
        case .tls13: return TLS1_3_VERSION
        }
    }
}

/// PEM private keys, parsed without ever echoing their bytes.
enum PrivateKey {
    /// Caller frees with `EVP_PKEY_free`.
    static func parse(pem: String) -> OpaquePointer? {
        guard let bio = BIO_new(BIO_s_mem()) else { return nil }
        defer { BIO_free(bio) }
        pem.utf8CString.withUnsafeBufferPointer { _ = BIO_write(bio, $0.baseAddress, Int32($0.count - 1)) }
        let key = PEM_read_bio_PrivateKey(bio, nil, { _, _, _, _ in 0 }, nil)
        OpenSSLErrorQueue.clear()
        return key
    }

    /// PKCS#8 (or traditional) DER, as the Workload API sends it. Caller frees with `EVP_PKEY_free`.
    static func parse(der: [UInt8]) -> OpaquePointer? {
        guard !der.isEmpty else { return nil }
        let key = der.withUnsafeBufferPointer { buffer -> OpaquePointer? in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_AutoPrivateKey(nil, &cursor, buffer.count)
        }
        OpenSSLErrorQueue.clear()
        return key
    }

    static func pem(of key: OpaquePointer) -> String {
        guard let bio = BIO_new(BIO_s_mem()) else { return "" }
        defer { BIO_free(bio) }
        PEM_write_bio_PrivateKey(bio, key, nil, nil, 0, nil, nil)
        return X509Certificate.readAll(bio)
    }
}
