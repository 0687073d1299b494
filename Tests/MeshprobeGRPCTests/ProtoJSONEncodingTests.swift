import MeshprobeGRPC
import MeshprobeTestSupport
import Testing

/// Requests from JSON against a descriptor set, checked against Python's protobuf (json_format.Parse, then
/// SerializeToString(deterministic=True)) as the second implementation.
@Suite struct ProtoJSONEncodingTests {
    static let request = "meshprobe.test.v1.ProbeRequest"

    /// JSON requests covering the mapping: every scalar type, names, nesting, repeated, maps, oneofs, the well-known
    /// types, proto2 and editions.
    static let cases: [(type: String, json: String)] = [
        (request, #"{}"#),
        (request, #"{"scalars":{"i32":-5,"i64":"-9223372036854775808","u32":4294967295,"u64":"18446744073709551615","s32":-2147483648,"s64":"9223372036854775807","f32":7,"f64":"18446744073709551615","sf32":-1,"sf64":-2,"flt":1.5,"dbl":-2.25e-10,"flag":true,"text":"héllo \"wörld\"\n\u00e9\ud83d\ude00","blob":"AAEC/w==","colour":"COLOUR_GREEN","maybe":0}}"#),
        (request, #"{"scalars":{"i32":"123","i64":123456789012345,"u64":1e3,"s64":"-1","sf64":"5","u32":1.0,"colour":1,"flt":"NaN","dbl":"-Infinity","blob":"-_8","text":""}}"#),
        (request, #"{"scalars":{"flt":"Infinity","dbl":"NaN","i32":0,"flag":false,"colour":"COLOUR_UNSPECIFIED","blob":"_-8"}}"#),
        (request, #"{"scalars":{"dbl":-0.0,"flt":3.4028234663852886e38,"i64":"0","colour":7}}"#),
        (request, #"{"user":{"id":"42","display_name":"Ada","tags":["a","b",""],"home":{"city":"Zürich","lines":["1","2"]},"previous":[{"city":"x"},{}],"role":"ROLE_ADMIN"}}"#),
        (request, #"{"user":{"displayName":"Bo","counters":{"b":2,"a":"-1","":0},"byFloor":{"-3":{"city":"basement"},"10":{},"2":{"lines":["l"]}},"flags":{"true":"yes","false":""},"colours":{"18446744073709551615":"COLOUR_RED","0":0}}}"#),
        (request, #"{"user":{"email":"a@example.com"}}"#),
        (request, #"{"user":{"phone":""}}"#),
        (request, #"{"user":{"postal":{}, "email":null}}"#),
        (request, #"{"user":{"scores":[1,-1,300,0],"looseScores":[1,-1,300],"weights":[0.5,-1e300,0],"favourites":["COLOUR_RED",2,0],"deltas":["-5",5,"9223372036854775807"],"stamps":[1,4294967295],"bits":[true,false,true]}}"#),
        (request, #"{"user":{"scores":[],"tags":[],"counters":{}}}"#),
        (request, #"{"known":{"at":"2026-12-07T10:00:00.123456789Z","timeout":"1.5s","small":0,"big":"9007199254740993","ubig":"18446744073709551615","name":"","data":"aGk=","on":false,"ratio":0.1,"fratio":0.1,"usmall":7}}"#),
        (request, #"{"known":{"at":"1970-01-01T00:00:00+01:00","timeout":"-0.000000001s","mask":"user.displayName,tags","nothing":{},"history":["2026-01-01T00:00:00Z","1999-12-31T23:59:59.5Z"]}}"#),
        (request, #"{"known":{"attributes":{"b":[1,"two",null,{"x":false}],"a":{"nested":{}},"n":-1.5e-3},"anything":"text","list":[1,[2,[]],{}],"labels":{"k":null,"j":{"z":1}}}}"#),
        (request, #"{"known":{"anything":null,"attributes":{}}}"#),
        (request, #"{"known":{"anything":{"a":[true]},"list":[]}}"#),
        (request, #"{"known":{"extra":{"@type":"type.googleapis.com/meshprobe.test.v1.Tree","name":"root","children":[{"name":"leaf"}]}}}"#),
        (request, #"{"known":{"extra":{"@type":"type.googleapis.com/google.protobuf.Duration","value":"3s"}}}"#),
        (request, #"{"tree":{"name":"a","children":[{"name":"b","children":[{"name":"c","children":[{}]}]},{"name":"d"}]}}"#),
        (request, #"{"legacy":{"count":0,"label":"none","values":[1,2,3],"packedValues":[4,5],"kind":"KIND_B","extra":{"level":0},"seen":false}}"#),
        (request, #"{"legacy":{"kind":2,"packed_values":[],"values":[-1],"seen":true}}"#),
        (request, #"{"user":null,"scalars":{"i32":null,"text":null},"known":{"small":null}}"#),
        ("meshprobe.test.editions.Settings", #"{"explicitCount":0,"implicitCount":0,"packedValues":[1,2],"expandedValues":[1,2],"child":{"mode":"MODE_ON","child":{}},"mode":1}"#),
        ("meshprobe.test.editions.Settings", #"{"implicitCount":5,"explicit_count":-1}"#),
        ("google.protobuf.Empty", #"{}"#),
        ("google.protobuf.Duration", #""-3.000001s""#),
        ("google.protobuf.Int64Value", #""-12""#),
        ("google.protobuf.Struct", #"{"a":1}"#),
    ]

    /// The case whose maps have more than one entry with numeric keys.
    static let mapsOfManyEntries = 6

    @Test func encodesAsPythonsProtobufDoes() async throws {
        let fixture = try await ProtosetFixture.make()
        defer { fixture.remove() }
        var peerCases: [PeerCase] = []
        for (type, json) in Self.cases {
            let encoded = try fixture.set.messageType(type).encode(json: json)
            peerCases.append(PeerCase(type: type, json: json, meshprobe_hex: hex(encoded)))
        }
        let answers = try await fixture.python(peerCases)
        for (peerCase, answer) in zip(peerCases, answers) {
            #expect(answer.error == nil, "\(peerCase.json)")
            #expect(answer.same_message == true, "\(peerCase.json)")
            // Fields in number order: the same bytes as deterministic serialization, but for the order of map entries,
            // which protobuf leaves open (meshprobe sorts numeric keys by value; Python's upb does not).
            if peerCase.json != Self.cases[Self.mapsOfManyEntries].json {
                #expect(answer.python_hex == peerCase.meshprobe_hex, "\(peerCase.json)")
            }
        }
    }

    @Test func acceptsEveryNameAndSpellingForTheSameMessage() async throws {
        let fixture = try await ProtosetFixture.make()
        defer { fixture.remove() }
        let type = try fixture.set.messageType("meshprobe.test.v1.User")
        let one = try type.encode(json: #"{"displayName":"x","byFloor":{"1":{}},"looseScores":[1]}"#)
        #expect(try type.encode(json: #"{"display_name":"x","by_floor":{"1":{}},"loose_scores":[1]}"#) == one)
        #expect(try type.encode(json: #" { "display_name" : "x" , "by_floor" : { "1" : { } }, "loose_scores": [1.0] } "#) == one)
        #expect(try type.encode(json: #"{"id":"1e2"}"#) == type.encode(json: #"{"id":100}"#))
        // URL-safe and standard base64, with and without padding.
        let scalars = try fixture.set.messageType("meshprobe.test.v1.Scalars")
        let blob = try scalars.encode(json: #"{"blob":"+/+/"}"#)
        #expect(try scalars.encode(json: #"{"blob":"-_-_"}"#) == blob)
        #expect(try scalars.encode(json: #"{"blob":"YQ"}"#) == scalars.encode(json: #"{"blob":"YQ=="}"#))
    }

    /// Each refusal names the JSON path and what was expected there.
    static let refusals: [(json: String, message: String)] = [
        (#"{"user":{"id":"abc"}}"#, #".user.id: expected a 64-bit integer, got "abc""#),
        (#"{"user":{"nickname":"x"}}"#,
         #".user.nickname: meshprobe.test.v1.User has no field "nickname" (fields: id, displayName, tags, home, previous and 15 more)"#),
        (#"{"user":{"tags":["a","b",3]}}"#, ".user.tags[2]: expected a string, got 3"),
        (#"{"user":{"tags":"a"}}"#, #".user.tags: expected an array, got "a""#),
        (#"{"user":{"tags":["a",null]}}"#, ".user.tags[1]: null is not allowed in a repeated field"),
        (#"{"user":{"previous":[{"city":1}]}}"#, ".user.previous[0].city: expected a string, got 1"),
        (#"{"scalars":{"u32":-1}}"#, ".scalars.u32: expected an unsigned 32-bit integer, got -1 (out of range)"),
        (#"{"scalars":{"i32":2147483648}}"#, ".scalars.i32: expected a 32-bit integer, got 2147483648 (out of range)"),
        (#"{"scalars":{"i32":1.5}}"#, ".scalars.i32: expected a 32-bit integer, got 1.5"),
        (#"{"scalars":{"u64":"18446744073709551616"}}"#, #".scalars.u64: expected an unsigned 64-bit integer, got "18446744073709551616""#),
        (#"{"scalars":{"i64":" 1"}}"#, #".scalars.i64: expected a 64-bit integer, got " 1""#),
        (#"{"scalars":{"flag":"true"}}"#, #".scalars.flag: expected true or false, got "true""#),
        (#"{"scalars":{"flt":1e39}}"#, ".scalars.flt: expected a number, got 1e39 (out of the float range)"),
        (#"{"scalars":{"dbl":1e400}}"#, ".scalars.dbl: expected a number, got 1e400 (out of range)"),
        (#"{"scalars":{"dbl":"nan"}}"#, #".scalars.dbl: expected a number, got "nan""#),
        (#"{"scalars":{"blob":"!!"}}"#, #".scalars.blob: expected base64 (standard or URL-safe), got "!!""#),
        (#"{"scalars":{"colour":"PURPLE"}}"#,
         #".scalars.colour: expected a value of meshprobe.test.v1.Colour (COLOUR_UNSPECIFIED, COLOUR_RED, COLOUR_GREEN), got "PURPLE""#),
        (#"{"legacy":{"kind":3}}"#,
         ".legacy.kind: expected a value of meshprobe.test.legacy.Record.Kind (KIND_A, KIND_B), got 3 (a closed enum: only its declared numbers)"),
        (#"{"user":{"email":"a","phone":"b"}}"#, ".user.phone: email and phone are both set, and oneof contact takes one"),
        (#"{"user":{"displayName":"a","display_name":"b"}}"#, ".user.display_name: display_name is given twice (displayName and display_name)"),
        (#"{"user":{"byFloor":{"x":{}}}}"#, #".user.byFloor["x"]: expected a 32-bit integer, got "x""#),
        (#"{"user":{"flags":{"yes":"x"}}}"#, #".user.flags["yes"]: expected a map key true or false, got "yes""#),
        (#"{"user":{"counters":{"a":1,"b":2,"a":3}}}"#, #".user.counters["a"]: the map's key is given twice"#),
        (#"{"user":{"byFloor":{"1":{},"1e0":{}}}}"#, #".user.byFloor["1e0"]: the map's key is given twice"#),
        (#"{"known":{"attributes":{"k":1,"k":2}}}"#, ".known.attributes.k: the key is given twice"),
        (#"{"user":{"counters":{"a":null}}}"#, #".user.counters["a"]: null is not allowed as a map value"#),
        (#"{"user":{"home":[]}}"#, ".user.home: expected an object (meshprobe.test.v1.User.Address), got an array"),
        (#"{"known":{"at":"yesterday"}}"#, #".known.at: expected an RFC 3339 timestamp such as "2026-12-07T10:00:00Z", got "yesterday""#),
        (#"{"known":{"timeout":90}}"#, #".known.timeout: expected a duration in seconds such as "1.5s", got 90"#),
        (#"{"known":{"small":"x"}}"#, #".known.small: expected a 32-bit integer, got "x""#),
        (#"{"known":{"attributes":[1]}}"#, ".known.attributes: expected an object (google.protobuf.Struct), got an array"),
        (#"{"known":{"attributes":{"a":{"b":1e999}}}}"#, ".known.attributes.a.b: expected a number within the double range, got 1e999"),
        (#"{"known":{"extra":{"name":"x"}}}"#, #".known.extra: an Any needs "@type" ("type.googleapis.com/package.Message")"#),
        (#"{"known":{"extra":{"@type":"type.googleapis.com/pkg.Missing"}}}"#, ".known.extra.@type: pkg.Missing is not in the descriptor set"),
        (#"{"known":{"extra":{"@type":"type.googleapis.com/meshprobe.test.v1.Tree","nam":"x"}}}"#,
         #".known.extra.nam: meshprobe.test.v1.Tree has no field "nam" (fields: name, children)"#),
        (#"[1]"#, "expected an object (meshprobe.test.v1.ProbeRequest), got an array"),
        (#"{"user":"#, "not valid JSON: line 1, column 9: the JSON ends where a value should be"),
        ("{\n  \"user\": {,}\n}", "not valid JSON: line 2, column 12: expected a member name in double quotes"),
        (#"{"user":{}} x"#, "not valid JSON: line 1, column 13: unexpected text after the JSON value"),
        (#"{"a":01}"#, "not valid JSON: line 1, column 7: a number must not start with 0"),
    ]

    @Test func refusalsNameThePathAndWhatWasExpected() async throws {
        let fixture = try await ProtosetFixture.make()
        defer { fixture.remove() }
        let method = try fixture.set.method("meshprobe.test.v1.Probe/Call")
        for (json, message) in Self.refusals {
            #expect(throws: ProtoMessageError.self, "\(json)") { try method.encodeRequest(json: json) }
            do {
                _ = try method.encodeRequest(json: json)
            } catch {
                #expect(error.description == message)
            }
        }
    }

    @Test func pythonRefusesWhatMeshprobeRefuses() async throws {
        let fixture = try await ProtosetFixture.make()
        defer { fixture.remove() }
        // The refusals that are about the message (not JSON's syntax): Python refuses them too, but for these, where
        // Python's json_format is more lenient than the mapping: base64 with characters outside both alphabets, a
        // field named twice by its two names, a map key given twice in two spellings, an array for a message, a number
        // past the double range in a Struct.
        let lenient: Set<String> = [
            #"{"scalars":{"blob":"!!"}}"#, #"{"user":{"displayName":"a","display_name":"b"}}"#, #"{"user":{"byFloor":{"1":{},"1e0":{}}}}"#,
            #"{"user":{"home":[]}}"#, #"{"known":{"attributes":{"a":{"b":1e999}}}}"#,
        ]
        let semantic = Self.refusals.filter { !$0.message.hasPrefix("not valid JSON") && !lenient.contains($0.json) }
        let answers = try await fixture.python(semantic.map { PeerCase(type: Self.request, json: $0.json) })
        for (refusal, answer) in zip(semantic, answers) {
            #expect(answer.error != nil, "Python accepted \(refusal.json)")
        }
    }

    @Test func refusesJSONNestedPastTheLimit() async throws {
        let fixture = try await ProtosetFixture.make()
        defer { fixture.remove() }
        let tree = try fixture.set.messageType("meshprobe.test.v1.Tree")
        let deep = String(repeating: #"{"children":["#, count: 60) + "{}" + String(repeating: "]}", count: 60)
        #expect(throws: ProtoMessageError(path: "", reason: "not valid JSON: line 1, column 651: nested deeper than 100 levels")) {
            try tree.encode(json: deep)
        }
        let fine = String(repeating: #"{"children":["#, count: 40) + "{}" + String(repeating: "]}", count: 40)
        #expect(try tree.encode(json: fine).count > 40)
    }
}
