import Foundation
import MeshprobeHistogram
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeSpec
import MeshprobeTLS
import NIOCore

/// The JSON result of `meshprobe load` (schema: `docs/schema/load-result.schema.json`).
public struct LoadReport: Codable, Sendable {
    /// v2 added the inputs and their hashes, the per-identity series and lossless histograms (issue 6).
    public static let schemaVersion = "meshprobe.load/v2"

    public struct Meta: Codable, Sendable {
        public var schema: String
        public var meshprobeVersion: String
        public var commandLine: [String]
        public var startedAt: String
        public var targets: [String]
        public var connections: Int
        public var streamsPerConnection: Int
        public var model: String
        public var warmupSeconds: Double
        public var churn: String
        /// The build that produced the result (version, and the commit when the build knew it).
        public var build: String?
        /// The files the run read (scenario, policy, manifests, game day), each with its SHA-256.
        public var inputs: [Input]?
        /// Set by `meshprobe merge`: how many results this one combines.
        public var mergedFrom: Int?
        /// What the client's TLS accepted beyond the defaults (`--tls-security-level`, `--allow-non-svid-peer`);
        /// absent when nothing was loosened.
        public var tlsLoosened: [String]?
        /// A gRPC run's call; absent for HTTP.
        public var grpc: GRPCMeta?
        /// How the client's identity rotated during the run: always with the Workload API, with watched SVID files
        /// when they changed; absent otherwise.
        public var identityRotations: IdentityRotations?
        /// The per-request timeout (`--timeout`): a request that timed out took at least this long. Absent in results
        /// from before it was written.
        public var requestTimeoutSeconds: Double?
        /// The load model in words for a reader: a merged result's says that it is each run's, so that it agrees with
        /// `connections`, the runs' sum (`each of 2 runs: closed: 2 connections x 5 streams` beside 4 connections).
        public var modelText: String {
            guard let runs = mergedFrom, runs > 1 else { return model }
            return model.contains("; ") ? "\(runs) runs: \(model)" : "each of \(runs) runs: \(model)"
        }

        enum CodingKeys: String, CodingKey {
            case schema, targets, connections, model, churn, build, inputs, grpc
            case tlsLoosened = "tls_loosened"
            case identityRotations = "identity_rotations"
            case requestTimeoutSeconds = "request_timeout_seconds"
            case mergedFrom = "merged_from"
            case warmupSeconds = "warmup_seconds"
            case meshprobeVersion = "meshprobe_version"
            case commandLine = "command_line"
            case startedAt = "started_at"
            case streamsPerConnection = "streams_per_connection"
        }
    }

    /// The client identity's rotations during a run.
    public struct IdentityRotations: Codable, Sendable, Equatable {
        /// `workload-api` or `files`.
        public var source: String
        /// New identities installed after the first (new connections took them).
        public var rotations: Int
        /// Updates that did not load (a half-written file, an unusable SVID): the identity before them stayed.
        public var rejected: Int
        /// Requests and connections that failed with a TLS error in the run (with rotations, the ones a rotation
        /// could have caused: zero when it caused none).
        public var tlsFailures: Int
        /// Times the Workload API's stream broke during the run and was reconnected (the identity in use stayed), and
        /// the last one's reason; absent when none (and in results from before they were counted).
        public var interruptions: Int?
        public var lastInterruption: String?

        enum CodingKeys: String, CodingKey {
            case source, rotations, rejected, interruptions
            case tlsFailures = "tls_failures"
            case lastInterruption = "last_interruption"
        }

        public init(_ rotations: TLSContextSource.Rotations, result: LoadResult) {
            source = rotations.source
            self.rotations = rotations.count
            rejected = rotations.rejected
            let tls = { (kind: ErrorKind) in kind.rawValue.hasPrefix("tls_") }
            tlsFailures = result.errors.filter { tls($0.key) }.values.reduce(0, +)
                + result.connectionFailures.filter { tls($0.key) }.values.reduce(0, +)
            if rotations.interruptions > 0 {
                interruptions = rotations.interruptions
                lastInterruption = rotations.lastInterruption
            }
        }
    }

    /// The unary call every request of a gRPC run made.
    public struct GRPCMeta: Codable, Sendable, Equatable {
        /// `package.Service/Method`.
        public var method: String
        /// Where the request message came from (`--data @req.bin`, `health check of ''`).
        public var message: String
        public var messageBytes: Int
        /// `identity` or `gzip`.
        public var compression: String
        /// Where the method's descriptors came from: `protoset` or `reflection`; absent when none were read.
        public var descriptors: String?

        public init(_ call: GRPCCall) {
            method = call.method
            message = call.messageSource
            messageBytes = call.message.count
            compression = call.gzip ? "gzip" : "identity"
            descriptors = call.descriptors
        }

        enum CodingKeys: String, CodingKey {
            case method, message, compression, descriptors
            case messageBytes = "message_bytes"
        }
    }

    public struct Summary: Codable, Sendable {
        public var requests: Int
        public var succeeded: Int
        public var failed: Int
        public var responses: Int
        public var rps: Double
        public var elapsedSeconds: Double
        public var latencyMs: LatencySummary
        /// From the moment each request actually left: what tools without coordinated-omission correction report.
        public var latencyUncorrectedMs: LatencySummary
        /// Open model: actual minus intended send time.
        public var sendDelayMs: LatencySummary?
        public var late: [String: Int]
        public var warmupRequests: Int
        public var statuses: [String: Int]
        public var errors: [String: Int]
        public var errorExplanations: [String: String]
        public var aborted: Bool
        public var cpuSeconds: Double
        public var cpuMicrosecondsPerRequest: Double
        public var loopLagMs: LatencySummary
        /// Requests whose write was held by HTTP/2 write coalescing (and timed from the write); nil when it was off.
        public var coalescedRequests: Int?
        /// Plain-words reasons the numbers may not be trustworthy (a saturated generator, late sends).
        public var warnings: [String]
        /// The guard that stopped the run, if one did.
        public var guardFired: GuardFired?
        /// Why the run ended before its planned end without being stopped (every connection given up); nil otherwise.
        public var endedEarly: String?
        /// Closed model: seconds of the measured run with no connection up while it wanted requests (an outage it sent
        /// nothing during); nil when none. Latency and error-rate thresholds count the requests it would have sent.
        public var unreachableSeconds: Double?
        enum CodingKeys: String, CodingKey {
            case requests, succeeded, failed, responses, rps, statuses, errors, aborted, late, warnings
            case elapsedSeconds = "elapsed_seconds"
            case latencyMs = "latency_ms"
            case latencyUncorrectedMs = "latency_uncorrected_ms"
            case sendDelayMs = "send_delay_ms"
            case warmupRequests = "warmup_requests"
            case errorExplanations = "error_explanations"
            case cpuSeconds = "cpu_seconds"
            case cpuMicrosecondsPerRequest = "cpu_us_per_request"
            case loopLagMs = "loop_lag_ms"
            case coalescedRequests = "coalesced_requests"
            case guardFired = "guard_fired"
            case endedEarly = "ended_early"
            case unreachableSeconds = "unreachable_seconds"
        }
    }

    public struct Workload: Codable, Sendable {
        public var identity: String
        public var workload: String
        public var version: String
        public var cluster: String
        /// The identity this row is about (its four fields).
        public var workloadIdentity: WorkloadIdentity {
            WorkloadIdentity(identity: identity, workload: workload, version: version, cluster: cluster)
        }
        public var requests: Int
        public var share: Double
        public var succeeded: Int
        public var errors: Int
        public var statuses: [String: Int]
        public var errorKinds: [String: Int]
        public var latencyMs: LatencySummary
        enum CodingKeys: String, CodingKey {
            case identity, workload, version, cluster, requests, share, succeeded, errors, statuses
            case errorKinds = "error_kinds"
            case latencyMs = "latency_ms"
        }
    }

    public struct Connections: Codable, Sendable {
        public var attempts: Int
        public var established: Int
        public var failures: [String: Int]
        public var tlsHandshakes: Int
        public var tlsResumed: Int
        public var handshakesPerSecond: Double
        public var handshakeMs: LatencySummary
        public var protocols: [String: Int]
        public var tlsVersions: [String: Int]
        public var peerIdentities: [String: Int]
        /// The caller identity the echo workload saw (`x-meshprobe-caller`): proof that mTLS is in effect.
        public var callersSeenByServer: [String: Int]
        enum CodingKeys: String, CodingKey {
            case attempts, established, failures, protocols
            case callersSeenByServer = "callers_seen_by_server"
            case tlsHandshakes = "tls_handshakes"
            case tlsResumed = "tls_resumed"
            case handshakeMs = "handshake_ms"
            case handshakesPerSecond = "handshakes_per_second"
            case tlsVersions = "tls_versions"
            case peerIdentities = "peer_identities"
        }
    }

    public struct GuardFired: Codable, Sendable {
        /// stop or hold.
        public var action: String
        public var guardDescription: String
        public var second: Int
        public var observed: String
        enum CodingKeys: String, CodingKey {
            case second, observed, action
            case guardDescription = "guard"
        }
    }

    /// One second of the run.
    public struct Second: Codable, Sendable {
        public var second: Int
        public var sent: Int
        public var responses: Int
        public var succeeded: Int
        public var failed: Int
        public var late: Int
        /// Percentiles of the second's responses, from its histogram; null in a merged result when an input's second
        /// has responses but no histogram (a result written before the histograms were kept).
        public var p50Ms: Double?
        public var p90Ms: Double?
        public var p99Ms: Double?
        public var maxMs: Double?
        /// The second's latency histogram (2 significant digits, microseconds), HdrHistogram compressed V2 in base64;
        /// absent without responses: what `merge` adds up to recompute a merged second's percentiles.
        public var histogram: String?
        /// The second's responses by the identity that answered them: entry i counts `workloads[i]`'s, trailing zeros
        /// left out (they add up to `responses`). Absent in a second without responses, and in results written before
        /// it was kept (a merge with such a result leaves it out of the seconds that result has responses in).
        public var responsesByWorkload: [Int]?
        enum CodingKeys: String, CodingKey {
            case second, sent, responses, succeeded, failed, late, histogram
            case p50Ms = "p50_ms"
            case p90Ms = "p90_ms"
            case p99Ms = "p99_ms"
            case maxMs = "max_ms"
            case responsesByWorkload = "responses_by_workload"
        }

        public init(second: Int, sent: Int = 0, responses: Int = 0, succeeded: Int = 0, failed: Int = 0, late: Int = 0,
                    p50Ms: Double? = nil, p90Ms: Double? = nil, p99Ms: Double? = nil, maxMs: Double? = nil, histogram: String? = nil,
                    responsesByWorkload: [Int]? = nil) {
            self.second = second
            self.sent = sent
            self.responses = responses
            self.succeeded = succeeded
            self.failed = failed
            self.late = late
            self.p50Ms = p50Ms
            self.p90Ms = p90Ms
            self.p99Ms = p99Ms
            self.maxMs = maxMs
            self.histogram = histogram
            self.responsesByWorkload = responsesByWorkload
        }

        /// A finished second of a run, with its percentiles, its histogram and its responses by identity (`workloads`:
        /// each identity's index in the result's `workloads`).
        public init(_ point: TimelinePoint, workloads: [WorkloadIdentity: Int]) {
            func ms(_ us: UInt64) -> Double { (Double(us) / 1000 * 1000).rounded() / 1000 }
            self.init(second: point.second, sent: point.sent, responses: point.responses, succeeded: point.succeeded,
                      failed: point.failed, late: point.late, p50Ms: ms(point.p50), p90Ms: ms(point.p90), p99Ms: ms(point.p99),
                      maxMs: ms(point.max), histogram: point.histogram.isEmpty ? nil : HistogramCodec.encode(compressed: point.histogram),
                      responsesByWorkload: Self.byWorkload(point.identities, workloads))
        }

        /// Counts by identity as an array in the order of `workloads` (identity to index), trailing zeros left out;
        /// nil when there are none.
        static func byWorkload(_ counts: [WorkloadIdentity: Int], _ workloads: [WorkloadIdentity: Int]) -> [Int]? {
            var out: [Int] = []
            for (identity, count) in counts where count > 0 {
                guard let i = workloads[identity] else { continue }
                if i >= out.count { out += repeatElement(0, count: i + 1 - out.count) }
                out[i] += count
            }
            return out.isEmpty ? nil : out
        }
    }

    /// One step of a multi-step flow.
    public struct Step: Codable, Sendable {
        public var name: String
        public var requests: Int
        public var succeeded: Int
        public var failed: Int
        public var extractionFailures: Int
        public var latencyMs: LatencySummary
        public var histogram: String?
        enum CodingKeys: String, CodingKey {
            case name, requests, succeeded, failed, histogram
            case extractionFailures = "extraction_failures"
            case latencyMs = "latency_ms"
        }
    }

    /// Failures by who produced them and why (sidecar-aware classification).
    public struct Failure: Codable, Sendable {
        /// application, proxy, client or unknown.
        public var origin: String
        public var reason: String
        public var proxy: String?
        public var flag: String?
        public var count: Int
        /// Latency of the failed responses of this class; for a client-side class (no response), how long its
        /// requests had waited when they failed (absent for timeouts, requests never sent, and results before it).
        public var latencyMs: LatencySummary?
        /// The latency histogram (HdrHistogram compressed V2, base64), when there is a latency.
        public var histogram: String?
        /// The first text these failures came with: a gRPC call's `grpc-message`.
        public var message: String?
        enum CodingKeys: String, CodingKey {
            case origin, reason, proxy, flag, count, histogram, message
            case latencyMs = "latency_ms"
        }

        /// Every class of `result`, most frequent first.
        public static func all(_ result: LoadResult) -> [Failure] {
            result.failureClasses.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { failure, count in
                let latency = result.failedResponses[failure]?.latency ?? failure.clientKind.flatMap { result.failedWithoutResponse[$0] }
                return Failure(origin: failure.origin.rawValue, reason: failure.reason, proxy: failure.proxy, flag: failure.flag, count: count,
                               latencyMs: latency.map { LatencySummary($0) }, histogram: latency.map { HistogramCodec.encode($0) },
                               message: result.failedResponses[failure]?.message)
            }
        }
    }

    public var meta: Meta
    public var summary: Summary
    public var failures: [Failure]
    public var workloads: [Workload]
    public var connections: Connections
    public var timeline: [Second]
    /// Multi-step flows: per step, in flow order (empty otherwise).
    public var steps: [Step]
    /// Multi-step flows: iterations that ran every step.
    public var iterationsCompleted: Int?
    /// The per-identity metrics model: one row per series, with its latency histogram.
    public var series: [Series]
    /// The run's histograms, lossless (HdrHistogram compressed V2, base64): what `merge` adds up.
    public var histograms: Histograms
    /// The thresholds' verdicts, in the order given; empty when none was set (absent in results before them).
    public var thresholds: [ThresholdVerdict]?
    /// How the load ended (`outcome(part:)`), written with the result; recomputed, never read back.
    public var writtenOutcome: ResultOutcome?

    enum CodingKeys: String, CodingKey {
        case meta, summary, workloads, connections, timeline, steps, failures, series, histograms, thresholds
        case writtenOutcome = "outcome"
        case iterationsCompleted = "iterations_completed"
    }

    /// `startedAt`: when the command began, for a result that does not carry its own start (each run's does: a
    /// verification's routes, a game day's steps each have their own).
    public init(result: LoadResult, configuration: LoadConfiguration, commandLine: [String], startedAt: Date, version: String,
                build: String? = nil, inputs: [Input] = []) {
        let startedAt = result.startedAtEpochSeconds.map { Date(timeIntervalSince1970: $0) } ?? startedAt
        meta = Meta(schema: Self.schemaVersion, meshprobeVersion: version, commandLine: commandLine,
                    startedAt: UTCTimestamp.iso8601(startedAt), targets: configuration.plan.targets.map(\.description),
                    connections: configuration.plan.connections, streamsPerConnection: configuration.plan.streamsPerConnection,
                    model: Self.describe(configuration.plan.model, configuration: configuration),
                    warmupSeconds: configuration.plan.warmup, churn: configuration.plan.churn.description, build: build ?? version,
                    inputs: inputs)
        meta.tlsLoosened = configuration.tlsLoosened.isEmpty ? nil : configuration.tlsLoosened
        meta.grpc = configuration.plan.grpc.map(GRPCMeta.init)
        meta.requestTimeoutSeconds = configuration.plan.requestTimeout
        // Watched files that never changed leave the result as it was; the Workload API's runs always say.
        // The run's own rotations (from its start to its end), else the source's so far.
        if let rotations = result.identityRotations ?? configuration.tlsSource?.rotations {
            let own = IdentityRotations(rotations, result: result)
            if own.source != "files" || own.rotations + own.rejected > 0 { meta.identityRotations = own }
        }
        summary = Summary(
            requests: result.totalRequests, succeeded: result.succeeded, failed: result.failed, responses: result.responses,
            rps: (result.requestsPerSecond * 10).rounded() / 10, elapsedSeconds: (result.elapsedSeconds * 1000).rounded() / 1000,
            latencyMs: LatencySummary(result.latency),
            latencyUncorrectedMs: LatencySummary(result.serviceLatency),
            sendDelayMs: configuration.plan.model.isOpen ? LatencySummary(result.sendDelay) : nil,
            late: Dictionary(uniqueKeysWithValues: result.late.map { ($0.key.rawValue, $0.value) }),
            warmupRequests: result.warmupRequests,
            statuses: Dictionary(uniqueKeysWithValues: result.statuses.map { (ResponseCode.text($0.key), $0.value) }),
            errors: Dictionary(uniqueKeysWithValues: result.errors.map { ($0.key.rawValue, $0.value) }),
            errorExplanations: Dictionary(uniqueKeysWithValues: result.errorExplanations.map { ($0.key.rawValue, $0.value) }),
            aborted: result.aborted,
            cpuSeconds: (result.cpuSeconds * 1000).rounded() / 1000,
            cpuMicrosecondsPerRequest: result.requestsSent > 0 ? (result.cpuSeconds / Double(result.requestsSent) * 1e7).rounded() / 10 : 0,
            loopLagMs: LatencySummary(result.loopLag),
            coalescedRequests: configuration.plan.effectiveCoalesceWindow > 0 ? result.coalescedRequests : nil,
            warnings: Self.warnings(result, configuration: configuration),
            guardFired: result.guardFired.map { GuardFired(action: $0.action.rawValue, guardDescription: $0.guardDescription, second: $0.second, observed: $0.observed) },
            endedEarly: result.endedEarly,
            unreachableSeconds: result.unreachableSeconds >= 0.05 ? (result.unreachableSeconds * 100).rounded() / 100 : nil)
        if let warning = Self.expiredSVIDWarning(configuration: configuration, endedAt: startedAt.addingTimeInterval(result.elapsedSeconds)) {
            summary.warnings.append(warning)
        }
        failures = Failure.all(result)
        let total = max(1, result.identities.values.reduce(0) { $0 + $1.requests })
        workloads = Self.sortedIdentities(result).map { identity, stats in
            Workload(identity: identity.identity, workload: identity.workload, version: identity.version, cluster: identity.cluster,
                     requests: stats.requests, share: (Double(stats.requests) / Double(total) * 10000).rounded() / 10000,
                     succeeded: stats.succeeded, errors: stats.failed,
                     statuses: Dictionary(uniqueKeysWithValues: stats.statuses.map { (ResponseCode.text($0.key), $0.value) }),
                     errorKinds: Dictionary(uniqueKeysWithValues: stats.errors.map { ($0.key.rawValue, $0.value) }),
                     latencyMs: LatencySummary(stats.latency))
        }
        connections = Connections(
            attempts: result.connectAttempts, established: result.connectionsEstablished,
            failures: Dictionary(uniqueKeysWithValues: result.connectionFailures.map { ($0.key.rawValue, $0.value) }),
            tlsHandshakes: result.tlsHandshakes, tlsResumed: result.tlsResumed,
            handshakesPerSecond: result.elapsedSeconds > 0 ? (Double(result.tlsHandshakes) / result.elapsedSeconds * 10).rounded() / 10 : 0,
            handshakeMs: LatencySummary(result.handshakeLatency), protocols: result.negotiatedProtocols,
            tlsVersions: result.tlsVersions, peerIdentities: result.peerIdentities,
            callersSeenByServer: result.callersSeen)
        steps = configuration.plan.flow.map { step in
            let stats = result.steps[step.name] ?? StepStats()
            return Step(name: step.name, requests: stats.requests, succeeded: stats.succeeded, failed: stats.failed,
                        extractionFailures: stats.extractionFailures, latencyMs: LatencySummary(stats.latency),
                        histogram: HistogramCodec.encode(stats.latency))
        }
        iterationsCompleted = configuration.plan.flow.isEmpty ? nil : result.iterationsCompleted
        series = result.metrics.sorted.map { Series(labels: $0.labels, stats: $0.stats) }
        histograms = Histograms(result, open: configuration.plan.model.isOpen)
        let rows = Self.indices(workloads)
        timeline = result.timeline.map { Second($0, workloads: rows) }
        thresholds = evaluate(configuration.plan.thresholds)
    }

    /// "open: 500 req/s, uniform arrivals" and the like.
    package static func describe(_ model: LoadModel, configuration: LoadConfiguration) -> String {
        func profile(_ p: LoadProfile, unit: String) -> String {
            if p.stages.isEmpty { return "\(format(p.start)) \(unit)" }
            let steps = p.stages.map { "\(format($0.duration))s\($0.ramp ? "->" : "=")\(format($0.target))" }.joined(separator: ", ")
            return "stages from \(format(p.start)) \(unit): \(steps)"
        }
        switch model {
        case .open(let rate, let arrivals):
            return "open: \(profile(rate, unit: "req/s")), \(arrivals.rawValue) arrivals"
        case .closed(let concurrency, let think):
            // HTTP/1.1 carries one request at a time whatever -m says.
            let perConnection = configuration.plan.httpVersion == .http1 ? "1 request at a time" : counted(configuration.plan.streamsPerConnection, "stream")
            var text = "closed: \(counted(configuration.plan.connections, "connection")) x \(perConnection)"
            if let concurrency { text += ", concurrency \(profile(concurrency, unit: "in flight"))" }
            if think > 0 { text += ", think \(format(think * 1000)) ms" }
            return text
        }
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(format: "%.3g", value)
    }

    /// The client SVID in use at the end expired during the run (no rotation replaced it): servers that resume TLS
    /// sessions keep accepting it, so requests may not fail, but a new full handshake would be refused.
    static func expiredSVIDWarning(configuration: LoadConfiguration, endedAt: Date) -> String? {
        guard let context = configuration.tlsSource?.current ?? configuration.tls, let notAfter = context.localNotAfter,
              notAfter < endedAt else { return nil }
        let id = context.localIdentity.map { " (\($0))" } ?? ""
        return "the client SVID\(id) expired at \(UTCTimestamp.iso8601(notAfter)), before the run ended, and no rotation replaced it: "
            + "servers that resume TLS sessions kept accepting it; a new connection's full handshake would be refused"
    }

    /// Says plainly when the generator itself may have distorted the numbers.
    static func warnings(_ result: LoadResult, configuration: LoadConfiguration) -> [String] {
        var out: [String] = []
        // Connections go to the targets round-robin: with fewer connections than targets, the last ones get none.
        let plan = configuration.plan
        if plan.connections < plan.targets.count {
            let skipped = plan.targets[plan.connections...].map(\.description).joined(separator: " ")
            out.append("\(counted(plan.targets.count, "target")) but \(counted(plan.connections, "connection")): each connection goes to one "
                       + "target, round-robin, so \(skipped) got none (give -c \(plan.targets.count) or more)")
        }
        let lagP99 = Double(result.loopLag.value(atPercentile: 99)) / 1000
        if result.loopLag.totalCount > 0 && lagP99 > 10 {
            out.append(String(format: "the generator's event loops fell behind (timer lag p99 %.1f ms): latency includes the generator's own delay", lagP99))
        }
        let late = result.late.values.reduce(0, +)
        if configuration.plan.model.isOpen, result.requestsSent > 0 {
            let share = Double(late) / Double(result.requestsSent)
            if share > 0.01 {
                let reasons = result.late.sorted { $0.value > $1.value }.map { "\($0.key.rawValue) \($0.value)" }.joined(separator: ", ")
                var causes: [String] = []
                if result.late[.streamsBusy, default: 0] > 0 {
                    causes.append("all \(configuration.plan.connections) x \(configuration.plan.streamsPerConnection) streams were busy: the rate was more than they could carry")
                }
                if result.late[.noConnection, default: 0] > 0 { causes.append("no connection was ready") }
                if result.late[.generatorLag, default: 0] > 0 { causes.append("the generator's timers fired late") }
                out.append(String(format: "%.1f%% of requests left more than %.0f ms after their intended time (%@): %@; latency from the intended time includes that wait",
                                  share * 100, configuration.lateThreshold * 1000, reasons, causes.joined(separator: "; ")))
            }
        }
        // The target went away during the run (connections up, then refused or dropped): the run kept its schedule,
        // but for part of it nothing reached the target.
        let failedAttempts = result.connectionFailures.filter { $0.key.isTransientConnectionFailure }
        if result.connectionsEstablished > 0, result.responses > 0, !failedAttempts.isEmpty, result.endedEarly == nil {
            let kinds = failedAttempts.sorted { $0.value > $1.value }.map { "\($0.key.rawValue) \($0.value)" }.joined(separator: ", ")
            let total = failedAttempts.values.reduce(0, +)
            out.append("the target could not be reached for part of the run: \(total) connection attempt\(total == 1 ? "" : "s") failed (\(kinds)) "
                       + "after \(result.connectionsEstablished) succeeded; requests meanwhile failed or waited (see errors and late sends)")
        }
        let lastSecond = Int((configuration.plan.warmup + result.elapsedSeconds).rounded(.down)) - 1
        if let silence = Self.longestSilence(result.timeline, lastSecond: lastSecond) {
            out.append("the target answered nothing for \(silence.seconds) s (seconds \(silence.first)-\(silence.first + silence.seconds - 1) of the run) "
                       + "after answering about \(silence.rate) a second: the requests of those seconds waited or failed, or were never sent "
                       + "for want of a connection (see the maximum latency, the errors and the timeline)")
        }
        let cores = Double(LoadGenerator.usableCores)
        if result.elapsedSeconds > 0.5, result.cpuSeconds / result.elapsedSeconds > 0.9 * cores {
            out.append(String(format: "the generator used %.0f%% of the %d cores it may run on: it may be the bottleneck, not the target", result.cpuSeconds / result.elapsedSeconds / cores * 100, Int(cores)))
        }
        return out
    }

    /// The longest run of 2 or more whole seconds with no response, after the first second that had one and up to
    /// `lastSecond` (the run's last whole second), in a run that answered at least 10 a second otherwise: a target that
    /// stopped answering (an outage a closed model waits out, or backs off from, with few failures to show for it).
    /// Nil when there is none.
    static func longestSilence(_ timeline: [TimelinePoint], lastSecond: Int? = nil) -> (first: Int, seconds: Int, rate: Int)? {
        var done = timeline.map(\.responses)
        if let lastSecond, lastSecond >= done.count { done += repeatElement(0, count: lastSecond + 1 - done.count) }
        guard let start = done.firstIndex(where: { $0 > 0 }), let answered = done.lastIndex(where: { $0 > 0 }) else { return nil }
        let end = lastSecond.map { max(answered, min($0, done.count - 1)) } ?? answered
        guard end > start else { return nil }
        var best: (first: Int, seconds: Int)?
        var i = start
        while i <= end {
            guard done[i] == 0 else { i += 1; continue }
            var j = i
            while j <= end && done[j] == 0 { j += 1 }
            if j - i >= 2, j - i > best?.seconds ?? 0 { best = (i, j - i) }
            i = j
        }
        guard let best else { return nil }
        let busy = done[start...answered].filter { $0 > 0 }
        let rate = busy.reduce(0, +) / max(1, busy.count)
        guard rate >= 10 else { return nil }
        return (best.first, best.seconds, rate)
    }

    /// Each workload row's index, by its identity.
    static func indices(_ workloads: [Workload]) -> [WorkloadIdentity: Int] {
        Dictionary(workloads.enumerated().map { ($1.workloadIdentity, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// Identities by request count, largest first, then by label.
    static func sortedIdentities(_ result: LoadResult) -> [(WorkloadIdentity, IdentityStats)] {
        result.identities.sorted { a, b in
            a.value.requests != b.value.requests ? a.value.requests > b.value.requests : a.key.label < b.key.label
        }.map { ($0.key, $0.value) }
    }

    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var written = self
        written.writtenOutcome = outcome()
        return try encoder.encode(written)
    }
}
