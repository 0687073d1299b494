import Foundation
import MeshprobeHTTP1
import MeshprobeLoad
import MeshprobePolicy
import MeshprobeSpec
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing
@testable import MeshprobeRunner

/// Shard 0's result server against a loopback client: what it counts, what it refuses, and what it answers.
@Suite struct ShardAggregatorTests {
    let group = MultiThreadedEventLoopGroup.singleton

    /// An aggregator of `count` shards on a free loopback port; `check` refuses a body that says "other".
    func start(count: Int, timeout: Double = 0) async throws -> (ShardAggregator, port: Int) {
        let plan = ShardPlan(count: count, index: 0, host: "127.0.0.1", port: 0, timeout: timeout)
        let aggregator = try await ShardAggregator.start(plan, group: group) { index, body in
            String(decoding: body, as: UTF8.self) == "other" ? "shard \(index): another policy" : nil
        }
        return (aggregator, try #require(aggregator.localAddress?.port))
    }

    func post(_ port: Int, path: String, shards: Int?, body: String, method: NIOHTTP1.HTTPMethod = .POST) async throws -> UInt {
        var headers: HTTPHeaders = ["content-type": "application/json"]
        if let shards { headers.add(name: "x-meshprobe-shards", value: String(shards)) }
        return try await HTTP1Exchange.status(method, host: "127.0.0.1", port: port, path: path, headers: headers, body: body,
                                              timeout: .seconds(10), group: group).code
    }

    @Test func countsEachShardOnceAndRefusesWhatCannotBeMerged() async throws {
        let (aggregator, port) = try await start(count: 4)
        #expect(try await post(port, path: "/shards/1", shards: 4, body: "one") == 200)
        #expect(try await post(port, path: "/shards/1", shards: 4, body: "again") == 409)
        #expect(try await post(port, path: "/shards/2", shards: 4, body: "other") == 409)
        #expect(try await post(port, path: "/shards/3", shards: 3, body: "three") == 409)
        #expect(try await post(port, path: "/shards/0", shards: 4, body: "zero") == 400)
        #expect(try await post(port, path: "/shards/4", shards: 4, body: "four") == 400)
        #expect(try await post(port, path: "/results/1", shards: 4, body: "one") == 404)
        #expect(try await post(port, path: "/shards/3", shards: 4, body: "", method: .GET) == 405)
        let state = await aggregator.collect(timeout: 0)
        #expect(state.received.mapValues { String(decoding: $0, as: UTF8.self) } == [1: "one"])
        #expect(state.refused == [2: "shard 2: another policy"])
        await aggregator.stop()
    }

    @Test func aRefusedShardThatSendsAgainAcceptablyCounts() async throws {
        let (aggregator, port) = try await start(count: 2)
        #expect(try await post(port, path: "/shards/1", shards: 2, body: "other") == 409)
        #expect(try await post(port, path: "/shards/1", shards: 2, body: "mine") == 200)
        let state = await aggregator.collect(timeout: 0)
        #expect(state.received.keys.sorted() == [1])
        #expect(state.refused.isEmpty)
        await aggregator.stop()
    }

    @Test func collectingEveryShardNamesTheMissingAndTheRefusedAsIncomplete() async throws {
        let (aggregator, port) = try await start(count: 4, timeout: 0)
        #expect(try await post(port, path: "/shards/1", shards: 4, body: "one") == 200)
        #expect(try await post(port, path: "/shards/3", shards: 4, body: "other") == 409)
        do {
            _ = try await aggregator.collectAll(command: "load")
            Issue.record("collected an incomplete run")
        } catch let error as ExitError {
            #expect(error.exitCode == 3)
            #expect(error.message.hasPrefix("incomplete: shards 2, 3 of 4 did not report within --shard-timeout 0.0s (shard 3 refused: shard 3: another policy)"))
        }
        await aggregator.stop()
    }

    @Test func aCompleteRunIsCollectedWithEveryShardsBody() async throws {
        let (aggregator, port) = try await start(count: 3, timeout: 0)
        let plan = ShardPlan(count: 3, index: 2, host: "127.0.0.1", port: port, timeout: 30)
        #expect(try await post(port, path: "/shards/1", shards: 3, body: "one") == 200)
        try await sendShardResult(Data("two".utf8), plan: plan, command: "load", group: group)
        let received = try await aggregator.collectAll(command: "load")
        #expect(received.mapValues { String(decoding: $0, as: UTF8.self) } == [1: "one", 2: "two"])
        await aggregator.stop()
    }

    @Test func aShardRefusedByTheAggregatorIsBadInput() async throws {
        let (aggregator, port) = try await start(count: 2, timeout: 0)
        let plan = ShardPlan(count: 2, index: 1, host: "127.0.0.1", port: port, timeout: 30)
        do {
            try await sendShardResult(Data("other".utf8), plan: plan, command: "load", group: group)
            Issue.record("a refused result was delivered")
        } catch let error as ExitError {
            #expect(error.exitCode == 2)
            #expect(error.message.contains("refused the result: HTTP 409"))
        }
        await aggregator.stop()
    }

    @Test func theUploadBudgetHoldsAtMostItsBytes() {
        let budget = UploadBudget(bytes: 10)
        #expect(budget.take(6))
        #expect(!budget.take(5))
        budget.give(6)
        #expect(budget.take(10))
    }

    @Test func sharesAddUpToTheWholeAndTheBudgetIsSplitExactly() throws {
        for count in 1...7 {
            for total in [0, 1, 6, 7, 100, 1001] {
                #expect((0..<count).map { ShardPlan.share(of: total, count: count, index: $0) }.reduce(0, +) == total)
            }
        }
        var configuration = LoadConfiguration(targets: [try LoadTarget(parsing: "http://127.0.0.1:8080/")])
        configuration.plan.requests = 10
        let plan = ShardPlan(count: 3, index: 0, host: "127.0.0.1", port: 9443, timeout: 1)
        try plan.split(&configuration)
        #expect(configuration.plan.requests == 4)
        configuration.plan.requests = 2
        let last = ShardPlan(count: 3, index: 2, host: "127.0.0.1", port: 9443, timeout: 1)
        do {
            try last.split(&configuration, requestsFlag: "-n")
            Issue.record("a shard with nothing to send")
        } catch let error as ExitError {
            #expect(error.message == "-n 2 is less than --shards 3: shard 2 would send nothing")
        }
    }
}

/// How a sharded verification shares its load and its sample caps.
@Suite struct ShardedVerifyTests {
    @Test func theRequestsAndEveryRoutesSampleCapAreSharedExactly() throws {
        var total = 0
        for index in 0..<3 {
            var policy = try loadPolicy("expect:\n  split: {v1: 90, v2: 10}\n  maxRequests: 100")
            var configuration = LoadConfiguration(plan: policy.scenario.plan)
            #expect(configuration.plan.requests == 100 && policy.routes[0].statistics.maxSamples == 100)
            try ShardPlan(count: 3, index: index, host: "127.0.0.1", port: 9443, timeout: 1).split(&policy, configuration: &configuration)
            #expect(configuration.plan.requests == policy.routes[0].statistics.maxSamples)
            #expect(policy.statistics.maxSamples == policy.routes[0].statistics.maxSamples)
            total += policy.routes[0].statistics.maxSamples
        }
        #expect(total == 100)
    }
}
