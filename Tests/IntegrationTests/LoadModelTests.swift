import Foundation
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeSpec
import MeshprobeTLS
import NIOPosix
import Testing

extension EndToEnd {
    /// The load models end to end against the echo workload on loopback.
    @Suite(.timeLimit(.minutes(1)), .tags(.timing)) struct LoadModelTests {
    @Test func openModelSendsExactlyTheScheduledArrivals() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/"], requests: 1_000_000, connections: 2, streams: 10) {
            $0.plan.model = .open(rate: .constant(400), arrivals: .uniform)
            $0.plan.duration = 1
        }
        // 400/s for 1 s, uniform, fixed in advance: exactly 400 arrivals, whatever the server does.
        #expect(result.requestsSent == 400)
        #expect(result.succeeded == 400)
        #expect(result.sendDelay.totalCount == 400)
        #expect(result.timeline.reduce(0) { $0 + $1.sent } == 400)
    }

    @Test func openModelMeasuresFromTheIntendedTimeWhenTheServerStalls() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        // One stream in total and 5% of responses stalled by 100 ms: arrivals queue up behind each stall.
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/?delay=100ms:5"], requests: 1_000_000, connections: 1, streams: 1) {
            $0.plan.model = .open(rate: .constant(200), arrivals: .uniform)
            $0.plan.duration = 2
        }
        #expect(result.requestsSent == 400)
        #expect(result.responses == 400)
        // Corrected latency includes the queueing behind stalls; uncorrected (from the actual send) does not.
        #expect(result.latency.mean > result.serviceLatency.mean * 1.5)
        #expect(result.latency.valueAtPercentile(99) > result.serviceLatency.valueAtPercentile(99))
        #expect(result.late[.streamsBusy, default: 0] > 0)
        #expect(result.sendDelay.max >= 50_000)
    }

    @Test func poissonArrivalsAreReproducibleWithASeed() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        func sent() async throws -> Int {
            try await runLoad(["http://127.0.0.1:\(echo.port)/"], requests: 1_000_000, connections: 1, streams: 20) {
                $0.plan.model = .open(rate: .constant(300), arrivals: .poisson)
                $0.plan.duration = 1
                $0.plan.seed = 7
            }.requestsSent
        }
        let first = try await sent()
        #expect(abs(first - 300) < 90)
        #expect(try await sent() == first)
    }

    @Test func rampedRateSendsTheAreaUnderTheProfile() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        // 0 -> 600/s over 1 s, then 600/s for 0.5 s: 300 + 300 arrivals.
        let profile = LoadProfile(start: 0, stages: [.init(duration: 1, target: 600), .init(duration: 0.5, target: 600)])
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/"], requests: 1_000_000, connections: 2, streams: 10) {
            $0.plan.model = .open(rate: profile, arrivals: .uniform)
        }
        #expect(abs(result.requestsSent - 600) <= 2)
        #expect(result.succeeded == result.requestsSent)
    }

    @Test func concurrencyStagesCapRequestsInFlightAtTheServer() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let profile = LoadProfile(start: 0, stages: [.init(duration: 0.5, target: 6), .init(duration: 0.7, target: 6)])
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/?delay=10ms"], requests: 1_000_000, connections: 2, streams: 10) {
            $0.plan.model = .closed(concurrency: profile, thinkTime: 0)
        }
        // (How many complete depends on how busy the machine is; the cap is the point.)
        #expect(result.succeeded > 20)
        #expect(echo.peakInFlight <= 6)
        #expect(echo.peakInFlight >= 5)
    }

    @Test func thinkTimeSlowsAClosedSlot() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/"], requests: 1_000_000, connections: 1, streams: 1) {
            $0.plan.model = .closed(concurrency: nil, thinkTime: 0.1)
            $0.plan.duration = 0.55
        }
        // One slot, 100 ms between requests: at most 6 in 0.55 s (at 0, 0.1, ... 0.5); without the think time a
        // slot does hundreds. (Fewer when a busy machine delays the connection.)
        #expect((1...6).contains(result.succeeded))
    }

    @Test func thinkTimeHoldsWithAConcurrencyTarget() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/"], requests: 1_000_000, connections: 1, streams: 1) {
            $0.plan.model = .closed(concurrency: .constant(1), thinkTime: 0.1)
            $0.plan.duration = 0.55
        }
        // A user thinking counts against the concurrency target: the worker's periodic sweep must not start a request
        // in its slot meanwhile (it did, and sent bursts of five every think time).
        #expect((1...6).contains(result.succeeded), "\(result.succeeded) requests")
    }

    @Test func warmUpIsSentButLeftOutOfTheResults() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/"], requests: 1_000_000, connections: 1, streams: 10) {
            $0.plan.model = .open(rate: .constant(200), arrivals: .uniform)
            $0.plan.duration = 1
            $0.plan.warmup = 0.5
        }
        #expect(result.requestsSent == 200)
        #expect(result.warmupRequests == 100)
        #expect(result.responses == 100)
        #expect(result.latency.totalCount == 100)
        #expect(echo.requestsServed == 200)
    }

    /// `-n` counts measured requests: a warm-up's come on top.
    @Test func aRequestCountIsMeasuredAfterTheWarmUp() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/"], requests: 100, connections: 1, streams: 10) {
            $0.plan.model = .open(rate: .constant(200), arrivals: .uniform)
            $0.plan.warmup = 0.5
        }
        #expect(result.warmupRequests == 100)
        #expect(result.responses == 100)
        #expect(result.latency.totalCount == 100)
        #expect(echo.requestsServed == 200)
    }

    @Test func churnPerRequestOpensAFreshResumedTLSConnectionEachTime() async throws {
        let pki = try LabPKIFixture()
        let server = try pki.svid("reviews", uris: [pki.id("reviews")])
        let client = try pki.svid("productpage", uris: [pki.id("productpage")])
        let echo = try await startEcho(version: "v1", tls: try pki.serverTLS(server))
        defer { Task { await echo.close() } }
        let tls = try pki.clientTLS(client, expect: .trustDomain(pki.trustDomain))
        let result = try await runLoad(["https://127.0.0.1:\(echo.port)/"], tls: tls, requests: 30, connections: 1, streams: 5) {
            $0.plan.churn = .perRequest
        }
        #expect(result.succeeded == 30)
        #expect(result.connectionsEstablished == 30)
        #expect(result.tlsHandshakes == 30)
        #expect(result.tlsResumed >= 25)
        #expect(result.connectionFailures.isEmpty)
        #expect(result.handshakeLatency.totalCount == 30)
    }

    @Test func churnEveryNRequestsReplacesConnections() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/"], requests: 100, connections: 2, streams: 4) {
            $0.plan.churn = .every(10)
        }
        #expect(result.succeeded == 100)
        #expect(result.connectionsEstablished == 10)
        #expect(result.failed == 0)
    }

    @Test func templatesVaryEachRequest() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        // The echo answers the status asked for in the query: templates choose it per request.
        let picked = try await runLoad(["http://127.0.0.1:\(echo.port)/?status={{pick:201,202}}"], requests: 200, connections: 1, streams: 5) {
            $0.plan.headers = [HTTP2HeaderPair("x-request-id", "{{uuid}}"), HTTP2HeaderPair("x-seq", "{{seq}}")]
        }
        #expect(Set(picked.statuses.keys) == [201, 202])
        #expect(picked.succeeded == 200)
        let csv = try CSVTable(parsing: "code\n203\n204\n", source: "codes.csv")
        // 204 has no body: the echo sends none, and the client takes it as any other response.
        let rows = try await runLoad(["http://127.0.0.1:\(echo.port)/?status={{csv:code}}"], requests: 100, connections: 1, streams: 1) {
            $0.plan.csv = csv
        }
        #expect(rows.statuses == [203: 50, 204: 50])
    }

    @Test func errorRateGuardStopsTheRunAndSaysWhen() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let started = Date()
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/?status=503:60"], requests: 1_000_000, connections: 2, streams: 10) {
            $0.plan.model = .open(rate: .constant(200), arrivals: .uniform)
            $0.plan.duration = 20
            $0.plan.guards = [.errorRate(0.3)]
        }
        let fired = try #require(result.guardFired)
        #expect(fired.guardDescription == "error rate above 30.0%")
        #expect(fired.observed.contains("% of"))
        #expect(result.aborted)
        #expect(Date().timeIntervalSince(started) < 30)
        #expect(result.requestsSent < 2000)
    }

    @Test func p99GuardStopsTheRun() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/?delay=80ms"], requests: 1_000_000, connections: 2, streams: 50) {
            $0.plan.model = .open(rate: .constant(100), arrivals: .uniform)
            $0.plan.duration = 20
            $0.plan.guards = [.errorRate(0.5), .p99(0.05)]
        }
        #expect(result.guardFired?.guardDescription == "p99 above 50.0 ms")
        #expect(result.requestsSent < 1000)
    }

    @Test func holdGuardFreezesARampWhereItBreached() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        // The rate ramps 100 -> 1100/s over 4 s; every response is slow (60 ms), so the p99 guard fires in the
        // first full second and the rate is held near 100-350/s instead of reaching 1100/s.
        let profile = LoadProfile(start: 100, stages: [.init(duration: 4, target: 1100)])
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/?delay=60ms"], requests: 1_000_000, connections: 2, streams: 100) {
            $0.plan.model = .open(rate: profile, arrivals: .uniform)
            $0.plan.guards = [.p99(0.03)]
            $0.plan.guardAction = .hold
        }
        let fired = try #require(result.guardFired)
        #expect(fired.action == .hold)
        #expect(!result.aborted)
        // Following the ramp would send 2400; held, the rate stays where it was when the guard fired (at most the
        // ramp's rate one second later, when the collector acts) instead of climbing.
        #expect(result.requestsSent < 2300)
        let heldAt = profile.value(at: Double(fired.second + 2))
        for point in result.timeline where point.second >= fired.second + 3 && point.second < 4 {
            #expect(Double(point.sent) <= heldAt * 1.15 + 20, "second \(point.second) sent \(point.sent), held at \(heldAt)")
        }
    }

    @Test func guardsThatHoldLetTheRunFinish() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/"], requests: 1_000_000, connections: 1, streams: 10) {
            $0.plan.model = .open(rate: .constant(100), arrivals: .uniform)
            $0.plan.duration = 2.2
            $0.plan.guards = [.errorRate(0.1), .p99(5)]
        }
        #expect(result.guardFired == nil)
        #expect(!result.aborted)
        #expect(result.requestsSent == 220)
    }

    @Test func multiStepIterationsFeedExtractedValuesToLaterSteps() async throws {
        let echo = try await startEcho(version: "v7", tls: nil)
        defer { Task { await echo.close() } }
        // Step 1 asks for 201; the echo reports the status in its JSON body; step 2 asks for that same status.
        let flow = [
            FlowStep(name: "first", path: "/first?status=201",
                     extract: [Extraction(variable: "code", source: .json("status")),
                               Extraction(variable: "version", source: .header("X-Meshprobe-Version"))]),
            FlowStep(name: "second", method: "POST", path: "/second?status={{var:code}}", headers: [HTTP2HeaderPair("x-version", "{{var:version}}")],
                     body: "{\"v\": \"{{var:version}}\"}"),
        ]
        for http in [HTTPVersionPreference.http2, .http1] {
            let result = try await runLoad(["http://127.0.0.1:\(echo.port)/"], requests: 50, connections: 2, streams: 5, http: http) {
                $0.plan.flow = flow
            }
            #expect(result.iterationsCompleted == 50, "\(http)")
            #expect(result.statuses == [201: 100], "\(http)")
            #expect(result.steps["first"]?.requests == 50)
            #expect(result.steps["second"]?.succeeded == 50)
            #expect(result.errors.isEmpty)
            #expect(result.lastIterationVariables == ["code": "201", "version": "v7"])
        }
    }

    @Test func failedExtractionIsCountedAndEndsTheIteration() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let flow = [
            FlowStep(name: "login", path: "/login", extract: [Extraction(variable: "token", source: .json("session.token"))]),
            FlowStep(name: "use", path: "/use/{{var:token}}"),
        ]
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/"], requests: 30, connections: 1, streams: 3) {
            $0.plan.flow = flow
        }
        #expect(result.errors[.extractionFailed] == 30)
        #expect(result.steps["login"]?.extractionFailures == 30)
        #expect(result.steps["use"] == nil)
        #expect(result.iterationsCompleted == 0)
        #expect(echo.requestsServed == 30)
        #expect(result.errorExplanations[.extractionFailed]?.contains("session.token") == true)
    }

    @Test func setupStepsRunOnceAndTheirValuesReachEveryIteration() async throws {
        let echo = try await startEcho(version: "v9", tls: nil)
        defer { Task { await echo.close() } }
        var base = LoadConfiguration(targets: [try LoadTarget(parsing: "http://127.0.0.1:\(echo.port)/")])
        base.plan.requests = 1
        let setup = try await StepRunner.run([FlowStep(name: "fixture", method: "POST", path: "/fixtures?status=202",
                                                       extract: [Extraction(variable: "fixture", source: .json("version"))])],
                                             base: base, group: MultiThreadedEventLoopGroup.singleton)
        #expect(setup.completed)
        #expect(setup.variables == ["fixture": "v9"])
        let failed = try await StepRunner.run([FlowStep(name: "broken", path: "/x?status=500")], base: base,
                                              group: MultiThreadedEventLoopGroup.singleton)
        #expect(!failed.completed)
        #expect(failed.problem?.contains("broken") == true)
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/"], requests: 20, connections: 1, streams: 2) {
            $0.plan.flow = [FlowStep(name: "read", path: "/items/{{var:fixture}}?status=203")]
            $0.plan.flowVariables = setup.variables
        }
        #expect(result.statuses == [203: 20])
        #expect(result.iterationsCompleted == 20)
    }

    @Test func timelineAddsUpToTheTotals() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/?status=503:10"], requests: 1_000_000, connections: 2, streams: 4) {
            $0.plan.model = .open(rate: .constant(300), arrivals: .uniform)
            $0.plan.duration = 2.2
        }
        #expect(result.timeline.count >= 3)
        #expect(result.timeline.reduce(0) { $0 + $1.responses } == result.responses)
        #expect(result.timeline.reduce(0) { $0 + $1.succeeded } == result.succeeded)
        #expect(result.timeline.reduce(0) { $0 + $1.failed } == result.failed)
        #expect(result.timeline.map(\.second) == Array(0..<result.timeline.count))
        #expect(result.timeline.filter { $0.responses > 0 }.allSatisfy { $0.p50 > 0 && $0.p50 <= $0.p99 && $0.p99 <= $0.max })
        #expect(result.timeline[1].responses >= 250)
    }
    }
}
