import Foundation
import MeshprobeIdentity
import MeshprobeSpec
import MeshprobeStatistics
import Testing
@testable import MeshprobePolicy

@Suite struct PolicyTests {

    @Test func readsASplitWithItsStatisticsAndDefaultsTheRequestCap() throws {
        let path = try writeTemporaryYAML("""
            policy: meshprobe.policy/v1
            name: reviews canary
            target: http://127.0.0.1:8080/reviews
            expect:
              recognise: header:X-Served-By
              map: {reviews-blue: v1, reviews-green: v2}
              split: {v1: 90, v2: 10}
              tolerance: 0.03
              falseFailRate: 0.01
              missRate: 0.05
            """)
        defer { removeTemporary(path) }
        let policy = try Policy.load(path: path, environment: [:])
        #expect(policy.name == "reviews canary")
        #expect(policy.routes[0].weights == ["v1": 90, "v2": 10])
        #expect(policy.routes[0].recognizer == .header("x-served-by"))
        #expect(policy.routes[0].mapping == ["reviews-blue": "v1", "reviews-green": "v2"])
        #expect(policy.routes[0].statistics == SplitTestConfiguration(tolerance: 0.03, falseFailRate: 0.01, missRate: 0.05, maxSamples: 20_000))
        #expect(policy.scenario.plan.requests == 20_000)
        #expect(policy.scenario.plan.identityHeader == "x-served-by")
    }

    @Test func aPolicyMayHoldOnlySLOsWithAnyPercentile() throws {
        let path = try writeTemporaryYAML("""
            policy: meshprobe.policy/v1
            target: http://127.0.0.1:8080/reviews
            expect:
              slo: {successRate: 0.99, p95: 250ms, p99.9: 1s, p50: 20ms}
            """)
        defer { removeTemporary(path) }
        let policy = try Policy.load(path: path, environment: [:])
        #expect(policy.routes.isEmpty)
        #expect(policy.minimumSuccessRate == 0.99)
        #expect(policy.latencyCeilings.map(\.percentile) == [95, 99.9, 50])
        #expect(policy.latencyCeilings.map(\.seconds) == [0.25, 1, 0.02])
        for (slo, message) in [("{p99: 250}", "'250' has no unit: write 250s or 250ms (units: us, ms, s, m or h)"),
                               ("{p100: 1s}", "'p100' is not an objective: expected successRate or a latency percentile such as p50, p95, p99 or p99.9"),
                               ("{p999: 1s, p99.9: 2s}", "p99.9 is given twice")] {
            let bad = try writeTemporaryYAML("target: http://127.0.0.1:8080/\nexpect:\n  slo: \(slo)\n")
            defer { removeTemporary(bad) }
            #expect(throws: YAMLInputError.self) { try Policy.load(path: bad, environment: [:]) }
            do { _ = try Policy.load(path: bad, environment: [:]) } catch { #expect(error.message == message) }
        }
        let thresholds = try writeTemporaryYAML("target: http://127.0.0.1:8080/\nthresholds: [p95<1s]\nexpect:\n  slo: {p95: 1s}\n")
        defer { removeTemporary(thresholds) }
        do {
            _ = try Policy.load(path: thresholds, environment: [:])
            Issue.record("a policy's thresholds were accepted")
        } catch {
            #expect(error.line == 2 && error.message.contains("a policy's are expect.slo"))
        }
    }

    @Test func readsRoutesWithHeaderAndPathMatches() throws {
        let path = try writeTemporaryYAML("""
            policy: meshprobe.policy/v1
            target: http://127.0.0.1:8080/reviews
            expect:
              routes:
                - name: jason sees v2
                  match: {headers: {End-User: jason}}
                  split: {v2: 100}
                - name: api v3
                  match: {path: /api/v3}
                  split: {v3: 100}
                - name: default
                  split: {v1: 90, v2: 10}
            """)
        defer { removeTemporary(path) }
        let policy = try Policy.load(path: path, environment: [:])
        #expect(policy.routes.map(\.name) == ["jason sees v2", "api v3", "default"])
        #expect(policy.routes[0].matchHeaders.map(\.name) == ["end-user"])
        #expect(policy.routes[0].matchHeaders.map(\.value) == ["jason"])
        #expect(policy.routes[1].matchPath == "/api/v3")
        #expect(policy.routes[2].matchHeaders.isEmpty && policy.routes[2].matchPath == nil)
        #expect(policy.routes[2].weights == ["v1": 90, "v2": 10])
    }

    @Test func readsPrefixRegexAndMethodMatchesPropagationAndClusters() throws {
        let path = try writeTemporaryYAML("""
            policy: meshprobe.policy/v1
            target: http://127.0.0.1:8080/reviews
            expect:
              routes:
                - name: beta
                  match:
                    headers: {x-group: {regex: "^beta-[0-9]+$", send: beta-7}, x-canary: {prefix: "yes"}, x-exact: {exact: one}}
                    path: {prefix: /api}
                    method: POST
                  split: {v2: 100}
                - name: literal regex
                  match: {path: {regex: "^/v3/ratings/[0-9]+$", send: /v3/ratings/7}}
                  split: {v3: 100}
                - name: default
                  split: {v1: 90, v2: 10}
              propagation: {timeout: 30s, window: 500ms, stable: 4}
              clusters: {reach: [east, west], avoid: [central]}
            """)
        defer { removeTemporary(path) }
        let policy = try Policy.load(path: path, environment: [:])
        let beta = policy.routes[0]
        #expect(beta.matchHeaders.map(\.name) == ["x-group", "x-canary", "x-exact"])
        #expect(beta.matchHeaders.map(\.value) == ["beta-7", "yes", "one"])
        #expect(beta.matchPath == "/api")
        #expect(beta.matchMethod == "POST")
        #expect(beta.conditions.map(\.description) == ["header x-group ~ ^beta-[0-9]+$ (sent beta-7)", "header x-canary prefix yes (sent yes)",
                                                       "header x-exact = one", "path prefix /api (sent /api)", "method = POST"])
        #expect(policy.routes[1].matchPath == "/v3/ratings/7")
        #expect(policy.propagation == PropagationWait(timeout: 30, window: 0.5, stableWindows: 4))
        #expect(policy.clustersToReach == ["east", "west"] && policy.clustersToAvoid == ["central"])
        // Verify spreads samples over fresh connections unless the file says otherwise.
        #expect(policy.scenario.plan.churn == .every(20))
    }

    @Test func regexSamplesAreOnlyTakenFromLiterals() {
        #expect(ValueMatch.regex("^/v3/ratings$").sample == "/v3/ratings")
        #expect(ValueMatch.regex("beta\\.users").sample == "beta.users")
        #expect(ValueMatch.regex("^beta-[0-9]+$").sample == nil)
        #expect(ValueMatch.regex("a\\d").sample == nil)
        #expect(ValueMatch.regex("^beta-[0-9]+$").matches("beta-12"))
        #expect(!ValueMatch.regex("^beta-[0-9]+$").matches("xbeta-12"))
        // Whole-value match, as Envoy's RE2 matcher does.
        #expect(!ValueMatch.regex("beta").matches("beta-12"))
        #expect(ValueMatch.prefix("/api").matches("/api/v1") && !ValueMatch.prefix("/api").matches("/ap"))
    }

    @Test func regexConstructsRE2LacksAreRefusedByName() {
        for (pattern, construct) in [("(a)\\1", "backreference"), ("^(?=beta).*", "lookahead"), ("(?<!x)y", "lookbehind"),
                                     ("(?>a+)b", "atomic group"), ("a++b", "possessive quantifier")] {
            do {
                _ = try LinearRegex(pattern)
                Issue.record("\(pattern) was accepted")
            } catch {
                #expect(error.description.contains(construct) && error.description.contains("not RE2 syntax"), "\(pattern): \(error)")
            }
        }
        // RE2 has these: escaped plus repeated, a plus inside a class, named groups, lazy quantifiers.
        for pattern in ["\\++", "[+]+", "(?P<v>beta)-[0-9]+", "a+?b", "^/api/v[12]/.*$", "x{2,3}"] {
            #expect((try? LinearRegex(pattern)) != nil, "\(pattern)")
        }
    }

    @Test func aRouteWithoutMatchMustComeLast() throws {
        let path = try writeTemporaryYAML("""
            policy: meshprobe.policy/v1
            target: http://127.0.0.1:8080/reviews
            expect:
              routes:
                - {name: everyone, split: {v1: 100}}
                - {name: testers, match: {headers: {x-test: {exact: "1"}}}, split: {v2: 100}}
            """)
        defer { removeTemporary(path) }
        do {
            _ = try Policy.load(path: path, environment: [:])
            Issue.record("a catch-all route before a matched one was accepted")
        } catch {
            #expect("\(error)".contains(":5:"), "\(error)")
            #expect("\(error)".contains("put it last"), "\(error)")
        }
    }

    @Test func recognisersReadTheRightStamp() {
        let id = WorkloadIdentity(identity: "spiffe://td/ns/a/sa/b", workload: "reviews", version: "v2", cluster: "east")
        #expect(DestinationRecognizer.version.destination(of: id) == "v2")
        #expect(DestinationRecognizer.workload.destination(of: id) == "reviews")
        #expect(DestinationRecognizer.identity.destination(of: id) == "spiffe://td/ns/a/sa/b")
        #expect(DestinationRecognizer.version.destination(of: WorkloadIdentity()) == nil)
    }

    @Test(arguments: [
        ("expect:\n  split: {v1: 90, v2: 20}\n", 5, "expect.split", "sum to 110"),
        ("expect:\n  split: {v1: 90, v2: 10}\n  map: {blue: v3}\n", 6, "expect.map.blue", "v3"),
        ("expect:\n  split: {v1: 100}\n  routes: [{split: {v1: 100}}]\n", 5, "expect", "not both"),
        ("expect:\n  routes:\n    - {name: a, match: {headers: {x: y}}, split: {v1: 50}}\n", 6, "expect.routes[0].split", "sum to 50"),
        ("expect:\n  routes:\n    - {name: a, match: {path: nope}, split: {v1: 100}}\n", 6, "expect.routes[0].match.path", "start with"),
        ("expect:\n  split: {v1: 100}\n  recognise: colour\n", 6, "expect.recognise", "header:NAME"),
        ("expect:\n  split: {v1: 100}\n  tolerance: 0.7\n", 6, "expect.tolerance", "below 0.5"),
        ("expect:\n  splits: {v1: 100}\n", 5, "expect.splits", "unknown field"),
        ("expect:\n  split: {v1: -10, v2: 110}\n", 5, "expect.split.v1", "at least 0"),
        ("expect:\n  routes:\n    - {match: {headers: {x: {regex: \"^a[0-9]+$\"}}}, split: {v1: 100}}\n", 6, "expect.routes[0].match.headers.x", "send: VALUE"),
        ("expect:\n  routes:\n    - {match: {headers: {x: {exact: a, send: a}}}, split: {v1: 100}}\n", 6, "expect.routes[0].match.headers.x", "leave send out"),
        ("expect:\n  routes:\n    - {match: {headers: {x: {regex: \"^a[0-9]+$\", send: b1}}}, split: {v1: 100}}\n", 6, "expect.routes[0].match.headers.x.send", "does not match"),
        ("expect:\n  routes:\n    - {match: {headers: {x: {regex: \"a(\"}}}, split: {v1: 100}}\n", 6, "expect.routes[0].match.headers.x.regex", "not a regular expression"),
        ("expect:\n  routes:\n    - {match: {headers: {x: {prefix: a, exact: b}}}, split: {v1: 100}}\n", 6, "expect.routes[0].match.headers.x", "exactly one"),
        ("expect:\n  routes:\n    - {match: {method: get}, split: {v1: 100}}\n", 6, "expect.routes[0].match.method", "uppercase"),
        ("expect:\n  split: {v1: 100}\n  propagation: {timeout: 2s, window: 1s, stable: 3}\n", 6, "expect.propagation", "cannot fit"),
        ("expect:\n  split: {v1: 100}\n  propagation: {window: 1s}\n", 6, "expect.propagation", "needs a timeout"),
        ("expect:\n  split: {v1: 100}\n  propagation: {timeout: 10s, stable: 1}\n", 6, "expect.propagation.stable", "at least 2"),
        ("expect:\n  split: {v1: 100}\n  clusters: {reach: [east], avoid: [east]}\n", 6, "expect.clusters", "both"),
        ("expect:\n  split: {v1: 100}\n  clusters: {}\n", 6, "expect.clusters", "reach"),
        ("expect:\n  outlierDetection: {consecutive5xxErrors: 5}\n", 5, "expect.outlierDetection", "faultTargets"),
        ("expect:\n  outlierDetection: {consecutive5xxErrors: 0, faultTargets: [https://127.0.0.1:1]}\n", 5,
         "expect.outlierDetection.consecutive5xxErrors", "at least 1"),
        ("expect:\n  outlierDetection: {consecutive5xxErrors: 5000, faultTargets: [https://127.0.0.1:1]}\n", 5,
         "expect.outlierDetection.consecutive5xxErrors", "at most 1000"),
        ("expect:\n  outlierDetection: {consecutive5xxErrors: 5, faultTargets: [http://127.0.0.1:1]}\n", 5,
         "expect.outlierDetection.faultTargets[0]", "mTLS"),
        ("expect:\n  outlierDetection: {consecutive5xxErrors: 5, faultTargets: [https://127.0.0.1:1/x]}\n", 5,
         "expect.outlierDetection.faultTargets[0]", "base URL"),
        ("expect:\n  outlierDetection: {consecutive5xxErrors: 5, maxEjectionPercent: 150, faultTargets: [https://127.0.0.1:1]}\n", 5,
         "expect.outlierDetection.maxEjectionPercent", "at most 100"),
        ("expect:\n  outlierDetection: {faultTargets: [https://127.0.0.1:1]}\n", 5, "expect.outlierDetection", "consecutive5xxErrors"),
        ("expect:\n  outlierDetection: {baseEjectionTime: 1s, faultTargets: [https://127.0.0.1:1]}\n", 5,
         "expect.outlierDetection.baseEjectionTime", "beside it"),
    ])
    func badPoliciesNameTheLineAndField(_ body: String, _ line: Int, _ field: String, _ words: String) throws {
        let e = try inputError(policy: "policy: meshprobe.policy/v1\ntarget: http://127.0.0.1:1/\nload: {requests: 10}\n" + body)
        #expect(e?.line == line && e?.field == field && e?.message.contains(words) == true, "\(String(describing: e))")
    }

    @Test func readsOutlierDetectionWithTheSmallerOfTwoErrorCounts() throws {
        let path = try writeTemporaryYAML("""
            policy: meshprobe.policy/v1
            target: http://127.0.0.1:1/
            expect:
              outlierDetection:
                consecutive5xxErrors: 7
                consecutiveGatewayErrors: 3
                interval: 2s
                baseEjectionTime: 15s
                maxEjectionPercent: 50
                faultTargets: [https://10.0.0.7:8443, https://10.0.0.8:8443]
                rate: 100
            """)
        defer { removeTemporary(path) }
        let policy = try Policy.load(path: path, environment: [:])
        let e = try #require(policy.outlierDetections.first)
        #expect(e.consecutiveErrors == 3 && e.counted == .gatewayErrors && e.interval == 2 && e.baseEjectionTime == 15)
        #expect(e.maxEjectionPercent == 50 && e.maxEjected(of: 4) == 2 && e.maxEjected(of: 1) == 1)
        #expect(e.faultTargets == ["https://10.0.0.7:8443", "https://10.0.0.8:8443"] && e.rate == 100)
        #expect(e.source.hasSuffix(":5 expect.outlierDetection"), "\(e.source)")
        #expect(e.ejectionWindow == (15, 17))
    }

    @Test func theExamplePoliciesParse() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("policies")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }
        #expect(!files.isEmpty)
        for file in files {
            // A policy whose routes come from manifests has none of its own.
            let policy = try Policy.load(path: dir.appendingPathComponent(file).path, environment: [:], routesElsewhere: true)
            for route in policy.routes { #expect(route.weights.values.reduce(0, +) == 100, "\(file)") }
        }
    }

    @Test func aPolicyWithoutExpectationsIsRefused() throws {
        let path = try writeTemporaryYAML("target: http://127.0.0.1:1/\n")
        defer { removeTemporary(path) }
        #expect(throws: MeshprobeYAMLError.self) { try Policy.load(path: path, environment: [:]) }
    }
}

import MeshprobeYAML
typealias MeshprobeYAMLError = YAMLInputError

/// A policy's independent mistakes are reported together, each at its line and field, and none twice.
extension PolicyTests {
    /// Each error of the policy `yaml` as `LINE field`, in the order they are reported.
    func places(policy yaml: String) throws -> [String] {
        try inputError(policy: yaml)?.all.map { "\($0.line) \($0.field)" } ?? []
    }

    @Test func threeMistakesInThreeSectionsAreReportedTogether() throws {
        let e = try #require(try inputError(policy: """
            policy: meshprobe.policy/v1
            target: http://127.0.0.1:1/
            load: {connections: 0}
            expect:
              tolerance: 0.7
              routes:
                - {name: beta, match: {headers: {x-beta: "1"}}, split: {v2: 100}}
                - {name: rest, split: {v1: 90, v2: 20}}
            """))
        #expect(e.all.map { "\($0.line) \($0.field)" } == ["3 load.connections", "5 expect.tolerance", "8 expect.routes[1].split"], "\(e)")
        #expect(e.all.map(\.message) == ["must be at least 1, got 0", "must be below 0.5, got 0.7",
                                         "the weights sum to 110, not 100 (Istio's rule for route weights)"], "\(e)")
        #expect(e.description.hasSuffix("\n3 errors in \(e.file)"), "\(e)")
    }

    @Test func aKeyWithAnErrorLeavesOutTheChecksThatNeedIt() throws {
        // The map's destinations are checked against the routes only when every route read.
        #expect(try places(policy: """
            target: http://127.0.0.1:1/
            expect:
              routes:
                - {name: beta, match: {headers: {x-beta: "1"}}, split: {v3: 50}}
                - {name: rest, split: {v1: 100}}
              map: {blue: v3}
            """) == ["4 expect.routes[0].split"])
        // maxRetries needs retries that retry: not judged when retries has the error.
        #expect(try places(policy: """
            target: http://127.0.0.1:1/
            expect:
              retries: {attempts: many}
              maxRetries: 3
            """) == ["3 expect.retries.attempts"])
        // A misspelt section or key: the unknown key, not the section or check missing as well.
        #expect(try places(policy: "target: http://127.0.0.1:1/\nexpct:\n  split: {v1: 100}\n") == ["2 expct"])
        #expect(try places(policy: "target: http://127.0.0.1:1/\nexpect:\n  splitt: {v1: 100}\n") == ["3 expect.splitt"])
    }

    @Test func everyUnknownKeyOfExpectIsNamed() throws {
        #expect(try places(policy: """
            target: http://127.0.0.1:1/
            expect:
              split: {v1: 100}
              tolerence: 0.1
              slo: {successRate: 0.99}
              mTLS: required
            """) == ["4 expect.tolerence", "6 expect.mTLS"])
    }

    @Test func aPolicyWithOneMistakeReadsAsBefore() throws {
        let e = try #require(try inputError(policy: "target: http://127.0.0.1:1/\nexpect:\n  split: {v1: 90, v2: 20}\n"))
        #expect(e.others.isEmpty)
        #expect(e.description == "\(e.file):3:10: expect.split: the weights sum to 110, not 100 (Istio's rule for route weights)")
    }
}
