import Foundation
import Testing

/// A meshprobe shard with JOB_COMPLETION_INDEX set (unset for a nil index), killed `timeout` seconds after its start.
final class ShardProcess: Sendable {
    let index: Int
    private let process: SignalledProcess
    private let timeout: Double

    init(index: Int?, arguments: [String], timeout: Double) throws {
        self.index = index ?? -1
        self.timeout = timeout
        var environment = ProcessInfo.processInfo.environment
        environment["JOB_COMPLETION_INDEX"] = index.map(String.init)
        process = try SignalledProcess(meshprobeBinary, arguments, environment: environment)
    }

    /// Its exit status, and the seconds from its start to its exit.
    func wait() async -> (status: Int32, seconds: Double) {
        let end = await process.finish(within: timeout - Date().timeIntervalSince(process.started))
        return (end.status, (process.exitedAt ?? Date()).timeIntervalSince(process.started))
    }

    var stdout: String { process.stdout }
    var stderr: String { process.stderr }
}

extension EndToEnd {
    /// Sharded `load` as an Indexed Job runs it, with N processes on loopback and JOB_COMPLETION_INDEX set.
    @Suite(.timeLimit(.minutes(3)), .tags(.timing)) struct ShardTests {
        func tempDir() throws -> String {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("shards-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            return dir
        }

        /// Starts `meshprobe load` shards `indexes` of 3 against `echoPort`, shard 0 aggregating on `port`.
        func startShards(_ indexes: [Int], echoPort: Int, port: Int, extra: [String], shardTimeout: String, dir: String) throws -> [ShardProcess] {
            try indexes.map { index in
                try ShardProcess(index: index, arguments: [
                    "load", "http://127.0.0.1:\(echoPort)/", "-c", "2", "--quiet"] + extra + [
                    "--shards", "3", "--aggregator", "127.0.0.1:\(port)", "--shard-timeout", shardTimeout,
                    "--json", "\(dir)/shard-\(index).json", "--prometheus", "\(dir)/shard-\(index).prom"], timeout: 60)
            }
        }

        @Test func threeShardsMergeToTheWholeBudget() async throws {
            let echo = try await startEcho(version: "v3", tls: nil)
            defer { Task { await echo.close() } }
            let dir = try tempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let port = try freePort()
            // Start the others first: they retry until shard 0 listens.
            let shards = try startShards([2, 1, 0], echoPort: echo.port, port: port, extra: ["-n", "1000", "--rate", "900"],
                                         shardTimeout: "30s", dir: dir)
            for shard in shards {
                let end = await shard.wait()
                #expect(end.status == 0, "shard \(shard.index): \(shard.stderr)")
            }
            let merged = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/shard-0.json"))) as? [String: Any])
            let summary = try #require(merged["summary"] as? [String: Any])
            #expect(summary["requests"] as? Int == 1000)
            #expect(summary["succeeded"] as? Int == 1000)
            #expect(summary["responses"] as? Int == 1000)
            #expect((summary["statuses"] as? [String: Int]) == ["200": 1000])
            let meta = try #require(merged["meta"] as? [String: Any])
            #expect(meta["merged_from"] as? Int == 3 || meta["mergedFrom"] as? Int == 3, "\(meta)")
            let series = try #require(merged["series"] as? [[String: Any]])
            #expect(series.map { $0["requests"] as? Int ?? 0 }.reduce(0, +) == 1000)
            // The Prometheus export counts every shard's requests once.
            let prom = try String(contentsOfFile: "\(dir)/shard-0.prom", encoding: .utf8)
            let total = prom.split(separator: "\n").filter { $0.hasPrefix("meshprobe_requests_total{") }
                .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
            #expect(total == 1000, "\(prom)")
            // The others do not write pod 0's file: only shard 0 writes the merged result.
            #expect(shards[0].stderr.contains("accepted the result"), "\(shards[0].stderr)")
            #expect(shards[2].stderr.contains("merged 3 shards"), "\(shards[2].stderr)")
        }

        @Test func aMissingShardMakesShardZeroExit3NamingIt() async throws {
            let echo = try await startEcho(version: "v3", tls: nil)
            defer { Task { await echo.close() } }
            let dir = try tempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let port = try freePort()
            let shards = try startShards([0, 1], echoPort: echo.port, port: port, extra: ["-n", "300"], shardTimeout: "3s", dir: dir)
            let one = await shards[1].wait()
            #expect(one.status == 0, "\(shards[1].stderr)")
            let zero = await shards[0].wait()
            #expect(zero.status == 3, "\(shards[0].stderr)")
            #expect(zero.seconds < 20, "shard 0 took \(zero.seconds) s")
            #expect(shards[0].stderr.contains("shard 2 of 3 did not report"), "\(shards[0].stderr)")
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/shard-0.json"), "no smaller result written")
        }

        @Test func anIndexOutOfRangeExits2() async throws {
            let dir = try tempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let shard = try ShardProcess(index: 3, arguments: [
                "load", "http://127.0.0.1:9/", "-n", "10", "--shards", "3", "--aggregator", "127.0.0.1:9"], timeout: 30)
            let end = await shard.wait()
            #expect(end.status == 2)
            #expect(shard.stderr.contains("shard index 3 is out of range"), "\(shard.stderr)")
            let budget = try ShardProcess(index: 2, arguments: [
                "load", "http://127.0.0.1:9/", "-n", "2", "--shards", "3", "--aggregator", "127.0.0.1:9"], timeout: 30)
            #expect(await budget.wait().status == 2)
            #expect(budget.stderr.contains("less than --shards 3"), "\(budget.stderr)")
        }

        /// Three `verify` shards through HAProxy (90/10 as declared): pod 0's merged verdict judges the summed counts;
        /// the requests of the three parts add up to the merged split's evidence.
        @Test func threeVerifyShardsDecideTheSplitOnTheMergedSamples() async throws {
            let v1 = try await startEcho(version: "v1", tls: nil)
            let v2 = try await startEcho(version: "v2", tls: nil)
            defer { Task { await v1.close(); await v2.close() } }
            let (proxy, proxyPort, haproxyDir) = try await startHAProxy([("v1", v1.port, 90), ("v2", v2.port, 10)])
            defer { proxy.stop(); try? FileManager.default.removeItem(at: haproxyDir) }
            let dir = try tempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try """
                policy: meshprobe.policy/v1
                name: reviews canary
                target: http://127.0.0.1:\(proxyPort)/reviews
                load: {connections: 4, streams: 10}
                expect:
                  name: reviews canary
                  recognise: version
                  falseFailRate: 0.0001
                  split: {v1: 90, v2: 10}
                  slo: {p99: 2s, successRate: 0.99}
                """.write(toFile: "\(dir)/policy.yaml", atomically: true, encoding: .utf8)
            let port = try freePort()
            let shards = try [1, 2, 0].map { (index: Int) in
                try ShardProcess(index: index, arguments: [
                    "verify", "\(dir)/policy.yaml", "--quiet", "--shards", "3", "--aggregator", "127.0.0.1:\(port)",
                    "--shard-timeout", "60s", "--json", "\(dir)/verify-\(index).json", "--junit", "\(dir)/verify-\(index).xml"], timeout: 100)
            }
            for shard in shards {
                let end = await shard.wait()
                #expect(end.status == 0, "shard \(shard.index): \(shard.stdout)\(shard.stderr)")
            }

            let object = try #require(FileManager.default.contents(atPath: "\(dir)/verify-0.json")
                .flatMap { try JSONSerialization.jsonObject(with: $0) as? [String: Any] })
            let verdicts = try #require(object["verdicts"] as? [[String: Any]])
            let split = try #require(verdicts.first { ($0["kind"] as? String) == "split" } ?? verdicts.first)
            #expect(split["passed"] as? Bool == true, "\(split)")
            let evidence = try #require(split["evidence"] as? [String: Any])
            let counts = evidence["counts"] as? [String: Int] ?? [:]
            #expect(counts.values.reduce(0, +) == evidence["requests"] as? Int, "\(evidence)")
            let results = try #require(object["results"] as? [[String: Any]])
            let requests = results.compactMap { ($0["summary"] as? [String: Any])?["requests"] as? Int }.reduce(0, +)
            #expect(requests >= evidence["requests"] as? Int ?? .max, "\(requests) \(evidence)")
            #expect(try await ResultSchema.verify.violation(in: "\(dir)/verify-0.json") == nil, "the shards' merge is a verify result")
            // Shard 0 writes the merged verdict's reports; the others write none (their verdict is shard 0's).
            let junit = (try? String(contentsOfFile: "\(dir)/verify-0.xml", encoding: .utf8)) ?? ""
            #expect(junit.contains("<testsuite") && junit.contains("3 shards"), "\(junit)")
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/verify-1.xml"))
            #expect(shards[2].stderr.contains("merged 3 shards"), "\(shards[2].stderr)")
        }

        /// Shard 0 bounds what it takes from the network: a result declared larger than a result file may be (256 MiB)
        /// is refused at its head (413, before a byte of body), and a result whose histogram is a decompression bomb (1 GiB
        /// of zeros in about 1 MB of zlib) is refused naming the field, so shard 0 ends with exit 3 naming why.
        @Test func theAggregatorRefusesOversizedResultsAndDecompressionBombs() async throws {
            let echo = try await startEcho(version: "v3", tls: nil)
            defer { Task { await echo.close() } }
            let dir = try tempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            // A real result, its latency histogram replaced by the bomb.
            let plain = try await run(meshprobeBinary, ["load", "http://127.0.0.1:\(echo.port)/", "-n", "20", "--quiet", "--json", "\(dir)/one.json"])
            #expect(plain.status == 0, "\(plain.stderr)")
            let bomb = try resultWithABomb("\(dir)/one.json")

            let port = try freePort()
            let zero = try ShardProcess(index: 0, arguments: [
                "load", "http://127.0.0.1:\(echo.port)/", "-n", "20", "--quiet", "--shards", "2", "--aggregator", "127.0.0.1:\(port)",
                "--shard-timeout", "10s", "--json", "\(dir)/shard-0.json"], timeout: 60)
            func post(_ head: String, _ body: Data) async throws -> String {
                try await offThePool { try exchangeRaw(port: port, Array(head.utf8) + Array(body)) }
            }
            // Shard 0 listens before its own part runs; until then, connections are refused.
            var declared = ""
            for _ in 0..<100 {
                declared = (try? await post("POST /shards/1 HTTP/1.1\r\nhost: a\r\nx-meshprobe-shards: 2\r\ncontent-length: \((256 << 20) + 1)\r\n\r\n", Data())) ?? ""
                if !declared.isEmpty { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(declared.hasPrefix("HTTP/1.1 413"), "\(declared)")
            #expect(declared.contains("a result is at most \(256 << 20) bytes"), "\(declared)")
            let refused = try await post("POST /shards/1 HTTP/1.1\r\nhost: a\r\nx-meshprobe-shards: 2\r\ncontent-length: \(bomb.count)\r\n\r\n", bomb)
            #expect(refused.hasPrefix("HTTP/1.1 409"), "\(refused)")
            #expect(refused.contains("shard 1: histograms.latency: the compressed payload inflates to more than"), "\(refused)")
            let end = await zero.wait()
            #expect(end.status == 3, "\(zero.stderr)")
            #expect(zero.stderr.contains("shard 1 refused: shard 1: histograms.latency: the compressed payload inflates"), "\(zero.stderr)")
        }

        /// With an SVID in the run's identity the result channel is mTLS: shard 0 serves with its SVID and takes only
        /// peers of its trust domain. Shards of the same CA merge; a shard with another trust domain's SVID cannot
        /// deliver (the handshake is refused), so shard 0 reports it missing (exit 3) and the stranger exits 3 too.
        @Test func theResultChannelIsMutualTLSWithTheRunsSVIDs() async throws {
            let pki = try LabPKIFixture()
            let own = try pki.svid("prober", uris: [pki.id("prober")])
            let strangerCA = try LabPKIFixture(trustDomain: "elsewhere.test")
            let stranger = try strangerCA.svid("stranger", uris: [strangerCA.id("stranger")])
            // The stranger trusts shard 0's CA but expects its own trust domain, and shard 0 requires its own: no handshake.
            let echo = try await startEcho(version: "v3", tls: nil)
            defer { Task { await echo.close() } }
            let dir = try tempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            func shard(_ index: Int, of count: Int, port: Int, svid: (cert: String, key: String), timeout: String) throws -> ShardProcess {
                try ShardProcess(index: index, arguments: [
                    "load", "http://127.0.0.1:\(echo.port)/", "-n", "200", "-c", "2", "--quiet",
                    "--cert", svid.cert, "--key", svid.key, "--ca", pki.caFile,
                    "--shards", String(count), "--aggregator", "127.0.0.1:\(port)", "--shard-timeout", timeout,
                    "--json", "\(dir)/tls-\(port)-\(index).json"], timeout: 60)
            }
            let port = try freePort()
            let pair = [try shard(1, of: 2, port: port, svid: own, timeout: "20s"), try shard(0, of: 2, port: port, svid: own, timeout: "20s")]
            for p in pair {
                let end = await p.wait()
                #expect(end.status == 0, "shard \(p.index): \(p.stderr)")
            }
            let merged = try #require(FileManager.default.contents(atPath: "\(dir)/tls-\(port)-0.json")
                .flatMap { try JSONSerialization.jsonObject(with: $0) as? [String: Any] })
            #expect((merged["summary"] as? [String: Any])?["requests"] as? Int == 200)

            let other = try freePort()
            let refused = [try shard(1, of: 2, port: other, svid: stranger, timeout: "3s"), try shard(0, of: 2, port: other, svid: own, timeout: "3s")]
            let strangerEnd = await refused[0].wait()
            let aggregatorEnd = await refused[1].wait()
            #expect(aggregatorEnd.status == 3 && refused[1].stderr.contains("shard 1"), "\(refused[1].stderr)")
            #expect(strangerEnd.status == 3 && refused[0].stderr.contains("cannot deliver"), "\(refused[0].stderr)")
        }
    }
}

/// Sends `request` on a new connection to 127.0.0.1:`port` and returns what comes back until the peer closes (each
/// read bounded by 10 s). Throws when nothing listens there.
func exchangeRaw(port: Int, _ request: [UInt8]) throws -> String {
    struct RawError: Error { var what: String }
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw RawError(what: "socket: errno \(errno)") }
    defer { _ = Glibc.close(fd) }
    var timeout = timeval(tv_sec: 10, tv_usec: 0)
    _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw RawError(what: "connect: errno \(errno)") }
    var sent = 0
    while sent < request.count {
        let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        // The peer may answer and close before taking the whole request (a refusal at the head).
        if n <= 0 { break }
        sent += n
    }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        response.append(contentsOf: buffer[0..<n])
    }
    return String(decoding: response, as: UTF8.self)
}
