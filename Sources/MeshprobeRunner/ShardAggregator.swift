import Foundation
import MeshprobeIdentity
import MeshprobeHTTP1
import MeshprobeLoad
import MeshprobeSpec
import MeshprobeTLS
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The result channel's mTLS: shard 0 serves with its SVID and requires the others' (same trust domain); the others
/// present theirs and expect shard 0's trust domain. Sources, so that a result sent at the end of a long run goes with
/// the SVID current then (the Workload API's, rewritten files).
package struct ShardTLS: Sendable {
    package var client: TLSContextSource
    package var server: TLSContextSource

    package init(client: TLSContextSource, server: TLSContextSource) {
        self.client = client
        self.server = server
    }
}

/// One shard's place in a sharded run.
package struct ShardPlan: Sendable, Equatable {
    package var count: Int
    package var index: Int
    package var host: String
    package var port: Int
    /// Seconds.
    package var timeout: Double
    /// mTLS for the result channel; nil: plain HTTP (no certificate in the run's identity).
    package var tls: ShardTLS?

    package init(count: Int, index: Int, host: String, port: Int, timeout: Double, tls: ShardTLS? = nil) {
        self.count = count
        self.index = index
        self.host = host
        self.port = port
        self.timeout = timeout
        self.tls = tls
    }

    package static func == (a: ShardPlan, b: ShardPlan) -> Bool {
        a.count == b.count && a.index == b.index && a.host == b.host && a.port == b.port && a.timeout == b.timeout
            && (a.tls == nil) == (b.tls == nil)
    }

    package var isAggregator: Bool { index == 0 }

    /// This shard's part of `total` things (requests, samples): the parts of all shards sum to `total` exactly, the
    /// first `total % count` shards taking one more.
    package static func share(of total: Int, count: Int, index: Int) -> Int {
        total / count + (index < total % count ? 1 : 0)
    }

    package func share(of total: Int) -> Int { Self.share(of: total, count: count, index: index) }

    /// This shard's part of a rate (open model): an equal part; the parts sum to the rate.
    package func share(ofRate rate: Double) -> Double { rate / Double(count) }

    /// The address shard 0 binds: the aggregator's host when it is an IP address (loopback tests), else every
    /// interface (in Kubernetes the host is pod 0's DNS name through the headless Service).
    package var bindHost: String {
        (try? SocketAddress(ipAddress: host, port: port)) != nil ? host : "0.0.0.0"
    }

    /// Splits a load configuration: the request budget exactly, the open model's rate (and its stages' targets)
    /// equally. Concurrency (-c, -m) and durations are per shard. `requestsFlag` is how a refusal names the budget.
    package func split(_ configuration: inout LoadConfiguration, requestsFlag: String = "--requests") throws {
        if let requests = configuration.plan.requests {
            let part = share(of: requests)
            guard part >= 1 else {
                throw ExitError.badInput("\(requestsFlag) \(requests) is less than --shards \(count): shard \(index) would send nothing")
            }
            configuration.plan.requests = part
        }
        if case .open(var profile, let arrivals) = configuration.plan.model {
            profile.start = share(ofRate: profile.start)
            profile.stages = profile.stages.map { var s = $0; s.target = share(ofRate: s.target); return s }
            configuration.plan.model = .open(rate: profile, arrivals: arrivals)
        }
        // Different arrivals per shard (Poisson), still reproducible.
        configuration.plan.seed = configuration.plan.seed &+ UInt64(index)
    }
}

/// Shard 0's side: a small HTTP/1.1 server taking `POST /shards/I` with shard I's result (the JSON body) and the
/// header `x-meshprobe-shards: N`. `check` refuses what cannot be merged (the wrong kind, another policy); a refused
/// or duplicate result answers 409 and does not count. Everything else answers 404/400.
///
/// What it holds is bounded: a body is at most a result file's limit (`maxBody`, 256 MiB; 413 as soon as the
/// declared length or the bytes received pass it, and the connection is closed), and the bodies being received at
/// once at most N-1 of those together (503 beyond, which a shard retries).
package final class ShardAggregator: Sendable {
    package struct State: Sendable {
        package var received: [Int: Data] = [:]
        package var refused: [Int: String] = [:]
    }

    package static let maxBody = InputFile.Limit.result.bytes

    private let channel: any Channel
    private let state: NIOLockedValueBox<State>
    package let plan: ShardPlan

    private init(channel: any Channel, state: NIOLockedValueBox<State>, plan: ShardPlan) {
        self.channel = channel
        self.state = state
        self.plan = plan
    }

    package var localAddress: SocketAddress? { channel.localAddress }

    /// Binds before shard 0's own part runs, so that early shards are accepted. `check(index, body)` returns nil to
    /// accept, or why not.
    package static func start(_ plan: ShardPlan, group: any EventLoopGroup,
                      check: @escaping @Sendable (Int, Data) -> String?) async throws -> ShardAggregator {
        let state = NIOLockedValueBox(State())
        let budget = UploadBudget(bytes: (plan.count - 1) * maxBody)
        let accept: @Sendable (String, HTTPHeaders, Data) -> (HTTPResponseStatus, String) = { uri, headers, body in
            let parts = uri.split(separator: "/")
            guard parts.count == 2, parts[0] == "shards", let index = Int(parts[1]) else {
                return (.notFound, "meshprobe's aggregator takes POST /shards/INDEX\n")
            }
            guard headers.first(name: "x-meshprobe-shards") == String(plan.count) else {
                return (.conflict, "this run has \(plan.count) shards; the sender says \(headers.first(name: "x-meshprobe-shards") ?? "nothing") (x-meshprobe-shards)\n")
            }
            guard (1..<plan.count).contains(index) else {
                return (.badRequest, "shard index \(index) is out of range 1...\(plan.count - 1)\n")
            }
            if let why = check(index, body) {
                state.withLockedValue { if $0.received[index] == nil { $0.refused[index] = why } }
                return (.conflict, "refused: \(why)\n")
            }
            let duplicate = state.withLockedValue { s -> Bool in
                if s.received[index] != nil { return true }
                s.received[index] = body
                s.refused[index] = nil
                return false
            }
            if duplicate { return (.conflict, "shard \(index) has already sent its result\n") }
            return (.ok, "accepted shard \(index)\n")
        }
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls = plan.tls { try channel.pipeline.syncOperations.addHandler(tls.server.current.makeHandler()) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(ShardUploadHandler(accept: accept, budget: budget))
                }
            }
            .bind(host: plan.bindHost, port: plan.port).get()
        return ShardAggregator(channel: channel, state: state, plan: plan)
    }

    /// Shard 0's start as a command announces it: an address it cannot listen on is bad input naming
    /// `--aggregator`; once listening, the address goes to the log.
    package static func listen(_ plan: ShardPlan, command: String,
                               check: @escaping @Sendable (Int, Data) -> String?) async throws -> ShardAggregator {
        let aggregator: ShardAggregator
        do {
            aggregator = try await start(plan, group: MultiThreadedEventLoopGroup.singleton, check: check)
        } catch {
            throw ExitError.badInput("--aggregator \(plan.host):\(plan.port): shard 0 \(listenFailure("\(plan.bindHost):\(plan.port)", error))")
        }
        let security = plan.tls.map { "mutual TLS, shards of trust domain \($0.server.current.localIdentity?.trustDomain ?? "?")" }
            ?? "plain HTTP: the run's identity has no SVID"
        printError("meshprobe \(command): shard 0/\(plan.count): aggregating on \(plan.bindHost):\(plan.port) (\(security))")
        return aggregator
    }

    /// Waits (polling, bounded by `timeout` seconds) until shards 1..N-1 have all sent; returns what came, by index.
    package func collect(timeout: Double) async -> State {
        let deadline = ContinuousClock.now + .milliseconds(Int64(timeout * 1000))
        while ContinuousClock.now < deadline {
            if state.withLockedValue({ $0.received.count }) == plan.count - 1 { break }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return state.withLockedValue { $0 }
    }

    /// Waits for every other shard (up to `plan.timeout` seconds) and returns their results by index, or throws
    /// exit 3 naming the shards that did not report (or were refused): never a silently smaller result.
    package func collectAll(command: String) async throws -> [Int: Data] {
        printError("meshprobe \(command): shard 0/\(plan.count): own part done; waiting up to \(String(format: "%.1fs", plan.timeout)) for shards 1...\(plan.count - 1)")
        let state = await collect(timeout: plan.timeout)
        let missing = (1..<plan.count).filter { state.received[$0] == nil }
        if !missing.isEmpty {
            let reasons = missing.compactMap { i in state.refused[i].map { "shard \(i) refused: \($0)" } }
            throw ExitError(message: "incomplete: shard\(missing.count == 1 ? "" : "s") \(missing.map(String.init).joined(separator: ", ")) of \(plan.count) did not report within --shard-timeout \(String(format: "%.1fs", plan.timeout))\(reasons.isEmpty ? "" : " (" + reasons.joined(separator: "; ") + ")"); no verdict, nothing merged", exitCode: 3)
        }
        return state.received
    }

    package func stop() async {
        try? await channel.close()
    }
}

/// The bytes of uploads being received at once, across connections, and their limit.
final class UploadBudget: Sendable {
    private let held = NIOLockedValueBox(0)
    let bytes: Int

    init(bytes: Int) {
        self.bytes = bytes
    }

    /// Takes `count` more bytes if they fit.
    func take(_ count: Int) -> Bool {
        held.withLockedValue { held in
            guard held + count <= bytes else { return false }
            held += count
            return true
        }
    }

    func give(_ count: Int) {
        held.withLockedValue { $0 -= count }
    }
}

/// Reads one upload (head, body up to `ShardAggregator.maxBody`, within the shared budget) and answers with `accept`'s
/// status and text; an upload over a limit is answered at once and its connection closed.
final class ShardUploadHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let accept: @Sendable (String, HTTPHeaders, Data) -> (HTTPResponseStatus, String)
    private let budget: UploadBudget
    private var head: HTTPRequestHead?
    private var body = Data()
    /// Bytes of `body` taken from the budget, given back when the upload ends either way.
    private var held = 0

    init(accept: @escaping @Sendable (String, HTTPHeaders, Data) -> (HTTPResponseStatus, String), budget: UploadBudget) {
        self.accept = accept
        self.budget = budget
    }

    static let tooLarge = "a result is at most \(ShardAggregator.maxBody) bytes (\(InputFile.Limit.result.text), as a result file for merge)\n"

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            release()
            if let declared = head.headers.first(name: "content-length").flatMap({ Int($0) }), declared > ShardAggregator.maxBody {
                answer(context, head, .payloadTooLarge, Self.tooLarge)
            }
        case .body(var buffer):
            guard let head else { return }
            guard body.count + buffer.readableBytes <= ShardAggregator.maxBody else {
                return answer(context, head, .payloadTooLarge, Self.tooLarge)
            }
            guard budget.take(buffer.readableBytes) else {
                return answer(context, head, .serviceUnavailable, "the aggregator is receiving \(budget.bytes) bytes of results already; try again\n")
            }
            held += buffer.readableBytes
            if let bytes = buffer.readBytes(length: buffer.readableBytes) { body.append(contentsOf: bytes) }
        case .end:
            guard let head else { return }
            if head.method != .POST {
                answer(context, head, .methodNotAllowed, "meshprobe's aggregator takes POST /shards/INDEX\n")
            } else {
                let (status, text) = accept(head.uri, head.headers, body)
                answer(context, head, status, text)
            }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        release()
    }

    private func release() {
        budget.give(held)
        held = 0
        body = Data()
    }

    /// Answers the upload and closes the connection; whatever else arrives on it is ignored.
    private func answer(_ context: ChannelHandlerContext, _ head: HTTPRequestHead, _ status: HTTPResponseStatus, _ text: String) {
        self.head = nil
        release()
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/plain")
        headers.add(name: "content-length", value: String(text.utf8.count))
        headers.add(name: "connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: text)))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        done.whenComplete { [channel = context.channel] _ in channel.close(promise: nil) }
    }
}

/// Shards 1..N-1: send the result to the aggregator, retrying (every 500 ms, within `plan.timeout`) while it is not
/// listening yet or answers 5xx. A refusal (4xx) is final: exit 2 with its reason.
package func sendShardResult(_ body: Data, plan: ShardPlan, command: String, group: any EventLoopGroup) async throws {
    let deadline = ContinuousClock.now + .milliseconds(Int64(plan.timeout * 1000))
    var last = "not tried"
    var attempts = 0
    let text = String(decoding: body, as: UTF8.self)
    while true {
        attempts += 1
        do {
            let status = try await HTTP1Exchange.status(
                .POST, host: plan.host, port: plan.port, path: "/shards/\(plan.index)",
                headers: ["content-type": "application/json", "x-meshprobe-shards": String(plan.count)],
                body: text, tls: plan.tls?.client.current, timeout: .seconds(30), group: group)
            if (200..<300).contains(Int(status.code)) {
                printError("meshprobe \(command): shard \(plan.index)/\(plan.count): the aggregator \(plan.host):\(plan.port) accepted the result (attempt \(attempts)); its verdict is shard 0's")
                return
            }
            if (400..<500).contains(Int(status.code)) {
                throw ExitError.badInput("shard \(plan.index): the aggregator \(plan.host):\(plan.port) refused the result: HTTP \(status.code) \(status.reasonPhrase) (see shard 0's log)")
            }
            last = "HTTP \(status.code) \(status.reasonPhrase)"
        } catch let error as ExitError {
            throw error
        } catch {
            last = "\(error)"
        }
        if ContinuousClock.now + .milliseconds(500) >= deadline {
            throw ExitError(message: "shard \(plan.index): cannot deliver the result to the aggregator \(plan.host):\(plan.port) within --shard-timeout (\(attempts) attempts; last: \(last))", exitCode: 3)
        }
        try? await Task.sleep(for: .milliseconds(500))
    }
}
