import MeshprobeIdentity
import SwiftProtobuf

/// Gathers the files a service needs from the server's reflection service, in rounds: each round is one
/// `ServerReflectionInfo` stream carrying its requests, half-closed, whose replies are read when it ends.
///
/// The first round asks `list_services` and `file_containing_symbol` for the service under `grpc.reflection.v1`, and
/// again under `v1alpha` when v1 answers UNIMPLEMENTED; each later round asks `file_by_filename` for every file imported
/// and not held yet, until every import is held. A value: events in, actions out; the client opens the streams.
/// Every name is asked at most once, so the rounds end; a file asked for and not sent fails.
public struct GRPCReflectionStateMachine: Sendable {
    public enum Action: Sendable, Hashable {
        /// Open a stream under `version` carrying `requests`, in order, and half-close it.
        case send(GRPCReflection.Version, [GRPCReflection.Request])
        /// Done: a binary `FileDescriptorSet` holding the service's file and every file it imports, transitively.
        case finish([UInt8])
        case fail(GRPCReflectionError)
    }

    /// The most files a server may send (a hostile one cannot grow the set without bound).
    public static let maximumFiles = 2000

    public let service: String
    public private(set) var version: GRPCReflection.Version = .v1
    private var asked: [GRPCReflection.Request] = []
    /// Files by name, in the order they came.
    private var files: [String: Google_Protobuf_FileDescriptorProto] = [:]
    private var order: [String] = []
    /// The file each requested import was first seen in, for messages.
    private var importers: [String: String] = [:]
    private var requested: Set<String> = []
    private var finished = false

    public init(service: String) {
        self.service = service
    }

    public mutating func start() -> Action {
        asked = [.listServices, .fileContainingSymbol(service)]
        return .send(version, asked)
    }

    /// The current stream ended with `status` (and its `grpc-message`) and these reply messages, in the order they came.
    public mutating func streamEnded(status: GRPCStatusCode, message: String?, replies: [[UInt8]]) -> Action {
        guard !finished else { return .fail(.badReply("a stream after the last")) }
        if status == .unimplemented, files.isEmpty {
            guard version == .v1 else { return fail(.notServed) }
            version = .v1alpha
            return .send(version, asked)
        }
        guard status == .ok else { return fail(.status(version, code: status.rawValue, message: message)) }
        guard replies.count == asked.count else {
            return fail(.badReply("\(asked.count) requests (\(asked.map(\.description).joined(separator: ", "))) got \(replies.count) replies"))
        }
        var listed: [String]?
        for (request, bytes) in zip(asked, replies) {
            let response: GRPCReflection.Response
            do { response = try GRPCReflection.Response(decoding: bytes) } catch { return fail(error) }
            switch (request, response) {
            case (.listServices, .services(let names)):
                listed = names
            case (.listServices, _):
                // A server may refuse to list its services; the symbol's answer decides.
                break
            case (.fileContainingSymbol, .error(let code, _)) where code == GRPCStatusCode.notFound.rawValue:
                return fail(.unknownService(service, services: listed))
            case (.fileContainingSymbol, .error(let code, let message)):
                return fail(.status(version, code: code, message: "file_containing_symbol \(service): \(message)"))
            case (.fileByFilename(let name), .error(_, let message)):
                return fail(.missingFile(name, importedBy: importers[name], reason: message.isEmpty ? nil : message))
            case (_, .files(let encoded)):
                for bytes in encoded {
                    if let problem = add(bytes) { return fail(problem) }
                }
            case (_, .services), (_, .other):
                return fail(.badReply("the reply to \(request) is not a file_descriptor_response"))
            }
        }
        if case .fileContainingSymbol = asked.last, !files.values.contains(where: { declares($0, service) }) {
            return fail(.badReply("the reply to file_containing_symbol \(service) holds no file declaring it"))
        }
        var missing: [String] = []
        for name in order {
            for dependency in files[name]!.dependency where files[dependency] == nil {
                if requested.contains(dependency) {
                    return fail(.missingFile(dependency, importedBy: importers[dependency], reason: "asked for by file_by_filename, not sent"))
                }
                if importers[dependency] == nil { importers[dependency] = name }
                if !missing.contains(dependency) { missing.append(dependency) }
            }
        }
        guard missing.isEmpty else {
            requested.formUnion(missing)
            asked = missing.map { .fileByFilename($0) }
            return .send(version, asked)
        }
        finished = true
        var set = Google_Protobuf_FileDescriptorSet()
        set.file = order.map { files[$0]! }
        do { return .finish(try set.serializedBytes()) } catch { return fail(.badReply("the files do not make a set: \(error)")) }
    }

    /// The stream could not be opened or read (connection lost, reset, deadline): the run cannot be prepared.
    public mutating func streamFailed(_ error: GRPCReflectionError) -> Action {
        fail(error)
    }

    private mutating func fail(_ error: GRPCReflectionError) -> Action {
        finished = true
        return .fail(error)
    }

    /// Adds one serialized `FileDescriptorProto`; a file already held is kept as it came first.
    private mutating func add(_ bytes: [UInt8]) -> GRPCReflectionError? {
        let file: Google_Protobuf_FileDescriptorProto
        do { file = try Google_Protobuf_FileDescriptorProto(serializedBytes: bytes) } catch {
            return .badReply("a file_descriptor_proto that is not a FileDescriptorProto (\(bytes.count) bytes)")
        }
        guard !file.name.isEmpty else { return .badReply("a FileDescriptorProto without a name") }
        guard files[file.name] == nil else { return nil }
        guard files.count < Self.maximumFiles else { return .badReply("more than \(Self.maximumFiles) files") }
        files[file.name] = file
        order.append(file.name)
        return nil
    }

    /// The file declares the service `name` (`package.Service`).
    private func declares(_ file: Google_Protobuf_FileDescriptorProto, _ name: String) -> Bool {
        file.service.contains { (file.package.isEmpty ? $0.name : "\(file.package).\($0.name)") == name }
    }
}
