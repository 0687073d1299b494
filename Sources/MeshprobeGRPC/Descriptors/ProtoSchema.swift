import SwiftProtobuf

/// A field's type on the wire and in JSON; enums and messages by full name.
enum ProtoFieldType: Sendable, Equatable {
    case double, float, int64, uint64, int32, fixed64, fixed32, bool, string, bytes, uint32, sfixed32, sfixed64, sint32, sint64
    case enumeration(String)
    case message(String)

    /// Whether repeated values of the type may be packed (every scalar but strings and bytes).
    var packable: Bool {
        switch self {
        case .string, .bytes, .message: false
        default: true
        }
    }
}

/// A field as the encoder and decoder need it: the descriptor's options and the file's syntax or edition resolved.
struct ProtoField: Sendable {
    var name: String
    var jsonName: String
    var number: Int32
    var type: ProtoFieldType
    var repeated: Bool
    /// Repeated scalars written as one length-delimited run.
    var packed: Bool
    /// A singular field written when set even to its default (proto2, `optional`, oneof members, messages); a field
    /// without it is written only when its value is not the default (proto3's implicit presence).
    var explicitPresence: Bool
    /// A message written as a group (proto2 `group`, editions' `message_encoding = DELIMITED`).
    var delimited: Bool
    /// The index of its oneof in `ProtoMessage.oneofs` (not the synthetic oneof of a proto3 `optional`).
    var oneof: Int?
}

struct ProtoMessage: Sendable {
    var name: String
    /// By field number.
    var fields: [ProtoField]
    var oneofs: [String]
    var isMapEntry: Bool
    /// Field index by JSON name and by original name.
    var byName: [String: Int]
    var byNumber: [Int32: Int]
}

struct ProtoEnum: Sendable {
    var name: String
    var numberByName: [String: Int32]
    /// The first name declared for each number (an alias never prints).
    var nameByNumber: [Int32: String]
    /// A closed enum (proto2, editions' `enum_type = CLOSED`) takes only its declared numbers.
    var closed: Bool
    /// The first value's number: an enum field's default.
    var defaultNumber: Int32
}

/// Every message and enum of a descriptor set by full name, with the settings of editions and syntax resolved per field.
struct ProtoSchema: Sendable {
    private(set) var messages: [String: ProtoMessage] = [:]
    private(set) var enums: [String: ProtoEnum] = [:]

    /// The features that decide the encoding, as proto2, proto3 and editions each default and override them.
    private struct Features {
        var explicitPresence: Bool
        var packed: Bool
        var delimited: Bool
        var closedEnums: Bool

        init(file: Google_Protobuf_FileDescriptorProto) {
            switch file.syntax {
            case "proto3": self.init(explicitPresence: false, packed: true, delimited: false, closedEnums: false)
            case "editions": self.init(explicitPresence: true, packed: true, delimited: false, closedEnums: false)
            default: self.init(explicitPresence: true, packed: false, delimited: false, closedEnums: true)
            }
            apply(file.options.features)
        }

        init(explicitPresence: Bool, packed: Bool, delimited: Bool, closedEnums: Bool) {
            self.explicitPresence = explicitPresence
            self.packed = packed
            self.delimited = delimited
            self.closedEnums = closedEnums
        }

        func applying(_ set: Google_Protobuf_FeatureSet) -> Features {
            var copy = self
            copy.apply(set)
            return copy
        }

        mutating func apply(_ set: Google_Protobuf_FeatureSet) {
            if set.hasFieldPresence { explicitPresence = set.fieldPresence != .implicit }
            if set.hasRepeatedFieldEncoding { packed = set.repeatedFieldEncoding == .packed }
            if set.hasMessageEncoding { delimited = set.messageEncoding == .delimited }
            if set.hasEnumType { closedEnums = set.enumType == .closed }
        }
    }

    init(files: [Google_Protobuf_FileDescriptorProto]) {
        for file in files {
            let features = Features(file: file)
            let prefix = file.package.isEmpty ? "" : file.package + "."
            for message in file.messageType { add(message, prefix: prefix, features: features) }
            for enumeration in file.enumType { add(enumeration, prefix: prefix, features: features) }
        }
    }

    /// A type name without the leading dot descriptors give it.
    static func name(_ typeName: String) -> String {
        typeName.hasPrefix(".") ? String(typeName.dropFirst()) : typeName
    }

    private mutating func add(_ enumeration: Google_Protobuf_EnumDescriptorProto, prefix: String, features: Features) {
        let name = prefix + enumeration.name
        var byName: [String: Int32] = [:]
        var byNumber: [Int32: String] = [:]
        for value in enumeration.value {
            byName[value.name] = value.number
            if byNumber[value.number] == nil { byNumber[value.number] = value.name }
        }
        enums[name] = ProtoEnum(name: name, numberByName: byName, nameByNumber: byNumber,
                                closed: features.applying(enumeration.options.features).closedEnums,
                                defaultNumber: enumeration.value.first?.number ?? 0)
    }

    private mutating func add(_ message: Google_Protobuf_DescriptorProto, prefix: String, features inherited: Features) {
        let name = prefix + message.name
        let features = inherited.applying(message.options.features)
        for nested in message.nestedType { add(nested, prefix: name + ".", features: features) }
        for enumeration in message.enumType { add(enumeration, prefix: name + ".", features: features) }
        var fields: [ProtoField] = []
        for field in message.field {
            let own = features.applying(field.options.features)
            let type: ProtoFieldType = switch field.type {
            case .double: .double
            case .float: .float
            case .int64: .int64
            case .uint64: .uint64
            case .int32: .int32
            case .fixed64: .fixed64
            case .fixed32: .fixed32
            case .bool: .bool
            case .string: .string
            case .bytes: .bytes
            case .uint32: .uint32
            case .sfixed32: .sfixed32
            case .sfixed64: .sfixed64
            case .sint32: .sint32
            case .sint64: .sint64
            case .enum: .enumeration(Self.name(field.typeName))
            case .group, .message: .message(Self.name(field.typeName))
            }
            let repeated = field.label == .repeated
            let realOneof = field.hasOneofIndex && !field.proto3Optional ? Int(field.oneofIndex) : nil
            var explicit = own.explicitPresence || field.proto3Optional || realOneof != nil || field.label == .required
            if case .message = type { explicit = true }
            fields.append(ProtoField(
                name: field.name,
                jsonName: field.hasJsonName ? field.jsonName : Self.jsonName(field.name),
                number: field.number,
                type: type,
                repeated: repeated,
                packed: repeated && type.packable && (field.options.hasPacked ? field.options.packed : own.packed),
                explicitPresence: explicit,
                delimited: field.type == .group || (field.type == .message && own.delimited),
                oneof: realOneof
            ))
        }
        fields.sort { $0.number < $1.number }
        var byName: [String: Int] = [:]
        var byNumber: [Int32: Int] = [:]
        for (i, field) in fields.enumerated() {
            byName[field.name] = i
            byName[field.jsonName] = i
            byNumber[field.number] = i
        }
        messages[name] = ProtoMessage(name: name, fields: fields, oneofs: message.oneofDecl.map(\.name),
                                      isMapEntry: message.options.mapEntry, byName: byName, byNumber: byNumber)
    }

    /// protoc's JSON name: underscores dropped, the letter after each capitalised.
    static func jsonName(_ name: String) -> String {
        var out = ""
        var upper = false
        for character in name {
            if character == "_" {
                upper = true
            } else {
                out += upper ? character.uppercased() : String(character)
                upper = false
            }
        }
        return out
    }

    /// The first type that `type`, or a message it holds at any depth, names but the schema lacks; nil when all are here.
    func missingType(reachableFrom type: String) -> String? {
        var seen: Set<String> = [type]
        var queue = [type]
        while let next = queue.popLast() {
            guard let message = messages[next] else { return next }
            for field in message.fields {
                switch field.type {
                case .message(let name) where !seen.contains(name):
                    seen.insert(name)
                    queue.append(name)
                case .enumeration(let name) where enums[name] == nil:
                    return name
                default: break
                }
            }
        }
        return nil
    }

    /// The key and value fields of a map field's entry type; nil for a field that is not a map.
    func mapEntry(_ field: ProtoField) -> (key: ProtoField, value: ProtoField)? {
        guard field.repeated, case .message(let name) = field.type, let entry = messages[name], entry.isMapEntry,
              let key = entry.byNumber[1], let value = entry.byNumber[2] else { return nil }
        return (entry.fields[key], entry.fields[value])
    }
}
