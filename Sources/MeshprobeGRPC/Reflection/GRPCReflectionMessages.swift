import MeshprobeIdentity

/// The server reflection service (grpc/grpc doc/server-reflection.md, `grpc/reflection/v1/reflection.proto`): the two
/// names it is served under and its messages, encoded and read by hand (the two versions' messages are the same on the
/// wire). Only what meshprobe asks is written; every reply is read as untrusted bytes.
public enum GRPCReflection {
    /// The service's package: `v1`, or `v1alpha`, which servers older than gRPC 1.57 serve (some still serve only it).
    public enum Version: String, Sendable, Hashable, CaseIterable {
        case v1
        case v1alpha

        /// The `:path` of the bidirectional-streaming method `ServerReflectionInfo`.
        public var path: String { "/grpc.reflection.\(rawValue).ServerReflection/ServerReflectionInfo" }
    }

    /// A `ServerReflectionRequest` of the kinds meshprobe sends.
    public enum Request: Sendable, Hashable, CustomStringConvertible {
        /// `list_services` (field 7): every service the server lists.
        case listServices
        /// `file_containing_symbol` (field 4): the file that declares a symbol (`package.Service`).
        case fileContainingSymbol(String)
        /// `file_by_filename` (field 3): a file by the name its importers give it (`google/protobuf/timestamp.proto`).
        case fileByFilename(String)

        /// The message's binary encoding (`host`, field 1, left out as grpcurl leaves it).
        public var encoded: [UInt8] {
            var writer = ProtoWireWriter()
            switch self {
            case .listServices: writer.field(7, .bytes(Array("*".utf8)))
            case .fileContainingSymbol(let symbol): writer.field(4, .bytes(Array(symbol.utf8)))
            case .fileByFilename(let name): writer.field(3, .bytes(Array(name.utf8)))
            }
            return writer.bytes
        }

        public var description: String {
            switch self {
            case .listServices: "list_services"
            case .fileContainingSymbol(let symbol): "file_containing_symbol \(symbol)"
            case .fileByFilename(let name): "file_by_filename \(name)"
            }
        }
    }

    /// A `ServerReflectionResponse`, by the kind of answer it holds.
    public enum Response: Sendable, Hashable {
        /// `file_descriptor_response` (field 4): serialized `FileDescriptorProto`s, as the server sent them.
        case files([[UInt8]])
        /// `list_services_response` (field 6): the services' full names.
        case services([String])
        /// `error_response` (field 7): a gRPC status code and message for the one request it answers.
        case error(code: Int, message: String)
        /// An answer of another kind (`all_extension_numbers_response`), or none: not one meshprobe asked for.
        case other

        /// Reads a reply's bytes; a malformed one throws a reason that names the field where it broke.
        public init(decoding bytes: [UInt8]) throws(GRPCReflectionError) {
            var reader = ProtoWireReader(bytes: bytes, range: 0..<bytes.count)
            var answer: Response = .other
            do {
                while !reader.atEnd {
                    let (number, wireType) = try reader.tag()
                    switch (number, wireType) {
                    case (4, .lengthDelimited):
                        let range = try reader.lengthDelimited()
                        answer = .files(try Self.repeatedBytes(bytes, range, field: 1, what: "file_descriptor_response"))
                    case (6, .lengthDelimited):
                        let range = try reader.lengthDelimited()
                        var names: [String] = []
                        for service in try Self.repeatedBytes(bytes, range, field: 1, what: "list_services_response") {
                            let name = try Self.repeatedBytes(service, 0..<service.count, field: 1, what: "list_services_response.service").last ?? []
                            guard let text = String(validating: name, as: UTF8.self) else {
                                throw GRPCReflectionError.badReply("list_services_response: a service name that is not UTF-8")
                            }
                            names.append(text)
                        }
                        answer = .services(names)
                    case (7, .lengthDelimited):
                        let range = try reader.lengthDelimited()
                        answer = try Self.error(bytes, range)
                    default:
                        try reader.skip(wireType, number: number, depth: 0)
                    }
                }
            } catch let fault as ProtoWireFault {
                throw .badReply("not a ServerReflectionResponse: \(fault.reason) (at byte \(reader.index))")
            } catch let error as GRPCReflectionError {
                throw error
            } catch {
                throw .badReply("not a ServerReflectionResponse: \(error)")
            }
            self = answer
        }

        /// The values of the length-delimited field `field` in the message at `range` (other fields skipped).
        static func repeatedBytes(_ bytes: [UInt8], _ range: Range<Int>, field: Int32, what: String) throws(GRPCReflectionError) -> [[UInt8]] {
            var reader = ProtoWireReader(bytes: bytes, range: range)
            var values: [[UInt8]] = []
            do {
                while !reader.atEnd {
                    let (number, wireType) = try reader.tag()
                    if number == field, wireType == .lengthDelimited {
                        let value = try reader.lengthDelimited()
                        values.append(Array(bytes[value]))
                    } else {
                        try reader.skip(wireType, number: number, depth: 0)
                    }
                }
            } catch {
                throw .badReply("\(what): \(error.reason) (at byte \(reader.index - range.lowerBound))")
            }
            return values
        }

        /// An `ErrorResponse`: `error_code` (field 1, int32) and `error_message` (field 2).
        static func error(_ bytes: [UInt8], _ range: Range<Int>) throws(GRPCReflectionError) -> Response {
            var reader = ProtoWireReader(bytes: bytes, range: range)
            var code = 0
            var message = ""
            do {
                while !reader.atEnd {
                    let (number, wireType) = try reader.tag()
                    switch (number, wireType) {
                    case (1, .varint): code = Int(Int32(truncatingIfNeeded: try reader.varint()))
                    case (2, .lengthDelimited):
                        let value = try reader.lengthDelimited()
                        message = String(decoding: bytes[value], as: UTF8.self)
                    default: try reader.skip(wireType, number: number, depth: 0)
                    }
                }
            } catch {
                throw .badReply("error_response: \(error.reason) (at byte \(reader.index - range.lowerBound))")
            }
            return .error(code: code, message: message)
        }
    }
}

/// Why the server's reflection service gave no descriptors for the method; each says what to do.
public enum GRPCReflectionError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Neither version of the service is served (UNIMPLEMENTED on both).
    case notServed
    /// The server does not know the service; `services` are those it lists (nil: it listed none).
    case unknownService(String, services: [String]?)
    /// A file the method's files import that the server does not send.
    case missingFile(String, importedBy: String?, reason: String?)
    /// The reflection call ended with a status other than OK (and other than UNIMPLEMENTED).
    case status(GRPCReflection.Version, code: Int, message: String?)
    /// A reply that does not read as what was asked; the reason names where it broke.
    case badReply(String)
    /// The connection could not be made or was lost (the reason as the load names it).
    case connection(String)
    /// No answer within the deadline.
    case timedOut(String)

    public var description: String { message(protoset: "--protoset FILE") }

    /// The message, naming how the user gives a descriptor set instead (`--protoset FILE`, a file's `grpc.protoset`).
    public func message(protoset: String) -> String {
        let hint = "give \(protoset) (see docs/grpc.md)"
        switch self {
        case .notServed:
            return "the server does not serve gRPC reflection: \(hint)"
        case .unknownService(let service, let services):
            let listed = services.map { $0.isEmpty ? " (it lists no services)" : " (it lists: \(Self.listed($0)))" } ?? ""
            return "the server's reflection service does not know \(PrintableText.replacingControls(service))\(listed)"
        case .missingFile(let file, let importer, let reason):
            let by = importer.map { ", which \(PrintableText.replacingControls($0)) imports" } ?? ""
            let why = reason.map { ": \(PrintableText.replacingControls($0))" } ?? ""
            return "the server's reflection service does not send \(PrintableText.replacingControls(file))\(by)\(why); \(hint)"
        case .status(let version, let code, let message):
            let name = GRPCStatusCode(rawValue: code)?.name ?? "status \(code)"
            let detail = message.map { $0.isEmpty ? "" : " (\(PrintableText.replacingControls($0)))" } ?? ""
            return "grpc.reflection.\(version.rawValue).ServerReflection answered \(name)\(detail)"
        case .badReply(let reason):
            return "the server's reflection reply is malformed: \(PrintableText.replacingControls(reason))"
        case .connection(let reason):
            return reason
        case .timedOut(let reason):
            return reason
        }
    }

    /// Up to ten names, then how many more.
    static func listed(_ names: [String]) -> String {
        let shown = names.prefix(10).map { PrintableText.replacingControls($0) }.joined(separator: ", ")
        return names.count > 10 ? "\(shown) and \(names.count - 10) more" : shown
    }
}
