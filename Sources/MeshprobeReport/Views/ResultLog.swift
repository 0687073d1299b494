import Foundation

/// A result in a log (`--json-log`, `--junit-log`): on standard output between two marker lines, so that a Job's log,
/// which holds the lines for people too, carries the result whole and a script cuts it out
/// (`scripts/extract-result`). One kind of result per pair of markers: `RESULT` the JSON result, `JUNIT` the JUnit XML.
public enum ResultLog: String, Sendable, CaseIterable {
    case json = "RESULT"
    case junit = "JUNIT"

    public var begin: String { "----- BEGIN MESHPROBE \(rawValue) -----" }
    public var end: String { "----- END MESHPROBE \(rawValue) -----" }

    /// The block as it is written: the begin line, the document (ended by a newline), the end line. No line of it can
    /// be a marker: JSON escapes every newline inside a string, so each of its lines starts with whitespace or a
    /// bracket; XML text may hold any line (a server's words in the evidence), so a line of the XML that would read
    /// as a marker has its first `-` written as the character reference `&#45;` (the same text to an XML reader;
    /// meshprobe's XML has no CDATA, where a reference would not be one).
    public func framed(_ document: Data) -> Data {
        var body = document
        if self == .junit {
            let markers = Set(ResultLog.allCases.flatMap { [$0.begin, $0.end] })
            let text = String(decoding: document, as: UTF8.self)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
                markers.contains(String(line)) ? "&#45;" + line.dropFirst() : String(line)
            }
            body = Data(lines.joined(separator: "\n").utf8)
        }
        var block = Data((begin + "\n").utf8)
        block.append(body)
        if body.last != UInt8(ascii: "\n") { block.append(UInt8(ascii: "\n")) }
        block.append(contentsOf: (end + "\n").utf8)
        return block
    }

    /// The document of the last complete block of this kind in a log (the lines between a begin line and the end
    /// line after it), or nil when the log holds none.
    public func extract(_ log: String) -> String? {
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
