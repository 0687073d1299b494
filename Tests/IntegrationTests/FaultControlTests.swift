import Foundation
import MeshprobeChecks
import MeshprobeEcho
import MeshprobeEchoAPI
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeSpec
import MeshprobeTLS
import NIOPosix
import Testing

/// Lines an echo logged, for assertions.
final class LogLines: @unchecked Sendable {  // @unchecked: every access holds the lock.
    private let lock = NSLock()
    private var lines: [String] = []

    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }
}

extension EndToEnd {
    /// The echo's control API over real TLS: who may change faults, what ordinary requests get, and expiry.
    @Suite(.timeLimit(.minutes(2))) struct FaultControlTests {
    let pki: LabPKIFixture
    let echoSVID: (cert: String, key: String)
    let opsSVID: (cert: String, key: String)
    let otherSVID: (cert: String, key: String)
    let ops: String

    init() throws {
        pki = try LabPKIFixture()
        echoSVID = try pki.svid("echo", uris: [pki.id("reviews")])
        ops = pki.id("gameday", ns: "ops")
        opsSVID = try pki.svid("ops", uris: [ops])
        otherSVID = try pki.svid("other", uris: [pki.id("productpage")])
    }

    func startEcho(tls: TLSContext?, allow: [String], log: LogLines = LogLines()) async throws -> EchoServer {
        var configuration = EchoConfiguration(identity: EchoIdentity(workload: "reviews", version: "v1", cluster: "test",
                                                                     namespace: "lab", pod: "reviews-v1-0"))
        configuration.port = 0
        configuration.tls = tls
        configuration.controlAllowList = Set(try allow.map { try SPIFFEID(parsing: $0) })
        configuration.log = { log.append($0) }
        return try await EchoServer.start(configuration, group: MultiThreadedEventLoopGroup.singleton)
    }

    /// One control request through the load engine's one-shot path; the response whatever its status.
    func control(_ echo: EchoServer, _ method: String, _ path: String = "/.meshprobe/faults", body: String? = nil,
                 tls: TLSContext?, http: HTTPVersionPreference = .auto) async throws -> StepResponse {
        var base = LoadConfiguration(targets: [try LoadTarget(parsing: "\(tls == nil ? "http" : "https")://127.0.0.1:\(echo.port)/")])
        base.tls = tls
        base.plan.httpVersion = http
        base.plan.requestTimeout = 5
        let step = FlowStep(name: "control", method: method, path: path,
                            headers: body == nil ? [] : [HTTP2HeaderPair("content-type", "application/json")], body: body)
        let outcome = try await StepRunner.run([step], base: base, keepingLastResponse: true, group: MultiThreadedEventLoopGroup.singleton)
        return try #require(outcome.lastResponse, "no response: \(outcome.problem ?? "")")
    }

    func decode<T: Decodable>(_ type: T.Type, _ response: StepResponse) throws -> T {
        try JSONDecoder().decode(type, from: Data(response.body))
    }

    func client(_ svid: (cert: String, key: String)?, http1: Bool = false) throws -> TLSContext {
        try pki.clientTLS(svid, expect: nil, alpn: http1 ? ["http/1.1"] : ["h2", "http/1.1"])
    }

    /// A clear sent with an SVID that has expired (its feed was down longer than the SVID's life) fails at the echo's
    /// TLS; the ledger asks the client's source for a new SVID and sends the clear again with it (the second trial of
    /// issue 20 left a fault behind this way). The refresh stands in for the Workload API stream's reconnect.
    @Test func aClearRefusedForAnExpiredSVIDIsSentAgainWithTheRenewedOne() async throws {
        let echo = try await startEcho(tls: try pki.serverTLS(echoSVID), allow: [ops])
        defer { Task { await echo.close() } }
        let group = MultiThreadedEventLoopGroup.singleton
        let source = TLSContextSource(initial: try client(opsSVID, http1: true), source: "test")
        let faultClient = try FaultClient(url: "https://127.0.0.1:\(echo.port)", tlsSource: source)
        let ledger = FaultLedger()
        let set = try await ledger.set(FaultControlJSON.NewFault(status: 503, durationSeconds: 60), on: faultClient, group: group)
        let expired = try pki.svid("ops-expired", uris: [ops], notBefore: Date() - 7200, notAfter: Date() - 3600)
        source.rotate(to: try client(expired, http1: true))
        let renewed = try client(opsSVID, http1: true)
        let asked = LogLines()
        source.setRefresh {
            asked.append("refresh")
            source.rotate(to: renewed)
        }
        try await ledger.clear(set.id, on: faultClient, group: group)
        #expect(asked.all == ["refresh"])
        #expect(await ledger.clearAll(group: group).isEmpty)
        #expect(try await runLoad(["https://127.0.0.1:\(echo.port)/"], tls: try client(otherSVID), requests: 10).statuses == [200: 10])
    }

    @Test func allowedCallerSetsA503ThatEveryRequestGetsUntilItIsCleared() async throws {
        let log = LogLines()
        let echo = try await startEcho(tls: try pki.serverTLS(echoSVID), allow: [ops], log: log)
        defer { Task { await echo.close() } }
        let url = "https://127.0.0.1:\(echo.port)/reviews/1"
        #expect(try await runLoad([url], tls: try client(otherSVID), requests: 20).statuses == [200: 20])

        // Set over HTTP/1.1 (the body is collected there only for control requests), the rest over HTTP/2.
        let set = try await control(echo, "POST", body: #"{"status":503,"statusShare":100,"durationSeconds":60}"#,
                                    tls: try client(opsSVID, http1: true), http: .http1)
        #expect(set.status == 201, "\(String(decoding: set.body, as: UTF8.self))")
        let fault = try decode(FaultControlJSON.Fault.self, set)
        #expect(fault.status == 503 && fault.statusShare == 100 && fault.path == "/" && fault.setBy == ops)
        #expect((59...60).contains(fault.expiresInSeconds))

        let h2 = try await runLoad([url], tls: try client(otherSVID), requests: 20, http: .http2)
        #expect(h2.statuses == [503: 20])
        let h1 = try await runLoad([url], tls: try client(otherSVID, http1: true), requests: 20, http: .http1)
        #expect(h1.statuses == [503: 20])

        let list = try decode(FaultControlJSON.List.self, try await control(echo, "GET", tls: try client(opsSVID)))
        #expect(list.faults.map(\.id) == [fault.id])

        let clear = try await control(echo, "DELETE", tls: try client(opsSVID))
        #expect(clear.status == 200)
        #expect(try decode(FaultControlJSON.Cleared.self, clear).cleared == 1)
        #expect(try await runLoad([url], tls: try client(otherSVID), requests: 20).statuses == [200: 20])
        #expect(log.all.contains { $0.contains("set fault \(fault.id)") && $0.contains(ops) && $0.contains("POST /.meshprobe/faults") })
        #expect(log.all.contains { $0.contains("cleared 1 fault(s)") && $0.contains("DELETE /.meshprobe/faults") })
    }

    /// A game day's run label: listed with each fault, and `GET`/`DELETE ?label=` reach only the faults set with it; a
    /// `DELETE` with any other query parameter is refused rather than read as "every fault".
    @Test func aLabelListsAndClearsOnlyItsOwnFaults() async throws {
        let log = LogLines()
        let echo = try await startEcho(tls: try pki.serverTLS(echoSVID), allow: [ops], log: log)
        defer { Task { await echo.close() } }
        let tls = try client(opsSVID)
        for body in [#"{"status":503,"durationSeconds":60,"label":"gameday-1"}"#, #"{"status":502,"durationSeconds":60}"#,
                     #"{"resetShare":5,"durationSeconds":60,"label":"gameday-1"}"#] {
            #expect(try await control(echo, "POST", body: body, tls: tls).status == 201)
        }
        let all = try await control(echo, "GET", tls: tls)
        #expect(String(decoding: all.body, as: UTF8.self).contains(#""label":null"#), "a fault set without a label lists it as null")
        #expect(try decode(FaultControlJSON.List.self, all).faults.map(\.label) == ["gameday-1", nil, "gameday-1"])
        let labelled = try decode(FaultControlJSON.List.self, try await control(echo, "GET", "/.meshprobe/faults?label=gameday-1", tls: tls))
        #expect(labelled.faults.map(\.id) == ["f1", "f3"])

        let typo = try await control(echo, "DELETE", "/.meshprobe/faults?lable=gameday-1", tls: tls)
        #expect(typo.status == 400)
        #expect(try decode(FaultControlJSON.Problem.self, typo).field == "lable")
        let cleared = try await control(echo, "DELETE", "/.meshprobe/faults?label=gameday-1", tls: tls)
        #expect(try decode(FaultControlJSON.Cleared.self, cleared).cleared == 2)
        #expect(try decode(FaultControlJSON.List.self, try await control(echo, "GET", tls: tls)).faults.map(\.id) == ["f2"])
        #expect(log.all.contains { $0.contains("cleared 2 fault(s)") && $0.contains("(label gameday-1)") }, "\(log.all)")
    }

    @Test func aFaultExpiresOnItsOwn() async throws {
        let echo = try await startEcho(tls: try pki.serverTLS(echoSVID), allow: [ops])
        defer { Task { await echo.close() } }
        let url = "https://127.0.0.1:\(echo.port)/"
        let started = Date()
        let set = try await control(echo, "POST", body: #"{"status":502,"durationSeconds":1}"#, tls: try client(opsSVID))
        #expect(set.status == 201)
        let during = try await runLoad([url], tls: try client(otherSVID), requests: 10)
        if Date().timeIntervalSince(started) < 0.9 { #expect(during.statuses == [502: 10]) }
        try await Task.sleep(for: .milliseconds(1300))
        #expect(try await runLoad([url], tls: try client(otherSVID), requests: 10).statuses == [200: 10])
        #expect(try decode(FaultControlJSON.List.self, try await control(echo, "GET", tls: try client(opsSVID))).faults.isEmpty)
    }

    @Test func aCallerNotOnTheAllowListGets403AndNothingChanges() async throws {
        let log = LogLines()
        let echo = try await startEcho(tls: try pki.serverTLS(echoSVID), allow: [ops], log: log)
        defer { Task { await echo.close() } }
        let refused = try await control(echo, "POST", body: #"{"status":503,"durationSeconds":60}"#, tls: try client(otherSVID))
        #expect(refused.status == 403)
        #expect(try decode(FaultControlJSON.Problem.self, refused).error.contains(pki.id("productpage")))
        #expect(try await control(echo, "DELETE", tls: try client(otherSVID)).status == 403)
        #expect(try decode(FaultControlJSON.List.self, try await control(echo, "GET", tls: try client(opsSVID))).faults.isEmpty)
        #expect(try await runLoad(["https://127.0.0.1:\(echo.port)/"], tls: try client(otherSVID), requests: 10).statuses == [200: 10])
        let line = try #require(log.all.first { $0.contains("refused") })
        #expect(line.contains(pki.id("productpage")) && line.contains("POST /.meshprobe/faults"))
        #expect(line.first?.isNumber == true)  // starts with the time
    }

    @Test func aCallerWithoutAClientCertificateGets403() async throws {
        // The lab echo requires client certificates (a handshake without one fails), so this echo asks for one
        // but does not require it; the plaintext echo below has no TLS peer at all.
        var configuration = TLSConfiguration(role: .server)
        configuration.certificateChainFile = echoSVID.cert
        configuration.privateKeyFile = echoSVID.key
        configuration.applicationProtocols = ["h2", "http/1.1"]
        configuration.verifyPeer = true
        configuration.requireClientCertificate = false
        try configuration.trustBundles.add(pemFile: pki.caFile, trustDomain: pki.trustDomain)
        let log = LogLines()
        let echo = try await startEcho(tls: try TLSContext(configuration: configuration), allow: [ops], log: log)
        defer { Task { await echo.close() } }
        let anonymous = try await control(echo, "POST", body: #"{"status":503,"durationSeconds":60}"#, tls: try client(nil))
        #expect(anonymous.status == 403)
        #expect(log.all.contains { $0.contains("no client certificate") && $0.contains("POST /.meshprobe/faults") })
        // The same echo accepts the allowed caller's certificate.
        #expect(try await control(echo, "GET", tls: try client(opsSVID)).status == 200)

        let plain = try await startEcho(tls: nil, allow: [ops])
        defer { Task { await plain.close() } }
        #expect(try await control(plain, "GET", tls: nil).status == 403)
    }

    @Test func theAPIIsNotFoundWithoutAnAllowList() async throws {
        let echo = try await startEcho(tls: try pki.serverTLS(echoSVID), allow: [])
        defer { Task { await echo.close() } }
        #expect(try await control(echo, "GET", tls: try client(opsSVID)).status == 404)
        #expect(try await control(echo, "POST", body: #"{"status":503,"durationSeconds":60}"#, tls: try client(opsSVID)).status == 404)
    }

    @Test func badJSONGets400NamingTheField() async throws {
        let echo = try await startEcho(tls: try pki.serverTLS(echoSVID), allow: [ops])
        defer { Task { await echo.close() } }
        for (body, field) in [(#"{"status":503,"statusShare":150,"durationSeconds":5}"#, "statusShare"),
                              (#"{"status":503,"durationSeconds":5,"colour":"red"}"#, "colour"),
                              (#"{"status":503}"#, "durationSeconds"), (#"{"status":503,"durationSeconds":5"#, "body")] {
            let response = try await control(echo, "POST", body: body, tls: try client(opsSVID))
            #expect(response.status == 400)
            let problem = try decode(FaultControlJSON.Problem.self, response)
            #expect(problem.field == field && problem.error.hasPrefix(field), "\(problem)")
        }
        #expect(try decode(FaultControlJSON.List.self, try await control(echo, "GET", tls: try client(opsSVID))).faults.isEmpty)
    }

    /// A control body is at most 64 KiB, over either protocol: a larger one (valid JSON padded to 1 MiB) is refused
    /// naming the body, and sets nothing.
    @Test func aBodyOverItsCapGets400OverBothProtocols() async throws {
        let echo = try await startEcho(tls: try pki.serverTLS(echoSVID), allow: [ops])
        defer { Task { await echo.close() } }
        let padded = #"{"status":503,"durationSeconds":5"# + String(repeating: " ", count: 1 << 20) + "}"
        for http1 in [false, true] {
            let response = try await control(echo, "POST", body: padded, tls: try client(opsSVID, http1: http1), http: http1 ? .http1 : .http2)
            #expect(response.status == 400, "http1 \(http1)")
            let problem = try decode(FaultControlJSON.Problem.self, response)
            #expect(problem.field == "body" && problem.error.contains("larger than 64 KiB"), "http1 \(http1): \(problem)")
        }
        #expect(try decode(FaultControlJSON.List.self, try await control(echo, "GET", tls: try client(opsSVID))).faults.isEmpty)
        // The same fault, unpadded, is taken: the size was the reason.
        #expect(try await control(echo, "POST", body: #"{"status":503,"durationSeconds":5}"#, tls: try client(opsSVID)).status == 201)
    }

    @Test func theAttemptStampCountsRepeatedRequestIDs() async throws {
        let echo = try await startEcho(tls: try pki.serverTLS(echoSVID), allow: [])
        defer { Task { await echo.close() } }
        var base = LoadConfiguration(targets: [try LoadTarget(parsing: "https://127.0.0.1:\(echo.port)/")])
        base.tls = try client(otherSVID)
        let group = MultiThreadedEventLoopGroup.singleton
        func attempt(_ id: String, path: String = "/orders", as variable: String) -> FlowStep {
            FlowStep(name: variable, path: path, headers: [HTTP2HeaderPair("x-request-id", id)],
                     extract: [Extraction(variable: variable, source: .header(EchoStamp.attempt))])
        }
        // A failed first attempt counts too (a flow stops at a failed status, so it runs on its own).
        let failed = try await StepRunner.run([attempt("order-7", path: "/orders?status=503", as: "first")], base: base, group: group)
        #expect(failed.result.statuses == [503: 1])
        let retries = try await StepRunner.run([attempt("order-7", as: "second"), attempt("order-7", as: "third")], base: base, group: group)
        #expect(retries.variables == ["second": "2", "third": "3"])
        let other = try await StepRunner.run([attempt("order-8", as: "a")], base: base, group: group)
        #expect(other.variables == ["a": "1"])
    }
    }
}

/// Runs blocking work (waits) on a Dispatch thread, so that it does not hold one of the few cooperative threads
/// other tests' timers need (on a 2-core machine the signal test's timing noticed).
func offThePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
    }
}

extension EndToEnd {
    /// `meshprobe fault set/list/clear` against a `meshprobe echo` process, as a game-day operator would run them.
    @Suite(.timeLimit(.minutes(2))) struct FaultCLITests {
    @Test func setListAndClearEndToEndWithTheDocumentedExitCodes() async throws {
        let pki = try LabPKIFixture()
        let echoSVID = try pki.svid("echo", uris: [pki.id("reviews")])
        let ops = pki.id("gameday", ns: "ops")
        let opsSVID = try pki.svid("ops", uris: [ops])
        let otherSVID = try pki.svid("other", uris: [pki.id("productpage")])
        let port = try freePort()
        let echo = try await BackgroundProcess(meshprobeBinary, [
            "echo", "--listen", "127.0.0.1:\(port)", "--cert", echoSVID.cert, "--key", echoSVID.key, "--ca", pki.caFile,
            "--control-allow", ops,
        ], waitForPort: port)
        defer { echo.stop() }
        let url = "https://127.0.0.1:\(port)"
        let asOps = ["--cert", opsSVID.cert, "--key", opsSVID.key, "--ca", pki.caFile, "--expect-peer", pki.id("reviews")]

        let set = try await run(meshprobeBinary, ["fault", "set", url, "--status", "503", "--status-share", "100", "--delay", "20ms",
                                            "--delay-share", "50", "--path", "/reviews", "--for", "30s"] + asOps)
        #expect(set.status == 0, "\(set.stderr)")
        #expect(set.stdout.contains("fault f1 set: status 503 for 100%, delay 20ms for 50% on /reviews"), "\(set.stdout)")

        let tls = try pki.clientTLS(otherSVID, expect: nil)
        #expect(try await runLoad(["\(url)/reviews/1"], tls: tls, requests: 10).statuses == [503: 10])
        #expect(try await runLoad(["\(url)/ratings/1"], tls: tls, requests: 10).statuses == [200: 10])

        let list = try await run(meshprobeBinary, ["fault", "list", url] + asOps)
        #expect(list.status == 0)
        #expect(list.stdout.contains("f1  status 503") && list.stdout.contains("set by \(ops)"), "\(list.stdout)")
        let json = try await run(meshprobeBinary, ["fault", "list", url, "--json"] + asOps)
        let faults = try JSONDecoder().decode(FaultControlJSON.List.self, from: Data(json.stdout.utf8)).faults
        #expect(faults.map(\.path) == ["/reviews"])

        // Refused (not on the allow list): 1, and the echo logs the attempt. Bad input here or at the echo: 2.
        let refused = try await run(meshprobeBinary, ["fault", "clear", url, "--cert", otherSVID.cert, "--key", otherSVID.key, "--ca", pki.caFile])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("403") && refused.stderr.contains(pki.id("productpage")), "\(refused.stderr)")
        let badFlag = try await run(meshprobeBinary, ["fault", "set", url, "--status-share", "50", "--for", "10s"] + asOps)
        #expect(badFlag.status == 2)
        #expect(badFlag.stderr.contains("--status-share"), "\(badFlag.stderr)")
        let tooLong = try await run(meshprobeBinary, ["fault", "set", url, "--status", "500", "--for", "2h"] + asOps)
        #expect(tooLong.status == 2)
        #expect(tooLong.stderr.contains("--for"))
        let tooSlow = try await run(meshprobeBinary, ["fault", "set", url, "--delay", "30s", "--for", "10s"] + asOps)
        #expect(tooSlow.status == 2)
        #expect(tooSlow.stderr.contains("400") && tooSlow.stderr.contains("delayMs"), "\(tooSlow.stderr)")

        let clearOne = try await run(meshprobeBinary, ["fault", "clear", url, "--id", "f1"] + asOps)
        #expect(clearOne.status == 0)
        #expect(clearOne.stdout.contains("cleared fault f1"))
        #expect(try await run(meshprobeBinary, ["fault", "clear", url, "--id", "f1"] + asOps).status == 1)  // 404: gone
        #expect(try await runLoad(["\(url)/reviews/1"], tls: tls, requests: 10).statuses == [200: 10])
        // A label: set with it, listed and cleared by it.
        let labelled = try await run(meshprobeBinary, ["fault", "set", url, "--reset-share", "5", "--for", "30s", "--label", "ops-1"] + asOps)
        #expect(labelled.status == 0, "\(labelled.stderr)")
        let byLabel = try await run(meshprobeBinary, ["fault", "list", url, "--label", "ops-1"] + asOps)
        #expect(byLabel.stdout.contains("f2  reset 5%"), "\(byLabel.stdout)")
        #expect(try await run(meshprobeBinary, ["fault", "list", url, "--label", "ops 1"] + asOps).status == 2)
        #expect(try await run(meshprobeBinary, ["fault", "clear", url, "--id", "f2", "--label", "ops-1"] + asOps).status == 2)
        let clearLabel = try await run(meshprobeBinary, ["fault", "clear", url, "--label", "ops-1"] + asOps)
        #expect(clearLabel.stdout.contains("cleared 1 fault(s) labelled ops-1"), "\(clearLabel.stdout)\(clearLabel.stderr)")
        let clearAll = try await run(meshprobeBinary, ["fault", "clear", url] + asOps)
        #expect(clearAll.status == 0)
        #expect(clearAll.stdout.contains("cleared 0 fault(s)"))

        let unreachable = try await run(meshprobeBinary, ["fault", "list", "https://127.0.0.1:\(try freePort())"] + asOps)
        #expect(unreachable.status == 3)
        #expect(unreachable.stderr.contains("cannot reach the echo at https://127.0.0.1:") && unreachable.stderr.contains("connect_refused"),
                "\(unreachable.stderr)")
        // The echo is checked as the caller expects: one with another identity is not talked to (exit 3, the TLS error).
        let impostor = try await run(meshprobeBinary, ["fault", "list", url, "--cert", opsSVID.cert, "--key", opsSVID.key, "--ca", pki.caFile,
                                                       "--expect-peer", pki.id("productpage")])
        #expect(impostor.status == 3)
        #expect(impostor.stderr.contains("cannot reach the echo at \(url): tls_wrong_spiffe_id"), "\(impostor.stderr)")

            await echo.stopAndWait()
        let log = echo.log
        #expect(log.contains("control API at /.meshprobe/faults for \(ops)"))
        #expect(log.contains("control refused: caller \(pki.id("productpage")) DELETE /.meshprobe/faults"), "\(log)")
        #expect(log.contains("control set fault f1: caller \(ops) POST /.meshprobe/faults"))
    }
    }
}
