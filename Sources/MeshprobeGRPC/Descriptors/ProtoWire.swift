/// Protobuf's wire types (encoding.md).
enum ProtoWireType: UInt8 {
    case varint = 0
    case fixed64 = 1
    case lengthDelimited = 2
    case startGroup = 3
    case endGroup = 4
    case fixed32 = 5
}

/// One scalar's value on the wire, before its tag.
enum ProtoScalar: Hashable {
    case varint(UInt64)
    case fixed32(UInt32)
    case fixed64(UInt64)
    case bytes([UInt8])

    var wireType: ProtoWireType {
        switch self {
        case .varint: .varint
        case .fixed32: .fixed32
        case .fixed64: .fixed64
        case .bytes: .lengthDelimited
        }
    }

    /// Whether it is its type's default (all bits zero, or empty): what implicit presence leaves out. `-0.0` is not.
    var isDefault: Bool {
        switch self {
        case .varint(let v): v == 0
        case .fixed32(let v): v == 0
        case .fixed64(let v): v == 0
        case .bytes(let b): b.isEmpty
        }
    }
}

/// Appends protobuf's binary encoding.
struct ProtoWireWriter {
    var bytes: [UInt8] = []

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func tag(_ number: Int32, _ wireType: ProtoWireType) {
        varint(UInt64(UInt32(bitPattern: number)) << 3 | UInt64(wireType.rawValue))
    }

    /// The value without its tag (a packed run's element, or after `tag`).
    mutating func payload(_ scalar: ProtoScalar) {
        switch scalar {
        case .varint(let v): varint(v)
        case .fixed32(let v): for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt32(shift))) }
        case .fixed64(let v): for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) }
        case .bytes(let b): lengthDelimited(b)
        }
    }

    mutating func field(_ number: Int32, _ scalar: ProtoScalar) {
        tag(number, scalar.wireType)
        payload(scalar)
    }

    mutating func lengthDelimited(_ b: [UInt8]) {
        varint(UInt64(b.count))
        bytes.append(contentsOf: b)
    }
}

/// Reads protobuf's binary encoding within `bytes[index..<end]`; every read is bounds-checked and throws a reason.
struct ProtoWireReader {
    let bytes: [UInt8]
    var index: Int
    let end: Int

    init(bytes: [UInt8], range: Range<Int>) {
        self.bytes = bytes
        index = range.lowerBound
        end = range.upperBound
    }

    var atEnd: Bool { index >= end }

    mutating func varint() throws(ProtoWireFault) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard index < end else { throw .truncated }
            let byte = bytes[index]
            index += 1
            if shift == 63, byte > 1 { throw .malformedVarint }
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
            guard shift <= 63 else { throw .malformedVarint }
        }
    }

    mutating func fixed32() throws(ProtoWireFault) -> UInt32 {
        guard end - index >= 4 else { throw .truncated }
        var value: UInt32 = 0
        for i in 0..<4 { value |= UInt32(bytes[index + i]) << UInt32(8 * i) }
        index += 4
        return value
    }

    mutating func fixed64() throws(ProtoWireFault) -> UInt64 {
        guard end - index >= 8 else { throw .truncated }
        var value: UInt64 = 0
        for i in 0..<8 { value |= UInt64(bytes[index + i]) << UInt64(8 * i) }
        index += 8
        return value
    }

    /// A length-delimited payload's range (consumed).
    mutating func lengthDelimited() throws(ProtoWireFault) -> Range<Int> {
        let length = try varint()
        guard length <= UInt64(end - index) else { throw .truncated }
        let range = index..<(index + Int(length))
        index = range.upperBound
        return range
    }

    /// A tag: the field number (1 and above) and a wire type this reader knows.
    mutating func tag() throws(ProtoWireFault) -> (number: Int32, wireType: ProtoWireType) {
        let key = try varint()
        let number = key >> 3
        guard number >= 1, number <= UInt64(Int32.max) else { throw .badFieldNumber(key >> 3) }
        guard let wireType = ProtoWireType(rawValue: UInt8(key & 7)) else { throw .badWireType(UInt8(key & 7)) }
        return (Int32(number), wireType)
    }

    /// Skips a field's value after its tag; a group up to its end tag, nested at most `maximumDepth` groups deep.
    /// Returns the range of the value (of a group: its content, without the end tag).
    @discardableResult
    mutating func skip(_ wireType: ProtoWireType, number: Int32, depth: Int) throws(ProtoWireFault) -> Range<Int> {
        let start = index
        switch wireType {
        case .varint: _ = try varint()
        case .fixed32: _ = try fixed32()
        case .fixed64: _ = try fixed64()
        case .lengthDelimited: return try lengthDelimited()
        case .endGroup: throw .unmatchedEndGroup
        case .startGroup:
            guard depth < ProtoBinaryDecoder.maximumDepth else { throw .tooDeep }
            while true {
                let contentEnd = index
                let (inner, innerType) = try tag()
                if innerType == .endGroup {
                    guard inner == number else { throw .unmatchedEndGroup }
                    return start..<contentEnd
                }
                try skip(innerType, number: inner, depth: depth + 1)
            }
        }
        return start..<index
    }
}

/// What is wrong with bytes read as a protobuf message.
enum ProtoWireFault: Error, Equatable {
    case truncated
    case malformedVarint
    case badFieldNumber(UInt64)
    case badWireType(UInt8)
    case unmatchedEndGroup
    case tooDeep
    case packedLength(Int, element: Int)

    var reason: String {
        switch self {
        case .truncated: "the message ends inside a field"
        case .malformedVarint: "a varint longer than 10 bytes"
        case .badFieldNumber(let n): "field number \(n) (must be 1 to 2147483647)"
        case .badWireType(let t): "wire type \(t), which protobuf does not have"
        case .unmatchedEndGroup: "an end-group tag without its start"
        case .tooDeep: "nested deeper than \(ProtoBinaryDecoder.maximumDepth) messages"
        case .packedLength(let length, let element): "a packed run of \(length) bytes, not a multiple of \(element)"
        }
    }
}
