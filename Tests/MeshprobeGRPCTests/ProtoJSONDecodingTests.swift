import MeshprobeGRPC
import MeshprobeTestSupport
import Testing

/// Replies printed as JSON: Python's bytes to meshprobe's JSON, which Python must read back to the same message; and
/// hostile bytes, which must give an error and never a trap.
@Suite struct ProtoJSONDecodingTests {
    @Test func pythonReadsBackWhatMeshprobePrints() async throws {
        let fixture = try await ProtosetFixture.make()
        defer { fixture.remove() }
        let cases = ProtoJSONEncodingTests.cases.map { PeerCase(type: $0.type, json: $0.json) }
        let made = try await fixture.python(cases)
        var printed: [PeerCase] = []
        for (peerCase, answer) in zip(cases, made) {
            let bytes = bytes(hex: try #require(answer.python_hex))
            var withJSON = peerCase
            withJSON.meshprobe_json = try fixture.set.messageType(peerCase.type).decode(bytes, pretty: printed.count % 2 == 0)
            printed.append(withJSON)
        }
        let answers = try await fixture.python(printed)
        for (peerCase, answer) in zip(printed, answers) {
            #expect(answer.same_from_json == true, "\(peerCase.json) printed as \(peerCase.meshprobe_json ?? "") (\(answer.error ?? ""))")
        }
    }

    @Test func printsTheMappingsForms() async throws {
        let fixture = try await ProtosetFixture.make()
        defer { fixture.remove() }
        let method = try fixture.set.method("meshprobe.test.v1.Probe/Call")
        let reply = try method.encodeRequest(json: #"{"user":{"id":"-7","displayName":"x","counters":{"a":0},"phone":"","scores":[1,2]}}"#)
        // The reply type's field 1 is the same User as the request's.
        let printedReply = try method.decodeReply(reply)
        #expect(printedReply == #"{"user":{"id":"-7","displayName":"x","counters":{"a":"0"},"phone":"","scores":[1,2]}}"#)
        let scalars = try fixture.set.messageType("meshprobe.test.v1.Scalars")
        let printedScalars = try scalars.decode(scalars.encode(json: #"{"flt":"NaN","dbl":"-Infinity","blob":"_-8","colour":7,"maybe":0,"u64":"18446744073709551615"}"#))
        #expect(printedScalars == #"{"u64":"18446744073709551615","flt":"NaN","dbl":"-Infinity","blob":"/+8=","colour":7,"maybe":0}"#)
        let known = try fixture.set.messageType("meshprobe.test.v1.WellKnown")
        let printedKnown = try known.decode(known.encode(json: #"{"at":"2026-12-07T11:00:00+01:00","small":0,"anything":null,"list":[1,"a"],"extra":{"@type":"type.googleapis.com/google.protobuf.Duration","value":"1.5s"}}"#))
        #expect(printedKnown == #"{"at":"2026-12-07T10:00:00Z","small":0,"anything":null,"list":[1.0,"a"],"extra":{"@type":"type.googleapis.com/google.protobuf.Duration","value":"1.500s"}}"#)
        #expect(try scalars.decode([], pretty: true) == "{}")
        #expect(try scalars.decode([0x08, 0x01], pretty: true) == "{\n  \"i32\": 1\n}")
    }

    @Test func skipsUnknownFieldsAndReadsRepeatsAsProtobufDoes() async throws {
        let fixture = try await ProtosetFixture.make()
        defer { fixture.remove() }
        let tree = try fixture.set.messageType("meshprobe.test.v1.Tree")
        // Field 99 varint, field 100 bytes, field 101 a group holding a varint: unknown, skipped.
        let unknown: [UInt8] = [0x98, 0x06, 0x05, 0xA2, 0x06, 0x01, 0x7A, 0xAB, 0x06, 0x08, 0x01, 0xAC, 0x06]
        #expect(try tree.decode([0x0A, 0x01, 0x61] + unknown) == #"{"name":"a"}"#)
        // A field with the wrong wire type is an unknown field.
        #expect(try tree.decode([0x08, 0x01, 0x0A, 0x01, 0x62]) == #"{"name":"b"}"#)
        // The last scalar wins; a repeated message field appends.
        #expect(try tree.decode([0x0A, 0x01, 0x61, 0x0A, 0x01, 0x62, 0x12, 0x00, 0x12, 0x00]) == #"{"name":"b","children":[{},{}]}"#)
        let request = try fixture.set.messageType("meshprobe.test.v1.ProbeRequest")
        // A singular message given twice is merged; the oneof keeps its last member.
        let twice = try request.encode(json: #"{"user":{"id":"1","email":"e"}}"#) + request.encode(json: #"{"user":{"displayName":"d","phone":"p"}}"#)
        #expect(try request.decode(twice) == #"{"user":{"id":"1","displayName":"d","phone":"p"}}"#)
        // Packed and unpacked runs of the same field both read.
        let user = try fixture.set.messageType("meshprobe.test.v1.User")
        #expect(try user.decode([0x70, 0x01, 0x72, 0x02, 0x02, 0x03, 0x78, 0x04]) == #"{"scores":[1,2,3],"looseScores":[4]}"#)
    }

    @Test func hostileBytesGiveErrorsNeverATrap() async throws {
        let fixture = try await ProtosetFixture.make()
        defer { fixture.remove() }
        let request = try fixture.set.messageType("meshprobe.test.v1.ProbeRequest")
        let whole = try request.encode(json: ProtoJSONEncodingTests.cases[6].json) + request.encode(json: ProtoJSONEncodingTests.cases[14].json)
            + request.encode(json: ProtoJSONEncodingTests.cases[20].json)
        #expect(try !request.decode(whole).isEmpty)
        // Every truncation: an error or a message, never a trap; cut inside a field, it is an error.
        var refused = 0
        for length in 0..<whole.count {
            do { _ = try request.decode(Array(whole.prefix(length))) } catch { refused += 1 }
        }
        #expect(refused > whole.count / 2)
        #expect(throws: ProtoMessageError.self) { try request.decode(Array(whole.prefix(whole.count - 1))) }
        // Random bytes and random flips of the valid message.
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 33
        }
        var outcomes = 0
        for round in 0..<20000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = (0..<Int(next() % 64)).map { _ in UInt8(truncatingIfNeeded: next()) }
            } else {
                bytes = whole
                for _ in 0..<(1 + Int(next() % 4)) { bytes[Int(next() % UInt64(bytes.count))] ^= UInt8(1 << (next() % 8)) }
            }
            do { _ = try request.decode(bytes) } catch {}
            outcomes += 1
        }
        #expect(outcomes == 20000)
    }

    @Test func refusesNestingPastTheLimit() async throws {
        let fixture = try await ProtosetFixture.make()
        defer { fixture.remove() }
        let tree = try fixture.set.messageType("meshprobe.test.v1.Tree")
        func nested(_ depth: Int) -> [UInt8] {
            var bytes: [UInt8] = []
            for _ in 0..<depth {
                var writer: [UInt8] = [0x12]
                var length = bytes.count
                while length >= 0x80 {
                    writer.append(UInt8(length & 0x7F) | 0x80)
                    length >>= 7
                }
                writer.append(UInt8(length))
                bytes = writer + bytes
            }
            return bytes
        }
        #expect(try tree.decode(nested(99)).hasPrefix(#"{"children":[{"children":["#))
        #expect(throws: ProtoMessageError.self) { try tree.decode(nested(100)) }
        do { _ = try tree.decode(nested(100)) } catch {
            #expect(error.description.hasSuffix("nested deeper than 100 messages"))
            #expect(error.path.hasPrefix(".children[0].children[0]"))
        }
        // Unknown groups nested past the limit: field 5, 200 start-group tags.
        let groups = [UInt8](repeating: 0x2B, count: 200)
        #expect(throws: ProtoMessageError(path: "", reason: "not a valid meshprobe.test.v1.Tree: nested deeper than 100 messages (at byte 101)")) {
            try tree.decode(groups)
        }
        #expect(throws: ProtoMessageError(path: "", reason: "not a valid meshprobe.test.v1.Tree: an end-group tag without its start (at byte 1)")) {
            try tree.decode([0x0C])
        }
        #expect(throws: ProtoMessageError(path: ".name", reason: "not a valid meshprobe.test.v1.Tree: the message ends inside a field (at byte 2)")) {
            try tree.decode([0x0A, 0x05, 0x61])
        }
        #expect(throws: ProtoMessageError(path: "", reason: "not a valid meshprobe.test.v1.Tree: field number 0 (must be 1 to 2147483647) (at byte 1)")) {
            try tree.decode([0x00, 0x00])
        }
    }
}
