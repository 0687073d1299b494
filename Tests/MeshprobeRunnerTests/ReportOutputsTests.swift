import Foundation
import MeshprobeRunner
import Testing

/// `--json-log` takes standard output as `--json -` does: with another output there, the command is refused before
/// anything runs, naming both flags (and standard output is not reserved: the check throws first).
@Suite struct ReportOutputsTests {
    @Test func theResultLogSharesStandardOutputWithNoOtherOutput() {
        for (json, junit, named) in [("-", nil, "--json and --json-log"), (nil, "/dev/stdout", "--json-log and --junit")] {
            let outputs = ReportOutputs(junit: junit, jsonLog: true)
            let error = #expect(throws: ExitError.self) { try outputs.check(json: json) }
            #expect(error?.exitCode == 2)
            #expect(error?.message.contains("\(named) both write to standard output") == true, "\(String(describing: error?.message))")
        }
    }
}
