import Foundation
import MeshprobeReport
import MeshprobeRunner

extension VerifyMerge {
    /// Prints a merged verdict, writes it to `json` (atomically), and exits as `verify` does: 0 pass, 1 fail,
    /// 3 undecided.
    static func finish(_ merged: VerifyReport, json: String?, reports: ReportOptions, title: String, startedAt: Date) throws {
        printLine(merged.verdictText)
        let view = merged.mergedRunReport(title: title, inputs: merged.mergedFrom ?? [merged.policy], startedAt: startedAt)
        printVerdicts(view)
        if let json {
            do { try merged.jsonData().write(to: URL(fileURLWithPath: json), options: .atomic) } catch {
                throw CLIError(message: "cannot write --json '\(json)': \(error.localizedDescription)", exitCode: 2)
            }
        }
        try reports.write(view)
        if merged.verdicts.contains(where: { $0.decided && !$0.passed }) { throw CLIError(message: "verdict: FAIL", exitCode: 1) }
        if merged.verdicts.contains(where: { !$0.decided }) {
            throw CLIError(message: "no verdict: undecided on the merged samples", exitCode: 3)
        }
    }
}
