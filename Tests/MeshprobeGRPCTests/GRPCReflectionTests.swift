import MeshprobeGRPC
import MeshprobeIdentity
import Testing

/// The reflection rounds and replies without a server: replies written byte by byte as a server writes them.
@Suite struct GRPCReflectionTests {
    // MARK: protobuf by hand

    static func varint(_ value: Int) -> [UInt8] {
        var v = UInt64(value)
        var out: [UInt8] = []
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        return out + [UInt8(v)]
    }

    static func field(_ number: Int, _ bytes: [UInt8]) -> [UInt8] { varint(number << 3 | 2) + varint(bytes.count) + bytes }
    static func field(_ number: Int, _ text: String) -> [UInt8] { field(number, Array(text.utf8)) }

    /// A `FileDescriptorProto`: name (1), package (2), dependencies (3), services by name (6, each a name (1)).
    static func file(_ name: String, package: String = "shop.v1", imports: [String] = [], services: [String] = []) -> [UInt8] {
        field(1, name) + field(2, package) + imports.flatMap { field(3, $0) } + services.flatMap { field(6, field(1, $0)) }
    }

    static func filesReply(_ files: [[UInt8]]) -> [UInt8] { field(4, files.flatMap { field(1, $0) }) }
    static func servicesReply(_ names: [String]) -> [UInt8] { field(6, names.flatMap { field(1, field(1, $0)) }) }
    static func errorReply(code: Int, _ message: String) -> [UInt8] { field(7, varint(1 << 3) + varint(code) + field(2, message)) }

    static let shop = file("shop/v1/shop.proto", imports: ["shop/v1/types.proto", "google/protobuf/timestamp.proto"], services: ["Shop"])
    static let types = file("shop/v1/types.proto", imports: ["google/protobuf/duration.proto"])
    static let timestamp = file("google/protobuf/timestamp.proto", package: "google.protobuf")
    static let duration = file("google/protobuf/duration.proto", package: "google.protobuf")

    // MARK: requests

    @Test func writesTheRequestsAsTheProtoDeclaresThem() {
        #expect(GRPCReflection.Request.fileContainingSymbol("a.B").encoded == [0x22, 3] + Array("a.B".utf8))
        #expect(GRPCReflection.Request.fileByFilename("x.proto").encoded == [0x1A, 7] + Array("x.proto".utf8))
        #expect(GRPCReflection.Request.listServices.encoded == [0x3A, 1, UInt8(ascii: "*")])
        #expect(GRPCReflection.Version.v1.path == "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
        #expect(GRPCReflection.Version.v1alpha.path == "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    }

    // MARK: rounds

    @Test func asksForEveryImportNotSentUntilTheSetIsWhole() throws {
        var machine = GRPCReflectionStateMachine(service: "shop.v1.Shop")
        #expect(machine.start() == .send(.v1, [.listServices, .fileContainingSymbol("shop.v1.Shop")]))
        let second = machine.streamEnded(status: .ok, message: nil, replies: [Self.servicesReply(["shop.v1.Shop"]), Self.filesReply([Self.shop])])
        #expect(second == .send(.v1, [.fileByFilename("shop/v1/types.proto"), .fileByFilename("google/protobuf/timestamp.proto")]))
        let third = machine.streamEnded(status: .ok, message: nil, replies: [Self.filesReply([Self.types]), Self.filesReply([Self.timestamp])])
        #expect(third == .send(.v1, [.fileByFilename("google/protobuf/duration.proto")]))
        let done = machine.streamEnded(status: .ok, message: nil, replies: [Self.filesReply([Self.duration])])
        guard case .finish(let bytes) = done else { Issue.record("not finished: \(done)"); return }
        // The set reads as --protoset's would, and resolves the service.
        let set = try DescriptorSet(bytes: bytes, file: "reflection")
        #expect(set.services == ["shop.v1.Shop"])
    }

    @Test func needsNoMoreRoundsWhenTheServerSendsTheImportsWithTheFile() throws {
        var machine = GRPCReflectionStateMachine(service: "shop.v1.Shop")
        _ = machine.start()
        let done = machine.streamEnded(status: .ok, message: nil, replies: [
            Self.servicesReply(["shop.v1.Shop"]), Self.filesReply([Self.shop, Self.types, Self.timestamp, Self.duration]),
        ])
        guard case .finish = done else { Issue.record("not finished: \(done)"); return }
    }

    @Test func fallsBackToV1alphaOnceAndThenSaysReflectionIsNotServed() {
        var machine = GRPCReflectionStateMachine(service: "shop.v1.Shop")
        _ = machine.start()
        #expect(machine.streamEnded(status: .unimplemented, message: nil, replies: [])
            == .send(.v1alpha, [.listServices, .fileContainingSymbol("shop.v1.Shop")]))
        let action = machine.streamEnded(status: .unimplemented, message: nil, replies: [])
        #expect(action == .fail(.notServed))
        #expect("\(GRPCReflectionError.notServed)" == "the server does not serve gRPC reflection: give --protoset FILE (see docs/grpc.md)")
        #expect(GRPCReflectionError.notServed.message(protoset: "grpc.protoset").hasSuffix("give grpc.protoset (see docs/grpc.md)"))
    }

    @Test func anUnknownServiceListsTheServicesTheServerLists() {
        var machine = GRPCReflectionStateMachine(service: "shop.v1.Shopp")
        _ = machine.start()
        let action = machine.streamEnded(status: .ok, message: nil, replies: [
            Self.servicesReply(["grpc.health.v1.Health", "shop.v1.Shop"]), Self.errorReply(code: 5, "not found"),
        ])
        #expect(action == .fail(.unknownService("shop.v1.Shopp", services: ["grpc.health.v1.Health", "shop.v1.Shop"])))
        if case .fail(let error) = action {
            #expect("\(error)" == "the server's reflection service does not know shop.v1.Shopp (it lists: grpc.health.v1.Health, shop.v1.Shop)")
        }
    }

    @Test func anImportTheServerCannotSendNamesItsImporter() {
        var machine = GRPCReflectionStateMachine(service: "shop.v1.Shop")
        _ = machine.start()
        _ = machine.streamEnded(status: .ok, message: nil, replies: [Self.servicesReply([]), Self.filesReply([Self.shop])])
        let refused = machine.streamEnded(status: .ok, message: nil, replies: [Self.errorReply(code: 5, "gone"), Self.filesReply([Self.timestamp])])
        #expect(refused == .fail(.missingFile("shop/v1/types.proto", importedBy: "shop/v1/shop.proto", reason: "gone")))
        // Asked for and answered with another file: not asked again.
        var other = GRPCReflectionStateMachine(service: "shop.v1.Shop")
        _ = other.start()
        _ = other.streamEnded(status: .ok, message: nil, replies: [Self.servicesReply([]), Self.filesReply([Self.shop])])
        let action = other.streamEnded(status: .ok, message: nil, replies: [Self.filesReply([Self.timestamp]), Self.filesReply([Self.timestamp])])
        guard case .fail(.missingFile("shop/v1/types.proto", _, _)) = action else { Issue.record("\(action)"); return }
    }

    @Test func aStatusOtherThanOKOrUnimplementedEndsIt() {
        var machine = GRPCReflectionStateMachine(service: "shop.v1.Shop")
        _ = machine.start()
        let action = machine.streamEnded(status: .permissionDenied, message: "no", replies: [])
        #expect(action == .fail(.status(.v1, code: 7, message: "no")))
        if case .fail(let error) = action { #expect("\(error)" == "grpc.reflection.v1.ServerReflection answered PERMISSION_DENIED (no)") }
    }

    // MARK: untrusted replies

    @Test func malformedRepliesSayWhereTheyBrokeAndNeverTrap() {
        var counted = GRPCReflectionStateMachine(service: "shop.v1.Shop")
        _ = counted.start()
        guard case .fail(.badReply(let reason)) = counted.streamEnded(status: .ok, message: nil, replies: [Self.filesReply([Self.shop])]) else {
            Issue.record("a missing reply was accepted")
            return
        }
        #expect(reason.contains("got 1 replies"))
        #expect(throws: GRPCReflectionError.badReply("not a ServerReflectionResponse: the message ends inside a field (at byte 2)")) {
            try GRPCReflection.Response(decoding: [0x22, 0x05, 0x0A])
        }
        // A reply that holds no file declaring the service.
        var wrong = GRPCReflectionStateMachine(service: "shop.v1.Shop")
        _ = wrong.start()
        guard case .fail(.badReply) = wrong.streamEnded(status: .ok, message: nil, replies: [Self.servicesReply([]), Self.filesReply([Self.types])]) else {
            Issue.record("a file without the service was accepted")
            return
        }
        // Every prefix and every single-byte change of a good reply either reads or fails with a reason.
        let good = Self.filesReply([Self.shop, Self.types])
        var variants = (0..<good.count).map { Array(good.prefix($0)) }
        for i in good.indices { for b: UInt8 in [0x00, 0x7F, 0x80, 0xFF] { var v = good; v[i] = b; variants.append(v) } }
        for bytes in variants {
            var machine = GRPCReflectionStateMachine(service: "shop.v1.Shop")
            _ = machine.start()
            switch machine.streamEnded(status: .ok, message: nil, replies: [Self.servicesReply([]), bytes]) {
            case .fail(let error): #expect(!"\(error)".isEmpty)
            case .send, .finish: break
            }
        }
    }
}
