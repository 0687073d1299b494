import Foundation
import MeshprobeEcho
import MeshprobeIdentity
import MeshprobeSpec
import MeshprobeSVIDSource
import MeshprobeTLS
import MeshprobeTestSupport
import NIOPosix
import Testing

extension EndToEnd {
    /// `meshprobe load --workload-api`: SVIDs from the SPIFFE Workload API, rotated during the run.
    ///
    /// The agent is `Tests/Fixtures/spiffe/workload_api_server.py`, a Workload API server built with grpcio from the
    /// SPIFFE workload.proto: no SPIRE agent binary can be installed here. It issues SVIDs with the lab CA and
    /// checks the `workload.spiffe.io` header; py-spiffe's client (the `spiffe` package) fetches from it too, as a
    /// second opinion that it is a faithful Workload API.
    @Suite(.timeLimit(.minutes(4))) struct WorkloadAPITests {
        static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/spiffe")
        static let server = fixtures.appendingPathComponent("workload_api_server.py").path
        static let proto = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("protos/spiffe/workload/workload.proto").path

        /// The lab: a CA (with its key, for the agent), a temporary directory for the socket, the echo's SVID.
        final class Lab: Sendable {
            let pki: LabPKIFixture
            let dir: String
            let caKey: String
            var socket: String { "\(dir)/agent.sock" }
            var endpoint: String { "unix://\(socket)" }

            init(trustDomain: String = "lab.meshprobe.test") throws {
                pki = try LabPKIFixture(trustDomain: trustDomain)
                dir = try makeTemporaryDirectory("mp-wlapi")
                caKey = pki.path("ca-key.pem")
                try pki.ca.write(certificateTo: pki.caFile, privateKeyTo: caKey)
            }

            deinit { removeTemporaryDirectory(dir) }

            /// The agent, offering `ids` (the first is the default SVID).
            func agent(_ ids: [String], _ arguments: [String] = []) async throws -> BackgroundProcess {
                let python = try #require(which("python3"))
                return try await BackgroundProcess(python, [WorkloadAPITests.server, "--socket", socket, "--proto", WorkloadAPITests.proto,
                                                            "--ca-cert", pki.caFile, "--ca-key", caKey, "--trust-domain", pki.trustDomain,
                                                            "--log", "\(dir)/agent.log", "--max-seconds", "200"]
                                                   + ids.flatMap { ["--spiffe-id", $0] } + arguments,
                                                   waitForSocket: socket, timeout: 30)
            }

            /// An echo that requires a client certificate from this lab's CA (of caller `caller` when given).
            func echo(caller: String? = nil) async throws -> EchoServer {
                let svid = try pki.svid("reviews", uris: [pki.id("reviews")])
                var configuration = EchoConfiguration(identity: EchoIdentity(workload: "reviews", version: "v1", cluster: "test",
                                                                             namespace: "lab", pod: "reviews-v1-0"))
                configuration.port = 0
                configuration.tls = try TLSContext(configuration: try pki.serverConfiguration(
                    svid, expectedPeer: try caller.map { .spiffeID(try SPIFFEID(parsing: $0)) }))
                return try await EchoServer.start(configuration, group: MultiThreadedEventLoopGroup.singleton)
            }

            var agentLog: [String] {
                ((try? String(contentsOfFile: "\(dir)/agent.log", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
            }
        }

        func json(_ path: String) throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        }

        func rotations(_ path: String) throws -> [String: Any] {
            let meta = try #require(try json(path)["meta"] as? [String: Any])
            return try #require(meta["identity_rotations"] as? [String: Any])
        }

        @Test func fetchesTheSVIDAndLoadsOverMutualTLSAsPySpiffeFetchesIt() async throws {
            let lab = try Lab()
            let agent = try await lab.agent([lab.pki.id("prober")])
            defer { agent.stop() }
            // py-spiffe, a second client: the default SVID, its chain, and the bundle of the lab's trust domain.
            let second = try await python("""
                import sys
                from spiffe import WorkloadApiClient
                client = WorkloadApiClient(socket_path=sys.argv[1])
                svid = client.fetch_x509_svid()
                bundles = client.fetch_x509_bundles()
                bundle = bundles.get_bundle_for_trust_domain(svid.spiffe_id.trust_domain)
                print(svid.spiffe_id, len(svid.cert_chain), len(bundle.x509_authorities))
                client.close()
                """, [lab.endpoint])
            #expect(second.status == 0, "\(second.stderr)")
            #expect(second.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "\(lab.pki.id("prober")) 1 1")
            // A gRPC client without the security header is refused, as an agent refuses it: so meshprobe sends it.
            let bare = try await python("""
                import grpc, sys
                channel = grpc.insecure_channel(sys.argv[1])
                call = channel.unary_stream("/SpiffeWorkloadAPI/FetchX509SVID", request_serializer=lambda _: b"", response_deserializer=lambda b: b)
                try:
                    next(iter(call(None, timeout=5)))
                except grpc.RpcError as e:
                    print(e.code().name)
                """, ["unix:\(lab.socket)"])
            #expect(bare.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "INVALID_ARGUMENT", "\(bare.stdout)\(bare.stderr)")

            let echo = try await lab.echo(caller: lab.pki.id("prober"))
            defer { Task { await echo.close() } }
            let out = try await run(meshprobeBinary, ["load", "https://127.0.0.1:\(echo.port)/", "--workload-api", lab.endpoint,
                                                      "--expect-peer", lab.pki.id("reviews"), "-n", "200", "-c", "2", "-m", "5",
                                                      "--json", "\(lab.dir)/result.json"], timeout: 60)
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            #expect(out.stdout.contains("requests:   200 total, 200 succeeded, 0 failed"), "\(out.stdout)")
            #expect(out.stdout.contains("identity:   Workload API: 0 rotations, 0 TLS failures"), "\(out.stdout)")
            let rotation = try rotations("\(lab.dir)/result.json")
            #expect(rotation["source"] as? String == "workload-api")
            #expect(rotation["tls_failures"] as? Int == 0)
            #expect(try await ResultSchema.load.violation(in: "\(lab.dir)/result.json") == nil)
        }

        /// SVIDs rotated every 3 s with a 7 s lifetime, under a 15 s load that makes a new connection every 25
        /// requests: a connection made with an expired SVID would fail its handshake at the echo, so zero failures
        /// mean every new connection presented a current one.
        @Test func rotationMidLoadKeepsEveryRequestAndIsCounted() async throws {
            let lab = try Lab()
            let agent = try await lab.agent([lab.pki.id("prober")], ["--rotate-every", "3", "--lifetime", "7"])
            defer { agent.stop() }
            let echo = try await lab.echo()
            defer { Task { await echo.close() } }
            let out = try await run(meshprobeBinary, ["load", "https://127.0.0.1:\(echo.port)/", "--workload-api", lab.endpoint,
                                                      "-d", "15s", "-c", "2", "-m", "2", "--churn", "25", "--json", "\(lab.dir)/result.json"],
                                    timeout: 90)
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            #expect(out.stdout.contains(", 0 failed"), "\(out.stdout)")
            let rotation = try rotations("\(lab.dir)/result.json")
            let count = try #require(rotation["rotations"] as? Int)
            #expect(count >= 3, "\(rotation)")
            #expect(rotation["tls_failures"] as? Int == 0)
            #expect(rotation["rejected"] as? Int == 0)
            // The agent sent the first SVID and one per rotation.
            #expect(lab.agentLog.filter { $0.hasPrefix("update ") }.count >= count + 1)
            let summary = try #require(try json("\(lab.dir)/result.json")["summary"] as? [String: Any])
            #expect(summary["failed"] as? Int == 0)
        }

        /// The agent restarts during the run: meshprobe keeps its SVID while the socket is gone, reconnects with backoff,
        /// and takes the new agent's SVIDs. The backoff (0.2 s doubling) tries at 2.2, 2.6, 3.4, 5.0 and 8.2 s: a new
        /// agent slow to start (a loaded CI machine) is reached at 8.2 s at worst, and rotates 2 s later, within the 14 s.
        @Test func survivesAnAgentRestartAndTakesTheNewAgentsSVIDs() async throws {
            let lab = try Lab()
            let agent = try await lab.agent([lab.pki.id("prober")], ["--lifetime", "60"])
            let echo = try await lab.echo()
            defer { Task { await echo.close() } }
            let load = Task {
                try await run(meshprobeBinary, ["load", "https://127.0.0.1:\(echo.port)/", "--workload-api", lab.endpoint,
                                                "-d", "14s", "-c", "2", "--churn", "25", "--json", "\(lab.dir)/result.json"], timeout: 60)
            }
            try await Task.sleep(for: .seconds(2))
            await agent.stopAndWait()
            try? FileManager.default.removeItem(atPath: lab.socket)
            try await Task.sleep(for: .seconds(2))
            let restarted = try await lab.agent([lab.pki.id("prober")], ["--rotate-every", "2", "--lifetime", "60"])
            defer { restarted.stop() }
            let out = try await load.value
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            #expect(out.stdout.contains(", 0 failed"), "\(out.stdout)")
            #expect(out.stderr.contains("; reconnecting"), "\(out.stderr)")
            let rotation = try rotations("\(lab.dir)/result.json")
            // The new agent's first SVID and at least one of its rotations.
            #expect((rotation["rotations"] as? Int ?? 0) >= 2, "\(rotation)")
            #expect(rotation["tls_failures"] as? Int == 0)
            // The outage is in the result and the summary, not only on stderr.
            #expect((rotation["interruptions"] as? Int ?? 0) >= 1, "\(rotation)")
            #expect(rotation["last_interruption"] is String, "\(rotation)")
            #expect(out.stdout.contains("(identity kept; last: "), "\(out.stdout)")
        }

        /// A source asked for a new SVID (a control request failed on an SVID that expired during an agent outage) gets
        /// one at once: the stream, waiting out a 20 s backoff after the agent stopped, reconnects to the restarted
        /// agent now. Asked through a derived source (the control APIs' client), as the fault ledger asks.
        @Test func aRefreshRequestEndsTheBackoffWaitAfterAnAgentOutage() async throws {
            let lab = try Lab()
            let agent = try await lab.agent([lab.pki.id("prober")], ["--lifetime", "60"])
            let svids = try await WorkloadAPISVIDSource.start(
                endpoint: try WorkloadAPIEndpoint(parsing: lab.endpoint), timeout: 30, backoff: (20, 60),
                build: { update in try TLSContext(configuration: update.apply(spiffeID: nil, to: TLSConfiguration(role: .client))) },
                onEvent: { _ in })
            let control = try svids.source.derived(source: "control") { $0 }
            await agent.stopAndWait()
            try? FileManager.default.removeItem(atPath: lab.socket)
            let restarted = try await lab.agent([lab.pki.id("prober")], ["--lifetime", "60"])
            defer { restarted.stop() }
            let before = control.rotations.count
            // Not asked: the next attempt is the backoff's, 20 s after the stream ended.
            #expect(await control.waitForRotation(after: before, timeout: .seconds(1)) == false)
            control.requestRefresh()
            let renewed = await control.waitForRotation(after: before, timeout: .seconds(5))
            await svids.stop()
            #expect(renewed)
        }

        /// A scenario's `identity.workloadApi` (and `workloadApiSvid`) for `meshprobe run`.
        @Test func aScenarioFileTakesItsSVIDFromTheWorkloadAPI() async throws {
            let lab = try Lab()
            let agent = try await lab.agent([lab.pki.id("default"), lab.pki.id("prober")], ["--rotate-every", "2"])
            defer { agent.stop() }
            let echo = try await lab.echo(caller: lab.pki.id("prober"))
            defer { Task { await echo.close() } }
            let scenario = "\(lab.dir)/scenario.yaml"
            try """
                target: https://127.0.0.1:\(echo.port)/
                identity:
                  workloadApi: \(lab.endpoint)
                  workloadApiSvid: \(lab.pki.id("prober"))
                  expectPeer: \(lab.pki.id("reviews"))
                load: {connections: 2, duration: 5s, churn: 20}
                output: {json: result.json}
                """.write(toFile: scenario, atomically: true, encoding: .utf8)
            let check = try await run(meshprobeBinary, ["run", scenario, "--check"], timeout: 30)
            #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
            #expect(check.stdout.contains("identity: workloadApi \(lab.endpoint), the SVID \(lab.pki.id("prober")) (not called: --check)"), "\(check.stdout)")
            let out = try await run(meshprobeBinary, ["run", scenario], timeout: 60)
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            #expect(out.stdout.contains(", 0 failed"), "\(out.stdout)")
            let rotation = try rotations("\(lab.dir)/result.json")
            #expect((rotation["rotations"] as? Int ?? 0) >= 1, "\(rotation)")
            #expect(rotation["tls_failures"] as? Int == 0)

        }

        /// A policy's and a game day's `identity.workloadApi`: the SVID, valid 4 s, rotates every 2 s under `verify` (a
        /// split, and access cells: the prober's own SVID from the Workload API, another caller's from files trusting the
        /// server by the Workload API's bundle, anonymous presenting none) and under `gameday` (a fault set through the
        /// echo's control API with the Workload API's SVID and cleared 6 s later with the one current then: the first
        /// has expired; and a plaintext target's game day, whose faults go over mTLS).
        @Test func verifyAndGameDayTakeTheirSVIDFromTheWorkloadAPI() async throws {
            let lab = try Lab()
            let prober = lab.pki.id("prober"), frontend = lab.pki.id("frontend"), batch = lab.pki.id("batch")
            let agent = try await lab.agent([prober], ["--rotate-every", "2", "--lifetime", "4"])
            defer { agent.stop() }
            let server = try lab.pki.svid("reviews", uris: [lab.pki.id("reviews")])
            let frontendSVID = try lab.pki.svid("frontend", uris: [frontend])
            let batchSVID = try lab.pki.svid("batch", uris: [batch])
            let allow = try lab.pki.write("allow.yaml", """
                rules:
                  - {principals: ["\(prober)", "\(frontend)"], paths: ["/reviews/*"]}
                """)
            let port = try freePort()
            let echo = try await BackgroundProcess(meshprobeBinary, ["echo", "--listen", "127.0.0.1:\(port)", "--cert", server.cert, "--key", server.key,
                                                                     "--ca", lab.pki.caFile, "--workload-version", "v1", "--authorize", allow,
                                                                     "--control-allow", prober],
                                                   waitForPort: port)
            defer { echo.stop() }

            // No ca file anywhere: the prober's bundle is the Workload API's, and every caller trusts the server by it.
            let policy = "\(lab.dir)/policy.yaml"
            try """
                policy: meshprobe.policy/v1
                target: https://127.0.0.1:\(port)/reviews/1
                identity: {workloadApi: \(lab.endpoint), expectPeer: "\(lab.pki.id("reviews"))"}
                identities:
                  \(frontend): {cert: \(frontendSVID.cert), key: \(frontendSVID.key)}
                  \(batch): {cert: \(batchSVID.cert), key: \(batchSVID.key)}
                load: {connections: 2, streams: 4, churn: 50}
                expect:
                  recognise: version
                  split: {v1: 100}
                  access:
                    rules:
                      - {callers: ["\(prober)", "\(frontend)"], requests: [{path: /reviews/1}], expect: allow}
                      - {callers: ["\(batch)", anonymous], requests: [{path: /reviews/1}], expect: deny}
                """.write(toFile: policy, atomically: true, encoding: .utf8)
            let check = try await run(meshprobeBinary, ["verify", policy, "--check"], timeout: 30)
            #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
            #expect(check.stdout.contains("workloadApi \(lab.endpoint)"), "\(check.stdout)")
            let verify = try await run(meshprobeBinary, ["verify", policy, "--quiet", "--json", "\(lab.dir)/verify.json"], timeout: 90)
            #expect(verify.stderr.contains("meshprobe verify: identity: Workload API: "), "\(verify.stderr)")
            #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
            for line in ["PASS  access: \(prober) -> GET /reviews/1: allowed",
                         "PASS  access: \(frontend) -> GET /reviews/1: allowed",
                         "PASS  access: \(batch) -> GET /reviews/1: denied",
                         "PASS  access: anonymous -> GET /reviews/1: denied"] {
                #expect(verify.stdout.contains(line), "\(line)\n\(verify.stdout)")
            }

            let gameday = "\(lab.dir)/gameday.yaml"
            try """
                name: workload api game day
                target: https://127.0.0.1:\(port)/reviews/1
                identity: {workloadApi: \(lab.endpoint), expectPeer: "\(lab.pki.id("reviews"))"}
                load: {connections: 2, streams: 4, churn: request}
                gameday:
                  steps:
                    - {name: baseline, rate: 50, duration: 3s, expect: {successRate: 0.9}}
                    - name: every request fails
                      rate: 50
                      duration: 6s
                      faults: [{target: https://127.0.0.1:\(port), status: 503, statusShare: 100}]
                      expect: {successRate: 0.9}
                """.write(toFile: gameday, atomically: true, encoding: .utf8)
            let json = "\(lab.dir)/gameday.json"
            let day = try await run(meshprobeBinary, ["gameday", gameday, "--quiet", "--json", json], timeout: 90)
            // The fault was set (the second step fails on its 503s) and cleared, both with the Workload API's SVID.
            #expect(day.status == 1, "\(day.stdout)\(day.stderr)")
            let steps = try #require(try self.json(json)["steps"] as? [[String: Any]])
            #expect(steps.map { $0["passed"] as? Bool } == [true, false], "\(day.stdout)")
            #expect(day.stdout.contains("(cleared)") && !day.stdout.contains("could not clear"), "\(day.stdout)")
            #expect(day.stderr.contains("meshprobe gameday: identity: Workload API: "), "\(day.stderr)")
            #expect((lab.agentLog.filter { $0.hasPrefix("update ") }.count) >= 5, "\(lab.agentLog)")
            // Each step counts its own rotations; the run's total is on stderr.
            let perStep = steps.map { ((($0["result"] as? [String: Any])?["meta"] as? [String: Any])?["identity_rotations"] as? [String: Any])?["rotations"] as? Int }
            let total = try #require(day.stderr.split(separator: "\n").first { $0.contains("identity: Workload API: ") }
                .flatMap { Int($0.split(separator: ": ").last?.split(separator: " ").first ?? "") })
            #expect(perStep.allSatisfy { $0 != nil } && perStep.compactMap { $0 }.reduce(0, +) <= total && (perStep.last.flatMap { $0 } ?? 99) <= 4,
                    "\(perStep) of \(total)")

            // A plaintext target (an h2c echo): the control API's faults still go over mTLS with the Workload API's SVID.
            let plainPort = try freePort()
            let plain = try await BackgroundProcess(meshprobeBinary, ["echo", "--listen", "127.0.0.1:\(plainPort)", "--h2c", "--workload-version", "v2"],
                                                    waitForPort: plainPort)
            defer { plain.stop() }
            let plaintext = "\(lab.dir)/gameday-plain.yaml"
            try """
                name: plaintext target
                target: http://127.0.0.1:\(plainPort)/
                identity: {workloadApi: \(lab.endpoint)}
                load: {connections: 2, streams: 4, churn: request}
                gameday:
                  steps:
                    - name: a fault elsewhere
                      rate: 50
                      duration: 2s
                      faults: [{target: https://127.0.0.1:\(port), status: 503, statusShare: 100}]
                      expect: {successRate: 0.9}
                """.write(toFile: plaintext, atomically: true, encoding: .utf8)
            let other = try await run(meshprobeBinary, ["gameday", plaintext, "--quiet"], timeout: 60)
            #expect(other.status == 0, "\(other.stdout)\(other.stderr)")
            #expect(other.stdout.contains("(cleared)"), "\(other.stdout)")
        }

        /// A sharded load with the Workload API's SVID: the result channel is mutual TLS with it (before, plain HTTP, as
        /// if the run had no SVID), and the shards merge.
        @Test func shardsSendTheirResultsOverMutualTLSWithTheWorkloadAPIsSVID() async throws {
            let lab = try Lab()
            let agent = try await lab.agent([lab.pki.id("prober")], ["--rotate-every", "2", "--lifetime", "60"])
            defer { agent.stop() }
            let echo = try await lab.echo()
            defer { Task { await echo.close() } }
            let port = try freePort()
            let shards = try [1, 0].map { (index: Int) in
                try ShardProcess(index: index, arguments: [
                    "load", "https://127.0.0.1:\(echo.port)/", "--workload-api", lab.endpoint, "-n", "200", "-c", "2", "--quiet",
                    "--shards", "2", "--aggregator", "127.0.0.1:\(port)", "--shard-timeout", "20s",
                    "--json", "\(lab.dir)/shard-\(index).json"], timeout: 60)
            }
            for shard in shards {
                let end = await shard.wait()
                #expect(end.status == 0, "shard \(shard.index): \(shard.stderr)")
            }
            #expect(shards[1].stderr.contains("(mutual TLS, shards of trust domain \(lab.pki.trustDomain))"), "\(shards[1].stderr)")
            let merged = try json("\(lab.dir)/shard-0.json")
            #expect((merged["summary"] as? [String: Any])?["requests"] as? Int == 200, "\(merged)")
        }

        @Test func presentsTheSVIDWithTheSPIFFEIDAskedForAndListsTheOfferedOnes() async throws {
            let lab = try Lab()
            let agent = try await lab.agent([lab.pki.id("default"), lab.pki.id("prober")])
            defer { agent.stop() }
            let echo = try await lab.echo(caller: lab.pki.id("prober"))
            defer { Task { await echo.close() } }
            let url = "https://127.0.0.1:\(echo.port)/"
            let chosen = try await run(meshprobeBinary, ["load", url, "--workload-api", lab.endpoint, "--workload-api-svid", lab.pki.id("prober"),
                                                         "-n", "50"], timeout: 60)
            #expect(chosen.status == 0, "\(chosen.stdout)\(chosen.stderr)")
            #expect(chosen.stdout.contains("50 succeeded"), "\(chosen.stdout)")
            // The default SVID is not the caller the echo expects: every handshake is refused.
            let first = try await run(meshprobeBinary, ["load", url, "--workload-api", lab.endpoint, "-n", "10"], timeout: 60)
            #expect(first.status != 0)
            #expect(!first.stdout.contains("10 succeeded"), "\(first.stdout)")
            let missing = try await run(meshprobeBinary, ["load", url, "--workload-api", lab.endpoint, "--workload-api-svid", lab.pki.id("nobody"),
                                                          "-n", "10"], timeout: 60)
            #expect(missing.status == 2)
            #expect(missing.stderr.contains("no SVID with the SPIFFE ID \(lab.pki.id("nobody")): the agent offers \(lab.pki.id("default")), \(lab.pki.id("prober"))"),
                    "\(missing.stderr)")
        }

        @Test func trustsFederatedBundlesAndNamesAMissingOne() async throws {
            let lab = try Lab()
            let other = try LabPKIFixture(trustDomain: "other.meshprobe.test")
            let otherSVID = try other.svid("ratings", uris: [other.id("ratings")])
            var configuration = EchoConfiguration(identity: EchoIdentity(workload: "ratings", version: "v1", cluster: "test",
                                                                         namespace: "lab", pod: "ratings-v1-0"))
            configuration.port = 0
            configuration.tls = try TLSContext(configuration: try other.serverConfiguration(otherSVID, trust: try lab.pki.trustBundles()))
            let echo = try await EchoServer.start(configuration, group: MultiThreadedEventLoopGroup.singleton)
            defer { Task { await echo.close() } }
            let url = "https://127.0.0.1:\(echo.port)/"
            do {
                let agent = try await lab.agent([lab.pki.id("prober")])
                defer { agent.stop() }
                let out = try await run(meshprobeBinary, ["load", url, "--workload-api", lab.endpoint, "-n", "10"], timeout: 60)
                #expect(out.status != 0)
                #expect(out.stdout.contains("no trust bundle for trust domain 'other.meshprobe.test'"), "\(out.stdout)")
                await agent.stopAndWait()
            }
            try? FileManager.default.removeItem(atPath: lab.socket)
            let federated = try await lab.agent([lab.pki.id("prober")], ["--federated", "spiffe://other.meshprobe.test=\(other.caFile)"])
            defer { federated.stop() }
            let out = try await run(meshprobeBinary, ["load", url, "--workload-api", lab.endpoint, "-n", "10",
                                                      "--expect-peer", other.id("ratings")], timeout: 60)
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            #expect(out.stdout.contains("10 succeeded"), "\(out.stdout)")
        }

        @Test func namesEveryReasonForNoSVIDWithExit2() async throws {
            let lab = try Lab()
            let url = "https://127.0.0.1:9/"
            func load(_ extra: [String] = [], environment: [String: String]? = nil) async throws -> ProcessOutput {
                try await run(meshprobeBinary, ["load", url, "-n", "1", "--workload-api-timeout", "1s"] + extra, timeout: 60, environment: environment)
            }
            let missing = try await load(["--workload-api", lab.endpoint])
            #expect(missing.status == 2)
            #expect(missing.stderr.contains("no X.509-SVID within 1s: no such socket \(lab.socket)"), "\(missing.stderr)")
            // A wait beyond a second says what it waits for, and why so far.
            let waiting = try await run(meshprobeBinary, ["load", url, "-n", "1", "--workload-api-timeout", "2s", "--workload-api", lab.endpoint],
                                        timeout: 60)
            #expect(waiting.status == 2)
            #expect(waiting.stderr.contains("waiting up to 2s for the first X.509-SVID from the Workload API at \(lab.endpoint) (so far: no such socket \(lab.socket)"),
                    "\(waiting.stderr)")
            // The standard variable, when no identity flag is given.
            var environment = ProcessInfo.processInfo.environment
            environment["SPIFFE_ENDPOINT_SOCKET"] = "unix:\(lab.socket)"
            let fromVariable = try await load(environment: environment)
            #expect(fromVariable.status == 2)
            #expect(fromVariable.stderr.contains("no such socket \(lab.socket)"), "\(fromVariable.stderr)")

            // A socket file nobody listens on.
            let bound = try await python("import socket, sys\ns = socket.socket(socket.AF_UNIX)\ns.bind(sys.argv[1])\ns.close()", [lab.socket])
            #expect(bound.status == 0, "\(bound.stderr)")
            let refused = try await load(["--workload-api", lab.endpoint])
            #expect(refused.status == 2)
            #expect(refused.stderr.contains("connection refused on \(lab.socket)"), "\(refused.stderr)")
            try FileManager.default.removeItem(atPath: lab.socket)

            do {
                let agent = try await lab.agent([lab.pki.id("prober")], ["--mode", "permission-denied"])
                defer { agent.stop() }
                let denied = try await load(["--workload-api", lab.endpoint])
                #expect(denied.status == 2)
                #expect(denied.stderr.contains("PermissionDenied: the agent has no identity for this workload: check its registration entries/selectors"),
                        "\(denied.stderr)")
                await agent.stopAndWait()
            }
            try? FileManager.default.removeItem(atPath: lab.socket)
            let agent = try await lab.agent([lab.pki.id("prober")], ["--mode", "invalid-argument"])
            defer { agent.stop() }
            // InvalidArgument is final: no waiting for the timeout.
            let start = ContinuousClock.now
            let invalid = try await run(meshprobeBinary, ["load", url, "-n", "1", "--workload-api", lab.endpoint], timeout: 60)
            #expect(invalid.status == 2)
            #expect(invalid.stderr.contains("InvalidArgument: the agent refused the request"), "\(invalid.stderr)")
            #expect(ContinuousClock.now - start < .seconds(20))
        }

        /// `--svid-dir` rewritten during a run as spiffe-helper does (a new file renamed over the old one), once
        /// half-written first: the half-written key is reported and the old identity kept; the new SVID is taken. The
        /// first SVID expires 8 s into a 12 s run, so a run that kept it would fail its later handshakes (6 s left the
        /// new one, installed at 4.5 s and polled within a second, too little margin on a loaded machine).
        @Test func svidDirectoryRewrittenMidLoadIsPickedUp() async throws {
            let lab = try Lab()
            let svidDir = "\(lab.dir)/svid"
            try FileManager.default.createDirectory(atPath: svidDir, withIntermediateDirectories: true)
            func install(_ svid: (cert: String, key: String)) throws {
                for (from, to) in [(svid.cert, "cert-chain.pem"), (svid.key, "key.pem")] {
                    let staged = "\(svidDir)/.\(to).tmp"
                    try? FileManager.default.removeItem(atPath: staged)
                    try FileManager.default.copyItem(atPath: from, toPath: staged)
                    try #require(rename(staged, "\(svidDir)/\(to)") == 0, "rename \(staged)")
                }
            }
            try install(try lab.pki.svid("prober-1", uris: [lab.pki.id("prober")], notAfter: Date() + 8))
            try FileManager.default.copyItem(atPath: lab.pki.caFile, toPath: "\(svidDir)/root-cert.pem")
            let echo = try await lab.echo()
            defer { Task { await echo.close() } }
            let load = Task {
                try await run(meshprobeBinary, ["load", "https://127.0.0.1:\(echo.port)/", "--svid-dir", svidDir, "-d", "12s", "-c", "2",
                                                "--churn", "25", "--json", "\(lab.dir)/result.json"], timeout: 60)
            }
            try await Task.sleep(for: .seconds(2))
            // Half-written: a key file cut short (it parses as nothing), left for 2 polls.
            let next = try lab.pki.svid("prober-2", uris: [lab.pki.id("prober")])
            let key = try String(contentsOfFile: next.key, encoding: .utf8)
            try String(key.prefix(40)).write(toFile: "\(svidDir)/key.pem", atomically: false, encoding: .utf8)
            try await Task.sleep(for: .milliseconds(2500))
            try install(next)
            let out = try await load.value
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            #expect(out.stdout.contains(", 0 failed"), "\(out.stdout)")
            #expect(out.stderr.contains("SVID files changed but do not load (the old identity stays)"), "\(out.stderr)")
            let rotation = try rotations("\(lab.dir)/result.json")
            #expect(rotation["source"] as? String == "files")
            #expect((rotation["rotations"] as? Int ?? 0) >= 1, "\(rotation)")
            #expect((rotation["rejected"] as? Int ?? 0) >= 1, "\(rotation)")
            #expect(rotation["tls_failures"] as? Int == 0)
            #expect(try await ResultSchema.load.violation(in: "\(lab.dir)/result.json") == nil)
        }
    }
}
