internal import COpenSSL
import Foundation
import MeshprobeIdentity

/// Owns one `X509*` reference and reads the fields meshprobe cares about.
final class X509Certificate {
    let pointer: OpaquePointer

    /// Takes ownership of one reference.
    init(taking pointer: OpaquePointer) {
        self.pointer = pointer
    }

    /// Adds a reference to a certificate owned elsewhere (for example by an `SSL*`).
    init(borrowing pointer: OpaquePointer) {
        X509_up_ref(pointer)
        self.pointer = pointer
    }

    deinit { X509_free(pointer) }

    /// Every certificate in a PEM text, in order. Throws when there is none.
    static func parseAll(pem: String, source: String) throws(TLSError) -> [X509Certificate] {
        guard pem.contains("-----BEGIN CERTIFICATE-----") else {
            throw TLSError(kind: .tlsHandshakeFailed,
                           message: "\(source) is not a PEM certificate file: it has no '-----BEGIN CERTIFICATE-----' line")
        }
        OpenSSLErrorQueue.clear()
        let bio = pem.utf8CString.withUnsafeBufferPointer { buffer in
            // BIO_new_mem_buf does not copy: copy into a BIO we own instead.
            let bio = BIO_new(BIO_s_mem())!
            _ = BIO_write(bio, buffer.baseAddress, Int32(buffer.count - 1))
            return bio
        }
        defer { BIO_free(bio) }
        var certificates: [X509Certificate] = []
        while let x509 = PEM_read_bio_X509(bio, nil, nil, nil) {
            certificates.append(X509Certificate(taking: x509))
        }
        // The loop ends with a "no start line" error at the end of the text; anything else is a parse error.
        let codes = OpenSSLErrorQueue.drainCodes()
        let realErrors = codes.filter { mp_ERR_GET_REASON($0) != PEM_R_NO_START_LINE }
        if !realErrors.isEmpty || certificates.isEmpty {
            let detail = realErrors.isEmpty ? "no certificate found" : realErrors.map(OpenSSLErrorQueue.text(of:)).joined(separator: "; ")
            throw TLSError(kind: .tlsHandshakeFailed,
                           message: "\(source) has a certificate block that does not parse (\(detail))")
        }
        return certificates
    }

    /// Every certificate in concatenated DER (the Workload API's chains and bundles), in order. Throws when there is
    /// none or when bytes are left over that are not a certificate.
    static func parseAll(der: [UInt8], source: String) throws(TLSError) -> [X509Certificate] {
        OpenSSLErrorQueue.clear()
        var certificates: [X509Certificate] = []
        var consumed = 0
        der.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            while consumed < buffer.count {
                var cursor: UnsafePointer<UInt8>? = base + consumed
                guard let x509 = d2i_X509(nil, &cursor, buffer.count - consumed), let end = cursor else { break }
                certificates.append(X509Certificate(taking: x509))
                consumed = end - base
            }
        }
        OpenSSLErrorQueue.clear()
        guard !certificates.isEmpty, consumed == der.count else {
            let detail = der.isEmpty ? "it is empty" : "bytes \(consumed) to \(der.count) are not a DER certificate"
            throw TLSError(kind: .tlsHandshakeFailed, message: "\(source) is not concatenated DER certificates: \(detail)")
        }
        return certificates
    }

    /// The URI subject alternative names, in certificate order.
    var uriSANs: [String] { subjectAltNames(type: GEN_URI) }

    /// The DNS subject alternative names, in certificate order.
    var dnsNames: [String] { subjectAltNames(type: GEN_DNS) }

    /// The IP address subject alternative names, printed.
    var ipAddresses: [String] {
        guard let names = sanStack() else { return [] }
        defer { mp_GENERAL_NAMES_free(names) }
        var result: [String] = []
        for index in 0..<mp_sk_GENERAL_NAME_num(names) {
            guard let name = mp_sk_GENERAL_NAME_value(names, index), name.pointee.type == GEN_IPADD,
                  let octets = name.pointee.d.iPAddress else { continue }
            let bytes = Array(UnsafeBufferPointer(start: ASN1_STRING_get0_data(octets), count: Int(ASN1_STRING_length(octets))))
            if bytes.count == 4 {
                result.append(bytes.map(String.init).joined(separator: "."))
            } else {
                result.append(stride(from: 0, to: bytes.count, by: 2).map { String(format: "%x", Int(bytes[$0]) << 8 | Int(bytes[$0 + 1])) }.joined(separator: ":"))
            }
        }
        return result
    }

    private func sanStack() -> OpaquePointer? {
        guard let raw = X509_get_ext_d2i(pointer, NID_subject_alt_name, nil, nil) else { return nil }
        return OpaquePointer(raw)
    }

    private func subjectAltNames(type: Int32) -> [String] {
        guard let names = sanStack() else { return [] }
        defer { mp_GENERAL_NAMES_free(names) }
        var result: [String] = []
        for index in 0..<mp_sk_GENERAL_NAME_num(names) {
            guard let name = mp_sk_GENERAL_NAME_value(names, index), name.pointee.type == type else { continue }
            // uniformResourceIdentifier and dNSName share the union slot `ia5`.
            guard let string = name.pointee.d.ia5 else { continue }
            result.append(Self.string(from: string))
        }
        return result
    }

    static func string(from asn1: UnsafeMutablePointer<ASN1_STRING>) -> String {
        let length = Int(ASN1_STRING_length(asn1))
        guard length > 0, let data = ASN1_STRING_get0_data(asn1) else { return "" }
        return String(decoding: UnsafeBufferPointer(start: data, count: length), as: UTF8.self)
    }

    /// The subject in RFC 2253 form, for example `CN=api,O=meshprobe`.
    var subject: String { Self.format(name: X509_get_subject_name(pointer)) }
    var issuer: String { Self.format(name: X509_get_issuer_name(pointer)) }

    static func format(name: OpaquePointer?) -> String {
        guard let name, let bio = BIO_new(BIO_s_mem()) else { return "" }
        defer { BIO_free(bio) }
        X509_NAME_print_ex(bio, name, 0, mp_XN_FLAG_RFC2253())
        return readAll(bio)
    }

    /// Everything pending in a memory BIO, as UTF-8 text.
    static func readAll(_ bio: OpaquePointer) -> String {
        let pending = Int(mp_BIO_ctrl_pending(bio))
        guard pending > 0 else { return "" }
        return String(unsafeUninitializedCapacity: pending) { buffer in
            Int(max(0, BIO_read(bio, buffer.baseAddress, Int32(pending))))
        }
    }

    /// basicConstraints CA:TRUE.
    var isCA: Bool { X509_get_extension_flags(pointer) & UInt32(EXFLAG_CA) != 0 }

    /// The key usage bits (`KU_...`), or nil when the certificate has no key usage extension.
    var keyUsage: UInt32? {
        X509_get_extension_flags(pointer) & UInt32(EXFLAG_KUSAGE) != 0 ? X509_get_key_usage(pointer) : nil
    }

    var notBefore: Date? { Self.date(from: X509_get0_notBefore(pointer)) }
    var notAfter: Date? { Self.date(from: X509_get0_notAfter(pointer)) }

    static func date(from time: UnsafePointer<ASN1_TIME>?) -> Date? {
        guard let time else { return nil }
        var parts = tm()
        guard ASN1_TIME_to_tm(time, &parts) == 1 else { return nil }
        return Date(timeIntervalSince1970: TimeInterval(timegm(&parts)))
    }

    /// The serial number in upper-case hex.
    var serialHex: String {
        guard let serial = X509_get0_serialNumber(pointer), let bn = ASN1_INTEGER_to_BN(serial, nil) else { return "" }
        defer { BN_free(bn) }
        guard let hex = BN_bn2hex(bn) else { return "" }
        defer { mp_OPENSSL_free(hex) }
        return String(cString: hex)
    }

    /// For example `EC P-256` or `RSA 2048`.
    var keyDescription: String {
        guard let key = X509_get0_pubkey(pointer) else { return "unknown" }
        let bits = EVP_PKEY_get_bits(key)
        switch EVP_PKEY_get_base_id(key) {
        case EVP_PKEY_EC:
            var name = [CChar](repeating: 0, count: 64)
            var length = 0
            if EVP_PKEY_get_group_name(key, &name, name.count, &length) == 1 {
                return "EC " + name.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            }
            return "EC \(bits) bits"
        case EVP_PKEY_RSA: return "RSA \(bits)"
        case EVP_PKEY_ED25519: return "Ed25519"
        default:
            let id = EVP_PKEY_get_base_id(key)
            let short = OBJ_nid2sn(id).map { String(cString: $0) } ?? "key type \(id)"
            return "\(short) \(bits) bits"
        }
    }

    /// The signature algorithm's long name, for example `ecdsa-with-SHA1`.
    var signatureAlgorithm: String {
        let nid = X509_get_signature_nid(pointer)
        return OBJ_nid2ln(nid).map { String(cString: $0) } ?? "signature algorithm \(nid)"
    }

    /// The single URI SAN when it parses as a SPIFFE ID.
    var spiffeID: SPIFFEID? {
        let uris = uriSANs
        guard uris.count == 1 else { return nil }
        return try? SPIFFEID(parsing: uris[0])
    }

    var pem: String {
        guard let bio = BIO_new(BIO_s_mem()) else { return "" }
        defer { BIO_free(bio) }
        PEM_write_bio_X509(bio, pointer)
        return Self.readAll(bio)
    }
}
