import Histogram
import MeshprobeHistogram
import MeshprobeIdentity
import MeshprobeTLS

/// Why a request of the open model left later than intended.
public enum LateReason: String, Sendable, Hashable, Codable, CaseIterable {
    /// Every stream of every ready connection was busy.
    case streamsBusy = "streams_busy"
    /// No connection was ready (connecting, handshaking, or down).
    case noConnection = "no_connection"
    /// A stream was free but the generator's timer fired late (a busy or saturated generator).
    case generatorLag = "generator_lag"
}

/// One finished second of the run: its counts, latency percentiles from the merged per-second histogram of all
/// workers, and that histogram kept compressed (HdrHistogram's V2 encoding, a few hundred bytes where the histogram
/// holds a 25 KB counts array), so a long run's memory stays small and `merge` can recompute merged seconds'
/// percentiles exactly.
public struct TimelinePoint: Sendable, Equatable {
    public var second: Int
    public var sent: Int
    public var responses: Int
    public var succeeded: Int
    public var failed: Int
    public var late: Int
    /// Latency percentiles of the responses completed in this second, microseconds (0 without responses), each the
    /// highest value of its bucket (HdrHistogram's convention, so the compressed histogram gives the same numbers).
    public var p50: UInt64
    public var p90: UInt64
    public var p99: UInt64
    public var max: UInt64
    /// The second's latency histogram (`LatencyHistogram.timelineLatency()`, microseconds) in HdrHistogram's
    /// compressed V2 encoding; empty when the second had no response.
    public var histogram: [UInt8]
    /// The second's responses by the workload identity that answered them (they add up to `responses`).
    public var identities: [WorkloadIdentity: Int]

    public init(_ bucket: TimelineBucket) {
        second = bucket.second
        sent = bucket.sent
        responses = bucket.responses
        succeeded = bucket.succeeded
        failed = bucket.failed
        late = bucket.late
        identities = bucket.identities
        let h = bucket.latency
        let percentiles = h.highestEquivalentValues(atPercentiles: [50, 90, 99])
        p50 = percentiles[0]
        p90 = percentiles[1]
        p99 = percentiles[2]
        max = h.totalCount > 0 ? h.max : 0
        histogram = h.totalCount > 0 ? HistogramCodec.compressed(h) : []
    }

    /// The second's latency histogram, decoded (an empty timeline histogram when the second had no response).
    public var latency: LatencyHistogram {
        (try? HistogramCodec.decompress(histogram)) ?? LatencyHistogram.timelineLatency()
    }

    /// The second as a bucket again (counts and the decoded histogram), to merge with another part of it.
    public var bucket: TimelineBucket {
        var bucket = TimelineBucket(second: second)
        bucket.sent = sent
        bucket.responses = responses
        bucket.succeeded = succeeded
        bucket.failed = failed
        bucket.late = late
        bucket.identities = identities
        if !histogram.isEmpty { bucket.latency = latency }
        return bucket
    }
}

/// One second of the run while it is still being counted (per worker, then merged).
public struct TimelineBucket: Sendable {
    /// Seconds since the start of the run (warm-up included).
    public var second: Int
    public var sent = 0
    public var responses = 0
    public var succeeded = 0
    public var failed = 0
    public var late = 0
    /// Latency of the responses completed in this second, microseconds.
    public var latency = LatencyHistogram.timelineLatency()
    /// Responses by the workload identity that answered them, once the bucket has left its worker (`label`).
    public var identities: [WorkloadIdentity: Int] = [:]
    /// Responses by identity while one worker counts, indexed by that worker's identity indices (`SeriesTable`):
    /// counting a response is an array increment, no hashing. The indices mean nothing outside the worker, so a
    /// bucket is labelled before it leaves it, and only labelled buckets merge.
    private(set) var responsesByIdentityIndex: [Int] = []

    public init(second: Int) {
        self.second = second
    }

    /// Counts a response of the worker's identity `index`.
    @inline(__always) mutating func countResponse(identityIndex index: Int) {
        if index >= responsesByIdentityIndex.count {
            responsesByIdentityIndex.append(contentsOf: repeatElement(0, count: index + 1 - responsesByIdentityIndex.count))
        }
        responsesByIdentityIndex[index] &+= 1
    }

    /// Turns the worker's identity indices into the identities themselves (`identities[i]` is index i's).
    mutating func label(_ identities: [WorkloadIdentity]) {
        for (index, count) in responsesByIdentityIndex.enumerated() where count > 0 {
            self.identities[identities[index], default: 0] += count
        }
        responsesByIdentityIndex = []
    }

    public mutating func merge(_ other: TimelineBucket) {
        assert(other.responsesByIdentityIndex.isEmpty, "a bucket merges once labelled: its identity indices are its worker's")
        sent += other.sent
        responses += other.responses
        succeeded += other.succeeded
        failed += other.failed
        late += other.late
        latency.merge(other.latency)
        identities.merge(other.identities, uniquingKeysWith: +)
    }
}

/// The seconds still being counted: a run of consecutive buckets from `base` (the current second is at the end),
/// so recording into it is an index, not a hash.
struct OpenSeconds: Sendable {
    private var base = 0
    private var buckets: [TimelineBucket] = []

    @inline(__always) mutating func update(_ second: Int, _ body: (inout TimelineBucket) -> Void) {
        if buckets.isEmpty { base = second }
        if second < base {
            // An older second than any held (a merge): prepend the gap.
            buckets.insert(contentsOf: (second..<base).map { TimelineBucket(second: $0) }, at: 0)
            base = second
        }
        let index = second - base
        while buckets.count <= index { buckets.append(TimelineBucket(second: base + buckets.count)) }
        body(&buckets[index])
    }

    /// Removes and returns the seconds before `limit` (all when nil), skipping empty ones.
    mutating func take(before limit: Int?) -> [TimelineBucket] {
        let count = limit.map { Swift.max(0, Swift.min(buckets.count, $0 - base)) } ?? buckets.count
        let taken = buckets.prefix(count)
        buckets.removeFirst(count)
        base += count
        return taken.filter { $0.sent > 0 || $0.responses > 0 || $0.failed > 0 }
    }

    var all: [TimelineBucket] { buckets.filter { $0.sent > 0 || $0.responses > 0 || $0.failed > 0 } }
    var isEmpty: Bool { all.isEmpty }

    /// Labels every bucket's identity counts (see `TimelineBucket.label`).
    mutating func label(_ identities: [WorkloadIdentity]) {
        for i in buckets.indices { buckets[i].label(identities) }
    }
}

/// Counts by HTTP status without hashing: an array indexed by the status code.
struct StatusCounts: Sendable, Equatable {
    private var counts = [Int](repeating: 0, count: 600)
    private var unusual: [Int: Int] = [:]

    @inline(__always) mutating func add(_ status: Int, _ n: Int = 1) {
        if status >= 0 && status < 600 { counts[status] += n } else { unusual[status, default: 0] += n }
    }

    mutating func merge(_ other: StatusCounts) {
        for (status, n) in other.counts.enumerated() where n > 0 { counts[status] += n }
        unusual.merge(other.unusual, uniquingKeysWith: +)
    }

    var dictionary: [Int: Int] {
        var out = unusual
        for (status, n) in counts.enumerated() where n > 0 { out[status] = n }
        return out
    }
}

/// Counts and latency for everything one workload identity answered.
public struct IdentityStats: Sendable {
    /// Requests attributed to this identity: responses plus errors on its connections.
    public var requests = 0
    /// Responses with a 2xx or 3xx status.
    public var succeeded = 0
    /// Non-2xx/3xx responses plus errors.
    public var failed = 0
    var statusCounts = StatusCounts()
    /// Responses by HTTP status.
    public var statuses: [Int: Int] { statusCounts.dictionary }
    public var errors: [ErrorKind: Int] = [:]
    /// Latency of responses (any status), microseconds.
    public var latency = LatencyHistogram.latency()

    public init() {}

    public mutating func merge(_ other: IdentityStats) {
        requests += other.requests
        succeeded += other.succeeded
        failed += other.failed
        statusCounts.merge(other.statusCounts)
        errors.merge(other.errors, uniquingKeysWith: +)
        latency.merge(other.latency)
    }
}

/// Failed responses of one class, with their latency (a circuit breaker's overflow replies must be fast).
public struct FailureStats: Sendable {
    public var count = 0
    public var latency = LatencyHistogram.latency()
    /// The first text the failures came with (a gRPC call's `grpc-message`), control characters replaced, at most
    /// `messageLimit` characters; nil when none had one.
    public var message: String?

    public static let messageLimit = 200

    public init() {}

    public mutating func merge(_ other: FailureStats) {
        count += other.count
        latency.merge(other.latency)
        if message == nil { message = other.message }
    }
}

/// Counts and latency for one step of a multi-step flow.
public struct StepStats: Sendable {
    public var requests = 0
    public var succeeded = 0
    public var failed = 0
    public var extractionFailures = 0
    public var latency = LatencyHistogram.latency()

    public init() {}

    public mutating func merge(_ other: StepStats) {
        requests += other.requests
        succeeded += other.succeeded
        failed += other.failed
        extractionFailures += other.extractionFailures
        latency.merge(other.latency)
    }
}

/// A flow step's response, kept whatever its status (a one-shot request wants to read a refusal too).
public struct StepResponse: Sendable, Equatable {
    public var step: String
    public var status: Int
    public var body: [UInt8]
}

/// The merged outcome of a load run.
public struct LoadResult: Sendable {
    /// Requests handed to a connection.
    public var requestsSent = 0
    /// Requests that got a response (any status).
    public var responses = 0
    /// Responses with a 2xx or 3xx status.
    public var succeeded = 0
    /// Everything else: non-2xx/3xx responses and errors (including requests never sent).
    public var failed = 0
    var statusCounts = StatusCounts()
    /// Responses by HTTP status.
    public var statuses: [Int: Int] { statusCounts.dictionary }
    public var errors: [ErrorKind: Int] = [:]
    /// The most requests the upstream reported in flight (the echo's `x-meshprobe-inflight` stamp, counting the
    /// request itself); 0 when no response carried the stamp.
    public var upstreamPeakInFlight = 0
    /// The most requests an upstream connection had carried, by the echo's `x-meshprobe-connection-request` stamp
    /// (0 when no response carried it): a proxy's connection reuse as the workload sees it.
    public var upstreamPeakConnectionRequests = 0
    /// The most retries the upstream reported in flight at once (the echo's `x-meshprobe-retries-inflight` stamp,
    /// on retries only); 0 when no response carried it.
    public var upstreamPeakRetriesInFlight = 0
    /// Responses by the TLS server name the echo saw (its `x-meshprobe-sni` stamp): which SNI reached which workload.
    public var serverNamesSeen: [String: Int] = [:]
    /// Final responses by the echo's attempt stamp (`x-meshprobe-attempt`: requests with this `x-request-id` the
    /// answering echo had seen, this one included): how many tries a proxy made before the client got its answer.
    /// Empty when no response carried the stamp (no `x-request-id` sent, or the proxy answered itself).
    public var attemptsSeen: [Int: Int] = [:]
    /// Responses by the echo's pod stamp (`x-meshprobe-pod`), when the configuration asks (`countsPods`); nil
    /// otherwise: a check that must know how many endpoints answered (several pods of one version look alike).
    public var podsSeen: [String: Int]?
    /// Failed responses (not 2xx/3xx) by who produced them and why: application, or a proxy's signature.
    public var failedResponses: [FailureClass: FailureStats] = [:]
    /// Every failure by class: failed responses and, as client classes, requests without a response.
    public var failureClasses: [FailureClass: Int] {
        var all = failedResponses.mapValues(\.count)
        for (kind, count) in errors { all[.client(kind), default: 0] += count }
        return all
    }
    /// How long the requests that failed without a response had waited when they failed (a reset, a lost connection),
    /// by kind, microseconds from the same start as `latency`: a latency threshold counts them. Not for timed-out
    /// requests (counted at the timeout), those never sent, aborted by the run's end, or failed together without a
    /// time of their own.
    public var failedWithoutResponse: [ErrorKind: LatencyHistogram] = [:]
    /// How long the requests meshprobe gave up without an answer had waited, microseconds: those lost with a
    /// connection it closed after a timeout on it, and (open model) arrivals that found no free stream within the
    /// timeout, whose latency counts from their intended time. A lower bound of their latency (they are not in
    /// `failedWithoutResponse`).
    public var abandonedWaits = LatencyHistogram.latency()
    /// The first plain-words explanation seen for each error kind (TLS and SPIFFE failures especially).
    public var errorExplanations: [ErrorKind: String] = [:]
    /// Latency of responses, microseconds, from the request's intended send time (open model; corrected for
    /// coordinated omission) or from handing it to the connection (closed model).
    public var latency = LatencyHistogram.latency()
    /// Latency from the moment the request actually left (uncorrected, what h2load and fortio report).
    public var serviceLatency = LatencyHistogram.latency()
    /// Open model: how long after its intended time each request was sent, microseconds.
    public var sendDelay = LatencyHistogram.latency()
    /// Open model: requests sent later than the late threshold, by reason.
    public var late: [LateReason: Int] = [:]
    /// Responses and errors left out because they belong to the warm-up.
    public var warmupRequests = 0
    /// Per-second counts and latency percentiles, finished seconds only.
    public var timeline: [TimelinePoint] = []
    /// Seconds still being counted, by second (a worker's, until the generator collects them).
    var openSeconds = OpenSeconds()
    /// How late the generator's own timers fired, microseconds (event-loop lag: a saturated generator).
    public var loopLag = LatencyHistogram.latency()
    /// CPU seconds the whole process used during the run (user + system).
    public var cpuSeconds = 0.0
    /// What happened to the run's TLS identity source (`LoadConfiguration.tlsSource`) from the run's start to its end:
    /// its own share when runs share the source (a verification's routes, a game day's steps).
    public var identityRotations: TLSContextSource.Rotations?
    /// Some answer carried the workload's stamp: the target stamps its replies (see `reclassifyUnstampedReplies`).
    public var sawStamps = false
    /// Closed model: seconds of the measured run in which no connection was up while the run wanted requests (every
    /// slot failing to connect, or given up), summed over the workers weighted by their shares of the connections.
    /// The closed model sends nothing then, so its counts do not show the outage.
    public var unreachableSeconds = 0.0
    public var identities: [WorkloadIdentity: IdentityStats] = [:]
    /// Per-identity series (source, destination, route, response code and class) with latency histograms; filled
    /// from the workers' packed tables at the end of a run (`labelSeries`).
    public var metrics = IdentityMetrics()
    /// A worker's series while it counts.
    var seriesTable = SeriesTable()

    /// Requests whose write HTTP/2 write coalescing held for a later read burst (see `HTTP2WriteCoalescer`).
    public var coalescedRequests = 0

    /// Connection attempts, successful connections, and TLS handshakes.
    public var connectAttempts = 0
    public var connectionsEstablished = 0
    public var connectionFailures: [ErrorKind: Int] = [:]
    public var tlsHandshakes = 0
    public var tlsResumed = 0
    /// Handshake time (TCP connect to TLS finished), microseconds.
    public var handshakeLatency = LatencyHistogram.latency()
    public var negotiatedProtocols: [String: Int] = [:]
    public var tlsVersions: [String: Int] = [:]
    /// The server identities seen in TLS handshakes.
    public var peerIdentities: [String: Int] = [:]
    /// The caller identity the echo workload reported seeing (`x-meshprobe-caller`), by value.
    public var callersSeen: [String: Int] = [:]

    /// When the run began, wall-clock seconds since 1970 (the earliest of merged runs'); nil for a result no generator
    /// ran (a worker's share, one read back from JSON).
    public var startedAtEpochSeconds: Double?
    /// Wall time from the first connection attempt to the last response, seconds.
    public var elapsedSeconds = 0.0
    /// True when the run was stopped early (signal, abort, or a guard).
    public var aborted = false
    /// Why the run ended before its planned end without being stopped (every connection given up), or nil.
    public var endedEarly: String?
    /// The guard that stopped the run, if one did.
    public var guardFired: GuardEvent?
    /// Multi-step flows: per-step figures, iterations that ran every step, and the variables of the last one.
    public var steps: [String: StepStats] = [:]
    public var iterationsCompleted = 0
    public var lastIterationVariables: [String: String] = [:]
    /// The last flow step's response, status and body, when `LoadConfiguration.keepLastStepResponse` is set.
    public var lastStepResponse: StepResponse?

    public init() {}

    public var requestsPerSecond: Double { elapsedSeconds > 0 ? Double(responses) / elapsedSeconds : 0 }
    public var totalRequests: Int { succeeded + failed }

    public mutating func merge(_ other: LoadResult) {
        // Runs one after another on one source (a route's phases): their shares add up.
        if let theirs = other.identityRotations {
            identityRotations = identityRotations.map { $0.adding(theirs) } ?? theirs
        }
        if let theirs = other.startedAtEpochSeconds {
            startedAtEpochSeconds = min(startedAtEpochSeconds ?? theirs, theirs)
        }
        sawStamps = sawStamps || other.sawStamps
        unreachableSeconds += other.unreachableSeconds
        requestsSent += other.requestsSent
        responses += other.responses
        succeeded += other.succeeded
        failed += other.failed
        statusCounts.merge(other.statusCounts)
        errors.merge(other.errors, uniquingKeysWith: +)
        errorExplanations.merge(other.errorExplanations, uniquingKeysWith: { a, _ in a })
        upstreamPeakInFlight = max(upstreamPeakInFlight, other.upstreamPeakInFlight)
        upstreamPeakConnectionRequests = max(upstreamPeakConnectionRequests, other.upstreamPeakConnectionRequests)
        upstreamPeakRetriesInFlight = max(upstreamPeakRetriesInFlight, other.upstreamPeakRetriesInFlight)
        serverNamesSeen.merge(other.serverNamesSeen, uniquingKeysWith: +)
        attemptsSeen.merge(other.attemptsSeen, uniquingKeysWith: +)
        if let pods = other.podsSeen { podsSeen = (podsSeen ?? [:]).merging(pods, uniquingKeysWith: +) }
        for (failure, stats) in other.failedResponses { failedResponses[failure, default: FailureStats()].merge(stats) }
        for (kind, latency) in other.failedWithoutResponse { failedWithoutResponse[kind, default: .latency()].merge(latency) }
        abandonedWaits.merge(other.abandonedWaits)
        latency.merge(other.latency)
        serviceLatency.merge(other.serviceLatency)
        sendDelay.merge(other.sendDelay)
        late.merge(other.late, uniquingKeysWith: +)
        warmupRequests += other.warmupRequests
        loopLag.merge(other.loopLag)
        cpuSeconds = max(cpuSeconds, other.cpuSeconds)
        for var bucket in other.openSeconds.all {
            // A worker's result is labelled when handed over; one that was not (counted in place) is labelled here.
            bucket.label(other.seriesTable.identities)
            openSeconds.update(bucket.second) { $0.merge(bucket) }
        }
        if !other.timeline.isEmpty {
            timeline = (timeline + other.timeline).sorted { $0.second < $1.second }
        }
        for (identity, stats) in other.identities {
            identities[identity, default: IdentityStats()].merge(stats)
        }
        metrics.merge(other.metrics)
        coalescedRequests += other.coalescedRequests
        connectAttempts += other.connectAttempts
        connectionsEstablished += other.connectionsEstablished
        connectionFailures.merge(other.connectionFailures, uniquingKeysWith: +)
        tlsHandshakes += other.tlsHandshakes
        tlsResumed += other.tlsResumed
        handshakeLatency.merge(other.handshakeLatency)
        negotiatedProtocols.merge(other.negotiatedProtocols, uniquingKeysWith: +)
        tlsVersions.merge(other.tlsVersions, uniquingKeysWith: +)
        peerIdentities.merge(other.peerIdentities, uniquingKeysWith: +)
        callersSeen.merge(other.callersSeen, uniquingKeysWith: +)
        for (name, stats) in other.steps { steps[name, default: StepStats()].merge(stats) }
        iterationsCompleted += other.iterationsCompleted
        if !other.lastIterationVariables.isEmpty { lastIterationVariables = other.lastIterationVariables }
        if let response = other.lastStepResponse { lastStepResponse = response }
        elapsedSeconds = max(elapsedSeconds, other.elapsedSeconds)
        aborted = aborted || other.aborted
        if endedEarly == nil { endedEarly = other.endedEarly }
    }

    // MARK: recording (one worker, on its event loop)

    /// Where an identity's stats were last found, so that a connection answering as the same identity again
    /// skips hashing it (indices of `identities` stay valid until a new identity is inserted).
    struct IdentitySlot {
        var identity: WorkloadIdentity
        var index: Dictionary<WorkloadIdentity, IdentityStats>.Index
        var generation: Int
        /// The identity's index in the series table, and the series the connection recorded into last.
        var seriesIdentity: Int
        var lastKey: UInt64 = .max
        var lastSeries = 0
    }

    /// Turns the worker's packed series and the open seconds' identity counts into labelled ones (once, when the
    /// worker's result is handed over).
    public mutating func labelSeries(_ context: SeriesContext) {
        metrics.merge(seriesTable.metrics(context))
        openSeconds.label(seriesTable.identities)
        seriesTable = SeriesTable()
    }

    /// A failed reply with neither stamp nor signature is a proxy's (`unrecognised`) from a target that stamps its
    /// replies, else of `unknown` origin; each event loop learns that the target stamps from its first stamped answer,
    /// so the replies before it were counted `unknown`. Once the run has seen a stamp, they join the proxy's, in the
    /// failures and in the series (gRPC statuses, counted `unknown` by design, are left as they are).
    public mutating func reclassifyUnstampedReplies() {
        guard sawStamps else { return }
        let proxy = FailureClass(origin: .proxy, reason: FailureClass.Reason.unrecognised)
        func isHTTPStatus(_ reason: Substring) -> Bool { !reason.isEmpty && reason.allSatisfy { $0.isASCII && $0.isNumber } }
        for (failure, stats) in failedResponses where failure.origin == .unknown && isHTTPStatus(Substring(failure.reason)) {
            failedResponses[failure] = nil
            failedResponses[proxy, default: FailureStats()].merge(stats)
        }
        let label = "\(proxy.origin.rawValue):\(proxy.reason)"
        for (labels, stats) in metrics.series where labels.failureClass.hasPrefix("unknown:") && isHTTPStatus(labels.failureClass.dropFirst(8)) {
            metrics.series[labels] = nil
            var relabelled = labels
            relabelled.failureClass = label
            metrics.series[relabelled, default: SeriesStats()].merge(stats)
        }
    }

    /// Bumped whenever a new identity is inserted (which may invalidate cached indices).
    var identityGeneration = 0

    mutating func recordFailure(_ failure: FailureClass, latencyMicros: UInt64, message: String? = nil) {
        failedResponses[failure, default: FailureStats()].count += 1
        _ = failedResponses[failure, default: FailureStats()].latency.record(max(1, latencyMicros))
        if let message, !message.isEmpty, failedResponses[failure]?.message == nil {
            failedResponses[failure]?.message = String(PrintableText.replacingControls(message).prefix(FailureStats.messageLimit))
        }
    }

    mutating func recordResponse(status: Int, latencyMicros: UInt64, serviceMicros: UInt64, identity: WorkloadIdentity,
                                 second: Int, target: Int = -1, route: Int = 0, failure: FailureClass? = nil,
                                 slot: inout IdentitySlot?) {
        responses += 1
        statusCounts.add(status)
        let ok = ResponseCode.succeeded(status)
        if ok { succeeded += 1 } else { failed += 1 }
        _ = latency.record(max(1, latencyMicros))
        _ = serviceLatency.record(max(1, serviceMicros))
        // In place (`slot!`), not through a copy: a copy retains and releases the identity's four strings.
        if slot != nil, slot!.generation == identityGeneration, slot!.identity == identity {
            Self.update(&identities.values[slot!.index], ok: ok, status: status, latencyMicros: latencyMicros)
            recordSeries(&slot!, status: status, latencyMicros: latencyMicros, target: target, route: route, failure: failure)
            recordSecond(second, ok: ok, latencyMicros: latencyMicros, identityIndex: slot!.seriesIdentity)
            return
        }
        if identities.index(forKey: identity) == nil {
            identities[identity] = IdentityStats()
            identityGeneration &+= 1
        }
        guard let index = identities.index(forKey: identity) else { return }
        Self.update(&identities.values[index], ok: ok, status: status, latencyMicros: latencyMicros)
        var fresh = IdentitySlot(identity: identity, index: index, generation: identityGeneration,
                                 seriesIdentity: seriesTable.intern(identity))
        recordSeries(&fresh, status: status, latencyMicros: latencyMicros, target: target, route: route, failure: failure)
        recordSecond(second, ok: ok, latencyMicros: latencyMicros, identityIndex: fresh.seriesIdentity)
        slot = fresh
    }

    /// One response into its second: the counts, the latency, and its identity's count (by the series table's index).
    @inline(__always) private mutating func recordSecond(_ second: Int, ok: Bool, latencyMicros: UInt64, identityIndex: Int) {
        bucket(second) { bucket in
            bucket.responses += 1
            if ok { bucket.succeeded += 1 } else { bucket.failed += 1 }
            _ = bucket.latency.record(max(1, latencyMicros))
            bucket.countResponse(identityIndex: identityIndex)
        }
    }

    /// One response into its series: no hashing when the connection's previous response had the same key.
    @inline(__always) private mutating func recordSeries(_ slot: inout IdentitySlot, status: Int, latencyMicros: UInt64,
                                                         target: Int, route: Int, failure: FailureClass?) {
        let key = SeriesTable.key(identity: slot.seriesIdentity, target: target + 1, route: route, status: status,
                                  failureClass: failure == nil ? 0 : seriesTable.intern(failure))
        if key != slot.lastKey {
            slot.lastKey = key
            slot.lastSeries = seriesTable.slot(key)
        }
        seriesTable.record(slot: slot.lastSeries, latencyMicros: latencyMicros)
    }

    private static func update(_ stats: inout IdentityStats, ok: Bool, status: Int, latencyMicros: UInt64) {
        stats.requests += 1
        if ok { stats.succeeded += 1 } else { stats.failed += 1 }
        stats.statusCounts.add(status)
        _ = stats.latency.record(max(1, latencyMicros))
    }

    /// Runs `body` on the timeline bucket of `second`, creating buckets up to it.
    mutating func bucket(_ second: Int, _ body: (inout TimelineBucket) -> Void) {
        guard second >= 0 else { return }
        openSeconds.update(second, body)
    }

    /// Removes and returns the open seconds before `limit` (all of them when nil), labelled (they leave the worker).
    mutating func takeOpenSeconds(before limit: Int?) -> [TimelineBucket] {
        var taken = openSeconds.take(before: limit)
        for i in taken.indices { taken[i].label(seriesTable.identities) }
        return taken
    }

    /// Turns every open second into a finished point (at the end of a run).
    mutating func finishTimeline() {
        let points = takeOpenSeconds(before: nil).map(TimelinePoint.init)
        timeline = (timeline + points).sorted { $0.second < $1.second }
        // Fill gaps (seconds with nothing at all) so the timeline reads as one row per second.
        guard let last = timeline.last?.second else { return }
        // A second is finished only once (the collector waits for every worker's clock); should one ever appear
        // twice, its counts add up and its histograms merge.
        var bySecond = Dictionary(timeline.map { ($0.second, $0) }, uniquingKeysWith: { a, b in
            var merged = a.bucket
            merged.merge(b.bucket)
            return TimelinePoint(merged)
        })
        for s in 0...last where bySecond[s] == nil { bySecond[s] = TimelinePoint(TimelineBucket(second: s)) }
        timeline = bySecond.values.sorted { $0.second < $1.second }
    }

    /// `latencyMicros`: how long the one request had waited when it failed, when that counts (`ErrorKind.waitCounts`);
    /// `abandoned`: meshprobe gave it up with its connection, so that wait is only a lower bound (`abandonedWaits`).
    mutating func recordError(_ kind: ErrorKind, identity: WorkloadIdentity?, count: Int = 1, explanation: String? = nil,
                              second: Int? = nil, target: Int = -1, route: Int = 0, latencyMicros: UInt64? = nil,
                              abandoned: Bool = false) {
        guard count > 0 else { return }
        let seriesKey = SeriesTable.key(identity: seriesTable.intern(identity ?? .unknown), target: target + 1, route: route, status: 0,
                                        failureClass: seriesTable.intern(.client(kind)))
        if abandoned, let latencyMicros {
            _ = abandonedWaits.record(max(1, latencyMicros), count: UInt64(count))
            seriesTable.add(seriesKey, count: count)
        } else if count == 1, let latencyMicros, kind.waitCounts {
            seriesTable.record(slot: seriesTable.slot(seriesKey), latencyMicros: latencyMicros)
            _ = failedWithoutResponse[kind, default: .latency()].record(max(1, latencyMicros))
        } else {
            seriesTable.add(seriesKey, count: count)
        }
        failed += count
        if let second { bucket(second) { $0.failed += count } }
        errors[kind, default: 0] += count
        if let explanation, errorExplanations[kind] == nil { errorExplanations[kind] = explanation }
        if let identity {
            if identities[identity] == nil { identityGeneration &+= 1 }
            identities[identity, default: IdentityStats()].requests += count
            identities[identity, default: IdentityStats()].failed += count
            identities[identity, default: IdentityStats()].errors[kind, default: 0] += count
        }
    }

    mutating func recordConnectionFailure(_ kind: ErrorKind, explanation: String) {
        connectionFailures[kind, default: 0] += 1
        if errorExplanations[kind] == nil { errorExplanations[kind] = explanation }
    }

    /// A TLS handshake finished after `latencyMicros` from the connect; `peer`: the server's SPIFFE ID or subject.
    mutating func recordHandshake(_ event: TLSHandshakeCompleted, latencyMicros: UInt64, peer: String) {
        tlsHandshakes += 1
        if event.resumed { tlsResumed += 1 }
        _ = handshakeLatency.record(max(1, latencyMicros))
        tlsVersions[event.version, default: 0] += 1
        negotiatedProtocols[event.negotiatedProtocol ?? "(none)", default: 0] += 1
        if !peer.isEmpty { peerIdentities[peer, default: 0] += 1 }
    }

    /// One of the echo's stamps about the upstream side (who called, how many were in flight, which attempt); the
    /// stamps that name the workload are the identity's, not recorded here.
    /// Names compared by length first (see `LoadConnection.identity(from:)`): most stamps differ in length.
    mutating func recordUpstreamStamp(_ kind: KnownHeader, _ value: String) {
        switch kind {
        case .caller:
            callersSeen[value, default: 0] += 1
        case .inFlight:
            if let n = Int(value), n > upstreamPeakInFlight { upstreamPeakInFlight = n }
        case .serverName:
            if !value.isEmpty { serverNamesSeen[value, default: 0] += 1 }
        case .retriesInFlight:
            if let n = Int(value), n > upstreamPeakRetriesInFlight { upstreamPeakRetriesInFlight = n }
        case .connectionRequest:
            if let n = Int(value), n > upstreamPeakConnectionRequests { upstreamPeakConnectionRequests = n }
        case .attempt:
            if let n = Int(value) { attemptsSeen[n, default: 0] += 1 }
        case .pod:
            if podsSeen != nil { podsSeen![value, default: 0] += 1 }
        default:
            break
        }
    }
}
