import MeshprobeIdentity

/// Why a gRPC request message cannot be made from what `--data` gave.
public struct GRPCRequestError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String

    public init(_ reason: String) {
        self.reason = reason
    }

    public var description: String { reason }
}

/// What `--data` gives a gRPC call: JSON text (inline, or a file holding it) or a binary message (a file).
public enum GRPCRequestData: Sendable, Equatable {
    case json(String)
    case binary([UInt8])

    /// File names that hold a binary message whatever their bytes look like.
    public static let binaryExtensions: Set<String> = ["bin", "binpb", "pb"]

    /// Reads `--data`'s value: `@PATH` is a file (at most `InputFile.Limit.data`), a binary message when its name ends in
    /// `.bin`, `.binpb` or `.pb`, JSON when it ends in `.json`, and otherwise JSON when it is UTF-8 text whose first
    /// non-blank character is `{`, else a binary message; anything else is inline JSON.
    public static func read(_ argument: String) throws(InputFile.ReadError) -> GRPCRequestData {
        guard argument.hasPrefix("@") else { return .json(argument) }
        let path = String(argument.dropFirst())
        let bytes = try InputFile.read(path, limit: .data)
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let ext = name.contains(".") ? (name.split(separator: ".").last.map { $0.lowercased() } ?? "") : ""
        if binaryExtensions.contains(ext) { return .binary(bytes) }
        if ext != "json" {
            guard let text = String(validating: bytes, as: UTF8.self), text.first(where: { !$0.isWhitespace }) == "{" else {
                return .binary(bytes)
            }
        }
        return .json(String(decoding: bytes, as: UTF8.self))
    }

    /// The request message's bytes: JSON encoded against `method`'s request type; a binary message as it is, once it
    /// is checked to read as that type. Without a method (no descriptor set) only a binary message can be sent.
    public func message(for method: ProtosetMethod?) throws(GRPCRequestError) -> [UInt8] {
        switch self {
        case .json(let text):
            guard let method else {
                throw GRPCRequestError("a JSON request needs a descriptor set (--protoset FILE) to be encoded; "
                    + "or send a binary message as it is (--data @FILE.bin)")
            }
            do { return try method.encodeRequest(json: text) } catch {
                throw GRPCRequestError("the request is not a \(method.request.name): \(error)")
            }
        case .binary(let bytes):
            guard let method else { return bytes }
            do { _ = try method.request.decode(bytes) } catch {
                throw GRPCRequestError("the binary request is not a \(method.request.name): \(error)")
            }
            return bytes
        }
    }
}
