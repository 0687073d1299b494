import Foundation
import Histogram
import MeshprobeHistogram
import MeshprobeTestSupport
import Testing

extension EndToEnd {
    /// `meshprobe merge` end to end: two real `load --json` runs against the echo, merged, equal their sums; a truncated
    /// file is refused with exit 2 naming it, and nothing is written.
    @Suite(.timeLimit(.minutes(2))) struct MergeCLITests {
        @Test func twoLoadRunsMergeToTheirSums() async throws {
            let echo = try await startEcho(version: "v7", tls: nil)
            defer { Task { await echo.close() } }
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("merge-cli-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            // Two shards of one run: started together.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (name, n, query) in [("a", 300, ""), ("b", 200, "?status=503")] {
                    group.addTask {
                        let out = try await run(meshprobeBinary, ["load", "http://127.0.0.1:\(echo.port)/\(query)", "-n", String(n), "-c", "2",
                                                                  "--quiet", "--json", "\(dir)/\(name).json"])
                        #expect(out.status == (query.isEmpty ? 0 : 1), "\(out.stdout)\(out.stderr)")
                    }
                }
                try await group.waitForAll()
            }
            let merged = try await run(meshprobeBinary, ["merge", "\(dir)/a.json", "\(dir)/b.json", "--json", "\(dir)/m.json",
                                                         "--prometheus", "\(dir)/m.prom", "--junit", "\(dir)/m.xml"])
            #expect(merged.status == 0, "\(merged.stderr)")
            // --junit on a load merge writes the merged load's checks (it was accepted and silently skipped).
            let junit = try String(contentsOfFile: "\(dir)/m.xml", encoding: .utf8)
            #expect(junit.contains("<testsuites") && junit.contains("requests succeeded"), "\(junit)")
            func load(_ name: String) throws -> [String: Any] {
                try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(name).json"))) as? [String: Any])
            }
            let a = try load("a"), b = try load("b"), m = try load("m")
            func summary(_ o: [String: Any], _ key: String) -> Int { (o["summary"] as? [String: Any])?[key] as? Int ?? -1 }
            for key in ["requests", "succeeded", "failed", "responses"] {
                #expect(summary(m, key) == summary(a, key) + summary(b, key), "\(key)")
            }
            #expect(summary(m, "requests") == 500)
            // As every command: a summary for people, and the JSON only where --json says (here standard output).
            let summaryOnly = try await run(meshprobeBinary, ["merge", "\(dir)/a.json", "\(dir)/b.json"])
            #expect(summaryOnly.status == 0 && summaryOnly.stdout.contains("requests:") && !summaryOnly.stdout.contains("\"summary\""),
                    "\(summaryOnly.stdout)")
            // The header's connections are the runs' sum; the model line says it is each run's.
            #expect(summaryOnly.stdout.contains("  c=4 m=1\n") && summaryOnly.stdout.contains("model:      each of 2 runs: closed: 2 connections x 1 stream"),
                    "\(summaryOnly.stdout)")
            // A run made an hour later is refused, naming both files and times; --allow-different-times overlays it.
            var later = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/b.json"))) as? [String: Any])
            var meta = try #require(later["meta"] as? [String: Any])
            let startedA = try #require((try load("a")["meta"] as? [String: Any])?["started_at"] as? String)
            let hourLater = try #require(ISO8601DateFormatter().date(from: startedA)).addingTimeInterval(3600)
            let startedLater = ISO8601DateFormatter().string(from: hourLater)
            meta["started_at"] = startedLater
            later["meta"] = meta
            try JSONSerialization.data(withJSONObject: later).write(to: URL(fileURLWithPath: "\(dir)/later.json"))
            let apart = try await run(meshprobeBinary, ["merge", "\(dir)/a.json", "\(dir)/later.json", "--json", "\(dir)/never.json"])
            #expect(apart.status == 2, "\(apart.stdout)\(apart.stderr)")
            #expect(apart.stderr.contains("\(dir)/later.json started at \(startedLater), 3600 s after \(dir)/a.json (\(startedA))")
                    && apart.stderr.contains("--allow-different-times"), "\(apart.stderr)")
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/never.json"))
            let overlaid = try await run(meshprobeBinary, ["merge", "\(dir)/a.json", "\(dir)/later.json", "--allow-different-times"])
            #expect(overlaid.status == 0, "\(overlaid.stderr)")
            let toStdout = try await run(meshprobeBinary, ["merge", "\(dir)/a.json", "\(dir)/b.json", "--json", "-"])
            let piped = try JSONSerialization.jsonObject(with: Data(toStdout.stdout.utf8)) as? [String: Any]
            #expect(summary(piped ?? [:], "requests") == 500, "\(toStdout.stdout)")
            let statuses = (m["summary"] as? [String: Any])?["statuses"] as? [String: Int]
            #expect(statuses == ["200": 300, "503": 200])
            let series = try #require(m["series"] as? [[String: Any]])
            #expect(series.map { $0["requests"] as? Int ?? 0 }.reduce(0, +) == 500)
            // Each merged second's percentiles come from the runs' histograms of that second, merged.
            func seconds(_ o: [String: Any]) -> [Int: [String: Any]] {
                Dictionary(((o["timeline"] as? [[String: Any]]) ?? []).map { ($0["second"] as? Int ?? -1, $0) }, uniquingKeysWith: { a, _ in a })
            }
            let (ta, tb, tm) = (seconds(a), seconds(b), seconds(m))
            #expect(tm.values.reduce(0) { $0 + ($1["responses"] as? Int ?? 0) } == 500)
            for (second, point) in tm where (point["responses"] as? Int ?? 0) > 0 {
                var h = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .two)
                for part in [ta[second], tb[second]] {
                    if let text = part?["histogram"] as? String { h.add(try HistogramCodec.decode(text)) }
                }
                #expect(Int(h.totalCount) == point["responses"] as? Int, "second \(second)")
                let p99 = Double(h.highestEquivalentForValue(h.valueAtPercentile(99))) / 1000
                #expect((point["p99_ms"] as? Double).map { abs($0 - p99) < 0.0005 } == true, "second \(second): \(point) vs \(p99)")
                #expect(point["histogram"] as? String == HistogramCodec.encode(h))
            }
            // The published schema accepts the merged result.
            let schema = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("docs/schema/load-result.schema.json").path
            let python = try #require(which("python3"))
            let check = try await run(python, ["-c", "import json,sys,jsonschema; jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))); print('valid')", "\(dir)/m.json", schema])
            #expect(check.stdout.contains("valid"), "\(check.stderr)")
            // A truncated input: exit 2, the file named, no output written.
            let good = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/a.json"))
            try good.prefix(good.count / 3).write(to: URL(fileURLWithPath: "\(dir)/cut.json"))
            let refused = try await run(meshprobeBinary, ["merge", "\(dir)/a.json", "\(dir)/cut.json", "--json", "\(dir)/never.json"])
            #expect(refused.status == 2)
            #expect(refused.stderr.contains("\(dir)/cut.json"), "\(refused.stderr)")
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/never.json"))
        }

        /// The file of issue 15: a 1.3 MiB result whose latency histogram inflates to 1 GiB (merge once took 2.1 GiB and
        /// exited 0). Under a 1 GiB address-space limit it is refused with exit 2, naming the file, the field and the limit.
        @Test func aResultWithADecompressionBombIsRefusedWithinModestMemory() async throws {
            let echo = try await startEcho(version: "v7", tls: nil)
            defer { Task { await echo.close() } }
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("merge-bomb-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let load = try await run(meshprobeBinary, ["load", "http://127.0.0.1:\(echo.port)/", "-n", "20", "--quiet", "--json", "\(dir)/a.json"])
            #expect(load.status == 0, "\(load.stderr)")
            let bomb = "\(dir)/bomb.json"
            try resultWithABomb("\(dir)/a.json").write(to: URL(fileURLWithPath: bomb))
            let size = try #require(try FileManager.default.attributesOfItem(atPath: bomb)[.size] as? Int)
            #expect(size < 2 << 20, "the bomb file is \(size) bytes")
            let out = try await run("/bin/sh", ["-c", "ulimit -v 1048576 && exec \"$0\" merge \"$1\" --json \"$2\"", meshprobeBinary, bomb, "\(dir)/m.json"])
            #expect(out.status == 2, "\(out.stderr)")
            #expect(out.stderr.contains("\(bomb): histograms.latency: the compressed payload inflates to more than \(HistogramCodec.Limits.maximumPayloadBytes) bytes"), "\(out.stderr)")
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/m.json"))
        }
    }
}

/// The load result in `file` with its latency histogram replaced by a decompression bomb: a valid header and 1 GiB of
/// zeros, about 1 MB of zlib.
func resultWithABomb(_ file: String) throws -> Data {
    var result = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file))) as? [String: Any])
    var histograms = try #require(result["histograms"] as? [String: Any])
    histograms["latency"] = CraftedHistogram.text(try CraftedHistogram.bomb(inflatedBytes: 1 << 30))
    result["histograms"] = histograms
    return try JSONSerialization.data(withJSONObject: result)
}
