import Foundation
import Testing

extension EndToEnd {
    /// `--check` on `run`, `verify` and `gameday` in a pipeline without secrets: the file is read and checked, the
    /// identity's files are named but never read, the plan goes to stdout, an error is exit 2 at FILE:LINE:COLUMN and
    /// the field; and `--target`, `--svid-dir`, `--set` run a file written for a cluster against a lab.
    @Suite(.timeLimit(.minutes(2))) struct CheckModeTests {
        let dir: URL
        /// An SVID directory that is not there, as a cluster's mounted secret is not on a CI runner.
        let secrets = "/var/run/secrets/meshprobe-test-\(UUID().uuidString)"

        init() throws {
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-check-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        }

        func write(_ name: String, _ text: String) throws -> String {
            let path = dir.appendingPathComponent(name).path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        func policy(expect: String = "split: {v1: 100}") throws -> String {
            try write("policy-\(UUID().uuidString).yaml", """
                policy: meshprobe.policy/v1
                name: reviews answers as v1
                target: https://reviews.bookinfo.svc.cluster.local:8443/reviews
                identity: {svidDir: \(secrets), expectPeer: spiffe://example.org/ns/default/sa/reviews}
                load: {connections: 2, streams: 4}
                expect:
                  \(expect)
                """)
        }

        @Test func verifyCheckReadsNoIdentityFileAndPrintsThePlan() async throws {
            defer { try? FileManager.default.removeItem(at: dir) }
            let file = try policy(expect: "split: {v1: 90, v2: 10}\n  slo: {successRate: 0.99}")
            let out = try await run(meshprobeBinary, ["verify", file, "--check"], timeout: 30)
            #expect(out.status == 0, "\(out.stderr)")
            #expect(out.stdout.contains("\(file): valid policy 'reviews answers as v1'"), "\(out.stdout)")
            #expect(out.stdout.contains("identity: svidDir \(secrets) (not read: --check)"), "\(out.stdout)")
            #expect(out.stdout.contains("targets: https://reviews.bookinfo.svc.cluster.local:8443/reviews"), "\(out.stdout)")
            #expect(out.stdout.contains("split 'reviews answers as v1': v1 90, v2 10") && out.stdout.contains("SLO: success rate >= 0.99"), "\(out.stdout)")

            // The overrides show in the plan, marked.
            let changed = try await run(meshprobeBinary, ["verify", file, "--check", "--target", "https://127.0.0.1:9443/", "--svid-dir", "/lab/prober",
                                                          "--set", "load.connections=8"], timeout: 30)
            #expect(changed.status == 0, "\(changed.stderr)")
            #expect(changed.stdout.contains("targets: https://127.0.0.1:9443/ (from --target)"), "\(changed.stdout)")
            #expect(changed.stdout.contains("svidDir /lab/prober (from --svid-dir /lab/prober) (not read: --check); expectPeer spiffe://example.org/ns/default/sa/reviews\n"),
                    "\(changed.stdout)")
            #expect(changed.stdout.contains("closed: 8 connections x 4 streams (from --set load.connections=8); at most 20000 requests per check\n"), "\(changed.stdout)")
            #expect(changed.stdout.contains("  outputs: none (the results are only printed)"), "\(changed.stdout)")
        }

        /// Each field the overrides changed is marked with its own source, and no other; a change to a field the plan
        /// does not show is listed at its end. With a result on standard output (`--json -`), standard output stays
        /// empty (nothing is written under --check) and the plan, on standard error, names where each result would go.
        @Test func thePlanMarksEachChangedFieldAndNamesTheOutputs() async throws {
            defer { try? FileManager.default.removeItem(at: dir) }
            let file = try policy(expect: "split: {v1: 90, v2: 10}\n  maxRequests: 300")
            let junit = dir.appendingPathComponent("verdicts.xml").path
            let out = try await run(meshprobeBinary, ["verify", file, "--check", "--json", "-", "--junit", junit,
                                                      "--set", "identity.expectPeer=spiffe://lab/ns/default/sa/echo", "--set", "expect.maxRequests=500",
                                                      "--set", "expect.tolerance=0.04", "--set", "load.timeout=3s"], timeout: 30)
            #expect(out.status == 0, "\(out.stderr)")
            #expect(out.stdout.isEmpty, "\(out.stdout)")
            #expect(out.stderr.contains("identity: svidDir \(secrets) (not read: --check); expectPeer spiffe://lab/ns/default/sa/echo (from --set identity.expectPeer=spiffe://lab/ns/default/sa/echo)\n"),
                    "\(out.stderr)")
            #expect(out.stderr.contains("closed: 2 connections x 4 streams; at most 500 requests per check (from --set expect.maxRequests=500)\n"), "\(out.stderr)")
            #expect(out.stderr.contains("tolerance 0.04 (from --set expect.tolerance=0.04), false-fail <= 0.001"), "\(out.stderr)")
            #expect(out.stderr.contains("  outputs: JSON to standard output, JUnit to \(junit) (not written: --check)\n"), "\(out.stderr)")
            #expect(out.stderr.contains("  other changes (not shown above): --set load.timeout=3s\n"), "\(out.stderr)")
            #expect(!FileManager.default.fileExists(atPath: junit))
            // A scenario's output.json is named, and what changed it.
            let scenario = try write("scenario.yaml", """
                target: http://127.0.0.1:9/
                load: {requests: 10}
                output: {json: out.json}
                """)
            let plan = try await run(meshprobeBinary, ["run", scenario, "--check", "--set", "output.json=changed.json"], timeout: 30)
            #expect(plan.status == 0, "\(plan.stderr)")
            #expect(plan.stdout.contains("  outputs: JSON to \(dir.appendingPathComponent("changed.json").path) (output.json, from --set output.json=changed.json) (not written: --check)\n"),
                    "\(plan.stdout)")
        }

        @Test func aFileErrorIsExit2AtItsLineAndFieldAndSaysWhenTheValueCameFromSet() async throws {
            defer { try? FileManager.default.removeItem(at: dir) }
            let bad = try policy(expect: "split: {v1: 90, v2: 20}")
            let out = try await run(meshprobeBinary, ["verify", bad, "--check"], timeout: 30)
            #expect(out.status == 2)
            #expect(out.stderr.contains("\(bad):7:10: expect.split: the weights sum to 110, not 100"), "\(out.stderr)")
            #expect(out.stdout.isEmpty, "\(out.stdout)")
            let weights = try await run(meshprobeBinary, ["verify", try policy(expect: "split: {v1: 90, v2: 10}"), "--check", "--set", "expect.split.v1=80"], timeout: 30)
            #expect(weights.status == 2)
            #expect(weights.stderr.contains("expect.split: the weights sum to 90, not 100") && weights.stderr.contains("(with --set expect.split.v1=80)"), "\(weights.stderr)")
            let set = try await run(meshprobeBinary, ["verify", try policy(), "--check", "--set", "load.connections=0"], timeout: 30)
            #expect(set.status == 2)
            #expect(set.stderr.contains(":5:21: load.connections: must be at least 1, got 0 (the value comes from --set load.connections=0)"), "\(set.stderr)")
            // A plaintext target with the file's expectPeer: checked without any file.
            let plain = try await run(meshprobeBinary, ["verify", try policy(), "--check", "--target", "http://127.0.0.1:9080/"], timeout: 30)
            #expect(plain.status == 2)
            #expect(plain.stderr.contains(":4:") && plain.stderr.contains("identity.expectPeer: needs an https:// or grpcs:// URL"), "\(plain.stderr)")
        }

        @Test func everyMistakeOfAFileIsListedWithTheCountAndExit2InEveryMode() async throws {
            defer { try? FileManager.default.removeItem(at: dir) }
            let bad = try write("broken-policy.yaml", """
                policy: meshprobe.policy/v1
                target: https://reviews:8443/
                identity: {svidDir: \(secrets)}
                load: {connections: 0}
                expect:
                  split: {v1: 90, v2: 20}
                  mtls: optional
                """)
            let check = try await run(meshprobeBinary, ["verify", bad, "--check"], timeout: 30)
            #expect(check.status == 2)
            #expect(check.stderr.split(separator: "\n").map(String.init) == [
                "meshprobe: \(bad):4:21: load.connections: must be at least 1, got 0",
                "meshprobe: \(bad):6:10: expect.split: the weights sum to 110, not 100 (Istio's rule for route weights)",
                "meshprobe: \(bad):7:9: expect.mtls: expected required, or {caller: SPIFFE_ID}",
                "meshprobe: 3 errors in \(bad)",
            ], "\(check.stderr)")
            #expect(check.stdout.isEmpty, "\(check.stdout)")
            // A run refuses the file with the same list, before anything is sent.
            let real = try await run(meshprobeBinary, ["verify", bad], timeout: 30)
            #expect(real.status == 2 && real.stderr == check.stderr, "\(real.stderr)")

            let scenario = try write("broken-scenario.yaml", "target: http://127.0.0.1:1/\nload: {requests: 0}\nrequest: {path: nope}\n")
            let load = try await run(meshprobeBinary, ["run", scenario], timeout: 30)
            #expect(load.status == 2)
            #expect(load.stderr.contains("\(scenario):2:18: load.requests: must be at least 1, got 0\nmeshprobe: \(scenario):3:17: request.path")
                    && load.stderr.hasSuffix("meshprobe: 2 errors in \(scenario)\n"), "\(load.stderr)")

            let gameday = try write("broken-gameday.yaml", """
                target: http://127.0.0.1:1/
                gameday:
                  steps:
                    - {name: a, rate: 10}
                    - {name: b, rate: 10, duration: 1s, expect: {p99: 1}}
                """)
            let day = try await run(meshprobeBinary, ["gameday", gameday, "--check"], timeout: 30)
            #expect(day.status == 2)
            #expect(day.stderr.contains(":4:7: gameday.steps[0]: a load step needs a duration") && day.stderr.contains(":5:55: gameday.steps[1].expect.p99")
                    && day.stderr.hasSuffix("meshprobe: 2 errors in \(gameday)\n"), "\(day.stderr)")
        }

        @Test func runAndGameDayCheckNeedNoSVIDDirectoryEither() async throws {
            defer { try? FileManager.default.removeItem(at: dir) }
            let scenario = try write("scenario.yaml", """
                target: https://reviews:8443/
                identity: {svidDir: \(secrets)}
                load: {connections: 2, requests: 100}
                """)
            let run1 = try await run(meshprobeBinary, ["run", scenario, "--check"], timeout: 30)
            #expect(run1.status == 0, "\(run1.stderr)")
            #expect(run1.stdout.contains("identity: svidDir \(secrets) (not read: --check)") && run1.stdout.contains("100 requests"), "\(run1.stdout)")
            // Without --check the same file is refused naming its field: the run needs the files.
            let real = try await run(meshprobeBinary, ["run", scenario], timeout: 30)
            #expect(real.status == 2 && real.stderr.contains("identity.svidDir") && real.stderr.contains("no such directory"), "\(real.stderr)")

            let gameday = try write("gameday.yaml", """
                name: lint me
                target: https://reviews:8443/
                identity: {svidDir: \(secrets)}
                gameday:
                  steps:
                    - {name: base, rate: 10, duration: 5s}
                    - {name: broken, rate: 10, duration: 5s, faults: [{target: "https://10.0.0.7:8443", status: 503}]}
                """)
            let day = try await run(meshprobeBinary, ["gameday", gameday, "--check", "--target", "https://127.0.0.1:8443/"], timeout: 30)
            #expect(day.status == 0, "\(day.stderr)")
            #expect(day.stdout.contains("valid game day 'lint me'") && day.stdout.contains("2. broken: 10 req/s for 5s; faults on https://10.0.0.7:8443"), "\(day.stdout)")
            #expect(day.stdout.contains("targets: https://127.0.0.1:8443/ (from --target)"), "\(day.stdout)")
            let capped = try await run(meshprobeBinary, ["gameday", gameday, "--check", "--set", "gameday.steps[1].rate=2000"], timeout: 30)
            #expect(capped.status == 2)
            #expect(capped.stderr.contains(":7:") && capped.stderr.contains("gameday.steps[1].rate") && capped.stderr.contains("--max-rate")
                    && capped.stderr.contains("(the value comes from --set gameday.steps[1].rate=2000)"), "\(capped.stderr)")
        }

        /// A policy written for a cluster runs against a lab echo over mTLS with --target and --svid-dir, unedited.
        @Test func targetAndSVIDDirRunAClusterPolicyAgainstALab() async throws {
            defer { try? FileManager.default.removeItem(at: dir) }
            let pki = dir.appendingPathComponent("pki").path
            for arguments in [["pki", "ca", "--trust-domain", "example.org", "--out", pki],
                              ["pki", "issue", "--ca-dir", pki, "--spiffe-id", "spiffe://example.org/ns/default/sa/reviews", "--out", "\(pki)/reviews"],
                              ["pki", "issue", "--ca-dir", pki, "--spiffe-id", "spiffe://example.org/ns/default/sa/prober", "--out", "\(pki)/prober"]] {
                let out = try await run(meshprobeBinary, arguments, timeout: 30)
                try #require(out.status == 0, "\(out.stderr)")
            }
            let port = try freePort()
            let echo = try await BackgroundProcess(meshprobeBinary, ["echo", "--listen", "127.0.0.1:\(port)", "--svid-dir", "\(pki)/reviews",
                                                                     "--workload", "reviews", "--workload-version", "v1"], waitForPort: port)
            defer { echo.stop() }
            let file = try policy()
            let out = try await run(meshprobeBinary, ["verify", file, "--quiet", "--target", "https://127.0.0.1:\(port)/reviews",
                                                      "--svid-dir", "\(pki)/prober"], timeout: 90)
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            #expect(out.stdout.contains("PASS"), "\(out.stdout)")
        }
    }
}
