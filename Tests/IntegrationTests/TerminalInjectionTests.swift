import Foundation
import Testing

extension EndToEnd {
    /// Escape sequences that come from input (a certificate's URI SAN, a name in a result file) reach the terminal as
    /// text: only meshprobe's own colours colour, even when the input spells one of them.
    @Suite(.timeLimit(.minutes(2))) struct TerminalInjectionTests {
        /// Green "FORGED", then a window-title change: what a hostile name would try.
        static let hostile = "\u{1B}[32mFORGED\u{1B}[0m\u{1B}]0;pwned\u{07}"
        static let shown = "\u{FFFD}[32mFORGED\u{FFFD}[0m\u{FFFD}]0;pwned\u{FFFD}"

        func tempDir() throws -> String {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("terminal-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            return dir
        }

        /// `arguments` run with a terminal as standard output (util-linux `script` gives it a pty), so that meshprobe
        /// colours; what the terminal was sent.
        func onATerminal(_ arguments: [String], dir: String) async throws -> ProcessOutput {
            let script = try #require(which("script"))
            // Every argument is a temporary path or a word without quotes or spaces.
            let command = ([meshprobeBinary] + arguments).map { "'\($0)'" }.joined(separator: " ")
            var environment = ProcessInfo.processInfo.environment
            environment["NO_COLOR"] = nil
            environment["TERM"] = "xterm"
            return try await run(script, ["-qec", command, "\(dir)/typescript"], environment: environment)
        }

        /// The escape sequences in `text`, as `ESC[...m` and the like up to their final letter.
        func sequences(_ text: String) -> Set<String> {
            var out = Set<String>()
            var rest = Substring(text)
            while let escape = rest.firstIndex(of: "\u{1B}") {
                let tail = rest[rest.index(after: escape)...]
                let end = tail.firstIndex(where: { $0.isLetter }) ?? tail.endIndex
                out.insert(String(tail[..<end]) + (end < tail.endIndex ? String(tail[end]) : ""))
                rest = end < tail.endIndex ? tail[tail.index(after: end)...] : ""
            }
            return out
        }

        @Test func pkiInspectShowsAHostileURISANAsText() async throws {
            let openssl = try #require(which("openssl"))
            let dir = try tempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let made = try await run(openssl, ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                                               "-keyout", "\(dir)/key.pem", "-out", "\(dir)/cert.pem", "-days", "1", "-subj", "/CN=hostile",
                                               "-addext", "subjectAltName=URI:spiffe://example.org/\(Self.hostile)"])
            #expect(made.status == 0, "\(made.stderr)")
            let inspect = try await run(meshprobeBinary, ["pki", "inspect", "\(dir)/cert.pem"])
            #expect(inspect.status == 0, "\(inspect.stderr)")
            #expect(inspect.stdout.contains("spiffe://example.org/\(Self.shown)"), "\(inspect.stdout.debugDescription)")
            #expect(!inspect.stdout.contains("\u{1B}") && !inspect.stdout.contains("\u{07}"), "\(inspect.stdout.debugDescription)")
            let terminal = try await onATerminal(["pki", "inspect", "\(dir)/cert.pem"], dir: dir)
            #expect(terminal.stdout.contains(Self.shown), "\(terminal.stdout.debugDescription)")
            #expect(sequences(terminal.stdout).isEmpty, "\(terminal.stdout.debugDescription)")
        }

        /// A game day result whose names were edited to hold escape sequences, merged on a terminal: the verdict table
        /// is coloured (meshprobe's own bold and green), the names are not.
        @Test func namesInAMergedResultCannotColourTheTerminal() async throws {
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            let dir = try tempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try """
                name: plain
                target: http://127.0.0.1:\(echo.port)/
                load: {churn: request}
                gameday:
                  steps:
                    - name: steady
                      rate: 50
                      duration: 1s
                      expect: {successRate: 0.5}
                """.write(toFile: "\(dir)/gameday.yaml", atomically: true, encoding: .utf8)
            let gameday = try await run(meshprobeBinary, ["gameday", "\(dir)/gameday.yaml", "--quiet", "--json", "\(dir)/plain.json"])
            #expect(gameday.status == 0, "\(gameday.stdout)\(gameday.stderr)")
            var result = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/plain.json"))) as? [String: Any])
            result["name"] = "gameday \(Self.hostile)"
            var steps = try #require(result["steps"] as? [[String: Any]])
            steps[0]["name"] = "step \(Self.hostile)"
            result["steps"] = steps
            try JSONSerialization.data(withJSONObject: result).write(to: URL(fileURLWithPath: "\(dir)/hostile.json"))

            let merged = try await onATerminal(["merge", "\(dir)/hostile.json"], dir: dir)
            #expect(merged.status == 0, "\(merged.stdout.debugDescription)\(merged.stderr)")
            #expect(merged.stdout.contains("step \(Self.shown)"), "\(merged.stdout.debugDescription)")
            // Coloured (the terminal was detected), and only with meshprobe's own sequences.
            let seen = sequences(merged.stdout)
            #expect(seen.contains("[1m") && seen.contains("[32m"), "\(merged.stdout.debugDescription)")
            #expect(seen.isSubset(of: ["[0m", "[1m", "[31m", "[32m", "[33m"]), "\(seen)")
            #expect(!merged.stdout.contains("\u{1B}[32mFORGED") && !merged.stdout.contains("\u{07}"), "\(merged.stdout.debugDescription)")
        }
    }
}
