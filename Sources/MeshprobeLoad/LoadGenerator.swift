#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MeshprobeIdentity
import MeshprobeSpec
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Runs a load in the plan's model, closed (a request starts when a stream is free, up to the concurrency) or open
/// (requests start at their arrival times, whatever the answers): `connections` x `streamsPerConnection`, spread
/// over one event loop per usable core (at most one per connection), until the request budget or the duration is
/// used up.
public final class LoadGenerator: Sendable {
    public let configuration: LoadConfiguration
    private let group: any EventLoopGroup
    private let workers: NIOLockedValueBox<[NIOLoopBound<LoadWorker>]> = .init([])
    /// The grace of a stop asked for before every worker had started (a signal, or a cancelled task, at the start).
    private let stopRequested: NIOLockedValueBox<Double?> = .init(nil)
    /// Seconds collected from the workers: merged buckets still open, and finished points.
    private let timeline: NIOLockedValueBox<TimelineState> = .init(TimelineState())

    struct TimelineState {
        var open: [Int: TimelineBucket] = [:]
        var points: [TimelinePoint] = []
        /// Seconds before this one are finished (every worker's clock has passed them), with or without a point.
        var finishedSeconds = 0
        var guardFired: GuardEvent?
        var guardsChecked = 0
    }

    public init(configuration: LoadConfiguration, group: any EventLoopGroup) {
        self.configuration = configuration
        self.group = group
    }

    /// Resolves the targets' addresses once, up front.
    static func resolve(_ targets: [LoadTarget]) throws(LoadPlanError) -> [SocketAddress] {
        var addresses: [SocketAddress] = []
        for target in targets {
            do {
                addresses.append(try SocketAddress.makeAddressResolvingHost(target.host, port: target.port))
            } catch {
                throw LoadPlanError(field: "URL", value: target.description, reason: "cannot resolve host '\(target.host)': \(error)")
            }
        }
        return addresses
    }

    /// Runs to completion and returns the merged result.
    public func run() async throws -> LoadResult {
        try configuration.validate()
        if configuration.plan.grpc?.awaitingReflection != nil {
            // The JSON is encoded before the run (`resolveGRPCReflection`); an empty message must not go out in its place.
            throw LoadPlanError(field: "--data", value: "JSON", reason: "the request is not encoded yet: the server's reflection service was not asked")
        }
        let addresses = try Self.resolve(configuration.plan.targets)
        // The identity's rotations so far: this run's are those after (a verification's routes share one source).
        let rotationsBefore = configuration.tlsSource?.rotations
        let startedAt = Date().timeIntervalSince1970
        let loops = Array(group.makeIterator())
        // One loop per core this process may run on: two loops sharing one core (under taskset or
        // sched_setaffinity) only add context switches and cross-thread wake-ups.
        let loopCount = max(1, min(loops.count, configuration.plan.connections, Self.usableCores))
        // Connection j goes to loop j % loopCount and to target j % targets.count.
        var slots = Array(repeating: [SlotBox](), count: loopCount)
        for j in 0..<configuration.plan.connections {
            let t = j % configuration.plan.targets.count
            slots[j % loopCount].append(SlotBox(target: t, address: addresses[t]))
        }
        // The request budget is shared in proportion to connections.
        var budgets: [Int?] = Array(repeating: nil, count: loopCount)
        if let total = configuration.plan.requests {
            var assigned = 0
            for i in 0..<loopCount {
                let share = i == loopCount - 1 ? total - assigned : total * slots[i].count / configuration.plan.connections
                budgets[i] = share
                assigned += share
            }
        }
        var futures: [EventLoopFuture<LoadResult>] = []
        let evidence = TargetEvidence(targets: configuration.plan.targets.count)
        let cpuBefore = Self.processCPUSeconds()
        for i in 0..<loopCount {
            let loop = loops[i]
            let promise = loop.makePromise(of: LoadResult.self)
            let configuration = self.configuration
            let slotList = slots[i]
            let budget = budgets[i]
            let workers = self.workers
            // Rate and concurrency are shared in proportion to connections; phases interleave uniform arrivals.
            let share = Double(slots[i].count) / Double(configuration.plan.connections)
            loop.execute {
                let worker = LoadWorker(eventLoop: loop, configuration: configuration, budget: budget, share: share,
                                        index: i, workers: loopCount, slots: slotList.map { ($0.target, $0.address) },
                                        evidence: evidence, promise: promise)
                workers.withLockedValue { $0.append(NIOLoopBound(worker, eventLoop: loop)) }
                worker.decided = { [weak self] in self?.finishDecided() }
                worker.start()
                if let grace = self.stopRequested.withLockedValue({ $0 }) { worker.stop(grace: grace) }
            }
            futures.append(promise.futureResult)
        }
        // Once a second, gather the seconds the workers have finished and turn them into timeline points (so
        // per-second histograms never pile up during a long run: each point keeps its second's histogram compressed),
        // then check the guards. This runs on an event
        // loop, not on Swift's cooperative pool, so it keeps time even when that pool is busy.
        let collectorLoop = loops[0]
        let runID = LoadGenerator.nextRunID.withLockedValue { id -> Int in
            id += 1
            return id
        }
        // It runs `collectorPhase` after each whole second from the start: the workers' clocks start a moment after
        // it, and a collection on the whole second would find the second just ended not yet finished by them.
        let collector = collectorLoop.scheduleRepeatedAsyncTask(initialDelay: .seconds(1) + Self.collectorPhase, delay: .seconds(1)) { _ in
            self.publishMetrics(run: runID, on: collectorLoop)
            return self.collectTimeline(on: collectorLoop).map {
                if self.checkGuards() != nil {
                    switch self.configuration.plan.guardAction {
                    case .stop: self.stop(grace: 1.0)
                    case .hold: self.hold()
                    }
                }
            }
        }
        // Cancelling the task that runs the load stops it as a signal would (a game day's abort).
        var merged = try await withTaskCancellationHandler {
            var merged = LoadResult()
            for future in futures {
                merged.merge(try await future.get())
            }
            return merged
        } onCancel: {
            self.stop()
        }
        // A collection in progress must land before the state is read.
        let cancelled = collectorLoop.makePromise(of: Void.self)
        collector.cancel(promise: cancelled)
        try? await cancelled.futureResult.get()
        // What the workers still held when they finished arrives with their results.
        let state = timeline.withLockedValue { $0 }
        merged.timeline = state.points
        for (second, bucket) in state.open { merged.openSeconds.update(second) { $0.merge(bucket) } }
        merged.finishTimeline()
        if let event = state.guardFired {
            merged.guardFired = event
            if event.action == .stop { merged.aborted = true }
        }
        merged.reclassifyUnstampedReplies()
        merged.cpuSeconds = Self.processCPUSeconds() - cpuBefore
        merged.startedAtEpochSeconds = startedAt
        if let before = rotationsBefore, let after = configuration.tlsSource?.rotations { merged.identityRotations = after.since(before) }
        configuration.metricsSink?(runID, merged.metrics)
        return merged
    }

    /// How long after each whole second of the run the seconds are collected (`lastSecond` is fresh from then on).
    public static let collectorPhase = TimeAmount.milliseconds(100)

    /// Counts so far, gathered from each worker on its own loop (nothing shared on the hot path).
    public struct Progress: Sendable {
        public var responses = 0
        public var succeeded = 0
        public var failed = 0
        public var inFlight = 0
        public var sent = 0
        public var errors: [ErrorKind: Int] = [:]
        public var late = 0
        /// Requests of the warm-up that ended (answered or failed): sent, but left out of the counts above.
        public var warmupRequests = 0
        /// The last finished second, merged over workers: a second with nothing in it is an empty point, never the
        /// last second that had something. Nil until the first second is finished.
        public var window: TimelinePoint?
        public var identities: [WorkloadIdentity: Int] = [:]
        /// Seconds on the run's clock (the furthest worker's): it starts once the open model's connections are up,
        /// at the start in the closed model. Nil before it started.
        public var clock: Double?
        /// The open model's target rate now, over every worker; past the end of the schedule, the rate it ended at.
        public var targetRate: Double?

        public init(responses: Int = 0, succeeded: Int = 0, failed: Int = 0, inFlight: Int = 0, sent: Int = 0,
                    errors: [ErrorKind: Int] = [:], late: Int = 0, warmupRequests: Int = 0, window: TimelinePoint? = nil,
                    identities: [WorkloadIdentity: Int] = [:], clock: Double? = nil, targetRate: Double? = nil) {
            self.responses = responses
            self.succeeded = succeeded
            self.failed = failed
            self.inFlight = inFlight
            self.sent = sent
            self.errors = errors
            self.late = late
            self.warmupRequests = warmupRequests
            self.window = window
            self.identities = identities
            self.clock = clock
            self.targetRate = targetRate
        }
    }

    /// The cores this process may run on: `System.coreCount` (which follows cgroup quotas and cpusets), further
    /// limited by the CPU affinity mask (`taskset`, `sched_setaffinity`), which it does not read.
    public static let usableCores: Int = {
        var cores = System.coreCount
        #if os(Linux)
        // The affinity mask as the kernel reports it ("Cpus_allowed:\tff,ffffffff"), read once per process.
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed:") }) {
            let allowed = line.dropFirst("Cpus_allowed:".count).reduce(0) { count, character in
                count + (character.hexDigitValue?.nonzeroBitCount ?? 0)
            }
            if allowed > 0 { cores = min(cores, allowed) }
        }
        #endif
        return max(1, cores)
    }()

    /// User + system CPU seconds of this process so far.
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }

    public func progress() async -> Progress {
        var total = Progress()
        for bound in workers.withLockedValue({ $0 }) {
            let part = try? await bound.eventLoop.submit { bound.value.progress() }.get()
            if let part {
                total.responses += part.responses
                total.succeeded += part.succeeded
                total.failed += part.failed
                total.inFlight += part.inFlight
                total.sent += part.sent
                total.late += part.late
                total.warmupRequests += part.warmupRequests
                total.errors.merge(part.errors, uniquingKeysWith: +)
                total.identities.merge(part.identities, uniquingKeysWith: +)
                if let clock = part.clock { total.clock = max(total.clock ?? 0, clock) }
                if let rate = part.targetRate { total.targetRate = (total.targetRate ?? 0) + rate }
            }
        }
        total.window = lastSecond
        return total
    }

    /// Pulls finished seconds from every worker; a second is complete once every worker has handed it over.
    static let nextRunID = NIOLockedValueBox(0)

    /// Hands the workers' series so far to the configuration's metrics sink (a copy per worker, on its own loop).
    private func publishMetrics(run: Int, on loop: any EventLoop) {
        guard let sink = configuration.metricsSink else { return }
        let parts = workers.withLockedValue { $0 }.map { bound in
            bound.eventLoop.submit { bound.value.seriesSnapshot() }
        }
        EventLoopFuture.whenAllSucceed(parts, on: loop).whenSuccess { parts in
            var all = IdentityMetrics()
            for part in parts { all.merge(part) }
            sink(run, all)
        }
    }

    private func collectTimeline(on loop: any EventLoop) -> EventLoopFuture<Void> {
        let parts = workers.withLockedValue { $0 }.map { bound in
            bound.eventLoop.submit { CollectedSeconds(bound.value.collectSeconds()) }
        }
        return EventLoopFuture.whenAllSucceed(parts, on: loop).map { parts in
            let complete = parts.map(\.current).min() ?? Int.max
            let finished = self.timeline.withLockedValue { state -> [TimelineBucket] in
                for part in parts {
                    for bucket in part.buckets {
                        state.open[bucket.second, default: TimelineBucket(second: bucket.second)].merge(bucket)
                    }
                }
                // A second is finished once every worker's clock has passed it (`Int.max`: every worker is done,
                // and the last seconds travel with the results).
                if complete != Int.max { state.finishedSeconds = max(state.finishedSeconds, complete) }
                return state.open.keys.sorted().filter { $0 < complete }.compactMap { state.open.removeValue(forKey: $0) }
            }
            // Each finished second keeps its histogram compressed (compressed outside the lock; only this collector
            // appends points, one collection at a time).
            let points = finished.map(TimelinePoint.init)
            self.timeline.withLockedValue { $0.points += points }
        }
    }

    /// Checks the guards on the seconds finished since the last check; records and returns the first breach.
    private func checkGuards() -> GuardEvent? {
        let guards = configuration.plan.guards
        guard !guards.isEmpty else { return nil }
        return timeline.withLockedValue { state -> GuardEvent? in
            guard state.guardFired == nil else { return nil }
            let fresh = state.points.dropFirst(state.guardsChecked)
            state.guardsChecked = state.points.count
            for point in fresh where point.responses + point.failed >= LoadGuard.minimumResponses {
                let total = max(1, point.succeeded + point.failed)
                for g in guards {
                    switch g {
                    case .errorRate(let limit):
                        let rate = Double(point.failed) / Double(total)
                        if rate > limit {
                            state.guardFired = GuardEvent(action: configuration.plan.guardAction, guardDescription: g.description, second: point.second,
                                                          observed: String(format: "%.1f%% of %d requests failed", rate * 100, total))
                        }
                    case .p99(let limit):
                        if point.responses > 0, Double(point.p99) / 1e6 > limit {
                            state.guardFired = GuardEvent(action: configuration.plan.guardAction, guardDescription: g.description, second: point.second,
                                                          observed: String(format: "p99 %.1f ms", Double(point.p99) / 1000))
                        }
                    }
                    if let fired = state.guardFired { return fired }
                }
            }
            return nil
        }
    }

    /// The last finished second, for the live view: an empty point when nothing happened in it (an outage), so
    /// that an earlier second is never shown as the last one.
    public var lastSecond: TimelinePoint? {
        let (finished, last) = timeline.withLockedValue { ($0.finishedSeconds, $0.points.last) }
        guard finished > 0 else { return nil }
        if let last, last.second == finished - 1 { return last }
        return TimelinePoint(TimelineBucket(second: finished - 1))
    }

    /// Ends the run because a verdict is reached: no new requests, in-flight ones get a short grace.
    public func finishDecided() {
        for bound in workers.withLockedValue({ $0 }) {
            bound.eventLoop.execute { bound.value.stop(grace: 2.0, abort: false) }
        }
    }

    /// Holds every worker's load at its current level (a guard's `hold` action).
    public func hold() {
        for bound in workers.withLockedValue({ $0 }) {
            bound.eventLoop.execute { bound.value.hold() }
        }
    }

    /// Asks every worker to stop: no new requests; in-flight ones get `grace` seconds. Safe from any thread.
    public func stop(grace: Double = 1.0) {
        stopRequested.withLockedValue { $0 = $0 ?? grace }
        for bound in workers.withLockedValue({ $0 }) {
            bound.eventLoop.execute { bound.value.stop(grace: grace) }
        }
    }
}

private struct CollectedSeconds: Sendable {
    var buckets: [TimelineBucket]
    var current: Int
    init(_ value: (buckets: [TimelineBucket], current: Int)) {
        buckets = value.buckets
        current = value.current
    }
}

private struct SlotBox: Sendable {
    var target: Int
    var address: SocketAddress
}
