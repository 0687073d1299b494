import MeshprobeIdentity

/// The text rules of gRPC's reserved headers (PROTOCOL-HTTP2.md).
public enum GRPCMetadata {
    public static let contentType = "application/grpc"
    public static let contentTypeProto = "application/grpc+proto"

    /// Percent-encodes a `grpc-message`: every byte outside printable ASCII (0x20...0x7E) and `%` itself as `%XX`.
    public static func percentEncode(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if byte >= 0x20, byte <= 0x7E, byte != UInt8(ascii: "%") {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "%" + hexDigit(byte >> 4) + hexDigit(byte & 0xF)
            }
        }
        return out
    }

    /// Decodes a `grpc-message`: `%XX` to its byte, the bytes read as UTF-8 (invalid sequences replaced). A `%` not
    /// followed by two hex digits stays as it is, as gRPC's decoders leave it.
    public static func percentDecode(_ text: String) -> String {
        let bytes = Array(text.utf8)
        guard bytes.contains(UInt8(ascii: "%")) else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%"), i + 2 < bytes.count, let high = hexValue(bytes[i + 1]), let low = hexValue(bytes[i + 2]) {
                out.append(high << 4 | low)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `grpc-timeout` for a deadline (PROTOCOL-HTTP2.md: at most 8 digits and a unit): the finest unit whose value fits,
    /// rounded up so the server's deadline is never shorter than ours. Nil for a deadline of zero or less.
    public static func timeout(seconds: Double) -> String? {
        guard seconds > 0, seconds.isFinite else { return nil }
        let units: [(String, Double)] = [("n", 1e9), ("u", 1e6), ("m", 1e3), ("S", 1), ("M", 1.0 / 60), ("H", 1.0 / 3600)]
        for (unit, perSecond) in units {
            let value = (seconds * perSecond).rounded(.up)
            if value <= 99_999_999 { return "\(Int(value))\(unit)" }
        }
        return "99999999H"
    }

    /// Reads a `grpc-timeout` value as seconds; nil when it breaks the rule (1 to 8 digits, then one of H M S m u n).
    public static func parseTimeout(_ text: String) -> Double? {
        guard let unit = text.last, text.count >= 2, text.count <= 9 else { return nil }
        let digits = text.dropLast()
        guard digits.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Double(digits) else { return nil }
        switch unit {
        case "H": return value * 3600
        case "M": return value * 60
        case "S": return value
        case "m": return value / 1e3
        case "u": return value / 1e6
        case "n": return value / 1e9
        default: return nil
        }
    }

    /// What a gRPC response says: its status and message from `grpc-status` / `grpc-message` (the trailers, or the
    /// headers of a trailers-only response), as a `ResponseCode`. A response without `grpc-status` keeps an HTTP
    /// error status (400 and above: a proxy's answer); any other status without one is INTERNAL (not a gRPC answer).
    /// An unparseable `grpc-status` is UNKNOWN, as gRPC clients read it.
    public static func responseCode<Headers: Sequence>(httpStatus: Int, headers: Headers) -> (code: Int, message: String?)
    where Headers.Element == (name: String, value: String) {
        var status: String?
        var message: String?
        for header in headers {
            if header.name == "grpc-status" { status = header.value } else if header.name == "grpc-message" { message = header.value }
        }
        return responseCode(httpStatus: httpStatus, grpcStatus: status, grpcMessage: message)
    }

    /// `responseCode(httpStatus:headers:)` on the values of `grpc-status` and `grpc-message` found already (a load
    /// generator's hot path, which reads its headers in one pass of its own).
    public static func responseCode(httpStatus: Int, grpcStatus status: String?, grpcMessage message: String?) -> (code: Int, message: String?) {
        guard let status else {
            return (httpStatus >= 400 ? httpStatus : ResponseCode.grpc(.internal), nil)
        }
        let code = Int(status).flatMap(GRPCStatusCode.init(rawValue:)) ?? .unknown
        return (ResponseCode.grpc(code), message.map(percentDecode))
    }

    private static func hexDigit(_ v: UInt8) -> String { String(v, radix: 16, uppercase: true) }

    /// The value of an ASCII hex digit (either case).
    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
