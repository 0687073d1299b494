import Foundation
import MeshprobeIdentity
import MeshprobeVerify
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
        #expect(policy.scenario.configuration.requests == 20_000)
        #expect(policy.scenario.configuration.identityHeader == "x-served-by")
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
    ])
    func badPoliciesNameTheLineAndField(_ body: String, _ line: Int, _ field: String, _ words: String) throws {
        let path = try writeTemporaryYAML("policy: meshprobe.policy/v1\ntarget: http://127.0.0.1:1/\nload: {requests: 10}\n" + body)
        defer { removeTemporary(path) }
        #expect {
            try Policy.load(path: path, environment: [:])
        } throws: { error in
            guard let e = error as? MeshprobeYAMLError else { return false }
            return e.line == line && e.field == field && e.message.contains(words)
        }
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
