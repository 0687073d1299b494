import Foundation
import MeshprobeTestSupport
import NIOConcurrencyHelpers
import Testing

extension EndToEnd {
    /// The command line: exit codes, the lab PKI, and the demo, run as a user would.
    @Suite(.timeLimit(.minutes(2))) struct CLITests {
        /// A usage error is two lines, as kubectl's: the command, the flag and what is wrong, then where the help is;
        /// never the parser's block of usage.
        @Test func usageErrorsExitWith2AndNameTheFlag() async throws {
            let noEnd = try await run(meshprobeBinary, ["load", "http://127.0.0.1:1/"])
            #expect(noEnd.status == 2)
            #expect(noEnd.stderr == "meshprobe load: give --requests (-n), --duration (-d) or --stage, so the run ends on its own\nsee 'meshprobe load --help'\n",
                    "\(noEnd.stderr)")
            let rate = try await run(meshprobeBinary, ["load", "-n", "1", "--rate", "fast", "http://127.0.0.1:1/"])
            #expect(rate.status == 2)
            #expect(rate.stderr.hasPrefix("meshprobe load: --rate: 'fast': ") && rate.stderr.hasSuffix("\nsee 'meshprobe load --help'\n")
                    && rate.stderr.split(separator: "\n").count == 2, "\(rate.stderr)")
            for (arguments, expected) in [(["load", "-n"], "meshprobe load: -n: needs a value (<requests>)"),
                                          (["load", "-n", "1", "--quiet=yes", "http://127.0.0.1:1/"], "meshprobe load: --quiet: takes no value, but 'yes' was given"),
                                          (["verify"], "meshprobe verify: missing expected argument '<file>'"),
                                          (["pki", "issue", "--trust-domain", "lab"], "meshprobe pki issue: missing expected argument '--ca-dir <ca-dir>'"),
                                          (["--frobnicate"], "meshprobe: --frobnicate: unknown option")] {
                let out = try await run(meshprobeBinary, arguments)
                let command = expected.prefix { $0 != ":" }
                #expect(out.status == 2 && out.stderr == "\(expected)\nsee '\(command) --help'\n", "\(arguments): \(out.stderr)")
            }
            let badURL = try await run(meshprobeBinary, ["load", "-n", "1", "ftp://x/"])
            #expect(badURL.status == 2)
            #expect(badURL.stderr.contains("ftp://x/"))
            let badHeader = try await run(meshprobeBinary, ["load", "-n", "1", "-H", "nocolon", "http://127.0.0.1:1/"])
            #expect(badHeader.status == 2)
            #expect(badHeader.stderr.contains("nocolon"))
            let noBundle = try await run(meshprobeBinary, ["load", "-n", "1", "https://127.0.0.1:1/"])
            #expect(noBundle.status == 2)
            #expect(noBundle.stderr.contains("trust bundle"))
            let longWindow = try await run(meshprobeBinary, ["load", "-n", "1", "--coalesce-window", "150ms", "http://127.0.0.1:1/"])
            #expect(longWindow.status == 2)
            #expect(longWindow.stderr.contains("--coalesce-window"))
            let missingKey = try await run(meshprobeBinary, ["echo", "--cert", "/nonexistent/cert.pem", "--key", "/nonexistent/key.pem"])
            #expect(missingKey.status == 2)
            #expect(missingKey.stderr.contains("/nonexistent/cert.pem"))
        }

        /// `-o json` and `-o junit` are `--json -` and `--junit -`: the result alone on standard output, the lines for
        /// people on standard error; beside the flag it stands for, or with another output on standard output, refused.
        @Test func dashOIsTheResultOnStandardOutput() async throws {
            // Nothing listens on port 1: the run fails (exit 1), and its result is still written.
            let json = try await run(meshprobeBinary, ["load", "http://127.0.0.1:1/", "-n", "3", "-o", "json"])
            #expect(json.status == 1, "\(json.stderr)")
            let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
            #expect((object?["summary"] as? [String: Any])?["requests"] as? Int == 3, "\(json.stdout)")
            #expect(json.stderr.contains("requests:"), "\(json.stderr)")
            let junit = try await run(meshprobeBinary, ["load", "http://127.0.0.1:1/", "-n", "3", "--output", "junit"])
            #expect(junit.status == 1 && junit.stdout.hasPrefix("<?xml") && junit.stdout.contains("<testsuites"), "\(junit.stdout)")
            for (arguments, expected) in [(["-o", "json", "--json", "r.json"], "meshprobe load: -o json writes the JSON result to standard output, and --json r.json to a file: give one of them"),
                                          (["-o", "junit", "--junit", "r.xml"], "meshprobe load: -o junit writes the JUnit XML to standard output, and --junit r.xml to a file: give one of them"),
                                          (["-o", "yaml"], "meshprobe load: -o: 'yaml': expected json (the JSON result, as --json -) or junit (the JUnit XML, as --junit -)"),
                                          (["-o", "json", "--junit", "-"], "meshprobe: -o json and --junit both write to standard output")] {
                let out = try await run(meshprobeBinary, ["load", "http://127.0.0.1:1/", "-n", "3"] + arguments)
                #expect(out.status == 2 && out.stderr.hasPrefix(expected) && out.stdout.isEmpty, "\(arguments): \(out.stderr)")
            }
        }

        /// Each command's help lists what it takes, once: the exports of one load's result only where there is one, and
        /// no flag of a subcommand under the name of a global one.
        @Test func helpListsWhatACommandTakesOnce() async throws {
            for command in ["verify", "gameday", "demo"] {
                let help = try await run(meshprobeBinary, [command, "--help"])
                #expect(!help.stdout.contains("--smp") && !help.stdout.contains("--hgrm"), "\(command)")
            }
            for command in ["load", "run", "merge"] {
                let help = try await run(meshprobeBinary, [command, "--help"])
                #expect(help.stdout.contains("--smp <file>") && help.stdout.contains("--hgrm <file>"), "\(command)")
            }
            let echo = try await run(meshprobeBinary, ["echo", "--help"])
            #expect(echo.stdout.components(separatedBy: "  --version").count == 2, "\(echo.stdout)")
            #expect(echo.stdout.contains("--workload-version <workload-version>"))
        }

        /// A port that is taken is said in one line, for the echo and for `--metrics-listen`, with the address as typed
        /// (not NIO's `[IPv4]127.0.0.1/127.0.0.1:PORT` or the socket call and errno).
        @Test func aPortInUseIsSaidInOneLine() async throws {
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            let taken = "127.0.0.1:\(echo.port)"
            let second = try await run(meshprobeBinary, ["echo", "--h2c", "--listen", taken], timeout: 20)
            #expect(second.status == 2)
            #expect(second.stderr == "meshprobe: --listen: cannot listen on \(taken): in use by another process\n")
            let metrics = try await run(meshprobeBinary, ["load", "-n", "1", "--metrics-listen", taken, "http://\(taken)/"], timeout: 20)
            #expect(metrics.status == 2)
            #expect(metrics.stderr.contains("--metrics-listen: cannot listen on \(taken): in use by another process"), "\(metrics.stderr)")
            #expect(!metrics.stderr.contains("errno"))
        }

        /// `/dev/null`, `/dev/zero` or a FIFO where a file is read (a policy, scenario or game day, a result to merge, a
        /// certificate or key) is named for what it is, exit 2 at once (no read of /dev/zero, no wait for a FIFO's writer).
        /// A client SVID that expires during the run, with no rotation: the echo resumes TLS sessions, so requests need
        /// not fail, and the summary warns that it expired (the trial's finding: nothing said so).
        @Test func anSVIDThatExpiresDuringTheRunIsWarnedAbout() async throws {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-expiry-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            #expect(try await run(meshprobeBinary, ["pki", "ca", "--trust-domain", "example.org", "--out", "\(dir)/ca"]).status == 0)
            #expect(try await run(meshprobeBinary, ["pki", "issue", "--ca-dir", "\(dir)/ca", "--spiffe-id", "spiffe://example.org/ns/a/sa/echo",
                                                    "--dns", "localhost", "--out", "\(dir)/echo"]).status == 0)
            #expect(try await run(meshprobeBinary, ["pki", "issue", "--ca-dir", "\(dir)/ca", "--spiffe-id", "spiffe://example.org/ns/a/sa/prober",
                                                    "--valid-for", "2s", "--out", "\(dir)/prober"]).status == 0)
            let (echo, port) = try await BackgroundProcess.onFreePort { port in
                try await BackgroundProcess(meshprobeBinary, ["echo", "--listen", "127.0.0.1:\(port)", "--svid-dir", "\(dir)/echo"],
                                            waitForPort: port, timeout: 20)
            }
            defer { echo.stop() }
            let out = try await run(meshprobeBinary, ["load", "https://127.0.0.1:\(port)/", "--svid-dir", "\(dir)/prober", "-c", "1", "-d", "4s"],
                                    timeout: 60)
            #expect(out.stdout.contains("warning: the client SVID (spiffe://example.org/ns/a/sa/prober) expired at "), "\(out.stdout)\(out.stderr)")
            #expect(out.stdout.contains("no rotation replaced it"), "\(out.stdout)")
        }

        @Test func specialFilesAreNamedForWhatTheyAre() async throws {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-special-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let fifo = "\(dir)/pipe"
            #expect(mkfifo(fifo, 0o600) == 0)
            #expect(try await run(meshprobeBinary, ["pki", "ca", "--trust-domain", "example.org", "--out", "\(dir)/ca"]).status == 0)
            #expect(try await run(meshprobeBinary, ["pki", "issue", "--ca-dir", "\(dir)/ca", "--spiffe-id", "spiffe://example.org/ns/a/sa/b",
                                                    "--out", "\(dir)/svid"]).status == 0)
            let device = "is a character device, not a regular file", pipe = "is a FIFO (named pipe), not a regular file"
            let tls = ["load", "-n", "1", "--ca", "\(dir)/svid/root-cert.pem", "https://127.0.0.1:9/"]
            let cases: [([String], String)] = [
                (["verify", "/dev/null"], "/dev/null:1:1: the file \(device)"),
                (["verify", fifo], "\(fifo):1:1: the file \(pipe)"),
                (["run", "/dev/zero"], "/dev/zero:1:1: the file \(device)"),
                (["gameday", fifo], "\(fifo):1:1: the file \(pipe)"),
                (["merge", "/dev/zero"], "/dev/zero: \(device)"),
                (["merge", fifo], "\(fifo): \(pipe)"),
                (["merge", dir], "\(dir): is a directory, not a regular file"),
                (tls + ["--cert", "/dev/zero", "--key", "\(dir)/svid/key.pem"], "certificate chain file /dev/zero \(device)"),
                (tls + ["--cert", "\(dir)/svid/cert-chain.pem", "--key", fifo], "private key file \(fifo) \(pipe)"),
                (["load", "-n", "1", "--ca", "/dev/null", "https://127.0.0.1:9/"], "trust bundle file /dev/null \(device)"),
                (["load", "-n", "1", "--csv", "/dev/zero", "http://127.0.0.1:9/"], "--csv '/dev/zero': \(device)"),
                (["pki", "inspect", fifo], "\(fifo): \(pipe)"),
            ]
            for (arguments, expected) in cases {
                let out = try await run(meshprobeBinary, arguments, timeout: 20)
                #expect(out.status == 2, "\(arguments): \(out.stderr)")
                #expect(out.stderr.contains(expected), "\(arguments): \(out.stderr)")
                #expect(!out.stderr.contains("permissions"), "\(arguments): \(out.stderr)")
            }
        }

        /// A flag's error names it as the user typed it (`-n`, not `--requests`), and a duration without a unit is
        /// refused wherever it is given (flags, a scenario file, the echo's flags), naming the units.
        @Test func flagErrorsNameTheFlagAsTypedAndDurationsNeedAUnit() async throws {
            let url = "http://127.0.0.1:9/"
            let noUnit = "has no unit: write 10s or 10ms (units: us, ms, s, m or h)"
            let cases: [([String], String, String?)] = [
                (["load", "-n", "0", url], "-n must be at least 1", "--requests"),
                (["load", "--requests", "0", url], "--requests must be at least 1", nil),
                (["load", "--requests=0", url], "--requests must be at least 1", nil),
                (["load", "--requests", "5", "-n", "0", url], "-n must be at least 1", "--requests"),
                (["load", "-n", "1", "-c", "0", url], "-c must be at least 1", "--connections"),
                (["load", "-n", "1", "-c", "200000", url], "-c '200000': must be at most 100000", "--connections"),
                (["load", "-n", "1", "--connections", "200000", url], "--connections '200000': must be at most 100000", nil),
                (["load", "-d", "10", url], "-d: '10' \(noUnit)", "--duration"),
                (["load", "--duration=10", url], "--duration: '10' \(noUnit)", nil),
                (["load", "-n", "1", "--timeout", "10", url], "--timeout: '10' \(noUnit)", nil),
                (["load", "-n", "1", "--warmup", "10", url], "--warmup: '10' \(noUnit)", nil),
                (["load", "--stage", "10:5", url], "--stage: '10:5': '10' \(noUnit)", nil),
                (["load", "-d", "0", url], "-d: '0': expected a positive duration", nil),
                (["demo", "-n", "0"], "-n 0: must be at least 1", "--requests"),
                (["echo", "--h2c", "--max-delay", "10"], "--max-delay: '10' \(noUnit)", nil),
            ]
            for (arguments, expected, absent) in cases {
                let out = try await run(meshprobeBinary, arguments, timeout: 20)
                #expect(out.status == 2, "\(arguments): \(out.stderr)")
                #expect(out.stderr.contains(expected), "\(arguments): \(out.stderr)")
                if let absent { #expect(!out.stderr.contains(absent), "\(arguments): \(out.stderr)") }
            }
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-units-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try "target: \(url)\nload:\n  duration: 10\n".write(toFile: "\(dir)/s.yaml", atomically: true, encoding: .utf8)
            let scenario = try await run(meshprobeBinary, ["run", "\(dir)/s.yaml"])
            #expect(scenario.status == 2)
            #expect(scenario.stderr.contains("\(dir)/s.yaml:3:13: load.duration: '10' \(noUnit)"), "\(scenario.stderr)")
        }

        @Test func aScenarioFileIsRefusedByItsFieldsNeverByFlags() async throws {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-fields-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try "target: http://127.0.0.1:1/\nload:\n  duration: 5s\n  warmup: 5s\n".write(toFile: "\(dir)/warmup.yaml", atomically: true, encoding: .utf8)
            let warmup = try await run(meshprobeBinary, ["run", "\(dir)/warmup.yaml"])
            #expect(warmup.status == 2)
            #expect(warmup.stderr.contains("\(dir)/warmup.yaml:4:11: load.warmup: '5s': must be shorter than the run (5s)"), "\(warmup.stderr)")
            #expect(!warmup.stderr.contains("--warmup"), "\(warmup.stderr)")
            try "target: https://127.0.0.1:1/\nidentity:\n  svidDir: \(dir)/missing\nload: {requests: 1}\n"
                .write(toFile: "\(dir)/svid.yaml", atomically: true, encoding: .utf8)
            let svid = try await run(meshprobeBinary, ["run", "\(dir)/svid.yaml"])
            #expect(svid.status == 2)
            #expect(svid.stderr.contains("\(dir)/svid.yaml:3:12: identity.svidDir: '\(dir)/missing': no such directory"), "\(svid.stderr)")
            #expect(!svid.stderr.contains("--svid-dir"), "\(svid.stderr)")
        }

        @Test func loadWhereNothingSucceedsExitsWith1() async throws {
            let port = try freePort()
            let out = try await run(meshprobeBinary, ["load", "-n", "5", "--quiet", "http://127.0.0.1:\(port)/"], timeout: 30)
            #expect(out.status == 1)
            #expect(out.stdout.contains("connect_refused"))
        }

        @Test func pkiIssuesSVIDsThatOpenSSLVerifies() async throws {
            let openssl = try #require(which("openssl"))
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-cli-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: dir) }
            #expect(try await run(meshprobeBinary, ["pki", "ca", "--trust-domain", "example.org", "--out", "\(dir)/ca"]).status == 0)
            let issue = try await run(meshprobeBinary, ["pki", "issue", "--ca-dir", "\(dir)/ca", "--spiffe-id", "spiffe://example.org/ns/default/sa/web",
                                                  "--dns", "web.default.svc", "--out", "\(dir)/web"])
            #expect(issue.status == 0, "\(issue.stderr)")
            let attributes = try FileManager.default.attributesOfItem(atPath: "\(dir)/web/key.pem")
            #expect((attributes[.posixPermissions] as? Int) == 0o600)
            let verify = try await run(openssl, ["verify", "-CAfile", "\(dir)/web/root-cert.pem", "\(dir)/web/cert-chain.pem"])
            #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
            let text = try await run(openssl, ["x509", "-in", "\(dir)/web/cert-chain.pem", "-noout", "-text"])
            #expect(text.stdout.contains("URI:spiffe://example.org/ns/default/sa/web"))
            #expect(text.stdout.contains("CA:FALSE"))
            let inspect = try await run(meshprobeBinary, ["pki", "inspect", "\(dir)/web/cert-chain.pem", "\(dir)/web/key.pem"])
            #expect(inspect.stdout.contains("spiffe://example.org/ns/default/sa/web"))
            #expect(!inspect.stdout.contains("PRIVATE KEY"))
            let bad = try await run(meshprobeBinary, ["pki", "issue", "--ca-dir", "\(dir)/ca", "--spiffe-id", "spiffe://Example.org/x", "--out", "\(dir)/x"])
            #expect(bad.status == 2)
            #expect(bad.stderr.contains("--spiffe-id"))
            // A lab set for access checks: each SVID in OUT/NAME, and the identities a policy needs for them.
            let set = try await run(meshprobeBinary, ["pki", "issue", "--ca-dir", "\(dir)/ca", "--spiffe-id", "spiffe://example.org/ns/web/sa/frontend",
                                                      "--spiffe-id", "spiffe://example.org/ns/jobs/sa/batch", "--out", "\(dir)/set"])
            #expect(set.status == 0, "\(set.stderr)")
            #expect(set.stdout.contains("identities:") && set.stdout.contains("  spiffe://example.org/ns/jobs/sa/batch: {svidDir: \(dir)/set/batch}"), "\(set.stdout)")
            for name in ["frontend", "batch"] {
                let chain = try await run(openssl, ["verify", "-CAfile", "\(dir)/set/\(name)/root-cert.pem", "\(dir)/set/\(name)/cert-chain.pem"])
                #expect(chain.status == 0, "\(name): \(chain.stdout)\(chain.stderr)")
            }
            let clash = try await run(meshprobeBinary, ["pki", "issue", "--ca-dir", "\(dir)/ca", "--spiffe-id", "spiffe://example.org/ns/a/sa/x",
                                                        "--spiffe-id", "spiffe://example.org/ns/b/sa/x", "--out", "\(dir)/clash"])
            #expect(clash.status == 2 && clash.stderr.contains("two IDs end in 'x'"), "\(clash.stderr)")
        }

        @Test func echoAndLoadProcessesWithSVIDDirectoriesAndAFederatedBundle() async throws {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-cli-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: dir) }
            // Two trust domains: the echo lives in east.example, the prober in west.example (federation).
            for td in ["east.example", "west.example"] {
                #expect(try await run(meshprobeBinary, ["pki", "ca", "--trust-domain", td, "--out", "\(dir)/\(td)"]).status == 0)
            }
            #expect(try await run(meshprobeBinary, ["pki", "issue", "--ca-dir", "\(dir)/east.example", "--spiffe-id",
                                              "spiffe://east.example/ns/shop/sa/cart", "--out", "\(dir)/cart"]).status == 0)
            #expect(try await run(meshprobeBinary, ["pki", "issue", "--ca-dir", "\(dir)/west.example", "--spiffe-id",
                                              "spiffe://west.example/ns/ops/sa/prober", "--out", "\(dir)/prober"]).status == 0)
            let port = try freePort()
            var environment = ProcessInfo.processInfo.environment
            environment["POD_NAME"] = "cart-7d9f8b6c5-x2x9z"
            environment["POD_NAMESPACE"] = "shop"
            environment["MESHPROBE_VERSION"] = "v7"
            environment["MESHPROBE_CLUSTER"] = "eu-1"
            let echo = try await BackgroundProcess(meshprobeBinary, [
                "echo", "--listen", "127.0.0.1:\(port)", "--cert", "\(dir)/cart/cert-chain.pem", "--key", "\(dir)/cart/key.pem",
                "--trust-bundle", "west.example=\(dir)/west.example/ca.pem",
            ], waitForPort: port, environment: environment)
            defer { echo.stop() }
            let json = "\(dir)/result.json"
            let out = try await run(meshprobeBinary, [
                "load", "https://127.0.0.1:\(port)/cart", "-c", "2", "-m", "4", "-n", "200", "--quiet",
                "--svid-dir", "\(dir)/prober", "--trust-bundle", "east.example=\(dir)/east.example/ca.pem",
                "--expect-peer", "spiffe://east.example/ns/shop/sa/cart", "--json", json,
            ], timeout: 60)
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            let data = try #require(FileManager.default.contents(atPath: json))
            let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            #expect((object["summary"] as? [String: Any])?["succeeded"] as? Int == 200)
            let workload = try #require((object["workloads"] as? [[String: Any]])?.first)
            // Downward-API defaults: the workload name is the pod name without its ReplicaSet and pod hashes.
            #expect(workload["workload"] as? String == "cart")
            #expect(workload["version"] as? String == "v7")
            #expect(workload["cluster"] as? String == "eu-1")
            #expect(workload["identity"] as? String == "spiffe://east.example/ns/shop/sa/cart")
            let callers = (object["connections"] as? [String: Any])?["callers_seen_by_server"] as? [String: Int]
            #expect(callers == ["spiffe://west.example/ns/ops/sa/prober": 200])

            // The same prober without the east bundle cannot verify the echo: unknown CA, exit 1.
            let untrusted = try await run(meshprobeBinary, [
                "load", "https://127.0.0.1:\(port)/", "-n", "5", "--quiet", "--svid-dir", "\(dir)/prober",
            ], timeout: 60)
            #expect(untrusted.status == 1)
            #expect(untrusted.stdout.contains("tls_unknown_ca: 5 requests"), "\(untrusted.stdout)")
        }

        @Test(arguments: [SIGTERM, SIGINT])
        func signalStopsTheRunWritesAPartialResultAndExitsWith3(signal: Int32) async throws {
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            let json = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-sig-\(UUID().uuidString).json").path
            defer { try? FileManager.default.removeItem(atPath: json) }
            let process = try SignalledProcess(meshprobeBinary, [
                "load", "http://127.0.0.1:\(echo.port)/?delay=300ms:20", "--rate", "200", "-d", "60s", "-c", "2", "-m", "50", "--quiet", "--json", json,
            ])
            let launched = process.started
            try await Task.sleep(for: .milliseconds(1500))
            let signalled = Date()
            let (took, output) = try await process.signal(signal, timeout: 10)
            // The figure (0.3 s) is measured on a quiet machine by bench/shutdown.sh; this test checks only that the
            // process stops on its own, within its 1 s grace plus room for a loaded two-core machine.
            #expect(took < 5.0, "exited \(took)s after the signal")
            #expect(output.status == 3, "\(output.stderr)")
            let data = try #require(FileManager.default.contents(atPath: json))
            let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            let summary = try #require(object["summary"] as? [String: Any])
            #expect(summary["aborted"] as? Bool == true)
            #expect((summary["succeeded"] as? Int ?? 0) > 100)
            // Stopped at once: no more than 200/s until the signal (plus the grace second), nowhere near 60 s worth.
            let ranFor = signalled.timeIntervalSince(launched)
            #expect(Double(summary["requests"] as? Int ?? 0) <= 200 * (ranFor + 1) + 20, "ran \(ranFor)s before the signal")
        }

        @Test func runExecutesAScenarioFileAndReportsItsErrorsByLine() async throws {
            let echo = try await startEcho(version: "v4", tls: nil)
            defer { Task { await echo.close() } }
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-run-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            try "code\n201\n202\n".write(to: dir.appendingPathComponent("codes.csv"), atomically: true, encoding: .utf8)
            let good = dir.appendingPathComponent("ok.yaml")
            try """
                scenario: meshprobe.scenario/v1
                name: echo smoke
                target: http://127.0.0.1:\(echo.port)/?status={{csv:code}}
                load:
                  connections: 1
                  streams: 4
                  rate: 200
                  duration: 1s
                request:
                  headers: {x-id: "{{uuid}}"}
                  csv: codes.csv
                output: {json: result.json}
                """.write(to: good, atomically: true, encoding: .utf8)
            let out = try await run(meshprobeBinary, ["run", good.path, "--quiet"], timeout: 30)
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            let data = try #require(FileManager.default.contents(atPath: dir.appendingPathComponent("result.json").path))
            let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            let summary = try #require(object["summary"] as? [String: Any])
            #expect(summary["statuses"] as? [String: Int] == ["201": 100, "202": 100])
            #expect((object["meta"] as? [String: Any])?["model"] as? String == "open: 200 req/s, uniform arrivals")

            let bad = dir.appendingPathComponent("bad.yaml")
            try "target: http://127.0.0.1:1/\nload:\n  requests: 5\n  streems: 4\n".write(to: bad, atomically: true, encoding: .utf8)
            let refused = try await run(meshprobeBinary, ["run", bad.path, "--check"], timeout: 30)
            #expect(refused.status == 2)
            #expect(refused.stderr.contains("bad.yaml:4:3: load.streems: unknown field"), "\(refused.stderr)")
            #expect(try await run(meshprobeBinary, ["run", good.path, "--check"]).status == 0)
        }

        @Test func runWithSetupStepsAndTeardown() async throws {
            let echo = try await startEcho(version: "v5", tls: nil)
            defer { Task { await echo.close() } }
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-flow-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            let file = dir.appendingPathComponent("flow.yaml")
            try """
                target: http://127.0.0.1:\(echo.port)/
                load: {connections: 1, streams: 4, requests: 25}
                setup:
                  - name: prepare
                    path: /prepare?status=201
                    extract: {code: {json: status}}
                steps:
                  - name: a
                    path: /a?status={{var:code}}
                    extract: {who: {header: x-meshprobe-workload}}
                  - name: b
                    path: /b/{{var:who}}?status=202
                teardown:
                  - name: cleanup
                    method: DELETE
                    path: /cleanup?status=204
                output: {json: result.json}
                """.write(to: file, atomically: true, encoding: .utf8)
            let out = try await run(meshprobeBinary, ["run", file.path], timeout: 60)
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            #expect(out.stderr.contains("setup done"))
            #expect(out.stderr.contains("teardown done"))
            #expect(out.stdout.contains("by step (25 iterations ran every step)"))
            // 1 setup + 25 x 2 steps + 1 teardown.
            #expect(echo.requestsServed == 52)
            let data = try #require(FileManager.default.contents(atPath: dir.appendingPathComponent("result.json").path))
            let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            #expect((object["summary"] as? [String: Any])?["statuses"] as? [String: Int] == ["201": 25, "202": 25])
            #expect((object["steps"] as? [[String: Any]])?.map { $0["name"] as? String } == ["a", "b"])

            // A setup that fails sends no load and exits 3.
            let broken = dir.appendingPathComponent("broken.yaml")
            try """
                target: http://127.0.0.1:\(echo.port)/
                load: {requests: 5}
                setup: [{name: prepare, path: /prepare?status=503}]
                steps: [{name: a, path: /a}]
                """.write(to: broken, atomically: true, encoding: .utf8)
            let before = echo.requestsServed
            let failed = try await run(meshprobeBinary, ["run", broken.path, "--quiet"], timeout: 60)
            #expect(failed.status == 3)
            #expect(failed.stderr.contains("setup failed"))
            #expect(echo.requestsServed == before + 1)
        }

        @Test func scenarioExamplesValidateAgainstThePublishedSchema() async throws {
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            let python = try #require(which("python3"))
            let script = """
                import glob, json, sys, yaml, jsonschema
                schema = json.load(open(sys.argv[1]))
                files = sorted(glob.glob(sys.argv[2] + '/*.yaml'))
                for f in files:
                    jsonschema.validate(yaml.safe_load(open(f)), schema)
                print('valid', len(files))
                """
            let out = try await run(python, ["-c", script, root.appendingPathComponent("docs/schema/scenario.schema.json").path,
                                       root.appendingPathComponent("scenarios").path])
            #expect(out.stdout.contains("valid 4"), "\(out.stdout)\(out.stderr)")
        }

        @Test func demoShowsBothWorkloadsAndPasses() async throws {
            let json = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-demo-\(UUID().uuidString).json").path
            defer { try? FileManager.default.removeItem(atPath: json) }
            let out = try await run(meshprobeBinary, ["demo", "-n", "1000", "--json", json], timeout: 90)
            // The circuit breaker's timing on a starved machine may be UNDECIDED, naming the lag (exit 3), never a FAIL.
            let busy = out.status == 3 && out.stdout.contains("UNDECIDED  circuit breaker at 10 as declared")
                && out.stdout.contains("late") && !out.stdout.contains("FAIL")
            #expect(out.status == 0 || busy, "\(out.stdout)\(out.stderr)")
            #expect(out.stdout.contains(busy ? "UNDECIDED: a check could not decide" : "PASS: the demo mesh behaves as declared"))
            #expect(out.stdout.contains("PASS  canary split 90/10 as declared"), "\(out.stdout)")
            if !busy { #expect(out.stdout.contains("PASS  circuit breaker at 10 as declared"), "\(out.stdout)") }
            #expect(out.stdout.contains("v1"))
            #expect(out.stdout.contains("v2"))
            let data = try #require(FileManager.default.contents(atPath: json))
            let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            let summary = try #require(object["summary"] as? [String: Any])
            #expect(summary["requests"] as? Int == 1000)
            #expect(summary["succeeded"] as? Int == 1000)
            let latency = try #require(summary["latency_ms"] as? [String: Any])
            for key in ["p50", "p90", "p99", "p999", "max"] { #expect(latency[key] is Double || latency[key] is Int) }
            // The published schema accepts it (Python's jsonschema, a real validator).
            let schema = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("docs/schema/load-result.schema.json").path
            let python = try #require(which("python3"))
            let check = try await run(python, ["-c", "import json,sys,jsonschema; jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))); print('valid')", json, schema])
            #expect(check.stdout.contains("valid"), "\(check.stderr)")
            let workloads = try #require(object["workloads"] as? [[String: Any]])
            #expect(workloads.count == 2)
            for w in workloads {
                for key in ["identity", "workload", "version", "cluster", "requests", "latency_ms", "errors"] { #expect(w[key] != nil, "\(key)") }
            }
        }
    }
}
