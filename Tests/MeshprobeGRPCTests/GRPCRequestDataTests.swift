import Foundation
import MeshprobeGRPC
import MeshprobeIdentity
import MeshprobeTestSupport
import Testing

@Suite struct GRPCRequestDataTests {
    @Test func readsJSONInlineOrFromAFileAndBinaryFromAFile() throws {
        let directory = try makeTemporaryDirectory("meshprobe-grpc-data")
        defer { removeTemporaryDirectory(directory) }
        func write(_ name: String, _ bytes: [UInt8]) throws -> String {
            let path = directory + "/" + name
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            return "@" + path
        }
        #expect(try GRPCRequestData.read(#"{"a":1}"#) == .json(#"{"a":1}"#))
        #expect(try GRPCRequestData.read(write("req.json", Array(" []".utf8))) == .json(" []"))
        #expect(try GRPCRequestData.read(write("req.txt", Array("\n {\"a\":1}".utf8))) == .json("\n {\"a\":1}"))
        // `{` as the first byte of a .bin file is field 15 as a group: the extension decides.
        #expect(try GRPCRequestData.read(write("req.bin", Array("{}".utf8))) == .binary(Array("{}".utf8)))
        #expect(try GRPCRequestData.read(write("req.binpb", [0x08, 0x01])) == .binary([0x08, 0x01]))
        #expect(try GRPCRequestData.read(write("req", [0x0A, 0x00])) == .binary([0x0A, 0x00]))
        #expect(throws: InputFile.ReadError.self) { try GRPCRequestData.read("@" + directory + "/none.json") }
        do { _ = try GRPCRequestData.read("@" + directory + "/none.json") } catch {
            #expect(error.description == directory + "/none.json: does not exist")
        }
    }

    @Test func makesTheRequestMessage() async throws {
        let fixture = try await ProtosetFixture.make()
        defer { fixture.remove() }
        let method = try fixture.set.method("meshprobe.test.v1.Probe/Call")
        #expect(try GRPCRequestData.json(#"{"tree":{"name":"a"}}"#).message(for: method) == [0x22, 0x03, 0x0A, 0x01, 0x61])
        #expect(try GRPCRequestData.binary([0x22, 0x00]).message(for: method) == [0x22, 0x00])
        #expect(try GRPCRequestData.binary([0xFF]).message(for: nil) == [0xFF])
        #expect(throws: GRPCRequestError("the request is not a meshprobe.test.v1.ProbeRequest: .tree.name: expected a string, got 1")) {
            try GRPCRequestData.json(#"{"tree":{"name":1}}"#).message(for: method)
        }
        #expect(throws: GRPCRequestError("the binary request is not a meshprobe.test.v1.ProbeRequest: .tree: not a valid "
            + "meshprobe.test.v1.ProbeRequest: the message ends inside a field (at byte 2)")) {
            try GRPCRequestData.binary([0x22, 0x05]).message(for: method)
        }
        #expect(throws: GRPCRequestError("a JSON request needs a descriptor set (--protoset FILE) to be encoded; "
            + "or send a binary message as it is (--data @FILE.bin)")) {
            try GRPCRequestData.json("{}").message(for: nil)
        }
    }
}
