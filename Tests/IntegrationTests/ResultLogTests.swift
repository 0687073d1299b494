import Foundation
import MeshprobeReport
import Testing

extension EndToEnd {
    /// `--json-log` through the binary: a Job's log (standard output and standard error together) carries the JSON
    /// result between the marker lines, and scripts/extract-result cuts out what `--json` writes, byte for byte.
    @Suite struct ResultLogTests {
        /// Standard output holds the block alone (begin line, JSON, end line); the summary and verdicts go to
        /// standard error; the JSON between the markers is the `--json` file's, and decodes as the load's result.
        @Test func loadWritesItsResultBetweenTheMarkersOnStandardOutput() async throws {
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            let dir = try makeTemporaryDirectory("meshprobe-result-log")
            defer { removeTemporaryDirectory(dir) }
            let out = try await run(meshprobeBinary, ["load", "-n", "20", "http://127.0.0.1:\(echo.port)/", "--json-log", "--json", "\(dir)/result.json"])
            #expect(out.status == 0, "\(out.stderr)")
            var lines = out.stdout.split(separator: "\n", omittingEmptySubsequences: false)
            #expect(lines.first == Substring(ResultLog.json.begin), "\(out.stdout.prefix(200))")
            #expect(lines.suffix(2) == [Substring(ResultLog.json.end), ""], "\(out.stdout.suffix(200))")
            lines = Array(lines.dropFirst().dropLast(2))
            let json = lines.map { $0 + "\n" }.joined()
            let file = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/result.json"))
            #expect(Data(json.utf8) == (file.last == UInt8(ascii: "\n") ? file : file + Data("\n".utf8)))
            let report = try ResultMerger.read(data: Data(json.utf8), name: "the log's result")
            #expect(report.summary.requests == 20 && report.summary.succeeded == 20)
            #expect(out.stderr.contains("requests:") && out.stderr.contains("PASS"), "the lines for people go to standard error: \(out.stderr)")

            // The log as kubectl shows it (both streams, the lines for people around the block): the script gives
            // the JSON back.
            try Data((out.stderr + out.stdout + "meshprobe: a line after the result\n").utf8).write(to: URL(fileURLWithPath: "\(dir)/pod.log"))
            let extracted = try await run(packageRoot.appendingPathComponent("scripts/extract-result").path, ["\(dir)/pod.log"])
            #expect(extracted.status == 0, "\(extracted.stderr)")
            #expect(extracted.stdout == json)

            // merge writes the same block; with nothing to cut out, the script exits 1.
            let merged = try await run(meshprobeBinary, ["merge", "\(dir)/result.json", "--json-log"])
            #expect(merged.status == 0, "\(merged.stderr)")
            let mergedJSON = try #require(ResultLog.json.extract(merged.stdout))
            #expect(try ResultMerger.read(data: Data(mergedJSON.utf8), name: "merged").summary.requests == 20)
            #expect(merged.stdout.hasPrefix(ResultLog.json.begin + "\n") && merged.stdout.hasSuffix(ResultLog.json.end + "\n"), "\(merged.stdout.prefix(200))")
            let none = try await run(packageRoot.appendingPathComponent("scripts/extract-result").path, [], stdin: out.stderr)
            #expect(none.status == 1 && none.stdout.isEmpty && none.stderr.contains("no complete meshprobe block"), "\(none.stderr)")
        }

        /// `--junit-log` beside `--json-log`: both blocks on standard output, the JSON's then the JUnit's, and the script
        /// gives back the `--junit` file's XML, which xmllint parses.
        @Test func theJUnitXMLGoesToTheLogBesideTheResult() async throws {
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            let dir = try makeTemporaryDirectory("meshprobe-junit-log")
            defer { removeTemporaryDirectory(dir) }
            let out = try await run(meshprobeBinary, ["load", "-n", "20", "http://127.0.0.1:\(echo.port)/", "--json-log", "--junit-log",
                                                      "--junit", "\(dir)/junit.xml"])
            #expect(out.status == 0, "\(out.stderr)")
            #expect(out.stdout.hasPrefix(ResultLog.json.begin + "\n") && out.stdout.hasSuffix("\n" + ResultLog.junit.end + "\n"), "\(out.stdout)")
            #expect(out.stdout.contains("\n\(ResultLog.json.end)\n\(ResultLog.junit.begin)\n<?xml"), "\(out.stdout)")
            #expect(out.stderr.contains("requests:"), "\(out.stderr)")
            let script = packageRoot.appendingPathComponent("scripts/extract-result").path
            let junit = try await run(script, ["--junit"], stdin: out.stderr + out.stdout)
            #expect(junit.status == 0, "\(junit.stderr)")
            let file = try String(contentsOfFile: "\(dir)/junit.xml", encoding: .utf8)
            #expect(junit.stdout == (file.hasSuffix("\n") ? file : file + "\n"))
            let xmllint = try #require(which("xmllint"), "scripts/install-deps installs libxml2-utils")
            try junit.stdout.write(toFile: "\(dir)/extracted.xml", atomically: true, encoding: .utf8)
            #expect(try await run(xmllint, ["--noout", "\(dir)/extracted.xml"]).status == 0)
            let json = try await run(script, [], stdin: out.stdout)
            #expect(try ResultMerger.read(data: Data(json.stdout.utf8), name: "the log's result").summary.succeeded == 20)
        }

        /// `--json -` stays pure JSON for `| jq`; with `--json-log` beside it the command is refused before any load.
        @Test func theLogAndJSONOnStandardOutputAreRefusedTogether() async throws {
            let out = try await run(meshprobeBinary, ["load", "-n", "20", "http://127.0.0.1:9/", "--json", "-", "--json-log"])
            #expect(out.status == 2 && out.stdout.isEmpty, "\(out.stdout)\(out.stderr)")
            #expect(out.stderr.contains("--json and --json-log both write to standard output"), "\(out.stderr)")
        }
    }
}
