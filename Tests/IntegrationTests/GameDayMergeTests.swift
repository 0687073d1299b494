import Foundation
import Histogram
import MeshprobeHistogram
import Testing

extension EndToEnd {
    /// `meshprobe merge` on game day results: one game day file run twice at once, as from two clusters (each run's
    /// target path from its environment: one healthy, one where the echo fails 60% of requests), merged. The load step's
    /// counts add, its objective is decided again on the merged samples (each file alone: pass and fail; merged: fail, the runs' evidence multiplied),
    /// and its latency objective is judged on the merged histogram. Kinds mixed, an old version, another file: exit 2 naming the file.
    @Suite(.timeLimit(.minutes(2))) struct GameDayMergeTests {
        func json(_ path: String) throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        }

        @Test func twoRunsOfOneGameDayMergeAndTheObjectiveIsDecidedAgain() async throws {
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gameday-merge-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let file = "\(dir)/gameday.yaml"
            try """
                name: two clusters
                target: http://127.0.0.1:\(echo.port)/
                request: {path: "/{{env:GD_PATH}}"}
                load: {connections: 2, streams: 10, churn: request}   # a connection per request: each request a sample
                gameday:
                  steps:
                    - name: steady
                      rate: 200
                      duration: 2s
                      expect: {successRate: 0.75, p90: 5s}   # p99 would need about 650 responses to decide
                """.write(toFile: file, atomically: true, encoding: .utf8)
            var environment = ProcessInfo.processInfo.environment
            func runGameDay(_ name: String, path: String) async throws -> ProcessOutput {
                environment["GD_PATH"] = path
                return try await run(meshprobeBinary, ["gameday", file, "--quiet", "--json", "\(dir)/\(name).json"], timeout: 60,
                                     environment: environment)
            }
            // One cluster healthy (passes), the other failing 60% of requests (about 0.4 succeed: fails 0.75).
            let healthy = try await runGameDay("east", path: "reviews")
            #expect(healthy.status == 0, "\(healthy.stdout)\(healthy.stderr)")
            let failing = try await runGameDay("west", path: "reviews?status=503:60")
            #expect(failing.status == 1, "\(failing.stdout)\(failing.stderr)")

            // Merged: the runs' bound evidence multiplies; west's strong evidence of a share below 0.75 outweighs east's
            // (about 0.7 of all requests succeeded, but one cluster is well below the objective): FAIL.
            let merge = try await run(meshprobeBinary, ["merge", "\(dir)/east.json", "\(dir)/west.json", "--json", "\(dir)/all.json",
                                                        "--junit", "\(dir)/all.xml", "--html", "\(dir)/all.html"])
            #expect(merge.status == 1, "\(merge.stdout)\(merge.stderr)")
            let east = try json("\(dir)/east.json"), west = try json("\(dir)/west.json"), all = try json("\(dir)/all.json")
            #expect(all["schema"] as? String == "meshprobe.gameday.result/v2")
            #expect(all["merged_from"] as? [String] == ["\(dir)/east.json", "\(dir)/west.json"])
            #expect(all["sha256"] as? String == east["sha256"] as? String)
            func step(_ o: [String: Any]) -> [String: Any] { (o["steps"] as? [[String: Any]])?.first ?? [:] }
            func summary(_ o: [String: Any]) -> [String: Any] { (step(o)["result"] as? [String: Any])?["summary"] as? [String: Any] ?? [:] }
            for key in ["requests", "succeeded", "failed"] {
                #expect(summary(all)[key] as? Int == (summary(east)[key] as? Int ?? -1) + (summary(west)[key] as? Int ?? -1), "\(key)")
            }
            #expect(step(all)["requests"] as? Int == (step(east)["requests"] as? Int ?? -1) + (step(west)["requests"] as? Int ?? -1))
            let succeeded = Double(summary(all)["succeeded"] as? Int ?? 0), requests = Double(summary(all)["requests"] as? Int ?? 1)
            let verdicts = step(all)["verdicts"] as? [[String: Any]] ?? []
            try #require(verdicts.count == 2, "\(verdicts)")
            let rate = verdicts[0]["evidence"] as? [String: Any]
            // The samples are connections (one request each, but a connection may carry a second while it retires):
            // their mean share is the share of requests that succeeded, within what those few shared connections move.
            let samples = rate?["requests"] as? Int ?? 0
            #expect(samples <= Int(requests) && samples >= Int(requests * 0.9), "\(samples) connections for \(requests) requests")
            let observed = (rate?["observed"] as? [String: Double])?["observed"] ?? -1
            #expect(abs(observed - succeeded / requests) < 0.02, "\(observed) against \(succeeded / requests)")
            #expect(verdicts[0]["passed"] as? Bool == false && verdicts[0]["decided"] as? Bool == true && step(all)["passed"] as? Bool == false)
            #expect((step(west)["verdicts"] as? [[String: Any]])?.first?["passed"] as? Bool == false)

            // The merged histogram is the two runs' histograms added: not an average; every response was under 5 s.
            func latency(_ o: [String: Any]) throws -> Histogram<UInt64> {
                let histograms = try #require((step(o)["result"] as? [String: Any])?["histograms"] as? [String: Any])
                return try HistogramCodec.decode(try #require(histograms["latency"] as? String))
            }
            var added = try latency(east)
            added.add(try latency(west))
            #expect(try latency(all) == added)
            let fast = (verdicts[1]["evidence"] as? [String: Any]).flatMap { ($0["observed"] as? [String: Double])?["observed"] }
            #expect(fast == Double(added.count(within: 0...5_000_000)) / Double(added.totalCount), "\(verdicts[1])")
            #expect(verdicts[1]["passed"] as? Bool == true, "\(verdicts[1])")

            // The reports: a suite for the step in JUnit, the merged load in the HTML.
            let xml = try String(contentsOfFile: "\(dir)/all.xml", encoding: .utf8)
            #expect(xml.contains("<testsuite name=\"steady\" tests=\"2\" failures=\"1\" errors=\"0\""), "\(xml)")
            let page = try String(contentsOfFile: "\(dir)/all.html", encoding: .utf8)
            #expect(page.contains("merged game day two clusters"))

            // The published schema (docs/schema/gameday-result.schema.json) accepts both runs and their merge, each load
            // step's result included, and rejects a step whose load result was cut short.
            for name in ["east", "west", "all"] { #expect(try await ResultSchema.gameday.violation(in: "\(dir)/\(name).json") == nil, "\(name)") }
            let cutShort = try await ResultSchema.gameday.violation(in: "\(dir)/all.json") { object in
                var steps = object["steps"] as? [[String: Any]] ?? []
                var result = steps[0]["result"] as? [String: Any] ?? [:]
                result["summary"] = nil
                steps[0]["result"] = result
                object["steps"] = steps
            }
            #expect(cutShort?.contains("'summary' is a required property") == true, "\(cutShort ?? "accepted")")

            // Bad input: kinds mixed, a v1 result, a run of another file; exit 2 naming the file, nothing written.
            let load = try await run(meshprobeBinary, ["load", "http://127.0.0.1:\(echo.port)/", "-n", "10", "--quiet", "--json", "\(dir)/load.json"])
            #expect(load.status == 0)
            var old = west
            old["schema"] = "meshprobe.gameday.result/v1"
            try JSONSerialization.data(withJSONObject: old).write(to: URL(fileURLWithPath: "\(dir)/old.json"))
            let oldVersion = try await ResultSchema.gameday.violation(in: "\(dir)/old.json")
            #expect(oldVersion?.contains("at /schema:") == true, "\(oldVersion ?? "accepted")")
            try (try String(contentsOfFile: file, encoding: .utf8) + "\n# another file\n").write(toFile: file, atomically: true, encoding: .utf8)
            let other = try await runGameDay("other", path: "reviews")
            #expect(other.status == 0, "\(other.stderr)")
            for (bad, expected) in [("load.json", "a load result"), ("old.json", "meshprobe.gameday.result/v1"), ("other.json", "another game day file")] {
                let refused = try await run(meshprobeBinary, ["merge", "\(dir)/east.json", "\(dir)/\(bad)", "--json", "\(dir)/never.json"])
                #expect(refused.status == 2, "\(bad): \(refused.stdout.prefix(300))\(refused.stderr)")
                #expect(refused.stderr.contains("\(dir)/\(bad)") && refused.stderr.contains(expected), "\(refused.stderr)")
                #expect(!FileManager.default.fileExists(atPath: "\(dir)/never.json"))
            }
        }
    }
}
