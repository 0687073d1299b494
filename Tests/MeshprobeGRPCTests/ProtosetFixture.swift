import Foundation
import MeshprobeGRPC
import MeshprobeTestSupport

/// Tests/Fixtures/grpc: the test protos and the Python peer.
let grpcFixtures = packageRoot.appendingPathComponent("Tests/Fixtures/grpc").path

/// A descriptor set of the test protos built by grpcio-tools' protoc in a temporary directory (the caller removes it).
struct ProtosetFixture {
    let directory: String
    let path: String
    let set: DescriptorSet

    /// `protoc --descriptor_set_out --include_imports` of probe.proto (with legacy.proto and the well-known types) and
    /// editions.proto.
    static func make() async throws -> ProtosetFixture {
        let directory = try makeTemporaryDirectory("meshprobe-protoset")
        let path = directory + "/probe.protoset"
        let output = try await run("/usr/bin/env", ["python3", "-m", "grpc_tools.protoc", "-I", grpcFixtures, "--descriptor_set_out=\(path)",
                                              "--include_imports", "probe.proto", "editions.proto"], timeout: 120)
        guard output.status == 0 else { throw FixtureError("protoc failed: \(output.output)") }
        return ProtosetFixture(directory: directory, path: path, set: try DescriptorSet(file: path))
    }

    func remove() { removeTemporaryDirectory(directory) }

    /// Python's protobuf on each case (Tests/Fixtures/grpc/protobuf_peer.py): one answer a case, in order.
    func python(_ cases: [PeerCase]) async throws -> [PeerAnswer] {
        let casesPath = directory + "/cases-\(UUID().uuidString).json"
        try JSONEncoder().encode(cases).write(to: URL(fileURLWithPath: casesPath))
        let output = try await run("/usr/bin/env", ["python3", grpcFixtures + "/protobuf_peer.py", path, casesPath], timeout: 120)
        guard output.status == 0 else { throw FixtureError("protobuf_peer.py failed: \(output.output)") }
        let answers = try output.stdout.split(separator: "\n").map { try JSONDecoder().decode(PeerAnswer.self, from: Data($0.utf8)) }
        guard answers.count == cases.count else { throw FixtureError("protobuf_peer.py answered \(answers.count) of \(cases.count) cases") }
        return answers
    }
}

struct PeerCase: Encodable {
    var type: String
    var json: String
    var meshprobe_hex: String?
    var meshprobe_json: String?
}

struct PeerAnswer: Decodable {
    var python_hex: String?
    var same_message: Bool?
    var same_from_json: Bool?
    var error: String?
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

func bytes(hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var i = hex.startIndex
    while i < hex.endIndex, let j = hex.index(i, offsetBy: 2, limitedBy: hex.endIndex), let byte = UInt8(hex[i..<j], radix: 16) {
        out.append(byte)
        i = j
    }
    return out
}
