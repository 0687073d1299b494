import Foundation
import MeshprobeIdentity

/// Fired as a user inbound event when the handshake succeeds.
public struct TLSHandshakeCompleted: Sendable, Hashable {
    /// The ALPN result, nil when none was negotiated.
    public var negotiatedProtocol: String?
    /// For example `TLSv1.3`.
    public var version: String
    /// For example `TLS_AES_128_GCM_SHA256`.
    public var cipher: String
    /// Whether an earlier session was resumed.
    public var resumed: Bool
    /// The peer's leaf, nil when the peer sent none.
    public var peer: PeerCertificateInfo?
    /// From the handler's start (connect) to completion.
    public var handshakeNanoseconds: UInt64
    /// The SNI host name: the one the client sent (server side), or the one we sent (client side); nil when none.
    public var serverName: String?

    public init(negotiatedProtocol: String?, version: String, cipher: String, resumed: Bool,
                peer: PeerCertificateInfo?, handshakeNanoseconds: UInt64, serverName: String? = nil) {
        self.serverName = serverName
        self.negotiatedProtocol = negotiatedProtocol
        self.version = version
        self.cipher = cipher
        self.resumed = resumed
        self.peer = peer
        self.handshakeNanoseconds = handshakeNanoseconds
    }
}

/// What the peer's leaf certificate says.
public struct PeerCertificateInfo: Sendable, Hashable {
    /// The single URI SAN if it parses as a SPIFFE ID.
    public var spiffeID: SPIFFEID?
    /// All URI SANs, in certificate order.
    public var uriSANs: [String]
    /// RFC 2253 form, for example `CN=api,O=meshprobe`.
    public var subject: String
    public var issuer: String
    public var dnsNames: [String]
    public var notBefore: Date?
    public var notAfter: Date?

    public init(spiffeID: SPIFFEID?, uriSANs: [String], subject: String, issuer: String, dnsNames: [String],
                notBefore: Date?, notAfter: Date?) {
        self.spiffeID = spiffeID
        self.uriSANs = uriSANs
        self.subject = subject
        self.issuer = issuer
        self.dnsNames = dnsNames
        self.notBefore = notBefore
        self.notAfter = notAfter
    }

    init(certificate: X509Certificate, verifiedID: SPIFFEID?) {
        self.init(spiffeID: verifiedID ?? certificate.spiffeID, uriSANs: certificate.uriSANs,
                  subject: certificate.subject, issuer: certificate.issuer, dnsNames: certificate.dnsNames,
                  notBefore: certificate.notBefore, notAfter: certificate.notAfter)
    }
}
