/// Why a value as a user wrote it (a flag's value, a file's field) is refused: one message per input type, without the
/// flag or field, which the reader adds (swift-argument-parser names the flag as typed; a file's reader prefixes
/// `FILE:LINE:COLUMN: field`).
public struct InputValueError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
