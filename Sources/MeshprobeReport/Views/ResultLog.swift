import Foundation

/// The JSON result in a log (`--json-log`): on standard output between two marker lines, so that a Job's log, which
/// holds the lines for people too, carries the result whole and a script cuts it out (`scripts/extract-result`).
/// No line of the JSON can be a marker: JSON escapes every newline inside a string, so each of its lines starts with
/// whitespace or a bracket.
public enum ResultLog {
    public static let begin = "----- BEGIN MESHPROBE RESULT -----"
    public static let end = "----- END MESHPROBE RESULT -----"

    /// The block as it is written: the begin line, the JSON (ended by a newline), the end line.
    public static func framed(_ json: Data) -> Data {
        var block = Data((begin + "\n").utf8)
        block.append(json)
        if json.last != UInt8(ascii: "\n") { block.append(UInt8(ascii: "\n")) }
        block.append(contentsOf: (end + "\n").utf8)
        return block
    }

    /// The JSON of the last complete block in a log (the lines between a begin line and the end line after it), or
    /// nil when the log holds none.
    public static func extract(_ log: String) -> String? {
        var found: String?
        var current: [Substring]?
        for line in log.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == begin {
                current = []
            } else if line == end, let lines = current {
                found = lines.map { $0 + "\n" }.joined()
                current = nil
            } else {
                current?.append(line)
            }
        }
        return found
    }
}
