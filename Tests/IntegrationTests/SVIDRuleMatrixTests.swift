import Foundation
import MeshprobeEcho
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeReport
import MeshprobeSpec
import MeshprobeTLS
import NIOPosix
import Testing

/// A leaf that breaks one X509-SVID rule (spiffe/spiffe standards/X509-SVID.md) or the key-strength floor, and the
/// error kind a relying party names it by.
enum BadLeaf: String, CaseIterable, CustomTestStringConvertible {
    case noURISAN, twoURISANs, httpsURI, noPath, rootSlashPath, caTrue, keyCertSign, cRLSign, noDigitalSignature
    case rsa1024, sha1Signature

    var testDescription: String { rawValue }

    var kind: ErrorKind {
        switch self {
        case .noURISAN, .httpsURI: return .tlsNoSPIFFEID
        case .twoURISANs: return .tlsMultipleURISANs
        case .noPath, .rootSlashPath: return .tlsSPIFFEIDWithoutPath
        case .caTrue: return .tlsLeafIsCA
        case .keyCertSign, .cRLSign: return .tlsLeafSigningKeyUsage
        case .noDigitalSignature: return .tlsLeafWithoutDigitalSignature
        case .rsa1024: return .tlsWeakKey
        case .sha1Signature: return .tlsWeakSignature
        }
    }

    /// Weak leaves are refused by OpenSSL's level 2 even as one's own certificate: their presenter runs at level 0.
    var presenterLoosening: TLSLoosening {
        self == .rsa1024 || self == .sha1Signature ? TLSLoosening(securityLevel: 0) : TLSLoosening()
    }

    /// Issues the leaf: the lab CA through LabPKI, or through the `openssl` command line for the weak ones.
    func issue(_ pki: LabPKIFixture, name: String) async throws -> (cert: String, key: String) {
        let id = pki.id(name)
        switch self {
        case .noURISAN: return try pki.svid(name, uris: [], dns: ["localhost"])
        case .twoURISANs: return try pki.svid(name, uris: [id, pki.id("other")])
        case .httpsURI: return try pki.svid(name, uris: ["https://\(pki.trustDomain)/ns/lab/sa/\(name)"])
        case .noPath: return try pki.svid(name, uris: ["spiffe://\(pki.trustDomain)"])
        case .rootSlashPath: return try pki.svid(name, uris: ["spiffe://\(pki.trustDomain)/"])
        case .caTrue: return try pki.svid(name, uris: [id], isCA: true)
        case .keyCertSign: return try pki.svid(name, uris: [id], keyUsage: "critical,digitalSignature,keyCertSign")
        case .cRLSign: return try pki.svid(name, uris: [id], keyUsage: "critical,digitalSignature,cRLSign")
        case .noDigitalSignature: return try pki.svid(name, uris: [id], keyUsage: "critical,keyAgreement")
        case .rsa1024: return try await pki.opensslLeaf(name, id: id, newKey: "rsa:1024", digest: "-sha256")
        case .sha1Signature: return try await pki.opensslLeaf(name, id: id, newKey: "rsa:2048", digest: "-sha1")
        }
    }
}

extension LabPKIFixture {
    /// A leaf made by `openssl req` + `openssl x509 -req`, signed by the lab CA with `digest`, otherwise a good SVID.
    func opensslLeaf(_ name: String, id: String, newKey: String, digest: String) async throws -> (cert: String, key: String) {
        let openssl = try #require(which("openssl"), "openssl is installed by scripts/install-deps")
        let caKey = try write("ca-key.pem", ca.privateKeyPEM)
        let ext = try write("\(name).ext", "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                            + "extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=URI:\(id)\n")
        let key = directory.appendingPathComponent("\(name)-key.pem").path
        let csr = directory.appendingPathComponent("\(name).csr").path
        let cert = directory.appendingPathComponent("\(name).pem").path
        let request = try await run(openssl, ["req", "-new", "-newkey", newKey, "-nodes", "-keyout", key, "-subj", "/O=meshprobe lab/CN=\(name)",
                                              "-out", csr], timeout: 30)
        #expect(request.status == 0, "\(request.stderr)")
        let sign = try await run(openssl, ["x509", "-req", "-in", csr, "-CA", caFile, "-CAkey", caKey, "-set_serial", "7", "-days", "1",
                                           digest, "-extfile", ext, "-out", cert], timeout: 30)
        #expect(sign.status == 0, "\(sign.stderr)")
        return (cert, key)
    }
}

extension EndToEnd {
    /// Every X509-SVID rule on both sides: meshprobe's client checking a server, and the echo checking a client.
    @Suite(.timeLimit(.minutes(2))) struct SVIDRuleMatrixTests {
    let pki: LabPKIFixture
    let good: (cert: String, key: String)

    init() throws {
        pki = try LabPKIFixture()
        good = try pki.svid("good", uris: [pki.id("good")])
    }

    /// An mTLS echo serving `server`, its log lines collected.
    func startEcho(_ server: (cert: String, key: String), loosening: TLSLoosening = TLSLoosening(),
                   log: LogLines) async throws -> EchoServer {
        var configuration = EchoConfiguration(identity: EchoIdentity(workload: "reviews", version: "v1", cluster: "test",
                                                                     namespace: "lab", pod: "reviews-v1-0"))
        configuration.port = 0
        configuration.tls = try pki.serverTLS(server, loosening: loosening)
        configuration.log = { log.append($0) }
        return try await EchoServer.start(configuration, group: MultiThreadedEventLoopGroup.singleton)
    }

    func load(_ echo: EchoServer, client: (cert: String, key: String), loosening: TLSLoosening = TLSLoosening()) async throws -> LoadResult {
        let tls = try pki.clientTLS(client, expect: nil, trustDomain: pki.trustDomain, loosening: loosening)
        return try await runLoad(["https://127.0.0.1:\(echo.port)/"], tls: tls, requests: 4, connections: 1, streams: 2)
    }

    @Test(arguments: BadLeaf.allCases)
    func clientRejectsAServerPresenting(_ leaf: BadLeaf) async throws {
        let bad = try await leaf.issue(pki, name: "server-\(leaf.rawValue)")
        let echo = try await startEcho(bad, loosening: leaf.presenterLoosening, log: LogLines())
        defer { Task { await echo.close() } }
        let result = try await load(echo, client: good)
        #expect(result.succeeded == 0)
        #expect(result.errors[leaf.kind] == 4, "errors: \(result.errors) \(result.errorExplanations)")
    }

    @Test(arguments: BadLeaf.allCases)
    func echoRejectsAClientPresenting(_ leaf: BadLeaf) async throws {
        let bad = try await leaf.issue(pki, name: "client-\(leaf.rawValue)")
        let log = LogLines()
        let echo = try await startEcho(good, log: log)
        defer { Task { await echo.close() } }
        let result = try await load(echo, client: bad, loosening: leaf.presenterLoosening)
        #expect(result.succeeded == 0)
        #expect(result.errors[.tlsPeerRejectedCertificate] == 4, "errors: \(result.errors)")
        #expect(log.all.contains { $0.contains("[\(leaf.kind.rawValue)]") }, "echo log: \(log.all)")
    }

    @Test func theLabSVIDPassesOnBothSides() async throws {
        let log = LogLines()
        let echo = try await startEcho(good, log: log)
        defer { Task { await echo.close() } }
        let result = try await load(echo, client: try pki.svid("client", uris: [pki.id("client")]))
        #expect(result.succeeded == 4, "errors: \(result.errors) \(result.errorExplanations)")
        #expect(!log.all.contains { $0.contains("rejected") }, "echo log: \(log.all)")
    }

    @Test func aLowerSecurityLevelAcceptsAWeakKeyOnBothSidesAndIsReported() async throws {
        let weak = TLSLoosening(securityLevel: 0)
        let weakServer = try await BadLeaf.rsa1024.issue(pki, name: "weak-server")
        let weakClient = try await BadLeaf.rsa1024.issue(pki, name: "weak-client")
        let echo = try await startEcho(weakServer, loosening: weak, log: LogLines())
        defer { Task { await echo.close() } }
        let tls = try pki.clientTLS(weakClient, expect: nil, trustDomain: pki.trustDomain, loosening: weak)
        let result = try await runLoad(["https://127.0.0.1:\(echo.port)/"], tls: tls, requests: 4, connections: 1, streams: 2) {
            $0.tls = tls
        }
        #expect(result.succeeded == 4, "errors: \(result.errors) \(result.errorExplanations)")

        var configuration = LoadConfiguration(targets: [try LoadTarget(parsing: "https://127.0.0.1:\(echo.port)/")])
        configuration.tls = tls
        #expect(configuration.tlsLoosened == ["TLS security level 0 (below 2: weak keys and SHA-1 signatures accepted)"])
        let report = LoadReport(result: result, configuration: configuration, commandLine: [], startedAt: Date(), version: "test")
        #expect(report.meta.tlsLoosened == configuration.tlsLoosened)
        let summary = TerminalSummary(style: TerminalStyle(color: false)).render(report).rendered
        #expect(summary.contains("TLS:        loosened: TLS security level 0"), "\(summary)")
    }

    @Test func theDefaultsLoosenNothingAndReportNothing() throws {
        #expect(TLSLoosening().loosened.isEmpty)
        #expect(TLSLoosening(securityLevel: 3).loosened.isEmpty)
        #expect(TLSLoosening(allowNonSVIDPeer: true).loosened == ["peer certificates without a SPIFFE ID accepted (plain TLS)"])
    }
    }
}

extension EndToEnd {
    /// The same rules against OpenSSL's own peers: `openssl s_server` presenting each bad leaf to `meshprobe load`, and
    /// `openssl s_client` presenting it to `meshprobe echo` (the binaries, as users run them). A control with the good
    /// leaf shows that each refusal is the leaf's, not a peer that meshprobe cannot talk to.
    @Suite(.timeLimit(.minutes(3)), .serialized) struct SVIDRulesAgainstOpenSSLPeersTests {
    let pki: LabPKIFixture
    let good: (cert: String, key: String)
    let openssl: String

    init() throws {
        pki = try LabPKIFixture()
        good = try pki.svid("good", uris: [pki.id("good")], dns: ["localhost"])
        openssl = try #require(which("openssl"), "openssl is installed by scripts/install-deps")
    }

    /// `openssl s_server -www` presenting `leaf`; weak leaves need OpenSSL's security level 0 to be presented at all.
    func server(_ leaf: (cert: String, key: String), weak: Bool) async throws -> (BackgroundProcess, Int) {
        let port = try freePort()
        var arguments = ["s_server", "-accept", "127.0.0.1:\(port)", "-cert", leaf.cert, "-key", leaf.key, "-www", "-naccept", "8"]
        if weak { arguments += ["-cipher", "DEFAULT@SECLEVEL=0"] }
        return (try await BackgroundProcess(openssl, arguments, waitForPort: port), port)
    }

    /// `meshprobe load` against it: exit status and the result's error kinds.
    func load(port: Int, _ extra: [String] = []) async throws -> (status: Int32, errors: [String: Int], output: String) {
        let json = pki.directory.appendingPathComponent("load-\(port).json").path
        let out = try await run(meshprobeBinary, ["load", "https://127.0.0.1:\(port)/", "--cert", good.cert, "--key", good.key,
                                                  "--ca", pki.caFile, "--http", "1.1", "-c", "1", "-n", "2", "--quiet", "--json", json] + extra,
                                timeout: 30)
        let object = try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any]
        let summary = object?["summary"] as? [String: Any]
        return (out.status, summary?["errors"] as? [String: Int] ?? [:], out.stdout + out.stderr)
    }

    /// `--tls-security-level` as typed: 0 accepts the weak server and the summary says the check was loosened; a
    /// level OpenSSL does not have is refused, naming the flag.
    @Test func theSecurityLevelFlagLoosensAndIsReported() async throws {
        let weak = try await BadLeaf.rsa1024.issue(pki, name: "weak-server")
        let (peer, port) = try await server(weak, weak: true)
        defer { peer.stop() }
        let loosened = try await load(port: port, ["--tls-security-level", "0"])
        #expect(loosened.status == 0, "\(loosened.output)")
        #expect(loosened.errors.isEmpty, "errors: \(loosened.errors)")
        #expect(loosened.output.contains("loosened: TLS security level 0"), "\(loosened.output)")
        let refused = try await load(port: port, ["--tls-security-level", "6"])
        #expect(refused.status == 2, "\(refused.output)")
        #expect(refused.output.contains("--tls-security-level"), "\(refused.output)")
    }

    @Test(arguments: BadLeaf.allCases)
    func meshprobeLoadRejectsAnOpenSSLServerPresenting(_ leaf: BadLeaf) async throws {
        let bad = try await leaf.issue(pki, name: "server-\(leaf.rawValue)")
        let (peer, port) = try await server(bad, weak: leaf.presenterLoosening.securityLevel < 2)
        defer { peer.stop() }
        let outcome = try await load(port: port)
        #expect(outcome.status == 1, "\(outcome.output)")
        #expect(outcome.errors[leaf.kind.rawValue] == 2, "errors: \(outcome.errors)")
    }

    @Test func meshprobeLoadTalksToAnOpenSSLServerPresentingTheGoodLeaf() async throws {
        let (peer, port) = try await server(good, weak: false)
        defer { peer.stop() }
        let outcome = try await load(port: port)
        #expect(outcome.status == 0, "\(outcome.output)")
        #expect(outcome.errors.isEmpty, "errors: \(outcome.errors)")
    }

    /// `openssl s_client` presenting `leaf` to a `meshprobe echo` that requires client SVIDs: what the client got,
    /// and the echo's log.
    func echoAnswer(_ leaf: (cert: String, key: String), weak: Bool) async throws -> (answer: String, echoLog: String) {
        let port = try freePort()
        let echo = try await BackgroundProcess(meshprobeBinary, ["echo", "--listen", "127.0.0.1:\(port)", "--cert", good.cert, "--key", good.key,
                                                                 "--ca", pki.caFile], waitForPort: port)
        let request = "GET / HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n"
        let client = "printf '\(request)' | '\(openssl)' s_client -connect 127.0.0.1:\(port) -servername localhost -alpn http/1.1 "
            + "-cert '\(leaf.cert)' -key '\(leaf.key)' -CAfile '\(pki.caFile)' -ign_eof -quiet" + (weak ? " -cipher DEFAULT@SECLEVEL=0" : "")
        let out = try await run("/bin/sh", ["-c", client], timeout: 20)
            // Its whole log: the rejection line is written as the handshake fails, before the echo's exit.
            await echo.stopAndWait()
        return (out.stdout, echo.log)
    }

    @Test(arguments: BadLeaf.allCases)
    func meshprobeEchoRefusesAnOpenSSLClientPresenting(_ leaf: BadLeaf) async throws {
        let bad = try await leaf.issue(pki, name: "client-\(leaf.rawValue)")
        let outcome = try await echoAnswer(bad, weak: leaf.presenterLoosening.securityLevel < 2)
        #expect(!outcome.answer.contains("HTTP/1.1 200"), "answered: \(outcome.answer)")
        #expect(outcome.echoLog.contains("[\(leaf.kind.rawValue)]"), "echo log: \(outcome.echoLog)")
    }

    @Test func meshprobeEchoAnswersAnOpenSSLClientPresentingAGoodLeaf() async throws {
        let client = try pki.svid("client", uris: [pki.id("client")])
        let outcome = try await echoAnswer(client, weak: false)
        #expect(outcome.answer.contains("HTTP/1.1 200"), "answered: \(outcome.answer)")
        // The one rejection allowed is the readiness probe's (a TCP connect closed before any handshake).
        let rejections = outcome.echoLog.split(separator: "\n").filter { $0.contains("rejected") && !$0.contains("closed during the TLS handshake") }
        #expect(rejections.isEmpty, "echo log: \(outcome.echoLog)")
    }
    }
}
