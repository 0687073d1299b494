import ArgumentParser
import Foundation
import MeshprobeIdentity
import MeshprobeReport
import MeshprobeRunner
import MeshprobeYAML

/// meshprobe: mTLS HTTP/2 traffic, attributed to the workload identities that served it.
@main
struct Meshprobe: AsyncParsableCommand {
    static let version = meshprobeVersion

    static let configuration = CommandConfiguration(
        commandName: "meshprobe",
        abstract: "Service-mesh test harness: mTLS HTTP/2 load attributed to SPIFFE workload identities.",
        discussion: """
            Exit codes: 0 every expectation held; 1 an expectation failed (for `load` and `run`: a threshold failed, no \
            request succeeded, or every connection was given up before the run's end); 2 bad input or configuration; 3 \
            no verdict: aborted, incomplete, or a check (a threshold, a split, an SLO) undecided.
            """,
        version: version,
        subcommands: [LoadCommand.self, RunCommand.self, VerifyCommand.self, GameDayCommand.self, EchoCommand.self, FaultCommand.self, PKICommand.self, DemoCommand.self, MergeCommand.self]
    )

    /// Runs the command; maps usage errors to exit code 2 (docs/conventions.md, "Exit codes") instead of
    /// ArgumentParser's 64.
    static func main() async {
        await SignalHub.install()
        // The command once parsed: a usage error its run finds (a ValidationError) names it.
        var parsed: String?
        do {
            var command = try parseAsRoot()
            parsed = commandPath(to: type(of: command))
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            let code = finishResultLogs(0)
            if code != 0 { Foundation.exit(code) }
        } catch let error as CLIError {
            // A line each (a file's errors are one per line), every one marked as meshprobe's.
            for line in error.message.split(separator: "\n", omittingEmptySubsequences: false) { printError("meshprobe: \(line)") }
            Foundation.exit(finishResultLogs(error.exitCode))
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                for line in UsageError(message: message(for: error), fullMessage: fullMessage(for: error), command: parsed).lines { printError(line) }
                await SidecarOptions.stopProxyNamedBeforeParsing(arguments: Array(CommandLine.arguments.dropFirst()))
                Foundation.exit(2)
            }
            // --help and --version: meshprobe's own text, on stdout.
            if code == .success { exit(withError: error) }
            // Any other error's text may quote its input: defanged like every other line.
            printError(fullMessage(for: error))
            Foundation.exit(finishResultLogs(code.rawValue))
        }
    }

    /// The words that run `command` (`meshprobe pki issue`), from the tree of subcommands; nil when it is not in it.
    static func commandPath(to command: any ParsableCommand.Type, from node: any ParsableCommand.Type = Meshprobe.self) -> String? {
        let name = node.configuration.commandName ?? "meshprobe"
        if node == command { return name }
        for sub in node.configuration.subcommands {
            if let path = commandPath(to: command, from: sub) { return "\(name) \(path)" }
        }
        return nil
    }

    /// Writes the results held for the log (`--json-log`, `--junit-log`) after every other line, and gives the exit
    /// code: `code`, or 2 when it was 0 and they could not be written (as a `--json` that cannot be written).
    static func finishResultLogs(_ code: Int32) -> Int32 {
        guard let problem = ResultLogOutput.flush() else { return code }
        printError("meshprobe: \(problem)")
        return code == 0 ? 2 : code
    }
}

/// An error that ends the command with a message and a documented exit code.
typealias CLIError = ExitError

/// A file a flag (or, with no flag, an argument) names, read by `InputFile`'s rules (a regular file, at most `limit`);
/// bad input (exit 2) names the flag, the file and what is wrong with it (`--csv '/dev/zero': is a character device,
/// not a regular file`).
func readInputFile(_ path: String, limit: InputFile.Limit, flag: String?) throws -> [UInt8] {
    do { return try InputFile.read(path, limit: limit) } catch {
        throw CLIError.badInput(flag.map { "\($0) '\(path)': \(error.reason)" } ?? error.description)
    }
}
