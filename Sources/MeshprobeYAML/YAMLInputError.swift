/// A problem in a YAML input, located: `file:line:column: field: message`; with the further problems of the same read
/// in `others`, so that a file's independent mistakes are reported together.
public struct YAMLInputError: Error, Sendable, CustomStringConvertible, Equatable {
    public var file: String
    public var line: Int
    public var column: Int
    /// The dotted path of the field, e.g. `load.stages[2].duration`; empty for the document.
    public var field: String
    public var message: String
    /// The other errors of the same read, after this one in the file (`YAMLErrors.check`); each has none of its own.
    public var others: [YAMLInputError] = []

    public init(file: String, line: Int, column: Int, field: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.field = field
        self.message = message
    }

    /// This error and the others, each on its own.
    public var all: [YAMLInputError] {
        var first = self
        first.others = []
        return [first] + others
    }

    /// `FILE:LINE:COLUMN: field: message`, a line per error; after several, how many and in which file.
    public var description: String {
        let errors = all
        let lines = errors.map { "\($0.file):\($0.line):\($0.column): " + ($0.field.isEmpty ? "" : "\($0.field): ") + $0.message }
        guard errors.count > 1 else { return lines[0] }
        var files: [String] = []
        for error in errors where !files.contains(error.file) { files.append(error.file) }
        return (lines + ["\(errors.count) errors in \(files.joined(separator: ", "))"]).joined(separator: "\n")
    }

    /// `errors` as one: in the order they are written (by file as first named, then line and column), each once; nil
    /// for none.
    public init?(combining errors: [YAMLInputError]) {
        var files: [String] = []
        var unique: [YAMLInputError] = []
        for error in errors.flatMap(\.all) where !unique.contains(error) {
            unique.append(error)
            if !files.contains(error.file) { files.append(error.file) }
        }
        let sorted = unique.enumerated().sorted { a, b in
            let x = (files.firstIndex(of: a.element.file)!, a.element.line, a.element.column, a.offset)
            let y = (files.firstIndex(of: b.element.file)!, b.element.line, b.element.column, b.offset)
            return x < y
        }.map(\.element)
        guard let first = sorted.first else { return nil }
        self = first
        others = Array(sorted.dropFirst())
    }
}

/// The errors of one read of a file, collected section by section: a section that fails is recorded and skipped, and
/// what needs its value skips too, so that every independent mistake is reported and none twice.
public struct YAMLErrors: Sendable {
    public private(set) var recorded: [YAMLInputError] = []

    public init() {}

    public var isEmpty: Bool { recorded.isEmpty }
    public var count: Int { recorded.count }

    public mutating func record(_ error: YAMLInputError) {
        recorded += error.all
    }

    /// Runs `body`: its value, or nil with its error recorded.
    @discardableResult
    public mutating func attempt<T>(_ body: () throws(YAMLInputError) -> T) -> T? {
        do { return try body() } catch {
            record(error)
            return nil
        }
    }

    /// Throws every recorded error as one (`YAMLInputError(combining:)`); nothing when none was recorded.
    public func check() throws(YAMLInputError) {
        if let error = YAMLInputError(combining: recorded) { throw error }
    }
}
