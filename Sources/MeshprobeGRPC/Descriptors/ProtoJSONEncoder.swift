import SwiftProtobuf

/// JSON to protobuf's binary encoding for a message type of a descriptor set, by the proto3 JSON mapping
/// (protobuf.dev/programming-guides/json): fields by JSON name or original name, unknown fields refused, fields written
/// in field-number order and map entries sorted by key (as protobuf's deterministic serialization writes them).
struct ProtoJSONEncoder {
    let schema: ProtoSchema

    func encode(json: String, type: String) throws(ProtoMessageError) -> [UInt8] {
        let value: ProtoJSONValue
        do { value = try ProtoJSONParser.parse(json) } catch {
            throw ProtoMessageError(path: "", reason: "not valid JSON: line \(error.line), column \(error.column): \(error.message)")
        }
        return try message(value, type: type, path: "")
    }

    private func fail(_ path: String, _ reason: String) -> ProtoMessageError { ProtoMessageError(path: path, reason: reason) }

    /// A message's encoding from its JSON; the well-known types from their own JSON forms.
    func message(_ value: ProtoJSONValue, type: String, path: String) throws(ProtoMessageError) -> [UInt8] {
        switch type {
        case "google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask":
            return try ProtoWellKnown.encodeString(value, type: type, path: path)
        case "google.protobuf.Value": return try ProtoWellKnown.encodeValue(value, path: path)
        case "google.protobuf.Struct": return try ProtoWellKnown.encodeStruct(value, path: path)
        case "google.protobuf.ListValue": return try ProtoWellKnown.encodeList(value, path: path)
        case "google.protobuf.Any": return try any(value, path: path)
        case _ where ProtoWellKnown.wrappers.contains(type):
            guard let wrapper = schema.messages[type], let inner = wrapper.fields.first else { break }
            var writer = ProtoWireWriter()
            if value != .null { try field(inner, value, path: path, to: &writer) }
            return writer.bytes
        default: break
        }
        guard let message = schema.messages[type] else { throw fail(path, "message type \(type) is not in the descriptor set") }
        guard case .object(let members) = value else { throw fail(path, "expected an object (\(type)), got \(value.shown)") }
        var values: [Int: (ProtoJSONValue, String)] = [:]
        var oneofSet: [Int: Int] = [:]
        for (key, member) in members {
            let memberPath = path + "." + key
            guard let index = message.byName[key] else {
                throw fail(memberPath, "\(type) has no field \"\(key)\" (fields: \(DescriptorSet.listed(message.fields.map(\.jsonName))))")
            }
            let field = message.fields[index]
            if let earlier = values[index] {
                throw fail(memberPath, "\(field.name) is given twice (\(earlier.1.split(separator: ".").last.map(String.init) ?? field.jsonName) and \(key))")
            }
            values[index] = (member, memberPath)
            if let oneof = field.oneof, member != .null || field.type == .message("google.protobuf.Value") {
                if let other = oneofSet[oneof] {
                    let name = message.oneofs.indices.contains(oneof) ? message.oneofs[oneof] : "a oneof"
                    throw fail(memberPath, "\(message.fields[other].jsonName) and \(field.jsonName) are both set, and oneof \(name) takes one")
                }
                oneofSet[oneof] = index
            }
        }
        var writer = ProtoWireWriter()
        for (index, field) in message.fields.enumerated() {
            guard let (member, memberPath) = values[index] else { continue }
            try self.field(field, member, path: memberPath, to: &writer)
        }
        return writer.bytes
    }

    /// One field of a message (tag and value; nothing for null, an empty list or map, or a default under implicit
    /// presence).
    private func field(_ field: ProtoField, _ value: ProtoJSONValue, path: String, to writer: inout ProtoWireWriter) throws(ProtoMessageError) {
        let isValue = field.type == .message("google.protobuf.Value")
        if value == .null, !isValue, field.type != .enumeration("google.protobuf.NullValue") { return }
        if let (key, entryValue) = schema.mapEntry(field) {
            try map(field, key: key, value: entryValue, value, path: path, to: &writer)
            return
        }
        if field.repeated {
            guard case .array(let elements) = value else { throw fail(path, "expected an array, got \(value.shown)") }
            var packed = ProtoWireWriter()
            for (i, element) in elements.enumerated() {
                let elementPath = "\(path)[\(i)]"
                if element == .null, !isValue { throw fail(elementPath, "null is not allowed in a repeated field") }
                if case .message(let type) = field.type {
                    try writeMessage(field, try message(element, type: type, path: elementPath), to: &writer)
                } else if field.packed {
                    packed.payload(try scalar(element, field.type, path: elementPath))
                } else {
                    writer.field(field.number, try scalar(element, field.type, path: elementPath))
                }
            }
            if field.packed, !elements.isEmpty { writer.field(field.number, .bytes(packed.bytes)) }
            return
        }
        if case .message(let type) = field.type {
            try writeMessage(field, try message(value, type: type, path: path), to: &writer)
            return
        }
        let encoded = try scalar(value, field.type, path: path)
        if encoded.isDefault, !field.explicitPresence { return }
        writer.field(field.number, encoded)
    }

    private func writeMessage(_ field: ProtoField, _ bytes: [UInt8], to writer: inout ProtoWireWriter) throws(ProtoMessageError) {
        if field.delimited {
            writer.tag(field.number, .startGroup)
            writer.bytes.append(contentsOf: bytes)
            writer.tag(field.number, .endGroup)
        } else {
            writer.field(field.number, .bytes(bytes))
        }
    }

    private func map(_ field: ProtoField, key: ProtoField, value valueField: ProtoField, _ value: ProtoJSONValue, path: String,
                     to writer: inout ProtoWireWriter) throws(ProtoMessageError) {
        guard case .object(let members) = value else { throw fail(path, "expected an object (a map), got \(value.shown)") }
        var entries: [(key: ProtoScalar, bytes: [UInt8])] = []
        var keys: Set<ProtoScalar> = []
        for (text, member) in members {
            let entryPath = path + "[" + ProtoJSONWriter.quoted(text) + "]"
            let keyScalar = try mapKey(text, key.type, path: entryPath)
            guard keys.insert(keyScalar).inserted else { throw fail(entryPath, "the map's key is given twice") }
            if member == .null, valueField.type != .message("google.protobuf.Value") {
                throw fail(entryPath, "null is not allowed as a map value")
            }
            var entry = ProtoWireWriter()
            entry.field(1, keyScalar)
            if case .message(let type) = valueField.type {
                entry.field(2, .bytes(try message(member, type: type, path: entryPath)))
            } else {
                entry.field(2, try scalar(member, valueField.type, path: entryPath))
            }
            entries.append((keyScalar, entry.bytes))
        }
        entries.sort { Self.keyOrder($0.key, $1.key, key.type) }
        for entry in entries { writer.field(field.number, .bytes(entry.bytes)) }
    }

    /// Map keys as protobuf's deterministic serialization orders them: numbers by value, strings by their bytes.
    private static func keyOrder(_ a: ProtoScalar, _ b: ProtoScalar, _ type: ProtoFieldType) -> Bool {
        switch (a, b) {
        case (.bytes(let x), .bytes(let y)): return x.lexicographicallyPrecedes(y)
        case (.varint(let x), .varint(let y)):
            switch type {
            case .int32, .int64: return Int64(bitPattern: x) < Int64(bitPattern: y)
            case .sint32, .sint64: return ProtoInteger.unzigzag(x) < ProtoInteger.unzigzag(y)
            default: return x < y
            }
        case (.fixed32(let x), .fixed32(let y)): return type == .sfixed32 ? Int32(bitPattern: x) < Int32(bitPattern: y) : x < y
        case (.fixed64(let x), .fixed64(let y)): return type == .sfixed64 ? Int64(bitPattern: x) < Int64(bitPattern: y) : x < y
        default: return false
        }
    }

    private func mapKey(_ text: String, _ type: ProtoFieldType, path: String) throws(ProtoMessageError) -> ProtoScalar {
        switch type {
        case .string: return .bytes(Array(text.utf8))
        case .bool:
            switch text {
            case "true": return .varint(1)
            case "false": return .varint(0)
            default: throw fail(path, "expected a map key true or false, got \(ProtoJSONWriter.quoted(text))")
            }
        default: return try scalar(.string(text), type, path: path)
        }
    }

    /// A scalar field's value (numbers, strings, bytes, enums) from its JSON.
    func scalar(_ value: ProtoJSONValue, _ type: ProtoFieldType, path: String) throws(ProtoMessageError) -> ProtoScalar {
        func expected(_ what: String, _ note: String = "") -> ProtoMessageError {
            fail(path, "expected \(what), got \(value.shown)\(note)")
        }
        func integer(_ what: String, _ range: ClosedRange<Int64>?, unsigned: ClosedRange<UInt64>?) throws(ProtoMessageError) -> (negative: Bool, magnitude: UInt64) {
            let text: String
            switch value {
            case .number(let t), .string(let t): text = t
            default: throw expected(what)
            }
            guard let parsed = ProtoInteger.parse(text) else { throw expected(what) }
            if let range {
                guard let signed = ProtoInteger.signed(parsed), range.contains(signed) else { throw expected(what, " (out of range)") }
            } else if let unsigned {
                guard !parsed.negative || parsed.magnitude == 0, unsigned.contains(parsed.magnitude) else { throw expected(what, " (out of range)") }
            }
            return parsed
        }
        func signed32(_ what: String) throws(ProtoMessageError) -> Int32 {
            Int32(truncatingIfNeeded: ProtoInteger.signed(try integer(what, Int64(Int32.min)...Int64(Int32.max), unsigned: nil)) ?? 0)
        }
        func signed64(_ what: String) throws(ProtoMessageError) -> Int64 {
            ProtoInteger.signed(try integer(what, Int64.min...Int64.max, unsigned: nil)) ?? 0
        }
        func floating(_ what: String) throws(ProtoMessageError) -> Double {
            switch value {
            case .string("NaN"): return .nan
            case .string("Infinity"): return .infinity
            case .string("-Infinity"): return -.infinity
            case .number(let text), .string(let text):
                guard ProtoInteger.isJSONNumber(text), let d = Double(text) else { throw expected(what) }
                guard d.isFinite else { throw expected(what, " (out of range)") }
                return d
            default: throw expected(what)
            }
        }
        switch type {
        case .int32: return .varint(UInt64(bitPattern: Int64(try signed32("a 32-bit integer"))))
        case .sint32: return .varint(UInt64(ProtoInteger.zigzag(Int64(try signed32("a 32-bit integer")))))
        case .sfixed32: return .fixed32(UInt32(bitPattern: try signed32("a 32-bit integer")))
        case .int64: return .varint(UInt64(bitPattern: try signed64("a 64-bit integer")))
        case .sint64: return .varint(ProtoInteger.zigzag(try signed64("a 64-bit integer")))
        case .sfixed64: return .fixed64(UInt64(bitPattern: try signed64("a 64-bit integer")))
        case .uint32: return .varint(try integer("an unsigned 32-bit integer", nil, unsigned: 0...UInt64(UInt32.max)).magnitude)
        case .fixed32: return .fixed32(UInt32(truncatingIfNeeded: try integer("an unsigned 32-bit integer", nil, unsigned: 0...UInt64(UInt32.max)).magnitude))
        case .uint64: return .varint(try integer("an unsigned 64-bit integer", nil, unsigned: 0...UInt64.max).magnitude)
        case .fixed64: return .fixed64(try integer("an unsigned 64-bit integer", nil, unsigned: 0...UInt64.max).magnitude)
        case .double: return .fixed64(try floating("a number").bitPattern)
        case .float:
            let d = try floating("a number")
            // A value past the largest float that rounds to it is that float (its shortest text, 3.4028235e38, is one).
            guard !d.isFinite || Float(d).isFinite else { throw expected("a number", " (out of the float range)") }
            return .fixed32(Float(d).bitPattern)
        case .bool:
            guard case .bool(let b) = value else { throw expected("true or false") }
            return .varint(b ? 1 : 0)
        case .string:
            guard case .string(let s) = value else { throw expected("a string") }
            return .bytes(Array(s.utf8))
        case .bytes:
            guard case .string(let s) = value, let decoded = ProtoBase64.decode(s) else { throw expected("base64 (standard or URL-safe)") }
            return .bytes(decoded)
        case .enumeration(let name):
            guard let enumeration = schema.enums[name] else { throw fail(path, "enum type \(name) is not in the descriptor set") }
            let names = DescriptorSet.listed(enumeration.nameByNumber.sorted { $0.key < $1.key }.map(\.value))
            switch value {
            case .null where name == "google.protobuf.NullValue": return .varint(0)
            case .string(let s):
                guard let number = enumeration.numberByName[s] else { throw expected("a value of \(name) (\(names))") }
                return .varint(UInt64(bitPattern: Int64(number)))
            case .number:
                let number = try signed32("a value of \(name) (\(names))")
                if enumeration.closed, enumeration.nameByNumber[number] == nil {
                    throw expected("a value of \(name) (\(names))", " (a closed enum: only its declared numbers)")
                }
                return .varint(UInt64(bitPattern: Int64(number)))
            default: throw expected("a value of \(name) (\(names))")
            }
        case .message(let name): throw fail(path, "internal: message type \(name) read as a scalar")
        }
    }

    /// `{"@type": "type.googleapis.com/pkg.Message", ...fields}`, or `"value"` for a well-known type with a JSON form of
    /// its own; the type must be in the descriptor set.
    private func any(_ value: ProtoJSONValue, path: String) throws(ProtoMessageError) -> [UInt8] {
        guard case .object(let members) = value else { throw fail(path, "expected an object (google.protobuf.Any), got \(value.shown)") }
        if members.isEmpty { return [] }
        guard let typeMember = members.first(where: { $0.0 == "@type" }) else {
            throw fail(path, "an Any needs \"@type\" (\"type.googleapis.com/package.Message\")")
        }
        guard case .string(let url) = typeMember.1, let slash = url.lastIndex(of: "/"), url.index(after: slash) != url.endIndex else {
            throw fail(path + ".@type", "expected a type URL such as \"type.googleapis.com/package.Message\", got \(typeMember.1.shown)")
        }
        let type = String(url[url.index(after: slash)...])
        guard schema.messages[type] != nil else {
            throw fail(path + ".@type", "\(type) is not in the descriptor set")
        }
        let rest = members.filter { $0.0 != "@type" }
        let payload: [UInt8]
        if ProtoWellKnown.hasOwnJSON(type) {
            guard rest.count == 1, rest[0].0 == "value" else { throw fail(path, "an Any of \(type) takes its JSON in \"value\"") }
            payload = try message(rest[0].1, type: type, path: path + ".value")
        } else {
            payload = try message(.object(rest), type: type, path: path)
        }
        var writer = ProtoWireWriter()
        writer.field(1, .bytes(Array(url.utf8)))
        if !payload.isEmpty { writer.field(2, .bytes(payload)) }
        return writer.bytes
    }
}

/// Integers as the JSON mapping reads them: a JSON number or a string holding one, exponents allowed when the value is
/// whole (`1e3`, `5.0`).
enum ProtoInteger {
    /// The sign and magnitude of an integral number; nil when it is not a number, not whole, or above `UInt64.max`.
    static func parse(_ text: String) -> (negative: Bool, magnitude: UInt64)? {
        guard isJSONNumber(text) else { return nil }
        let bytes = Array(text.utf8)
        let negative = bytes.first == UInt8(ascii: "-")
        var i = negative ? 1 : 0
        var digits: [UInt8] = []
        var fractionDigits = 0
        var seenPoint = false
        var exponent = 0
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: ".") {
                seenPoint = true
            } else if c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
                i += 1
                var sign = 1
                if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") {
                    if bytes[i] == UInt8(ascii: "-") { sign = -1 }
                    i += 1
                }
                let rest = bytes[min(i, bytes.count)...]
                guard rest.count <= 6, let e = Int(String(decoding: rest, as: UTF8.self)) else { return nil }
                exponent = sign * e
                break
            } else {
                digits.append(c &- UInt8(ascii: "0"))
                if seenPoint { fractionDigits += 1 }
            }
            i += 1
        }
        var scale = exponent - fractionDigits
        while scale < 0, let last = digits.last {
            guard last == 0 else { return nil }
            digits.removeLast()
            scale += 1
        }
        var magnitude: UInt64 = 0
        for digit in digits {
            let (times, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (plus, o2) = times.addingReportingOverflow(UInt64(digit))
            guard !o1, !o2 else { return nil }
            magnitude = plus
        }
        if magnitude != 0, scale > 0 {
            for _ in 0..<scale {
                let (times, overflow) = magnitude.multipliedReportingOverflow(by: 10)
                guard !overflow else { return nil }
                magnitude = times
            }
        }
        return (negative, magnitude)
    }

    static func signed(_ value: (negative: Bool, magnitude: UInt64)) -> Int64? {
        if !value.negative { return value.magnitude <= UInt64(Int64.max) ? Int64(value.magnitude) : nil }
        if value.magnitude <= UInt64(Int64.max) { return -Int64(value.magnitude) }
        return value.magnitude == UInt64(Int64.max) + 1 ? Int64.min : nil
    }

    /// JSON's number grammar (RFC 8259), for numbers that arrive inside strings.
    static func isJSONNumber(_ text: String) -> Bool {
        guard let first = text.utf8.first, first == UInt8(ascii: "-") || (first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9")),
              let last = text.utf8.last, last >= UInt8(ascii: "0"), last <= UInt8(ascii: "9"),
              case .number? = try? ProtoJSONParser.parse(text) else { return false }
        return true
    }

    static func zigzag(_ n: Int64) -> UInt64 { UInt64(bitPattern: (n << 1) ^ (n >> 63)) }

    static func unzigzag(_ n: UInt64) -> Int64 { Int64(bitPattern: n >> 1) ^ -Int64(bitPattern: n & 1) }
}

/// Base64 as the JSON mapping reads bytes: the standard or the URL-safe alphabet, with or without padding.
enum ProtoBase64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func decode(_ text: String) -> [UInt8]? {
        var values: [UInt8] = []
        var padding = 0
        for c in text.utf8 {
            if c == UInt8(ascii: "=") {
                padding += 1
                continue
            }
            guard padding == 0 else { return nil }
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): values.append(c - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): values.append(c - UInt8(ascii: "a") + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): values.append(c - UInt8(ascii: "0") + 52)
            case UInt8(ascii: "+"), UInt8(ascii: "-"): values.append(62)
            case UInt8(ascii: "/"), UInt8(ascii: "_"): values.append(63)
            default: return nil
            }
        }
        guard values.count % 4 != 1, padding <= 2, padding == 0 || (values.count + padding) % 4 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(values.count * 3 / 4)
        var buffer: UInt32 = 0
        var bits = 0
        for v in values {
            buffer = buffer << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
            }
        }
        return out
    }

    /// The standard alphabet, padded.
    static func encode(_ bytes: ArraySlice<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let b0 = UInt32(bytes[i])
            let b1 = i + 1 < bytes.endIndex ? UInt32(bytes[i + 1]) : 0
            let b2 = i + 2 < bytes.endIndex ? UInt32(bytes[i + 2]) : 0
            let triple = b0 << 16 | b1 << 8 | b2
            out.append(alphabet[Int(triple >> 18 & 63)])
            out.append(alphabet[Int(triple >> 12 & 63)])
            out.append(i + 1 < bytes.endIndex ? alphabet[Int(triple >> 6 & 63)] : UInt8(ascii: "="))
            out.append(i + 2 < bytes.endIndex ? alphabet[Int(triple & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
