import Foundation
import MeshprobeGRPC
import MeshprobeIdentity
import MeshprobeTestSupport
import Testing

@Suite struct DescriptorSetTests {
    @Test func resolvesAMethodInEverySpelling() async throws {
        let fixture = try await ProtosetFixture.make()
        defer { fixture.remove() }
        #expect(fixture.set.services == ["meshprobe.test.v1.Probe", "meshprobe.test.v1.Admin"])
        for name in ["meshprobe.test.v1.Probe/Call", "/meshprobe.test.v1.Probe/Call", "meshprobe.test.v1.Probe.Call"] {
            let method = try fixture.set.method(name)
            #expect(method.path == "/meshprobe.test.v1.Probe/Call")
            #expect(method.request.name == "meshprobe.test.v1.ProbeRequest")
            #expect(method.reply.name == "meshprobe.test.v1.ProbeReply")
        }
        let ping = try fixture.set.method("meshprobe.test.v1.Probe/Ping")
        #expect(ping.request.name == "google.protobuf.Empty")
        #expect(try ping.encodeRequest(json: "{}") == [])
    }

    @Test func namesWhatIsMissing() async throws {
        let fixture = try await ProtosetFixture.make()
        defer { fixture.remove() }
        let file = fixture.path
        let refusals: [(String, String)] = [
            ("meshprobe.test.v1.Nope/Call", "no service meshprobe.test.v1.Nope in the set (services: meshprobe.test.v1.Probe, meshprobe.test.v1.Admin)"),
            ("Probe/Call", "no service Probe in the set; did you mean meshprobe.test.v1.Probe?"),
            ("meshprobe.test.v1.Probe/Cal", "service meshprobe.test.v1.Probe has no method Cal (methods: Call, Watch, Upload, Ping)"),
            ("meshprobe.test.v1.Probe/Watch", "meshprobe.test.v1.Probe/Watch is a server-streaming method: meshprobe calls unary methods only"),
            ("meshprobe.test.v1.Probe/Upload", "meshprobe.test.v1.Probe/Upload is a client-streaming method: meshprobe calls unary methods only"),
            ("Call", "'Call' is not a method name: give it as package.Service/Method"),
            ("meshprobe.test.v1.Probe/", "'meshprobe.test.v1.Probe/' is not a method name: give it as package.Service/Method"),
        ]
        for (name, reason) in refusals {
            #expect(throws: DescriptorSetError(file: file, reason: reason)) { try fixture.set.method(name) }
        }
        #expect(throws: DescriptorSetError(file: file, reason: "no message type pkg.Missing in the set")) { try fixture.set.messageType("pkg.Missing") }
    }

    @Test func refusesASetWithoutItsImports() async throws {
        let directory = try makeTemporaryDirectory("meshprobe-protoset")
        defer { removeTemporaryDirectory(directory) }
        let path = directory + "/probe.protoset"
        let output = try await run("/usr/bin/env", ["python3", "-m", "grpc_tools.protoc", "-I", grpcFixtures, "--descriptor_set_out=\(path)", "probe.proto"])
        #expect(output.status == 0, "\(output.output)")
        #expect(throws: DescriptorSetError(file: path, reason: "probe.proto imports google/protobuf/any.proto, which the set does not hold: build the set "
            + "with its imports (protoc --include_imports; buf build includes them unless --exclude-imports)")) {
            try DescriptorSet(file: path)
        }
    }

    @Test func refusesWhatIsNotADescriptorSet() throws {
        let directory = try makeTemporaryDirectory("meshprobe-protoset")
        defer { removeTemporaryDirectory(directory) }
        let proto = grpcFixtures + "/probe.proto"
        let suffix = "is not a descriptor set (a binary FileDescriptorSet, as protoc --descriptor_set_out=FILE --include_imports "
            + "or buf build -o FILE.binpb writes)"
        #expect(throws: DescriptorSetError(file: proto, reason: suffix + "; it looks like a .proto source, which the set is built from")) {
            try DescriptorSet(file: proto)
        }
        let json = directory + "/set.json"
        try Data(#"{"file":[{"name":"a.proto"}]}"#.utf8).write(to: URL(fileURLWithPath: json))
        #expect(throws: DescriptorSetError(file: json, reason: suffix + "; it looks like JSON (buf build -o FILE.binpb writes the binary form)")) {
            try DescriptorSet(file: json)
        }
        #expect(throws: DescriptorSetError(file: "x", reason: suffix)) { try DescriptorSet(bytes: [0xFF, 0xFF, 0xFF], file: "x") }
        #expect(throws: DescriptorSetError(file: "x", reason: suffix)) { try DescriptorSet(bytes: [], file: "x") }
        #expect(throws: DescriptorSetError(file: directory + "/none.protoset", reason: "does not exist")) {
            try DescriptorSet(file: directory + "/none.protoset")
        }
        #expect(throws: DescriptorSetError(file: directory, reason: "is a directory, not a regular file")) { try DescriptorSet(file: directory) }
    }
}
