import Foundation
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeSpec
import MeshprobeTLS
import Testing

extension EndToEnd {
    /// Our load engine against our echo workload, over h2c, mTLS HTTP/2 and HTTP/1.1.
    @Suite(.timeLimit(.minutes(1))) struct EchoLoadTests {
    @Test func h2cLoadAttributesEveryResponseToTheEcho() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/"], requests: 500, connections: 2, streams: 10)
        #expect(result.succeeded == 500)
        #expect(result.failed == 0)
        #expect(result.responses == 500)
        #expect(result.latency.totalCount == 500)
        let identities = Array(result.identities.keys)
        #expect(identities.count == 1)
        #expect(identities.first?.workload == "reviews")
        #expect(identities.first?.version == "v1")
        #expect(result.identities.values.first?.requests == 500)
        #expect(echo.requestsServed == 500)
    }

    /// A HEAD response carries the GET's headers and no body; the echo sent one over HTTP/2, and nghttp2 (rightly)
    /// reset every stream.
    @Test(arguments: [HTTPVersionPreference.http2, .http1])
    func headRequestsAreAnsweredWithoutABody(http: HTTPVersionPreference) async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/"], requests: 20, connections: 1, streams: 4, http: http) {
            $0.plan.method = "HEAD"
        }
        #expect(result.succeeded == 20, "\(result.errors) \(result.errorExplanations)")
        #expect(result.identities.keys.first?.version == "v1", "the stamps are headers: a HEAD response has them too")
    }

    @Test func mTLSLoadVerifiesTheServerAndTheServerSeesTheClient() async throws {
        let pki = try LabPKIFixture()
        let server = try pki.svid("reviews", uris: [pki.id("reviews")])
        let client = try pki.svid("productpage", uris: [pki.id("productpage")])
        let echo = try await startEcho(version: "v2", tls: try pki.serverTLS(server))
        defer { Task { await echo.close() } }
        let tls = try pki.clientTLS(client, expect: .spiffeID(try SPIFFEID(parsing: pki.id("reviews"))))
        let result = try await runLoad(["https://127.0.0.1:\(echo.port)/"], tls: tls, requests: 400, connections: 2, streams: 8)
        #expect(result.succeeded == 400)
        #expect(result.negotiatedProtocols["h2"] == 2)
        #expect(result.peerIdentities.keys.sorted() == [pki.id("reviews")])
        #expect(result.callersSeen == [pki.id("productpage"): 400])
        let identity = try #require(result.identities.keys.first)
        #expect(identity.identity == pki.id("reviews"))
        #expect(identity.version == "v2")
        #expect(result.tlsHandshakes == 2)
    }

    @Test func sessionResumptionOnReconnectIsReported() async throws {
        let pki = try LabPKIFixture()
        let server = try pki.svid("reviews", uris: [pki.id("reviews")])
        let client = try pki.svid("productpage", uris: [pki.id("productpage")])
        let echo = try await startEcho(version: "v1", tls: try pki.serverTLS(server))
        defer { Task { await echo.close() } }
        let tls = try pki.clientTLS(client, expect: .trustDomain(pki.trustDomain), alpn: ["http/1.1"])
        // HTTP/1.1 with a server that closes after each response forces reconnects: ?close is per request, so
        // use 'connection: close' to make the echo end every connection after answering.
        let result = try await runLoad(["https://127.0.0.1:\(echo.port)/"], tls: tls, requests: 6, connections: 1, streams: 1,
                                       http: .http1) { $0.plan.headers = [HTTP2HeaderPair("connection", "close")] }
        #expect(result.succeeded == 6)
        #expect(result.tlsHandshakes == 6)
        #expect(result.tlsResumed >= 4)
    }

    @Test func http1KeepAliveAgainstTheEchoOverTLS() async throws {
        let pki = try LabPKIFixture()
        let server = try pki.svid("reviews", uris: [pki.id("reviews")])
        let client = try pki.svid("productpage", uris: [pki.id("productpage")])
        let echo = try await startEcho(version: "v1", tls: try pki.serverTLS(server))
        defer { Task { await echo.close() } }
        let tls = try pki.clientTLS(client, expect: nil, alpn: ["http/1.1"])
        let result = try await runLoad(["https://127.0.0.1:\(echo.port)/"], tls: tls, requests: 100, connections: 2, streams: 1, http: .http1)
        #expect(result.succeeded == 100)
        #expect(result.negotiatedProtocols["http/1.1"] == 2)
        #expect(result.connectionsEstablished == 2)
        #expect(result.callersSeen[pki.id("productpage")] == 100)
    }

    @Test func http1PlaintextAgainstTheEcho() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/"], requests: 50, connections: 1, streams: 1, http: .http1)
        #expect(result.succeeded == 50)
        #expect(result.identities.keys.first?.workload == "reviews")
    }

    @Test func twoTargetsSplitTheConnectionsAndTheTableShowsBothVersions() async throws {
        let v1 = try await startEcho(version: "v1", tls: nil)
        let v2 = try await startEcho(version: "v2", tls: nil)
        defer { Task { await v1.close(); await v2.close() } }
        let result = try await runLoad(["http://127.0.0.1:\(v1.port)/", "http://127.0.0.1:\(v2.port)/"],
                                       requests: 400, connections: 4, streams: 5)
        #expect(result.succeeded == 400)
        let versions = Dictionary(uniqueKeysWithValues: result.identities.map { ($0.key.version, $0.value.requests) })
        #expect(Set(versions.keys) == ["v1", "v2"])
        #expect(versions.values.reduce(0, +) == 400)
        #expect(v1.requestsServed + v2.requestsServed == 400)
    }

    @Test func injectedStatusesCountAsFailuresByStatus() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/?status=503:50"], requests: 1000, connections: 2, streams: 10)
        #expect(result.responses == 1000)
        let failed = result.statuses[503, default: 0]
        #expect(result.statuses[200, default: 0] + failed == 1000)
        // 50% of 1000: a binomial with sd ~16; 6 sd either way never fails by chance.
        #expect((400...600).contains(failed))
        #expect(result.failed == failed)
    }

    @Test func injectedResetsAreCountedAsStreamResetsNeverDropped() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/?close=100"], requests: 300, connections: 2, streams: 10)
        #expect(result.errors[.streamReset] == 300)
        #expect(result.succeeded == 0)
        #expect(result.failed == 300)
    }

    /// An HTTP/1.1 server that drops some requests by closing the connection after reading them: each such request
    /// fails at its time (a latency threshold counts it), and its connection is replaced at once, never given up as a
    /// failed connection: the server answers the others.
    @Test func http1ClosesMidRequestFailTheRequestsNotTheConnections() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/?delay=20ms&close=50"], requests: 300, connections: 2, streams: 1,
                                       http: .http1)
        #expect(result.endedEarly == nil)
        #expect(result.succeeded + result.failed == 300)
        // 50% of 300: a binomial with sd ~8.7; 6 sd either way never fails by chance.
        #expect((98...202).contains(result.failed))
        #expect(result.errors[.connectionLost] == result.failed)
        // Each dropped request waited the delay before the close, and is counted at that time.
        let waits = try #require(result.failedWithoutResponse[.connectionLost])
        #expect(Int(waits.totalCount) == result.failed)
        #expect(waits.valueAtPercentile(50) >= 20_000)
        // Not failed connection attempts (those before the first answer are withdrawn), and not a TLS port's hint.
        #expect(result.connectionFailures.isEmpty)
        let why = try #require(result.errorExplanations[.connectionLost])
        #expect(why.contains("with a request in flight") && !why.contains("TLS port"), "\(why)")
    }

    /// The same server dropping every request: nothing says it speaks HTTP, so each slot gives up after its failures
    /// in a row and the requests left are counted, named by the last failure.
    @Test func http1ClosesOfEveryRequestGiveTheConnectionsUp() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/?close=100"], requests: 100, connections: 2, streams: 1, http: .http1)
        #expect(result.endedEarly != nil)
        #expect(result.failed == 100)
        #expect(result.connectionFailures[.connectionLost] == 2 * 3)
        #expect(result.errorExplanations[.connectionLost]?.contains("without answering a byte") == true)
    }

    @Test func streamsPerConnectionCapsConcurrencyAtTheServer() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/?delay=5ms"], requests: 200, connections: 2, streams: 5)
        #expect(result.succeeded == 200)
        #expect(echo.peakInFlight <= 10)
        #expect(echo.peakInFlight >= 5)
    }

    @Test func delayedResponsesAreMeasuredAsSlow() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/?delay=50ms"], requests: 20, connections: 1, streams: 10)
        #expect(result.succeeded == 20)
        #expect(result.latency.min >= 50_000)
    }

    @Test func requestTimeoutIsCountedAndTheRunEnds() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/?delay=5s"], requests: 4, connections: 1, streams: 4) {
            $0.plan.requestTimeout = 0.3
        }
        #expect(result.errors[.requestTimeout] == 4)
        #expect(result.succeeded == 0)
    }

    /// A timed-out request on an HTTP/2 connection that keeps answering is given up alone (RST_STREAM CANCEL): the
    /// other requests in flight on the connection are not lost with it, and the connection stays.
    @Test func aTimeoutOnALiveHTTP2ConnectionResetsOnlyItsStream() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/?delay=3s:5"], requests: 400, connections: 1, streams: 10) {
            $0.plan.requestTimeout = 0.4
        }
        let timeouts = result.errors[.requestTimeout] ?? 0
        #expect(timeouts >= 1, "\(result.errors)")
        #expect(Set(result.errors.keys) == [.requestTimeout], "\(result.errors)")
        #expect(result.succeeded + timeouts == 400)
        #expect(result.connectionsEstablished == 1, "\(result.connectionsEstablished) connections")
        // Which workload would have answered a timed-out request is not known: not the one that answered the last.
        let v1 = try #require(result.identities.first { $0.key.version == "v1" }?.value)
        #expect(v1.errors.isEmpty && v1.requests == 400 - timeouts, "\(v1.errors)")
        #expect(result.identities[.unknown]?.errors == [.requestTimeout: timeouts])
    }

    /// A connection that answers nothing after a request left is closed when the request times out (a silent peer
    /// may be gone): the run reconnects instead of waiting on it.
    @Test func aTimeoutOnASilentConnectionClosesIt() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/?delay=5s"], requests: 6, connections: 1, streams: 2) {
            $0.plan.requestTimeout = 0.3
        }
        #expect(result.errors == [.requestTimeout: 6], "\(result.errors)")
        #expect(result.connectionsEstablished >= 3, "\(result.connectionsEstablished) connections")
    }

    @Test func refusedConnectionsEndTheRunWithNamedErrors() async throws {
        let port = try freePort()
        let result = try await runLoad(["http://127.0.0.1:\(port)/"], requests: 50, connections: 2, streams: 5)
        #expect(result.succeeded == 0)
        #expect(result.errors[.connectRefused] == 50)
        #expect(result.connectionFailures[.connectRefused, default: 0] >= 2)
    }

    @Test func durationBoundedRunStopsOnItsOwn() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let started = Date()
        let result = try await runLoad(["http://127.0.0.1:\(echo.port)/"], requests: 1_000_000_000, connections: 2, streams: 4) {
            $0.plan.duration = 0.5
        }
        // Bounded: it ends by itself (generously, beside CPU-heavy simulations running in parallel).
        #expect(Date().timeIntervalSince(started) < 30)
        #expect(result.succeeded > 0)
        #expect(result.failed == 0)
    }
    }
}
