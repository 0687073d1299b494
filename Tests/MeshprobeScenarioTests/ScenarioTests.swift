import Foundation
import MeshprobeSpec
import MeshprobeYAML
import Testing
@testable import MeshprobeScenario

@Suite struct ScenarioTests {
    let base = URL(fileURLWithPath: "/srv/scenarios")

    func parse(_ text: String) throws -> Scenario {
        try Scenario.parse(text, file: "s.yaml", baseDirectory: base, environment: ["TOKEN": "t"])
    }

    func error(_ text: String) -> YAMLInputError? {
        do {
            _ = try parse(text)
            return nil
        } catch {
            return error as? YAMLInputError
        }
    }

    @Test func readsEveryFieldOfAnOpenModelScenario() throws {
        let s = try parse("""
            scenario: meshprobe.scenario/v1
            name: ramp
            targets: [https://a.example:8443/x, https://b.example/y]
            identity:
              svidDir: svid
              trustBundles: {east.example: east.pem}
              expectPeer: spiffe://east.example/ns/a/sa/b
              sni: reviews.svc
            http: "2"
            load:
              connections: 4
              streams: 8
              rate: 10
              arrivals: poisson
              stages:
                - {duration: 30s, target: 100}
                - {duration: 1m, target: 100, ramp: step}
              warmup: 5s
              churn: request
              seed: 42
            request:
              method: post
              headers: {x-id: "{{uuid}}", x-token: "{{env:TOKEN}}"}
              body: hello
            output: {json: out/result.json}
            """)
        #expect(s.name == "ramp")
        #expect(s.plan.targets.map(\.description) == ["https://a.example:8443/x", "https://b.example/y"])
        #expect(s.identity.tls.svidDir == "/srv/scenarios/svid")
        #expect(s.identity.tls.trustBundles == [TrustBundleSource(trustDomain: "east.example", file: "/srv/scenarios/east.pem")])
        #expect(s.identity.sni == "reviews.svc")
        #expect(s.plan.httpVersion == .http2)
        #expect(s.plan.connections == 4 && s.plan.streamsPerConnection == 8)
        #expect(s.plan.model == .open(rate: LoadProfile(start: 10, stages: [.init(duration: 30, target: 100),
                                                                                     .init(duration: 60, target: 100, ramp: false)]),
                                               arrivals: .poisson))
        #expect(s.plan.plannedDuration == 90)
        #expect(s.plan.warmup == 5)
        #expect(s.plan.churn == .perRequest)
        #expect(s.plan.seed == 42)
        #expect(s.plan.method == "POST")
        #expect(s.plan.headers.map(\.name) == ["x-id", "x-token"])
        #expect(s.jsonOutput == "/srv/scenarios/out/result.json")
    }

    @Test func closedModelWithConcurrencyStagesAndThinkTime() throws {
        let s = try parse("""
            target: http://127.0.0.1:8080/
            load:
              connections: 2
              streams: 10
              think: 10ms
              stages: [{duration: 10s, target: 20}]
            """)
        #expect(s.plan.model == .closed(concurrency: LoadProfile(start: 0, stages: [.init(duration: 10, target: 20)]), thinkTime: 0.01))
    }

    @Test func sendTickAndCoalesceWindow() throws {
        let open = try parse("target: http://127.0.0.1:8080/\nload: {rate: 100, duration: 1s, sendTick: 2ms}\n")
        #expect(open.plan.sendTick == 0.002)
        #expect(open.plan.effectiveCoalesceWindow == 0)
        let closed = try parse("target: http://127.0.0.1:8080/\nload: {requests: 10, coalesceWindow: 1ms}\n")
        #expect(closed.plan.effectiveCoalesceWindow == 0.001)
        let off = try parse("target: http://127.0.0.1:8080/\nload: {requests: 10, coalesceWindow: 0}\n")
        #expect(off.plan.effectiveCoalesceWindow == 0)
        let unset = try parse("target: http://127.0.0.1:8080/\nload: {requests: 10}\n")
        #expect(unset.plan.effectiveCoalesceWindow == LoadPlan.defaultCoalesceWindow)
    }

    @Test func guardsAndThinkJitter() throws {
        let s = try parse("""
            target: http://127.0.0.1:8080/
            load: {requests: 10, think: 20ms, thinkJitter: 5ms}
            guards: {maxErrorRate: 0.25, maxP99: 300ms}
            """)
        #expect(s.plan.thinkJitter == 0.005)
        #expect(s.plan.guards == [.errorRate(0.25), .p99(0.3)])
        let e = try #require(error("target: http://h/\nload: {requests: 1}\nguards:\n  maxErrorRate: 1.5\n"))
        #expect(e.line == 4 && e.field == "guards.maxErrorRate")
    }

    @Test func thresholdsAreReadByTheFlagsRuleAtTheirLine() throws {
        let s = try parse("""
            target: http://127.0.0.1:8080/
            load: {requests: 10}
            thresholds: ['p95<250ms', 'version=v2:p99 < 300ms', error_rate<0.01]
            """)
        #expect(s.plan.thresholds.map(\.text) == ["p95<250ms", "version=v2:p99<300ms", "error_rate<0.01"])
        let e = try #require(error("target: http://h/\nload: {requests: 1}\nthresholds:\n  - p95<250ms\n  - p99<250\n"))
        #expect(e.line == 5 && e.field == "thresholds[1]")
        #expect(e.message == "'250' has no unit: write 250s or 250ms (units: us, ms, s, m or h)")
        let refused = try #require({ () -> YAMLInputError? in
            do {
                _ = try Scenario.parse("target: http://h/\nthresholds: [p95<1s]\n", file: "p.yaml", baseDirectory: base,
                                       thresholdsRefusal: "not here")
                return nil
            } catch { return error as? YAMLInputError }
        }())
        #expect(refused.line == 2 && refused.message == "not here")
    }

    @Test func stepsSetupAndTeardownWithExtractions() throws {
        let s = try parse("""
            target: http://127.0.0.1:8080/
            load: {requests: 10}
            setup:
              - {name: fixture, method: post, path: /f, extract: {fid: {json: "data.items[0].id"}}}
            steps:
              - name: login
                path: /login
                extract: {token: {header: X-Token}}
              - name: read
                path: /items/{{var:fid}}
                headers: {authorization: "Bearer {{var:token}}"}
            teardown:
              - {name: clean, method: DELETE, path: "/f/{{var:fid}}"}
            """)
        #expect(s.setup == [FlowStep(name: "fixture", method: "POST", path: "/f", extract: [Extraction(variable: "fid", source: .json("data.items[0].id"))])])
        #expect(s.plan.flow.map(\.name) == ["login", "read"])
        #expect(s.plan.flow[0].extract == [Extraction(variable: "token", source: .header("X-Token"))])
        #expect(s.teardown.count == 1)
        #expect(s.plan.flowVariables.keys.sorted() == ["fid"])
    }

    @Test func aVariableNoEarlierStepExtractsIsAnError() throws {
        let e = try #require(error("""
            target: http://h/
            load: {requests: 1}
            steps:
              - {name: a, path: /a}
              - {name: b, path: "/b/{{var:token}}"}
            """))
        #expect(e.line == 5)
        #expect(e.field == "steps[1].path")
        #expect(e.message.contains("token"))
        let both = try #require(error("target: http://h/\nload: {requests: 1}\nrequest: {method: GET}\nsteps: [{name: a, path: /a}]\n"))
        #expect(both.message.contains("not both"))
        let dup = try #require(error("target: http://h/\nload: {requests: 1}\nsteps: [{name: a, path: /a}, {name: a, path: /b}]\n"))
        #expect(dup.message.contains("unique"))
    }

    @Test func unknownFieldNamesItsLineAndTheAllowedFields() throws {
        let e = try #require(error("""
            target: http://127.0.0.1:8080/
            load:
              connections: 2
              rps: 100
            """))
        #expect(e.line == 4)
        #expect(e.field == "load.rps")
        #expect(e.message.contains("rate"))
        #expect(e.description.hasPrefix("s.yaml:4:"))
    }

    @Test(arguments: [
        ("target: http://h/\nload:\n  rate: -5\n  duration: 1s\n", 3, "load.rate"),
        ("target: http://h/\nload:\n  rate: 0\n  duration: 1s\n", 3, "load.rate"),
        ("target: http://h/\nload:\n  duration: 0s\n", 3, "load.duration"),
        ("target: http://h/\nload:\n  connections: many\n  requests: 1\n", 3, "load.connections"),
        ("target: http://h/\nload:\n  requests: 10\n  stages:\n    - {duration: 5s, target: 10, ramp: smooth}\n", 5, "load.stages[0].ramp"),
        ("target: http://h/\nload:\n  requests: 10\n  rate: 5\n  think: 1s\n", 5, "load.think"),
        ("target: http://h/\nload:\n  requests: 10\n  sendTick: 1ms\n", 4, "load.sendTick"),
        ("target: http://h/\nload:\n  requests: 10\n  rate: 5\n  sendTick: 0s\n", 5, "load.sendTick"),
        ("target: http://h/\nload:\n  requests: 10\n  coalesceWindow: 200ms\n", 4, "load.coalesceWindow"),
        ("target: http://h/\nload:\n  requests: 10\n  coalesceWindow: -1ms\n", 4, "load.coalesceWindow"),
        ("target: ftp://h/\nload:\n  requests: 1\n", 1, "target"),
        ("target: http://h/\nidentity:\n  expectPeer: spiffe://UPPER/x\nload: {requests: 1}\n", 3, "identity.expectPeer"),
        ("target: http://h/\nload: {requests: 1}\nrequest:\n  headers: {connection: close}\n", 4, "request.headers.connection"),
        ("target: http://h/\nload: {requests: 1}\nrequest:\n  path: /x/{{nope}}\n", 4, "request.path"),
        ("target: http://h/\nload: {requests: 1}\nrequest:\n  body: '{{csv:user}}'\n", 4, "request.body"),
        // Values that once crashed a run after --check passed: bounds are checked where they are written.
        ("target: http://h/\nload:\n  rate: 1e308\n  duration: 1s\n", 3, "load.rate"),
        ("target: http://h/\nload:\n  rate: 1e-300\n  duration: 1s\n", 3, "load.rate"),
        ("target: http://h/\nload:\n  duration: 99999999999999999999h\n", 3, "load.duration"),
        ("target: http://h/\nload:\n  duration: 9000h\n", 3, "load.duration"),
        ("target: http://h/\nload:\n  requests: 1\n  think: 9000h\n", 4, "load.think"),
        ("target: http://h/\nload:\n  rate: 5\n  stages:\n    - {duration: 1s, target: 1e308}\n", 5, "load.stages[0].target"),
        ("target: http://h/\nload:\n  rate: 5\n  stages:\n    - {duration: 9000h, target: 5}\n", 5, "load.stages[0].duration"),
        ("target: http://h/\nload: {requests: 1}\nrequest:\n  headers: {\"bad name\": v}\n", 4, "request.headers.bad name"),
        ("target: http://h/\nload: {requests: 1}\nrequest:\n  headers: {x-a: \"b\\r\\nx: 1\"}\n", 4, "request.headers.x-a"),
        ("target: http://h/\nload: {requests: 1}\nrequest:\n  headers: {content-length: '99'}\n", 4, "request.headers.content-length"),
        ("target: http://h/\nload:\n  requests: 1\n  connections: 1000000000\n", 4, "load.connections"),
        // Names are printed, labelled in metrics and written into reports: no control characters.
        ("name: \"run\\e[2Kx\"\ntarget: http://h/\nload: {requests: 1}\n", 1, "name"),
        ("target: http://h/\nload: {requests: 1}\nsteps:\n  - {name: \"a\\rb\", path: /a}\n", 4, "steps[0].name"),
        // A key given twice: at the second one (the message names the first), not at 1:1; in flow style, the first.
        ("target: http://h/\nload:\n  requests: 1\n  streams: 2\n  requests: 3\n", 5, "requests"),
        ("target: http://h/\nload: {requests: 1, requests: 3}\n", 2, "requests"),
        ("target: https://h/\nidentity:\n  insecure: true\n  expectPeer: spiffe://example.org/ns/a/sa/b\nload: {requests: 1}\n", 4, "identity.expectPeer"),
    ])
    func impossibleValuesFailWithLineAndField(_ text: String, _ line: Int, _ field: String) throws {
        let e = try #require(error(text))
        #expect(e.line == line, "\(e)")
        #expect(e.field == field, "\(e)")
    }

    @Test func aRunWithNoEndIsRefused() throws {
        let e = try #require(error("target: http://h/\nload:\n  connections: 2\n"))
        #expect(e.message.contains("ends on its own"))
    }

    @Test func malformedYAMLNamesTheLine() throws {
        let e = try #require(error("target: http://h/\nload:\n  requests: [1, 2\n"))
        #expect(e.line >= 3)
        #expect(e.message.contains("not valid YAML"))
    }

    @Test func theExamplesInTheRepositoryParse() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scenarios")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }
        #expect(files.count >= 4)
        for file in files {
            let s = try Scenario.load(path: dir.appendingPathComponent(file).path, environment: [:])
            #expect(!s.plan.targets.isEmpty, "\(file)")
        }
    }
}

/// A file's errors name its fields (`load.warmup`, `identity.svidDir`) at their line, never the flags that set the
/// same values on the command line.
extension ScenarioTests {
    /// The error of `identity.check` for a scenario that parses.
    func identityError(_ text: String, https: Bool = true) throws -> YAMLInputError? {
        let s = try parse(text)
        do {
            try s.identity.check(https: https, file: "s.yaml")
            return nil
        } catch {
            return error
        }
    }

    func expectNoFlag(_ e: YAMLInputError, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!e.description.contains(" -") && !e.description.contains("--"), "\(e)", sourceLocation: sourceLocation)
    }

    @Test func aWarmUpAsLongAsTheRunNamesLoadWarmupAtItsLine() throws {
        let e = try #require(error("target: http://h/\nload:\n  duration: 5s\n  warmup: 5s\n"))
        #expect(e.file == "s.yaml" && e.line == 4 && e.field == "load.warmup", "\(e)")
        #expect(e.message == "'5s': must be shorter than the run (5s)", "\(e)")
        expectNoFlag(e)
    }

    @Test func aWarmUpLongerThanTheStagesNamesLoadWarmup() throws {
        let e = try #require(error("target: http://h/\nload:\n  rate: 10\n  stages: [{duration: 2s, target: 10}]\n  warmup: 3s\n"))
        #expect(e.line == 5 && e.field == "load.warmup", "\(e)")
        expectNoFlag(e)
    }

    @Test func aRunWithNoEndNamesTheFileFields() throws {
        let e = try #require(error("target: http://h/\nload:\n  connections: 2\n"))
        #expect(e.field == "load", "\(e)")
        #expect(e.message == "give load.requests, load.duration or stages, so that the run ends on its own", "\(e)")
        expectNoFlag(e)
    }

    @Test func aJitterAboveTheThinkTimeNamesTheFields() throws {
        let e = try #require(error("target: http://h/\nload:\n  requests: 1\n  think: 10ms\n  thinkJitter: 20ms\n"))
        #expect(e.line == 5 && e.field == "load.thinkJitter", "\(e)")
        expectNoFlag(e)
    }

    @Test func aMissingSVIDDirectoryNamesIdentitySvidDir() throws {
        let e = try #require(try identityError("target: https://h/\nidentity:\n  svidDir: /nonexistent/svid\nload: {requests: 1}\n"))
        #expect(e.file == "s.yaml" && e.line == 3 && e.field == "identity.svidDir", "\(e)")
        #expect(e.message == "'/nonexistent/svid': no such directory (is the SVID volume mounted there?)", "\(e)")
        expectNoFlag(e)
    }

    @Test func anSVIDDirectoryWithoutItsFilesNamesIdentitySvidDir() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("svid-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let e = try #require(try identityError("target: https://h/\nidentity:\n  svidDir: \(dir.path)\nload: {requests: 1}\n"))
        #expect(e.line == 3 && e.field == "identity.svidDir", "\(e)")
        #expect(e.message.contains("missing or unreadable \(dir.path)/cert-chain.pem"), "\(e)")
        expectNoFlag(e)
    }

    @Test func anHTTPSTargetWithoutATrustBundleNamesTheIdentityFields() throws {
        let e = try #require(try identityError("target: https://h/\nidentity:\n  cert: c.pem\n  key: k.pem\nload: {requests: 1}\n"))
        #expect(e.line == 3 && e.field == "identity", "\(e)")
        #expect(e.message == "https needs a trust bundle to verify the server: identity.ca, identity.svidDir or identity.trustBundles (or identity.insecure: true to skip verification)", "\(e)")
        expectNoFlag(e)
        let none = try #require(try identityError("target: https://h/\nload: {requests: 1}\n"))
        #expect(none.file == "s.yaml" && none.message.contains("identity.ca"), "\(none)")
        #expect(try identityError("target: https://h/\nidentity: {insecure: true}\nload: {requests: 1}\n") == nil)
    }

    @Test func aPlaintextTargetWithAnExpectedPeerNamesIdentityExpectPeer() throws {
        let text = "target: http://h/\nidentity:\n  ca: ca.pem\n  expectPeer: spiffe://example.org/ns/a/sa/b\nload: {requests: 1}\n"
        let e = try #require(try identityError(text, https: false))
        #expect(e.line == 4 && e.field == "identity.expectPeer", "\(e)")
        #expect(e.message == "needs an https:// or grpcs:// URL: plaintext has no peer certificate", "\(e)")
        let sni = try #require(try identityError("target: http://h/\nidentity: {sni: a.example}\nload: {requests: 1}\n", https: false))
        #expect(sni.field == "identity.sni", "\(sni)")
        expectNoFlag(sni)
    }
}

/// A file's independent mistakes are reported together, each at its line and field, and none twice: what needs a
/// section that has an error is left out.
extension ScenarioTests {
    /// Each error of `text` as `LINE field`, in the order they are reported.
    func places(_ text: String) -> [String] {
        error(text)?.all.map { "\($0.line) \($0.field)" } ?? []
    }

    @Test func threeMistakesInThreeSectionsAreReportedTogether() throws {
        let e = try #require(error("""
            target: ftp://h/
            load:
              connections: 0
              requests: 1
            identity:
              expectPeer: spiffe://UPPER/x
            """))
        #expect(e.all.map { "\($0.line) \($0.field)" } == ["1 target", "3 load.connections", "6 identity.expectPeer"], "\(e)")
        #expect(e.line == 1 && e.field == "target" && e.others.count == 2, "\(e)")
        let lines = e.description.split(separator: "\n").map(String.init)
        #expect(lines.count == 4, "\(e)")
        #expect(lines[1] == "s.yaml:3:16: load.connections: must be at least 1, got 0", "\(e)")
        #expect(lines[3] == "3 errors in s.yaml", "\(e)")
    }

    @Test func aSectionWithAnErrorLeavesOutWhatNeedsIt() {
        // The load's own error, not "give load.requests ... so that the run ends" as well.
        #expect(places("target: http://h/\nload:\n  connections: 0\n") == ["3 load.connections"])
        // A misspelt section: the unknown key, not the section missing as well.
        #expect(places("target: http://h/\nlod: {requests: 1}\n") == ["2 lod"])
        #expect(places("targte: http://h/\nload: {requests: 1}\n") == ["1 targte"])
        // The steps use what the setup extracts: not read when the setup has an error.
        #expect(places("""
            target: http://h/
            load: {requests: 1}
            setup:
              - {name: login, path: nope, extract: {token: {header: x-token}}}
            steps:
              - {name: read, path: "/items/{{var:token}}"}
            """) == ["4 setup[0].path"])
    }

    @Test func everyUnknownKeyOfAMappingIsNamed() throws {
        let e = try #require(error("target: http://h/\nload:\n  rps: 10\n  requests: 1\n  conns: 2\n"))
        #expect(e.all.map(\.field) == ["load.rps", "load.conns"], "\(e)")
        #expect(e.all.allSatisfy { $0.message.hasPrefix("unknown field; expected one of: connections, streams") }, "\(e)")
    }

    @Test func aFileWithOneMistakeReadsAsBefore() throws {
        let e = try #require(error("target: http://h/\nload:\n  requests: 0\n"))
        #expect(e.others.isEmpty)
        #expect(e.description == "s.yaml:3:13: load.requests: must be at least 1, got 0")
    }

    @Test func errorsAreInTheFilesOrderAndEachGivenOnce() throws {
        func at(_ line: Int, _ column: Int, _ field: String) -> YAMLInputError {
            YAMLInputError(file: "s.yaml", line: line, column: column, field: field, message: "wrong")
        }
        var errors = YAMLErrors()
        errors.record(at(7, 3, "c"))
        errors.record(at(2, 5, "b"))
        errors.record(at(2, 1, "a"))
        errors.record(at(7, 3, "c"))
        #expect(errors.attempt { () throws(YAMLInputError) -> Int in throw at(1, 1, "") } == nil)
        #expect(errors.attempt { () throws(YAMLInputError) -> Int in 5 } == 5)
        do {
            try errors.check()
            Issue.record("nothing was thrown")
        } catch {
            #expect(error.all.map(\.field) == ["", "a", "b", "c"], "\(error)")
            #expect(error.description.hasSuffix("s.yaml:7:3: c: wrong\n4 errors in s.yaml"), "\(error)")
        }
        try YAMLErrors().check()
    }
}
