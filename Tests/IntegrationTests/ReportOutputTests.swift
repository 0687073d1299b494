import Foundation
import Testing

extension EndToEnd {
    /// `--junit` and `--html` end to end: the CLI writes them, xmllint checks the JUnit against the Jenkins schema, and a
    /// real headless browser (Debian's Chromium) renders the HTML report.
    ///
    /// Console errors: Chromium started with `--enable-logging=stderr --v=0` logs every console message of the page,
    /// whatever its level, as a `...:CONSOLE...` line on stderr (uncaught exceptions, `console.error`, and requests the
    /// report's Content-Security-Policy blocked, e.g. a font or image from the network). The report has no script, so
    /// any such line is a fault. This is simpler than speaking the DevTools protocol, and the negative controls below
    /// prove the check sees what it must.
    @Suite(.serialized) struct ReportOutputTests {
        static let chromium = "/usr/bin/chromium"
        static let xmllint = "/usr/bin/xmllint"

        static var junitSchemas: [String] {
            let dir = ProcessInfo.processInfo.environment["JUNIT_XSD_DIR"] ?? "/usr/local/share/meshprobe-test/junit-xsd"
            let commits = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
            return commits.sorted().map { "\(dir)/\($0)/junit-10.xsd" }.filter { FileManager.default.fileExists(atPath: $0) }
        }

        /// A fresh directory, removed by the caller.
        func scratch() throws -> URL {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-reports-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            return dir
        }

        /// Runs headless Chromium on a file with console logging on stderr and a throwaway profile.
        func chromium(_ page: String, _ arguments: [String], profile: URL) async throws -> ProcessOutput {
            try #require(FileManager.default.isExecutableFile(atPath: Self.chromium), "chromium is installed by scripts/install-deps")
            return try await run(Self.chromium, ["--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", "--enable-logging=stderr",
                                                 "--v=0", "--user-data-dir=\(profile.path)"] + arguments + ["file://\(page)"], timeout: 90)
        }

        /// The page's console messages in Chromium's log.
        func consoleLines(_ stderr: String) -> [String] {
            stderr.split(separator: "\n").map(String.init).filter { $0.contains(":CONSOLE") }
        }

        func validateJUnit(_ file: String) async throws {
            try #require(FileManager.default.isExecutableFile(atPath: Self.xmllint), "xmllint is installed by scripts/install-deps")
            let schemas = Self.junitSchemas
            try #require(schemas.count == 2, "scripts/install-deps puts junit-10.xsd in /usr/local/share/meshprobe-test/junit-xsd")
            for schema in schemas {
                let out = try await run(Self.xmllint, ["--noout", "--schema", schema, file])
                #expect(out.status == 0, "\(file) against \(schema): \(out.stderr)")
            }
        }

        /// Width, height and how many distinct pixel samples a PNG has (a blank page has one), read by Python's zlib.
        func pngFacts(_ file: String) async throws -> (width: Int, height: Int, distinct: Int) {
            let python = try #require(which("python3"))
            let script = """
                import struct, sys, zlib
                d = open(sys.argv[1], 'rb').read()
                assert d[:8] == b'\\x89PNG\\r\\n\\x1a\\n', 'not a PNG'
                pos, idat, w, h = 8, b'', 0, 0
                while pos < len(d):
                    n, = struct.unpack('>I', d[pos:pos + 4]); kind = d[pos + 4:pos + 8]; body = d[pos + 8:pos + 8 + n]; pos += 12 + n
                    if kind == b'IHDR': w, h = struct.unpack('>II', body[:8])
                    if kind == b'IDAT': idat += body
                raw = zlib.decompress(idat)
                print(w, h, len({raw[i:i + 3] for i in range(0, len(raw) - 3, 101)}))
                """
            let out = try await run(python, ["-c", script, file])
            let numbers = out.stdout.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            try #require(out.status == 0 && numbers.count == 3, "\(out.stdout)\(out.stderr)")
            return (numbers[0], numbers[1], numbers[2])
        }

        @Test func loadWritesJUnitAndAnHTMLReportThatChromiumRendersWithoutConsoleErrors() async throws {
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            let dir = try scratch()
            defer { try? FileManager.default.removeItem(at: dir) }
            let junit = dir.appendingPathComponent("load.xml").path
            let html = dir.appendingPathComponent("load.html").path
            let out = try await run(meshprobeBinary, ["load", "http://127.0.0.1:\(echo.port)/reviews", "--rate", "200", "-d", "2s", "--quiet",
                                                      "--abort-on-error-rate", "0.5", "--junit", junit, "--html", html], timeout: 60)
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            #expect(out.stdout.contains("PASS  the run completed"), "\(out.stdout)")
            try await validateJUnit(junit)
            let xml = try String(contentsOfFile: junit, encoding: .utf8)
            #expect(xml.contains("tests=\"3\" failures=\"0\" errors=\"0\""), "\(xml)")
            #expect(xml.contains("name=\"guard: no second with error rate above 50.0%\""), "\(xml)")

            let dom = try await chromium(html, ["--dump-dom"], profile: dir.appendingPathComponent("profile-dom"))
            #expect(dom.status == 0, "\(dom.stderr)")
            #expect(dom.stdout.components(separatedBy: "class=\"verdict passed\"").count - 1 == 3, "\(dom.stdout.prefix(3000))")
            #expect(dom.stdout.components(separatedBy: "<svg").count - 1 >= 2)
            #expect(dom.stdout.contains("<polyline"), "the latency charts have lines")
            #expect(dom.stdout.contains("<td>reviews</td><td>v1</td>"), "the per-identity table")
            #expect(consoleLines(dom.stderr).isEmpty, "\(consoleLines(dom.stderr))")

            let png = dir.appendingPathComponent("load.png").path
            let shot = try await chromium(html, ["--screenshot=\(png)", "--window-size=1200,1600"], profile: dir.appendingPathComponent("profile-png"))
            #expect(shot.status == 0, "\(shot.stderr)")
            #expect(consoleLines(shot.stderr).isEmpty, "\(consoleLines(shot.stderr))")
            let facts = try await pngFacts(png)
            #expect(facts.width == 1200 && facts.height == 1600, "\(facts)")
            #expect(facts.distinct > 20, "the screenshot looks blank: \(facts)")
        }

        /// Negative controls: the console check sees a script error and a request the CSP blocked.
        @Test func theConsoleCheckSeesScriptErrorsAndBlockedRequests() async throws {
            let dir = try scratch()
            defer { try? FileManager.default.removeItem(at: dir) }
            let broken = dir.appendingPathComponent("broken.html")
            try "<!DOCTYPE html><html><body><p>x</p><script>nosuchfunction();</script></body></html>".write(to: broken, atomically: true, encoding: .utf8)
            let blocked = dir.appendingPathComponent("blocked.html")
            try """
                <!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
                </head><body><img src="http://127.0.0.1:9/x.png"></body></html>
                """.write(to: blocked, atomically: true, encoding: .utf8)
            let a = try await chromium(broken.path, ["--dump-dom"], profile: dir.appendingPathComponent("a"))
            #expect(consoleLines(a.stderr).contains { $0.contains("Uncaught ReferenceError") }, "\(a.stderr)")
            let b = try await chromium(blocked.path, ["--dump-dom"], profile: dir.appendingPathComponent("b"))
            #expect(consoleLines(b.stderr).contains { $0.contains("Content Security Policy") }, "\(b.stderr)")
        }

        /// A reader that goes away (`| head`) loses the rest of the terminal output and nothing else: the run finishes,
        /// exits by its verdict and writes its result.
        @Test func aClosedStandardOutputLosesOnlyTheOutput() async throws {
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            let dir = try scratch()
            defer { try? FileManager.default.removeItem(at: dir) }
            let json = dir.appendingPathComponent("result.json").path
            let out = try await run("/bin/bash", ["-c", "\(meshprobeBinary) load -n 200 http://127.0.0.1:\(echo.port)/ --json \(json) | head -1; exit ${PIPESTATUS[0]}"])
            #expect(out.status == 0 && !out.uncaughtSignal, "\(out.stdout)\(out.stderr)")
            let result = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any]
            #expect((result?["summary"] as? [String: Any])?["succeeded"] as? Int == 200, "\(String(describing: result?["summary"]))")
        }

        /// `--json -` and `--junit -` put the result alone on standard output (a pipeline parses it as it is) and the
        /// lines for people on standard error; two outputs cannot share it.
        @Test func aResultOnStandardOutputIsAloneThere() async throws {
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            let url = "http://127.0.0.1:\(echo.port)/"
            let json = try await run(meshprobeBinary, ["load", "-n", "20", url, "--json", "-"])
            #expect(json.status == 0, "\(json.stderr)")
            let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
            #expect((object?["summary"] as? [String: Any])?["requests"] as? Int == 20)
            #expect(json.stderr.contains("requests:"), "the summary goes to standard error: \(json.stderr)")
            let junit = try await run(meshprobeBinary, ["load", "-n", "20", url, "--junit", "-"])
            #expect(junit.status == 0 && junit.stdout.hasPrefix("<?xml"), "\(junit.stdout)")
            let both = try await run(meshprobeBinary, ["load", "-n", "20", url, "--json", "-", "--junit", "-"])
            #expect(both.status == 2)
            #expect(both.stderr.contains("--json and --junit both write to standard output"), "\(both.stderr)")
        }

        /// A result written to a special file (a FIFO here, `/dev/stdout` alike) is written into it, not swapped for a
        /// regular file by the atomic write's rename; the pipe's reader gets the whole result.
        @Test func aResultToASpecialFileIsWrittenInPlace() async throws {
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            let dir = try scratch()
            defer { try? FileManager.default.removeItem(at: dir) }
            let fifo = dir.appendingPathComponent("result.fifo").path
            let received = dir.appendingPathComponent("received.json").path
            let out = try await run("/bin/bash", ["-c", """
                mkfifo \(fifo) && { cat \(fifo) > \(received) & } && \(meshprobeBinary) load -n 50 --quiet http://127.0.0.1:\(echo.port)/ --json \(fifo); status=$?; wait; exit $status
                """])
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            var info = stat()
            #expect(lstat(fifo, &info) == 0 && info.st_mode & S_IFMT == S_IFIFO, "the FIFO is still a FIFO")
            let result = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: received))) as? [String: Any]
            #expect((result?["summary"] as? [String: Any])?["succeeded"] as? Int == 50)
        }

        @Test func unwritableReportPathsAreBadInputBeforeAnythingRuns() async throws {
            let dir = try scratch()
            defer { try? FileManager.default.removeItem(at: dir) }
            let port = try freePort()
            let missing = try await run(meshprobeBinary, ["load", "-n", "5", "--quiet", "http://127.0.0.1:\(port)/", "--junit", "/nonexistent-dir/out.xml"])
            #expect(missing.status == 2, "\(missing.stdout)\(missing.stderr)")
            #expect(missing.stderr.contains("--junit '/nonexistent-dir/out.xml': the directory '/nonexistent-dir' does not exist"), "\(missing.stderr)")
            #expect(!missing.stdout.contains("requests:"), "no load ran: \(missing.stdout)")
            let directory = try await run(meshprobeBinary, ["verify", "/nonexistent-policy.yaml", "--html", dir.path])
            #expect(directory.status == 2)
            #expect(directory.stderr.contains("--html '\(dir.path)': is a directory"), "\(directory.stderr)")
            let underAFile = dir.appendingPathComponent("file")
            try "x".write(to: underAFile, atomically: true, encoding: .utf8)
            let gameday = try await run(meshprobeBinary, ["gameday", "/nonexistent-gameday.yaml", "--junit", underAFile.path + "/out.xml"])
            #expect(gameday.status == 2)
            #expect(gameday.stderr.contains("does not exist"), "\(gameday.stderr)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["file"], "nothing else was written")
        }

        @Test func aLoadWhereNothingSucceedsIsAJUnitFailureWithTheEvidence() async throws {
            let dir = try scratch()
            defer { try? FileManager.default.removeItem(at: dir) }
            let port = try freePort()
            let junit = dir.appendingPathComponent("refused.xml").path
            let out = try await run(meshprobeBinary, ["load", "-n", "5", "--quiet", "http://127.0.0.1:\(port)/", "--junit", junit], timeout: 30)
            #expect(out.status == 1)
            try await validateJUnit(junit)
            let xml = try String(contentsOfFile: junit, encoding: .utf8)
            #expect(xml.contains("<failure message=\"no request succeeded: most common error connect_refused (5)\" type=\"load\">"), "\(xml)")
            #expect(xml.contains("error connect_refused: 5 requests"), "\(xml)")
        }

        /// Colours on a terminal only: `script` (util-linux) runs the command on a pseudo-terminal.
        @Test func coloursOnATerminalOnlyAndNeverWithNoColor() async throws {
            let script = try #require(which("script"), "script (util-linux) runs a command on a pseudo-terminal")
            let port = try freePort()
            let command = "\(meshprobeBinary) load -n 3 --quiet http://127.0.0.1:\(port)/"
            // The test's own environment may say TERM=dumb or NO_COLOR: give the terminal case a plain one.
            var environment = ProcessInfo.processInfo.environment
            environment["NO_COLOR"] = nil
            environment["TERM"] = "xterm"
            let tty = try await run(script, ["-qec", command, "/dev/null"], timeout: 30, environment: environment)
            #expect(tty.stdout.contains("\u{1B}[31m"), "on a terminal the FAIL is red: \(tty.stdout)")
            let noColor = try await run(script, ["-qec", command, "/dev/null"], timeout: 30,
                                        environment: environment.merging(["NO_COLOR": "1"]) { $1 })
            #expect(!noColor.stdout.contains("\u{1B}["), "\(noColor.stdout)")
            #expect(noColor.stdout.contains("FAIL  requests succeeded"), "\(noColor.stdout)")
            let piped = try await run(meshprobeBinary, ["load", "-n", "3", "--quiet", "http://127.0.0.1:\(port)/"], timeout: 30)
            #expect(!piped.stdout.contains("\u{1B}["), "\(piped.stdout)")
            #expect(piped.stdout.contains("FAIL  requests succeeded  no request succeeded: most common error connect_refused (3)"), "\(piped.stdout)")
        }
    }
}
