import SwiftProtobuf

/// The well-known types whose JSON is not an object of their fields (protobuf.dev/programming-guides/json): Timestamp,
/// Duration and FieldMask through SwiftProtobuf's own types; Struct, Value and ListValue here (their errors name the
/// JSON path); the wrappers are their bare value (the encoder and decoder do those with the wrapper's one field).
enum ProtoWellKnown {
    static let wrappers: Set<String> = [
        "google.protobuf.DoubleValue", "google.protobuf.FloatValue", "google.protobuf.Int64Value", "google.protobuf.UInt64Value",
        "google.protobuf.Int32Value", "google.protobuf.UInt32Value", "google.protobuf.BoolValue", "google.protobuf.StringValue",
        "google.protobuf.BytesValue",
    ]

    /// Whether the type's JSON is not an object of its fields (in an Any, it goes under `"value"`).
    static func hasOwnJSON(_ type: String) -> Bool {
        wrappers.contains(type) || [
            "google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask", "google.protobuf.Struct",
            "google.protobuf.Value", "google.protobuf.ListValue", "google.protobuf.Any",
        ].contains(type)
    }

    private static func example(_ type: String) -> String {
        switch type {
        case "google.protobuf.Timestamp": "an RFC 3339 timestamp such as \"2026-12-07T10:00:00Z\""
        case "google.protobuf.Duration": "a duration in seconds such as \"1.5s\""
        default: "field paths such as \"user.displayName,photo\""
        }
    }

    /// Timestamp, Duration or FieldMask from its JSON string.
    static func encodeString(_ value: ProtoJSONValue, type: String, path: String) throws(ProtoMessageError) -> [UInt8] {
        guard case .string(let text) = value else {
            throw ProtoMessageError(path: path, reason: "expected \(example(type)), got \(value.shown)")
        }
        let json = ProtoJSONWriter.quoted(text)
        do {
            switch type {
            case "google.protobuf.Timestamp": return try Google_Protobuf_Timestamp(jsonString: json).serializedBytes()
            case "google.protobuf.Duration": return try Google_Protobuf_Duration(jsonString: json).serializedBytes()
            default: return try Google_Protobuf_FieldMask(jsonString: json).serializedBytes()
            }
        } catch {
            throw ProtoMessageError(path: path, reason: "expected \(example(type)), got \(value.shown)")
        }
    }

    /// Timestamp, Duration or FieldMask to its JSON string; nil when the message is not one (out of range, bad nanos).
    static func decodeString(_ bytes: [UInt8], type: String) -> ProtoJSONValue? {
        let json: String?
        switch type {
        case "google.protobuf.Timestamp": json = try? Google_Protobuf_Timestamp(serializedBytes: bytes).jsonString()
        case "google.protobuf.Duration": json = try? Google_Protobuf_Duration(serializedBytes: bytes).jsonString()
        default: json = try? Google_Protobuf_FieldMask(serializedBytes: bytes).jsonString()
        }
        return json.flatMap { try? ProtoJSONParser.parse($0) }
    }

    /// google.protobuf.Value: `null_value` 1, `number_value` 2, `string_value` 3, `bool_value` 4, `struct_value` 5,
    /// `list_value` 6.
    static func encodeValue(_ value: ProtoJSONValue, path: String) throws(ProtoMessageError) -> [UInt8] {
        var writer = ProtoWireWriter()
        switch value {
        case .null: writer.field(1, .varint(0))
        case .number(let text):
            guard let d = Double(text), d.isFinite else {
                throw ProtoMessageError(path: path, reason: "expected a number within the double range, got \(value.shown)")
            }
            writer.field(2, .fixed64(d.bitPattern))
        case .string(let s): writer.field(3, .bytes(Array(s.utf8)))
        case .bool(let b): writer.field(4, .varint(b ? 1 : 0))
        case .object: writer.field(5, .bytes(try encodeStruct(value, path: path)))
        case .array: writer.field(6, .bytes(try encodeList(value, path: path)))
        }
        return writer.bytes
    }

    /// google.protobuf.Struct: `map<string, Value> fields = 1`, keys sorted by their bytes.
    static func encodeStruct(_ value: ProtoJSONValue, path: String) throws(ProtoMessageError) -> [UInt8] {
        guard case .object(let members) = value else {
            throw ProtoMessageError(path: path, reason: "expected an object (google.protobuf.Struct), got \(value.shown)")
        }
        var entries: [(key: [UInt8], bytes: [UInt8])] = []
        var keys: Set<[UInt8]> = []
        for (key, member) in members {
            let memberPath = path + "." + key
            let keyBytes = Array(key.utf8)
            guard keys.insert(keyBytes).inserted else { throw ProtoMessageError(path: memberPath, reason: "the key is given twice") }
            var entry = ProtoWireWriter()
            entry.field(1, .bytes(keyBytes))
            entry.field(2, .bytes(try encodeValue(member, path: memberPath)))
            entries.append((keyBytes, entry.bytes))
        }
        entries.sort { $0.key.lexicographicallyPrecedes($1.key) }
        var writer = ProtoWireWriter()
        for entry in entries { writer.field(1, .bytes(entry.bytes)) }
        return writer.bytes
    }

    /// google.protobuf.ListValue: `repeated Value values = 1`.
    static func encodeList(_ value: ProtoJSONValue, path: String) throws(ProtoMessageError) -> [UInt8] {
        guard case .array(let elements) = value else {
            throw ProtoMessageError(path: path, reason: "expected an array (google.protobuf.ListValue), got \(value.shown)")
        }
        var writer = ProtoWireWriter()
        for (i, element) in elements.enumerated() { writer.field(1, .bytes(try encodeValue(element, path: "\(path)[\(i)]"))) }
        return writer.bytes
    }
}
