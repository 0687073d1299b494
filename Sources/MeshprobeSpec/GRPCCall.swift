import MeshprobeIdentity

/// A run's gRPC calls: every request is one unary call of `method` carrying the same request message.
public struct GRPCCall: Sendable, Equatable {
    /// `package.Service/Method`, without the leading `/`.
    public var method: String
    /// The request message in protobuf's binary encoding, before gRPC's framing.
    public var message: [UInt8]
    /// The message goes gzip-compressed (`grpc-encoding: gzip`).
    public var gzip: Bool
    /// Where the message came from, for the plan and the reports: `--data @req.bin`, `--data (JSON, --protoset
    /// api.protoset)`, `health check of 'reviews'`.
    public var messageSource: String
    /// The descriptor set the message was encoded with, when one was given: other methods a run calls (a route's) are
    /// checked against it.
    public var descriptorSet: String?
    /// Where the method's descriptors came from: `protoset` (`--protoset`), `reflection` (the server's reflection
    /// service); nil when none were read (a binary message, the health check).
    public var descriptors: String?
    /// JSON to encode once the server's reflection service has described the method (JSON given without a descriptor
    /// set); `message` is empty until then, and a run does not start while this is set.
    public var awaitingReflection: String?

    public init(method: String, message: [UInt8] = [], gzip: Bool = false, messageSource: String = "an empty message") {
        self.method = method
        self.message = message
        self.gzip = gzip
        self.messageSource = messageSource
    }

    /// The `:path` of a call.
    public var path: String { "/" + method }

    /// The standard health service's Check method (grpc/grpc doc/health-checking.md).
    public static let healthCheckMethod = "grpc.health.v1.Health/Check"

    public static let methodRule = "must name a gRPC method as package.Service/Method (letters, digits, _ and .; one '/')"

    /// Reads `package.Service/Method` (or `/package.Service/Method`, as a URL path writes it).
    public static func parseMethod(_ text: String) throws(InputValueError) -> String {
        let method = text.hasPrefix("/") ? String(text.dropFirst()) : text
        let parts = method.split(separator: "/", omittingEmptySubsequences: false)
        let allowed = { (c: Character) in c.isASCII && (c.isLetter || c.isNumber || c == "_" || c == ".") }
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(allowed) }),
              !parts[0].hasPrefix("."), !parts[0].hasSuffix("."), !parts[1].contains(".") else {
            throw InputValueError("'\(text)': \(methodRule)")
        }
        return method
    }
}

extension GRPCCall {
    /// Headers a gRPC call sets itself (metadata may not set them; nor any `grpc-` header).
    static let reservedHeaders: Set<String> = ["content-type", "te"]
}
