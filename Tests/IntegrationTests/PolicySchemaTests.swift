import Foundation
import Testing

extension EndToEnd {
    /// The published policy and game-day schemas (docs/schema/policy.schema.json, gameday.schema.json), checked with
    /// Python's `jsonschema`, a real validator: the examples pass them, broken files do not, and they are what their
    /// generator writes.
    @Suite(.timeLimit(.minutes(2))) struct PolicySchemaTests {
        private var root: URL {
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        }

        private var schema: String { root.appendingPathComponent("docs/schema/policy.schema.json").path }

        @Test func policyExamplesValidateAgainstThePublishedSchema() async throws {
            let python = try #require(which("python3"))
            let directory = root.appendingPathComponent("policies")
            let examples = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".yaml") }
            #expect(examples.count >= 5, "\(examples)")
            let script = """
                import glob, json, sys, yaml, jsonschema
                schema = json.load(open(sys.argv[1]))
                files = sorted(glob.glob(sys.argv[2] + '/*.yaml'))
                for f in files:
                    try:
                        jsonschema.validate(yaml.safe_load(open(f)), schema)
                    except jsonschema.ValidationError as e:
                        sys.exit('%s: %s at %s' % (f, e.message, '/'.join(map(str, e.absolute_path))))
                print('valid', len(files))
                """
            let out = try await run(python, ["-c", script, schema, directory.path])
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            #expect(out.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "valid \(examples.count)", "\(out.stdout)\(out.stderr)")
        }

        /// Validates one policy (YAML text); "valid" or "invalid: why" on stdout, exit 0 or 1.
        private func validate(_ yaml: String) async throws -> ProcessOutput {
            let python = try #require(which("python3"))
            let script = """
                import json, sys, yaml, jsonschema
                try:
                    jsonschema.validate(yaml.safe_load(sys.argv[2]), json.load(open(sys.argv[1])))
                except jsonschema.ValidationError as e:
                    print('invalid:', e.message)
                    sys.exit(1)
                print('valid')
                """
            return try await run(python, ["-c", script, schema, yaml])
        }

        /// A scenario part every case shares; the cases add `expect` (and `policy`, unless they give their own).
        private static let head = """
            target: https://reviews.bookinfo.svc.cluster.local:8443/reviews
            identity: {svidDir: /var/run/secrets/workload-spiffe-credentials, expectPeer: cluster.local}

            """

        private func policy(_ body: String) -> String {
            Self.head + (body.hasPrefix("policy:") ? "" : "policy: meshprobe.policy/v1\n") + body
        }

        @Test func brokenPoliciesAreRejected() async throws {
            // The controls pass, so each broken case fails for its own reason, not for the shared head.
            let controls = [
                "expect: {split: {v1: 90, v2: 10}}\n",
                """
                expect:
                  recognise: header:x-served-by
                  map: {reviews-v1: v1, reviews-v2: v2}
                  routes:
                    - name: jason
                      match: {headers: {end-user: jason, x-tenant: {regex: "t-[0-9]+", send: t-1}}, path: {prefix: /a}, method: GET}
                      split: {v2: 100}
                    - split: {v1: 90, v2: 10}
                  mtls: {caller: spiffe://cluster.local/ns/bookinfo/sa/productpage}
                  propagation: {timeout: 30s, window: 1s, stable: 3}
                  clusters: {reach: [east, west], avoid: [central]}
                  tolerance: 0.05
                """,
            ]
            for control in controls {
                let out = try await validate(policy(control))
                #expect(out.status == 0 && out.stdout.hasPrefix("valid"), "a control was rejected: \(out.stdout)\(out.stderr)")
            }

            let cases: [(name: String, body: String)] = [
                ("both split and routes", """
                    expect:
                      split: {v1: 90, v2: 10}
                      routes: [{split: {v1: 100}}]
                    """),
                ("a header regex without send", """
                    expect:
                      routes: [{match: {headers: {x-tenant: {regex: "t-[0-9]+"}}}, split: {v1: 100}}]
                    """),
                ("a path regex without send", """
                    expect:
                      routes: [{match: {path: {regex: "/a/[0-9]+"}}, split: {v1: 100}}]
                    """),
                ("tolerance 0.7", """
                    expect:
                      split: {v1: 90, v2: 10}
                      tolerance: 0.7
                    """),
                ("an unknown expect key", """
                    expect:
                      split: {v1: 90, v2: 10}
                      weights: {v1: 90, v2: 10}
                    """),
                ("no expect", "name: nothing to check\n"),
                ("another policy version", "policy: meshprobe.policy/v2\nexpect: {split: {v1: 100}}\n"),
                ("a negative weight", "expect: {split: {v1: 110, v2: -10}}\n"),
                ("two kinds in one header match", "expect: {routes: [{match: {headers: {x: {exact: a, prefix: b}}}, split: {v1: 100}}]}\n"),
                ("a route without split", "expect: {routes: [{name: jason, match: {headers: {end-user: jason}}}]}\n"),
                ("an unknown recogniser", "expect: {recognise: pod, split: {v1: 100}}\n"),
                ("stable below 2", "expect: {split: {v1: 100}, propagation: {timeout: 30s, stable: 1}}\n"),
                ("clusters with neither reach nor avoid", "expect: {split: {v1: 100}, clusters: {}}\n"),
                ("an mTLS caller that is no SPIFFE ID", "expect: {split: {v1: 100}, mtls: {caller: cluster.local}}\n"),
            ]
            for (name, body) in cases {
                let out = try await validate(policy(body))
                #expect(out.status != 0 && out.stdout.contains("invalid:"), "\(name) was not rejected: \(out.stdout)\(out.stderr)")
            }
        }

        @Test func retriesAreCheckedByTheSchemaToo() async throws {
            let valid = try await validate(policy("expect: {retries: {attempts: 2, perTryTimeout: 200ms, retryOn: [5xx, 503], timeout: 1s, requests: 30}}\n"))
            #expect(valid.status == 0, "\(valid.stdout)\(valid.stderr)")
            for (name, retries) in [("11 attempts", "{attempts: 11}"), ("a per-try timeout without attempts", "{timeout: 2s, perTryTimeout: 1s}"),
                                    ("neither attempts nor timeout", "{requests: 10}"), ("an unknown key", "{attempts: 1, tries: 2}"),
                                    ("an empty retryOn", "{attempts: 1, retryOn: \"\"}")] {
                let out = try await validate(policy("expect: {retries: \(retries)}\n"))
                #expect(out.status != 0 && out.stdout.contains("invalid:"), "\(name) was not rejected: \(out.stdout)\(out.stderr)")
            }
        }

        @Test(arguments: [("policy.schema.json", [String]()), ("gameday.schema.json", ["--gameday"])])
        func thePublishedSchemaIsWhatTheGeneratorWrites(file: String, flags: [String]) async throws {
            let python = try #require(which("python3"))
            let output = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-schema-\(UUID().uuidString).json")
            defer { try? FileManager.default.removeItem(at: output) }
            let out = try await run(python, [root.appendingPathComponent("scripts/gen-policy-schema").path] + flags + [output.path])
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            let generated = try Data(contentsOf: output)
            let published = try Data(contentsOf: root.appendingPathComponent("docs/schema/\(file)"))
            #expect(generated == published, "docs/schema/\(file) is stale: run scripts/gen-policy-schema")
        }

        /// The game-day schema: the example passes, and a step the parser refuses the schema refuses too (two kinds in
        /// one step, a fault target that is not a control API, a load step without a duration, an unknown key).
        @Test func gameDaysValidateAgainstTheirSchemaAndBrokenStepsDoNot() async throws {
            let python = try #require(which("python3"))
            let script = """
                import copy, json, sys, yaml, jsonschema
                schema = json.load(open(sys.argv[1]))
                example = yaml.safe_load(open(sys.argv[2]))
                jsonschema.validate(example, schema)
                broken = {
                    'two kinds': {'name': 'x', 'rate': 10, 'duration': '5s', 'circuitBreaker': {'maxRequests': 1}},
                    'http target': {'rate': 10, 'duration': '5s', 'faults': [{'target': 'http://reviews-v1:8443', 'status': 503}]},
                    'no duration': {'rate': 10},
                    'unknown key': {'rate': 10, 'duration': '5s', 'fualts': []},
                    'bare latency': {'rate': 10, 'duration': '5s', 'expect': {'p99': 250}},
                }
                for name, step in broken.items():
                    day = copy.deepcopy(example)
                    day['gameday']['steps'] = [step]
                    try:
                        jsonschema.validate(day, schema)
                        sys.exit('accepted: ' + name)
                    except jsonschema.ValidationError:
                        pass
                print('ok')
                """
            let out = try await run(python, ["-c", script, root.appendingPathComponent("docs/schema/gameday.schema.json").path,
                                             root.appendingPathComponent("gamedays/reviews.yaml").path])
            #expect(out.status == 0 && out.stdout.contains("ok"), "\(out.stdout)\(out.stderr)")
        }
    }
}
