import MeshprobeIdentity
import SwiftProtobuf

/// Why a descriptor set cannot be read, or does not hold what was asked of it; the message names the file.
public struct DescriptorSetError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The descriptor set's path as given.
    public var file: String
    public var reason: String

    public init(file: String, reason: String) {
        self.file = file
        self.reason = reason
    }

    public var description: String { "\(file): \(reason)" }
}

/// A binary `FileDescriptorSet` (`protoc --descriptor_set_out=FILE --include_imports`, `buf build -o FILE.binpb`), its
/// messages, enums and services indexed by full name: what `--protoset FILE` reads to encode requests from JSON and
/// print replies without generated code.
public struct DescriptorSet: Sendable {
    /// The path the set was read from (or the name it was given), for messages.
    public let file: String
    /// Every service's full name (`package.Service`), in the set's order.
    public let services: [String]
    let schema: ProtoSchema
    private let serviceMethods: [String: [Google_Protobuf_MethodDescriptorProto]]

    /// Reads the set at `path` (at most `InputFile.Limit.data`).
    public init(file path: String) throws(DescriptorSetError) {
        let bytes: [UInt8]
        do { bytes = try InputFile.read(path, limit: .data) } catch { throw DescriptorSetError(file: path, reason: error.reason) }
        try self.init(bytes: bytes, file: path)
    }

    /// Reads a set from its bytes; `file` names it in messages.
    public init(bytes: [UInt8], file: String) throws(DescriptorSetError) {
        self.file = file
        func fail(_ reason: String) -> DescriptorSetError { DescriptorSetError(file: file, reason: reason) }
        let set: Google_Protobuf_FileDescriptorSet
        do { set = try Google_Protobuf_FileDescriptorSet(serializedBytes: bytes) } catch { throw fail(Self.notASet(bytes)) }
        guard !set.file.isEmpty, set.file.allSatisfy({ !$0.name.isEmpty }) else { throw fail(Self.notASet(bytes)) }
        let names = Set(set.file.map(\.name))
        for proto in set.file {
            if let missing = proto.dependency.first(where: { !names.contains($0) }) {
                throw fail("\(proto.name) imports \(missing), which the set does not hold: build the set with its imports "
                    + "(protoc --include_imports; buf build includes them unless --exclude-imports)")
            }
        }
        schema = ProtoSchema(files: set.file)
        var services: [String] = []
        var methods: [String: [Google_Protobuf_MethodDescriptorProto]] = [:]
        for proto in set.file {
            for service in proto.service {
                let name = proto.package.isEmpty ? service.name : "\(proto.package).\(service.name)"
                services.append(name)
                methods[name] = service.method
            }
        }
        self.services = services
        serviceMethods = methods
    }

    /// The unary method named `package.Service/Method` (or `package.Service.Method`, or with a leading `/`), its request
    /// and reply types checked to be in the set. A streaming method is refused: meshprobe calls unary methods only.
    public func method(_ name: String) throws(DescriptorSetError) -> ProtosetMethod {
        func fail(_ reason: String) -> DescriptorSetError { DescriptorSetError(file: file, reason: reason) }
        var text = Substring(name)
        if text.hasPrefix("/") { text = text.dropFirst() }
        let separator = text.lastIndex(of: "/") ?? text.lastIndex(of: ".")
        guard let separator, separator != text.startIndex, text.index(after: separator) != text.endIndex else {
            throw fail("'\(name)' is not a method name: give it as package.Service/Method")
        }
        let serviceName = String(text[..<separator])
        let methodName = String(text[text.index(after: separator)...])
        guard let methods = serviceMethods[serviceName] else {
            var reason = "no service \(serviceName) in the set"
            let short = serviceName.split(separator: ".").last.map(String.init) ?? serviceName
            if let similar = services.first(where: { $0.split(separator: ".").last.map(String.init) == short }) {
                reason += "; did you mean \(similar)?"
            } else if services.isEmpty {
                reason += " (it has no services)"
            } else {
                reason += " (services: \(Self.listed(services)))"
            }
            throw fail(reason)
        }
        guard let method = methods.first(where: { $0.name == methodName }) else {
            let list = methods.isEmpty ? "it has none" : "methods: \(Self.listed(methods.map(\.name)))"
            throw fail("service \(serviceName) has no method \(methodName) (\(list))")
        }
        let full = "\(serviceName)/\(methodName)"
        if method.clientStreaming || method.serverStreaming {
            let kind = method.clientStreaming && method.serverStreaming ? "bidirectional-streaming"
                : method.clientStreaming ? "client-streaming" : "server-streaming"
            throw fail("\(full) is a \(kind) method: meshprobe calls unary methods only")
        }
        let input = ProtoSchema.name(method.inputType)
        let output = ProtoSchema.name(method.outputType)
        for (role, type) in [("request", input), ("reply", output)] {
            if let missing = schema.missingType(reachableFrom: type) {
                let what = missing == type ? "its \(role) type \(type)" : "\(missing), which its \(role) type \(type) uses,"
                throw fail("\(full): \(what) is not in the set")
            }
        }
        return ProtosetMethod(service: serviceName, name: methodName, requestType: input, replyType: output, schema: schema)
    }

    /// A message type of the set by full name (`package.Message`), for encoding and decoding outside a method.
    public func messageType(_ name: String) throws(DescriptorSetError) -> ProtosetMessageType {
        let type = ProtoSchema.name(name)
        if let missing = schema.missingType(reachableFrom: type) {
            throw DescriptorSetError(file: file, reason: missing == type ? "no message type \(type) in the set" : "\(missing), which \(type) uses, is not in the set")
        }
        return ProtosetMessageType(name: type, schema: schema)
    }

    /// Up to five names, then how many more.
    static func listed(_ names: [String]) -> String {
        let shown = names.prefix(5).joined(separator: ", ")
        return names.count > 5 ? "\(shown) and \(names.count - 5) more" : shown
    }

    /// Why bytes that are not a set are not one, with what they look like when that helps.
    static func notASet(_ bytes: [UInt8]) -> String {
        let base = "is not a descriptor set (a binary FileDescriptorSet, as protoc --descriptor_set_out=FILE --include_imports "
            + "or buf build -o FILE.binpb writes)"
        let head = String(decoding: bytes.prefix(4096), as: UTF8.self)
        let trimmed = head.drop(while: { $0.isWhitespace })
        if trimmed.hasPrefix("{") { return base + "; it looks like JSON (buf build -o FILE.binpb writes the binary form)" }
        if head.contains("syntax =") || head.contains("syntax=") || head.contains("edition =") || trimmed.hasPrefix("message ") {
            return base + "; it looks like a .proto source, which the set is built from"
        }
        return base
    }
}

/// A message type of a descriptor set: encodes it from JSON and prints it as JSON.
public struct ProtosetMessageType: Sendable {
    /// Its full name, `package.Message`.
    public let name: String
    let schema: ProtoSchema

    /// The binary encoding of `json` (proto3 JSON mapping); errors name the JSON path.
    public func encode(json: String) throws(ProtoMessageError) -> [UInt8] {
        try ProtoJSONEncoder(schema: schema).encode(json: json, type: name)
    }

    /// The proto3 JSON of the binary message `bytes` (unknown fields skipped); never traps on hostile bytes.
    public func decode(_ bytes: [UInt8], pretty: Bool = false) throws(ProtoMessageError) -> String {
        ProtoJSONWriter.text(try ProtoBinaryDecoder(schema: schema).decode(bytes, type: name), pretty: pretty)
    }
}

/// A unary method of a descriptor set: its path, and its request and reply types.
public struct ProtosetMethod: Sendable {
    /// The service's full name, `package.Service`.
    public let service: String
    /// The method's name, `Method`.
    public let name: String
    public let request: ProtosetMessageType
    public let reply: ProtosetMessageType

    init(service: String, name: String, requestType: String, replyType: String, schema: ProtoSchema) {
        self.service = service
        self.name = name
        request = ProtosetMessageType(name: requestType, schema: schema)
        reply = ProtosetMessageType(name: replyType, schema: schema)
    }

    /// The HTTP/2 `:path`, `/package.Service/Method`.
    public var path: String { "/\(service)/\(name)" }

    /// The request message from JSON text (proto3 JSON mapping).
    public func encodeRequest(json: String) throws(ProtoMessageError) -> [UInt8] {
        try request.encode(json: json)
    }

    /// A reply message as JSON text.
    public func decodeReply(_ bytes: [UInt8], pretty: Bool = false) throws(ProtoMessageError) -> String {
        try reply.decode(bytes, pretty: pretty)
    }
}
