import Foundation
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeReport
import MeshprobeSpec
import MeshprobeTLS
import Testing

extension EndToEnd {
    /// A server that goes away in the middle of a run (an echo process killed, as a pod is): a run bounded by time keeps
    /// its schedule and reaches the server when it is back; a run that gives up says so and counts every request it did
    /// not send.
    @Suite(.timeLimit(.minutes(1)), .tags(.timing)) struct OutageTests {
    let pki: LabPKIFixture
    let echoSVID: (cert: String, key: String)
    let clientTLS: TLSContext

    init() throws {
        pki = try LabPKIFixture()
        echoSVID = try pki.svid("echo", uris: [pki.id("echo")])
        let prober = try pki.svid("prober", uris: [pki.id("prober")])
        clientTLS = try pki.clientTLS(prober, expect: .spiffeID(try SPIFFEID(parsing: pki.id("echo"))))
    }

    /// `meshprobe echo` on `port` (mTLS), in a process of its own: stopping it closes every connection, as a pod's end does.
    private func echo(on port: Int) async throws -> BackgroundProcess {
        try await BackgroundProcess(meshprobeBinary, ["echo", "--listen", "127.0.0.1:\(port)", "--cert", echoSVID.cert, "--key", echoSVID.key,
                                                      "--ca", pki.caFile], waitForPort: port)
    }

    /// An echo on a free port that is stopped `after` milliseconds (as a pod ends); the task ends once it is.
    private func echoGoingAway(after milliseconds: Int) async throws -> (port: Int, outage: Task<Void, any Error>) {
        let port = try freePort()
        let server = try await echo(on: port)
        return (port, Task {
            try await Task.sleep(for: .milliseconds(milliseconds))
                await server.stopAndWait()
        })
    }

    /// The open model through a restart: every scheduled arrival is counted, the run lasts its duration, and the
    /// arrivals after the restart are answered by the new server.
    @Test func anOpenModelRunKeepsItsScheduleThroughARestart() async throws {
        let (port, gone) = try await echoGoingAway(after: 700)
        let outage = Task {
            try await gone.value
            try await Task.sleep(for: .milliseconds(900))
            return try await echo(on: port)
        }
        let result = try await runLoad(["https://127.0.0.1:\(port)/"], tls: clientTLS, connections: 2, streams: 4) { c in
            c.plan.requests = nil
            c.plan.duration = 3
            c.plan.model = .open(rate: .constant(200, duration: 3), arrivals: .uniform)
        }
        let second = try await outage.value
            await second.stopAndWait()
        #expect(result.endedEarly == nil)
        #expect(!result.aborted)
        #expect(result.totalRequests == 600, "every arrival of 200/s over 3 s counted: \(result.errors)")
        #expect(result.elapsedSeconds >= 2.9, "the run ended at \(result.elapsedSeconds) s of 3")
        #expect(result.connectionsEstablished >= 3, "no connection after the restart")
        // Answered after the restart (1.6 s in): the last second of the schedule succeeded.
        let last = result.timeline.filter { $0.second == 2 }
        #expect(last.reduce(0) { $0 + $1.succeeded } > 100, "second 2: \(last.map { ($0.sent, $0.succeeded, $0.failed) })")
        // The outage is in the result: refused reconnects, and arrivals that waited for a connection (their latency
        // counts from their intended time).
        #expect(result.connectionFailures[.connectRefused, default: 0] > 0, "\(result.connectionFailures)")
        #expect(result.latency.max >= 300_000, "no request waited through the outage: max \(result.latency.max) us")
    }

    /// The closed model with a duration and a server that never comes back: the run still lasts its duration.
    @Test func aClosedModelRunWithADurationRunsToItsEnd() async throws {
        let (port, outage) = try await echoGoingAway(after: 300)
        let result = try await runLoad(["https://127.0.0.1:\(port)/"], tls: clientTLS, connections: 2, streams: 2) { c in
            c.plan.requests = nil
            c.plan.duration = 2
        }
        try await outage.value
        #expect(result.endedEarly == nil)
        #expect(result.elapsedSeconds >= 1.9, "the run ended at \(result.elapsedSeconds) s of 2")
        #expect(result.connectionFailures[.connectRefused, default: 0] >= 4, "\(result.connectionFailures)")
        // The report says the target went away, whatever else passed.
        var configuration = LoadConfiguration(targets: [try LoadTarget(parsing: "https://127.0.0.1:\(port)/")])
        configuration.plan.duration = 2
        let report = LoadReport(result: result, configuration: configuration, commandLine: [], startedAt: Date(), version: "test")
        #expect(report.summary.warnings.contains { $0.hasPrefix("the target could not be reached for part of the run") },
                "\(report.summary.warnings)")
        // The closed model sent nothing for the rest of the run: its time is counted, and a threshold that passes on
        // what was sent is UNDECIDED (a trial's finding: a target dead for 6 s of 8 PASSed).
        #expect(result.unreachableSeconds > 1.2 && result.unreachableSeconds < 1.8, "\(result.unreachableSeconds)")
        let verdict = try #require(report.evaluate([LoadThreshold(parsing: "error_rate<0.5")]).first)
        #expect(!verdict.decided && verdict.reason?.hasPrefix("the target could not be reached for") == true, "\(verdict)")
    }

    /// A count-bounded run whose server goes away gives up, says why, and counts every request of its budget.
    @Test func aCountBoundedRunThatGivesUpSaysWhyAndCountsEveryRequest() async throws {
        let (port, outage) = try await echoGoingAway(after: 300)
        let result = try await runLoad(["https://127.0.0.1:\(port)/"], tls: clientTLS, requests: 1_000_000,
                                       connections: 2, streams: 2)
        try await outage.value
        let why = try #require(result.endedEarly)
        #expect(why.contains("connect_refused"), "\(why)")
        #expect(result.totalRequests == 1_000_000, "requests counted: \(result.totalRequests)")
        #expect(result.errors[.connectRefused, default: 0] > 0)
    }

    /// A refusal that retrying cannot change (the server's SPIFFE ID is not the expected one) ends a timed run
    /// early, with the reason, instead of retrying it for its whole duration.
    @Test func aTimedRunRefusedByIdentityEndsEarlyWithTheReason() async throws {
        let port = try freePort()
        let server = try await echo(on: port)
        defer { server.stop() }
        let prober = try pki.svid("prober2", uris: [pki.id("prober2")])
        let wrong = try pki.clientTLS(prober, expect: .spiffeID(try SPIFFEID(parsing: pki.id("ratings"))))
        let result = try await runLoad(["https://127.0.0.1:\(port)/"], tls: wrong, connections: 2, streams: 1) { c in
            c.plan.requests = nil
            c.plan.duration = 30
        }
        let why = try #require(result.endedEarly)
        #expect(why.contains("tls_wrong_spiffe_id"), "\(why)")
        #expect(result.elapsedSeconds < 20, "retried a refusal for \(result.elapsedSeconds) s")
        // A run bounded by time had no count of requests left: none is said to be counted.
        #expect(result.totalRequests == 0 && !why.contains("requests left"), "\(why)")
    }

    /// The same in a game day: a load step whose connections are all refused for the server's identity did not run
    /// its course, and its objectives fail as `verify`'s split does (the traffic did not reach the declared
    /// workloads): FAIL, exit 1, the reason on the step, the steps after it not run.
    @Test func aGameDayLoadStepRefusedForTheServersIdentityFails() async throws {
        let port = try freePort()
        let server = try await echo(on: port)
        defer { server.stop() }
        let prober = try pki.svid("prober3", uris: [pki.id("prober3")])
        let file = try pki.write("gameday.yaml", """
            name: wrong peer
            target: https://127.0.0.1:\(port)/
            identity: {cert: \(prober.cert), key: \(prober.key), ca: \(pki.caFile), expectPeer: "\(pki.id("ratings"))"}
            load: {connections: 2, streams: 2}
            gameday:
              steps:
                - {name: baseline, rate: 50, duration: 20s}
            """)
        let json = pki.directory.appendingPathComponent("gameday.json").path
        let out = try await run(meshprobeBinary, ["gameday", file, "--quiet", "--json", json], timeout: 30)
        #expect(out.status == 1, "\(out.stdout)\(out.stderr)")
        #expect(out.stdout.split(separator: "\n").last == "FAIL", "\(out.stdout)")
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any]
        let outcome = try #require(object?["outcome"] as? [String: Any])
        #expect(outcome["result"] as? String == "FAIL" && outcome["exit_code"] as? Int == 1, "\(outcome)")
        let step = try #require((object?["steps"] as? [[String: Any]])?.first)
        #expect(step["passed"] as? Bool == false && step["decided"] as? Bool == true, "\(step)")
        let verdict = try #require((step["verdicts"] as? [[String: Any]])?.first)
        #expect(verdict["kind"] as? String == "server_identity" && verdict["passed"] as? Bool == false, "\(verdict)")
        #expect((verdict["reason"] as? String)?.contains("tls_wrong_spiffe_id") == true, "\(verdict)")
        #expect(step["requests"] as? Int == 1000, "every arrival of 50/s over 20 s counted: \(step)")
    }

    /// `verify` against a server with another SPIFFE ID than the policy expects: a decided FAIL (exit 1) naming the
    /// refusal, not an undecided split.
    @Test func verifyAgainstTheWrongServerIdentityFails() async throws {
        let port = try freePort()
        let server = try await echo(on: port)
        defer { server.stop() }
        let prober = try pki.svid("prober4", uris: [pki.id("prober4")])
        let policy = try pki.write("policy.yaml", """
            policy: meshprobe.policy/v1
            target: https://127.0.0.1:\(port)/
            identity: {cert: \(prober.cert), key: \(prober.key), ca: \(pki.caFile), expectPeer: "\(pki.id("ratings"))"}
            expect:
              split: {vm: 100}
            """)
        let out = try await run(meshprobeBinary, ["verify", policy, "--quiet"], timeout: 60)
        #expect(out.status == 1, "\(out.stdout)\(out.stderr)")
        #expect(out.stdout.contains("FAIL  split  the server was refused on"), "\(out.stdout)")
        #expect(out.stdout.contains("tls_wrong_spiffe_id"), "\(out.stdout)")
    }

    /// A server that refuses the prober's client certificate (an SVID of another CA): nothing reached the workloads
    /// and whether the prober or the mesh is wrong cannot be told from here, so `verify`'s split and a game day's
    /// objectives are undecided (exit 3) naming the refusal, never a FAIL a canary gate would roll back on.
    @Test func aServerRefusingTheProbersCertificateLeavesVerifyAndGameDaysUndecided() async throws {
        let port = try freePort()
        let server = try await echo(on: port)
        defer { server.stop() }
        let stranger = try LabPKIFixture(trustDomain: "stranger.meshprobe.test")
        let prober = try stranger.svid("prober5", uris: [stranger.id("prober5")])
        let policy = try pki.write("refused-policy.yaml", """
            policy: meshprobe.policy/v1
            target: https://127.0.0.1:\(port)/
            identity: {cert: \(prober.cert), key: \(prober.key), ca: \(pki.caFile), expectPeer: "\(pki.id("echo"))"}
            expect:
              split: {vm: 100}
            """)
        let json = pki.path("refused-verify.json")
        let verify = try await run(meshprobeBinary, ["verify", policy, "--quiet", "--json", json], timeout: 60)
        #expect(verify.status == 3, "\(verify.stdout)\(verify.stderr)")
        #expect(verify.stdout.contains("UNDECIDED  split  undecided: the server refused this prober's client certificate"), "\(verify.stdout)")
        #expect(verify.stdout.split(separator: "\n").last == "UNDECIDED", "\(verify.stdout)")
        let result = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any]
        let outcome = try #require(result?["outcome"] as? [String: Any])
        #expect(outcome["result"] as? String == "UNDECIDED" && outcome["exit_code"] as? Int == 3, "\(outcome)")

        let gameday = try pki.write("refused-gameday.yaml", """
            name: refused prober
            target: https://127.0.0.1:\(port)/
            identity: {cert: \(prober.cert), key: \(prober.key), ca: \(pki.caFile), expectPeer: "\(pki.id("echo"))"}
            load: {connections: 2, streams: 2}
            gameday:
              steps:
                - {name: baseline, rate: 50, duration: 20s}
            """)
        let out = try await run(meshprobeBinary, ["gameday", gameday, "--quiet"], timeout: 30)
        #expect(out.status == 3, "\(out.stdout)\(out.stderr)")
        #expect(out.stdout.contains("the server refused this prober's client certificate"), "\(out.stdout)")
    }

    /// A timed run whose target never accepted a connection sends nothing, so it has no error to name: its verdict
    /// and its last line name the connection failure instead of a bare "no request succeeded".
    @Test func aTimedRunThatNeverConnectedNamesTheConnectionFailure() async throws {
        let port = try freePort()
        let out = try await run(meshprobeBinary, ["load", "-d", "1s", "-c", "1", "http://127.0.0.1:\(port)/"], timeout: 30)
        #expect(out.status == 1, "\(out.stdout)\(out.stderr)")
        let named = "no request succeeded: no connection could be made in"
        #expect(out.stdout.contains("FAIL  requests succeeded  \(named)"), "\(out.stdout)")
        #expect(out.stderr.contains(named) && out.stderr.contains("connect_refused"), "\(out.stderr)")
    }
    }
}
