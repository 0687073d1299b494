import Foundation
import MeshprobeReport
import NIOConcurrencyHelpers

/// meshprobe's version, as `--version` prints it and every result records it.
package let meshprobeVersion = "0.1.0"

/// An error that ends the command with a message and a documented exit code (docs/conventions.md): 1 an expectation
/// failed, 2 bad input or configuration, 3 aborted or incomplete.
package struct ExitError: Error, CustomStringConvertible {
    package var message: String
    package var exitCode: Int32

    package init(message: String, exitCode: Int32) {
        self.message = message
        self.exitCode = exitCode
    }

    package static func badInput(_ message: String) -> ExitError { ExitError(message: message, exitCode: 2) }

    /// The message alone, as a caller that reports the error in its own words (`"\(error)"`) shows it.
    package var description: String { message }
}

/// Every line meshprobe writes for people goes through `printError` or `printLine`. A `String` is defanged whole:
/// whatever a server, a certificate or a file put into it, no escape sequence or other control character reaches
/// the terminal (`TerminalStyle.defang`). Colours exist only in a `TerminalText`, which is safe as it is.
package func printError(_ text: String) {
    printError(TerminalText(text))
}

package func printError(_ text: TerminalText) {
    writeAll(STDERR_FILENO, text.rendered + "\n")
}

/// Standard output carries a result (`--json -`, `--junit -`, ...): the lines for people go to standard error, so
/// that what a pipeline reads from standard output is the result alone.
package enum StandardOutput {
    private static let carriesResult = NIOLockedValueBox(false)

    package static func reserveForResult() {
        carriesResult.withLockedValue { $0 = true }
    }

    /// Where the lines for people go: standard output, or standard error once a result has it.
    package static var forPeople: Int32 {
        carriesResult.withLockedValue { $0 } ? STDERR_FILENO : STDOUT_FILENO
    }
}

/// The results in the log (`--json-log`, `--junit-log`): held until the process ends, then written after every line
/// for people (the sidecar's stop and the exit message included). A Job's log interleaves standard output and
/// standard error line by line, as the container runtime reads them apart: a block written last, a moment after the
/// last line for people, is one that no such line lands inside.
package enum ResultLogOutput {
    private static let pending = NIOLockedValueBox<[(flag: String, block: Data)]>([])

    /// How long the blocks wait after the last line for people, so that a reader of the two streams (the container
    /// runtime) has taken that line before the first block arrives.
    static let settle: UInt32 = 100_000

    package static func append(_ block: Data, flag: String) {
        pending.withLockedValue { $0.append((flag, block)) }
    }

    /// Writes the blocks held, in the order they came, in one write; the problem when they could not be written.
    package static func flush() -> String? {
        let blocks = pending.withLockedValue { blocks in defer { blocks = [] }; return blocks }
        guard !blocks.isEmpty else { return nil }
        usleep(settle)
        do {
            try ReportFile.write(blocks.reduce(Data()) { $0 + $1.block }, to: ReportFile.standardOutput,
                                 flag: blocks.map(\.flag).joined(separator: " and "))
            return nil
        } catch {
            return "\(error)"
        }
    }
}

/// Writes a line for people, unbuffered (so `kubectl logs` and tests see it at once), to standard output (standard
/// error when a result goes there, see `StandardOutput`).
package func printLine(_ text: String) {
    printLine(TerminalText(text))
}

package func printLine(_ text: TerminalText) {
    writeAll(StandardOutput.forPeople, text.rendered + "\n")
}

/// Writes `text` whole to `descriptor`. A reader that has gone away (`| head`, a closed pipe: EPIPE) or any other
/// write error drops the rest of the line and nothing else: the run goes on, and its files (`--json`, the reports)
/// are still written.
package func writeAll(_ descriptor: Int32, _ text: String) {
    let bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
        if written > 0 {
            offset += written
        } else if written < 0 && errno == EINTR {
            continue
        } else {
            return
        }
    }
}

/// Colours for the lines `printLine` writes: only on a terminal, and not with NO_COLOR.
package func stdoutStyle() -> TerminalStyle {
    TerminalStyle.detect(isTerminal: isatty(StandardOutput.forPeople) == 1, environment: ProcessInfo.processInfo.environment)
}

/// Prints a run's aligned verdict table and its outcome word, coloured on a terminal; `reasonsAbove`: the verdicts
/// were printed above with their reasons in full (the table shortens long ones).
package func printVerdicts(_ report: RunReport, reasonsAbove: Bool = false) {
    let table = VerdictTable(report, style: stdoutStyle(), reasonsAbove: reasonsAbove)
    printLine(table.render() + table.outcome)
}
