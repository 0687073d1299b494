import Foundation
import MeshprobeRunner
import Testing

/// `--json-log` and `--junit-log` take standard output as `--json -` does (their marked blocks share it): with
/// another output there, the command is refused before anything runs, naming the flags (and standard output is not
/// reserved: the check throws first).
@Suite struct ReportOutputsTests {
    @Test func theResultLogsShareStandardOutputWithNoOtherOutput() {
        for (json, junit, junitLog, named) in [("-", nil, false, "--json and --json-log both"),
                                               (nil, "/dev/stdout", false, "--junit and --json-log both"),
                                               ("-", nil, true, "--json, --json-log and --junit-log all")] {
            let outputs = ReportOutputs(junit: junit, jsonLog: true, junitLog: junitLog)
            let error = #expect(throws: ExitError.self) { try outputs.check(json: json) }
            #expect(error?.exitCode == 2)
            #expect(error?.message.contains("\(named) write to standard output") == true, "\(String(describing: error?.message))")
        }
    }
}
