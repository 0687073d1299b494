import Foundation
import Testing

extension EndToEnd {
    /// `meshprobe merge` of load results ends as one run would, on the merged summary.
    @Suite(.timeLimit(.minutes(2))) struct MergeOutcomeTests {
        @Test func resultsWhereNothingSucceededMergeToExitOne() async throws {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("merge-outcome-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            // Nothing listens on port 1: every connection is refused, nothing succeeds (exit 1 each).
            for name in ["a", "b"] {
                let out = try await run(meshprobeBinary, ["load", "http://127.0.0.1:1/", "-n", "5", "--quiet", "--json", "\(dir)/\(name).json"])
                #expect(out.status == 1, "\(out.stdout)\(out.stderr)")
            }
            // One run after the other: overlaid as if together.
            let merged = try await run(meshprobeBinary, ["merge", "\(dir)/a.json", "\(dir)/b.json", "--json", "\(dir)/m.json", "--allow-different-times"])
            #expect(merged.status == 1, "\(merged.stdout)\(merged.stderr)")
            #expect(merged.stderr.contains("no request succeeded") || merged.stderr.contains("ended before its planned end"), "\(merged.stderr)")
            #expect(FileManager.default.fileExists(atPath: "\(dir)/m.json"), "the merged result is written before the exit")
        }
    }
}
