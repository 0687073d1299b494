/// Why a message cannot be encoded from JSON or printed as JSON: the path where it went wrong (`.user.tags[2]`; empty
/// for the whole message) and what was expected there, or what is wrong with the bytes (with the byte offset).
public struct ProtoMessageError: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { path.isEmpty ? reason : "\(path): \(reason)" }
}

/// Protobuf's binary encoding to proto3 JSON (protobuf.dev/programming-guides/json) for a message type of a descriptor
/// set: JSON names, 64-bit integers as strings, enums by name, bytes as standard base64, defaults of implicit-presence
/// fields left out, unknown fields skipped. A field given more than once is read as protobuf reads it (the last scalar,
/// messages merged, oneofs the last member). The bytes may come from a hostile server: every read is bounds-checked,
/// nesting stops at `maximumDepth`, and the result is an error, never a trap.
struct ProtoBinaryDecoder {
    static let maximumDepth = 100

    let schema: ProtoSchema

    func decode(_ bytes: [UInt8], type: String) throws(ProtoMessageError) -> ProtoJSONValue {
        try decodeMessage(bytes, 0..<bytes.count, type: type, path: "", depth: 0)
    }

    private func fail(_ path: String, _ reason: String) -> ProtoMessageError { ProtoMessageError(path: path, reason: reason) }

    /// Runs one read of the wire; its fault becomes an error naming the path, the type and the byte.
    private func wire<T>(_ reader: inout ProtoWireReader, _ path: String, _ type: String,
                         _ body: (inout ProtoWireReader) throws(ProtoWireFault) -> T) throws(ProtoMessageError) -> T {
        do { return try body(&reader) } catch {
            throw fail(path, "not a valid \(type): \(error.reason) (at byte \(reader.index))")
        }
    }

    private func decodeMessage(_ bytes: [UInt8], _ range: Range<Int>, type: String, path: String, depth: Int) throws(ProtoMessageError) -> ProtoJSONValue {
        guard depth < Self.maximumDepth else { throw fail(path, ProtoWireFault.tooDeep.reason) }
        switch type {
        case "google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask":
            guard let value = ProtoWellKnown.decodeString(Array(bytes[range]), type: type) else {
                throw fail(path, "not a valid \(type) (malformed, or out of the range its JSON form allows)")
            }
            return value
        case "google.protobuf.Any": return try any(bytes, range, path: path, depth: depth)
        default: break
        }
        guard let message = schema.messages[type] else { throw fail(path, "message type \(type) is not in the descriptor set") }
        let members = try fields(bytes, range, message, path: path, depth: depth)
        func member(_ name: String) -> ProtoJSONValue? { members.first(where: { $0.0 == name })?.1 }
        switch type {
        case _ where ProtoWellKnown.wrappers.contains(type):
            guard let field = message.fields.first else { return .null }
            if let value = members.first?.1 { return value }
            return try defaultValue(field, path: path, depth: depth)
        case "google.protobuf.Struct": return member("fields") ?? .object([])
        case "google.protobuf.ListValue": return member("values") ?? .array([])
        case "google.protobuf.Value":
            guard let (name, value) = members.last, name != "nullValue" else { return .null }
            return value
        default: return .object(members)
        }
    }

    /// A message's fields as JSON members, in field-number order.
    private func fields(_ bytes: [UInt8], _ range: Range<Int>, _ message: ProtoMessage, path: String, depth: Int) throws(ProtoMessageError) -> [(String, ProtoJSONValue)] {
        var reader = ProtoWireReader(bytes: bytes, range: range)
        var scalars: [Int: ProtoScalar] = [:]
        var messages: [Int: [Range<Int>]] = [:]
        var lists: [Int: [ProtoJSONValue]] = [:]
        var maps: [Int: [(String, ProtoJSONValue)]] = [:]
        var oneofLast: [Int: Int] = [:]
        let type = message.name
        while !reader.atEnd {
            let (number, wireType) = try wire(&reader, path, type) { (r: inout ProtoWireReader) throws(ProtoWireFault) in try r.tag() }
            guard let index = message.byNumber[number] else {
                try wire(&reader, path, type) { (r: inout ProtoWireReader) throws(ProtoWireFault) in _ = try r.skip(wireType, number: number, depth: depth) }
                continue
            }
            let field = message.fields[index]
            let fieldPath = path + "." + field.jsonName
            let expected = Self.wireType(field)
            if let entry = schema.mapEntry(field), wireType == .lengthDelimited {
                let entryRange = try wire(&reader, fieldPath, type) { (r: inout ProtoWireReader) throws(ProtoWireFault) in try r.lengthDelimited() }
                maps[index, default: []].append(try mapEntry(bytes, entryRange, field: field, key: entry.key, value: entry.value, path: fieldPath, depth: depth))
            } else if case .message(let elementType) = field.type, wireType == expected {
                let valueRange = try wire(&reader, fieldPath, type) { (r: inout ProtoWireReader) throws(ProtoWireFault) in
                    try r.skip(wireType, number: number, depth: depth)
                }
                if field.repeated {
                    let elementPath = "\(fieldPath)[\(lists[index]?.count ?? 0)]"
                    lists[index, default: []].append(try decodeMessage(bytes, valueRange, type: elementType, path: elementPath, depth: depth + 1))
                } else {
                    messages[index, default: []].append(valueRange)
                }
            } else if field.repeated, field.type.packable, wireType == .lengthDelimited {
                let run = try wire(&reader, fieldPath, type) { (r: inout ProtoWireReader) throws(ProtoWireFault) in try r.lengthDelimited() }
                var packed = ProtoWireReader(bytes: bytes, range: run)
                while !packed.atEnd {
                    let scalar = try wire(&packed, fieldPath, type) { (r: inout ProtoWireReader) throws(ProtoWireFault) in try r.scalar(expected) }
                    lists[index, default: []].append(json(scalar, field.type))
                }
            } else if wireType == expected {
                let scalar = try wire(&reader, fieldPath, type) { (r: inout ProtoWireReader) throws(ProtoWireFault) in try r.scalar(expected) }
                if field.repeated {
                    lists[index, default: []].append(json(scalar, field.type))
                } else {
                    scalars[index] = scalar
                }
            } else {
                // A known field with another wire type is an unknown field to protobuf.
                try wire(&reader, path, type) { (r: inout ProtoWireReader) throws(ProtoWireFault) in _ = try r.skip(wireType, number: number, depth: depth) }
                continue
            }
            if let oneof = field.oneof { oneofLast[oneof] = index }
        }
        var members: [(String, ProtoJSONValue)] = []
        for (index, field) in message.fields.enumerated() {
            if let oneof = field.oneof, oneofLast[oneof] != index { continue }
            let fieldPath = path + "." + field.jsonName
            if let entries = maps[index] {
                var order: [String] = []
                var last: [String: ProtoJSONValue] = [:]
                for (key, value) in entries {
                    if last.updateValue(value, forKey: key) == nil { order.append(key) }
                }
                members.append((field.jsonName, .object(order.map { ($0, last[$0] ?? .null) })))
            } else if let list = lists[index] {
                members.append((field.jsonName, .array(list)))
            } else if let ranges = messages[index], case .message(let elementType) = field.type {
                // A message given more than once is the merge of its parts, which is their concatenation.
                let merged = ranges.count == 1 ? bytes : ranges.flatMap { bytes[$0] }
                let mergedRange = ranges.count == 1 ? ranges[0] : 0..<merged.count
                members.append((field.jsonName, try decodeMessage(merged, mergedRange, type: elementType, path: fieldPath, depth: depth + 1)))
            } else if let scalar = scalars[index], field.explicitPresence || !scalar.isDefault {
                members.append((field.jsonName, json(scalar, field.type)))
            }
        }
        return members
    }

    private func mapEntry(_ bytes: [UInt8], _ range: Range<Int>, field: ProtoField, key: ProtoField, value: ProtoField, path: String,
                          depth: Int) throws(ProtoMessageError) -> (String, ProtoJSONValue) {
        guard case .message(let entryType) = field.type, let entry = schema.messages[entryType] else {
            throw fail(path, "map entry type of \(field.name) is not in the descriptor set")
        }
        let members = try fields(bytes, range, entry, path: path, depth: depth + 1)
        func member(_ field: ProtoField, _ path: String) throws(ProtoMessageError) -> ProtoJSONValue {
            if let value = members.first(where: { $0.0 == field.jsonName })?.1 { return value }
            return try defaultValue(field, path: path, depth: depth)
        }
        let keyJSON = try member(key, path)
        let keyText: String = switch keyJSON {
        case .string(let s), .number(let s): s
        case .bool(let b): b ? "true" : "false"
        default: ""
        }
        let entryPath = path + "[" + ProtoJSONWriter.quoted(keyText) + "]"
        let valueJSON = try member(value, entryPath)
        return (keyText, valueJSON)
    }

    /// The JSON of a field that is absent: its type's default (an empty message's JSON for a message).
    private func defaultValue(_ field: ProtoField, path: String, depth: Int) throws(ProtoMessageError) -> ProtoJSONValue {
        switch field.type {
        case .message(let type): return try decodeMessage([], 0..<0, type: type, path: path, depth: depth + 1)
        case .enumeration(let name):
            return json(.varint(UInt64(bitPattern: Int64(schema.enums[name]?.defaultNumber ?? 0))), field.type)
        default:
            switch Self.wireType(field) {
            case .fixed32: return json(.fixed32(0), field.type)
            case .fixed64: return json(.fixed64(0), field.type)
            case .lengthDelimited: return json(.bytes([]), field.type)
            default: return json(.varint(0), field.type)
            }
        }
    }

    /// `{"@type": URL, ...fields}` or, for a well-known type with a JSON form of its own, `{"@type": URL, "value": ...}`.
    private func any(_ bytes: [UInt8], _ range: Range<Int>, path: String, depth: Int) throws(ProtoMessageError) -> ProtoJSONValue {
        var reader = ProtoWireReader(bytes: bytes, range: range)
        var url = ""
        var valueRange = 0..<0
        while !reader.atEnd {
            let (number, wireType) = try wire(&reader, path, "google.protobuf.Any") { (r: inout ProtoWireReader) throws(ProtoWireFault) in try r.tag() }
            let part = try wire(&reader, path, "google.protobuf.Any") { (r: inout ProtoWireReader) throws(ProtoWireFault) in
                try r.skip(wireType, number: number, depth: depth)
            }
            guard wireType == .lengthDelimited else { continue }
            if number == 1 { url = String(decoding: bytes[part], as: UTF8.self) } else if number == 2 { valueRange = part }
        }
        if url.isEmpty, valueRange.isEmpty { return .object([]) }
        let type = url.split(separator: "/").last.map(String.init) ?? url
        guard schema.messages[type] != nil else {
            throw fail(path, "an Any holding \(url.isEmpty ? "no type URL" : type), which the descriptor set does not hold")
        }
        let inner = try decodeMessage(bytes, valueRange, type: type, path: path, depth: depth + 1)
        if ProtoWellKnown.hasOwnJSON(type) { return .object([("@type", .string(url)), ("value", inner)]) }
        guard case .object(let members) = inner else { return .object([("@type", .string(url)), ("value", inner)]) }
        return .object([("@type", .string(url))] + members)
    }

    /// The wire type a field's value is written with (a packed run aside).
    static func wireType(_ field: ProtoField) -> ProtoWireType {
        switch field.type {
        case .double, .fixed64, .sfixed64: .fixed64
        case .float, .fixed32, .sfixed32: .fixed32
        case .string, .bytes: .lengthDelimited
        case .message: field.delimited ? .startGroup : .lengthDelimited
        default: .varint
        }
    }

    /// A scalar's JSON: 64-bit integers as strings, enums by name (the number when the name is unknown), bytes as
    /// standard base64, non-finite floats as "NaN", "Infinity", "-Infinity".
    func json(_ scalar: ProtoScalar, _ type: ProtoFieldType) -> ProtoJSONValue {
        switch (scalar, type) {
        case (.varint(let v), .int32): return .number(String(Int32(truncatingIfNeeded: v)))
        case (.varint(let v), .uint32): return .number(String(UInt32(truncatingIfNeeded: v)))
        case (.varint(let v), .sint32): return .number(String(Int32(truncatingIfNeeded: ProtoInteger.unzigzag(UInt64(UInt32(truncatingIfNeeded: v))))))
        case (.varint(let v), .int64): return .string(String(Int64(bitPattern: v)))
        case (.varint(let v), .uint64): return .string(String(v))
        case (.varint(let v), .sint64): return .string(String(ProtoInteger.unzigzag(v)))
        case (.varint(let v), .bool): return .bool(v != 0)
        case (.varint(let v), .enumeration(let name)):
            let number = Int32(truncatingIfNeeded: v)
            if name == "google.protobuf.NullValue" { return .null }
            return schema.enums[name]?.nameByNumber[number].map(ProtoJSONValue.string) ?? .number(String(number))
        case (.fixed32(let v), .fixed32): return .number(String(v))
        case (.fixed32(let v), .sfixed32): return .number(String(Int32(bitPattern: v)))
        case (.fixed32(let v), .float):
            // The shortest text that reads back as the float, unless as a double it is past the largest float (readers
            // that check the range on the double refuse 3.4028235e+38): then the double's.
            let f = Float(bitPattern: v)
            let shortest = f.description
            let text = (Double(shortest).map { abs($0) > Double(Float.greatestFiniteMagnitude) } ?? true) ? Double(f).description : shortest
            return Self.floating(Double(f), text: text)
        case (.fixed64(let v), .fixed64): return .string(String(v))
        case (.fixed64(let v), .sfixed64): return .string(String(Int64(bitPattern: v)))
        case (.fixed64(let v), .double): return Self.floating(Double(bitPattern: v), text: Double(bitPattern: v).description)
        case (.bytes(let b), .string): return .string(String(decoding: b, as: UTF8.self))
        case (.bytes(let b), .bytes): return .string(ProtoBase64.encode(b[...]))
        default: return .null
        }
    }

    private static func floating(_ value: Double, text: String) -> ProtoJSONValue {
        if value.isNaN { return .string("NaN") }
        if value.isInfinite { return .string(value < 0 ? "-Infinity" : "Infinity") }
        return .number(text)
    }
}

extension ProtoWireReader {
    /// One scalar's raw value of `wireType`.
    mutating func scalar(_ wireType: ProtoWireType) throws(ProtoWireFault) -> ProtoScalar {
        switch wireType {
        case .varint: return .varint(try varint())
        case .fixed32: return .fixed32(try fixed32())
        case .fixed64: return .fixed64(try fixed64())
        default: return .bytes(Array(bytes[try lengthDelimited()]))
        }
    }
}
