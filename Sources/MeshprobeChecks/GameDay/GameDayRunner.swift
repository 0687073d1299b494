import Foundation
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobePolicy
import MeshprobeSpec
import MeshprobeStatistics
import MeshprobeTLS
import NIOConcurrencyHelpers
import NIOCore

/// Why a game day stopped early, set from any thread (a signal handler, the abort-file watcher, the time cap).
public final class AbortSwitch: Sendable {
    private let reason = NIOLockedValueBox<String?>(nil)

    public init() {}

    /// Aborts with `why`; the first reason stays.
    public func abort(_ why: String) { reason.withLockedValue { $0 = $0 ?? why } }

    public var abortReason: String? { reason.withLockedValue { $0 } }
}

/// Runs a game day's steps in order, each in a task of its own that an abort cancels; every fault any step set is
/// in one ledger and cleared when its step ends, and whatever is left is cleared before `run` returns, whatever
/// happened.
public struct GameDayRunner: Sendable {
    public struct StepOutcome: Sendable {
        public enum Verdicts: Sendable {
            case load(LoadResult, slo: [SLOCheck])
            case circuitBreaker(CircuitBreakerCheck.Outcome)
            case outlierDetection(OutlierDetectionCheck.Outcome)
            case retries(RetryCheck.Outcome)
            case access(AccessCheck.Outcome)
        }

        public var name: String
        /// nil when the step did not finish (aborted, or it could not run).
        public var verdicts: Verdicts?
        public var problem: String?
        public var seconds: Double
        /// Faults the step set, as `ID on URL: summary`.
        public var faults: [String] = []
        /// Why the game day cannot go on after this step (its load could not reach the target at all).
        public var endsGameDay: String?
        /// Why the step failed whatever its objectives say: every connection refused for what the server presented
        /// (as `verify` fails a split for it). The step's verdict then, not a problem.
        public var failure: String?
    }

    public struct Outcome: Sendable {
        public var steps: [StepOutcome]
        /// Steps never started because the game day aborted or a step could not run.
        public var skipped: [String]
        public var abortReason: String?
        /// Faults that could not be cleared (each expires on its own).
        public var faultsLeft: [String]
    }

    public var steps: [GameDayStep]
    public var abortFile: String?
    public var recognizer: DestinationRecognizer
    /// The load's configuration (target, TLS, load settings) from the file.
    public var configuration: LoadConfiguration
    public var controlTLS: TLSContextSource?
    /// The TLS context of each access step's caller with an SVID and of `anonymous`.
    public var accessCallers: [AccessCaller: TLSContext] = [:]
    public var maxDuration: Double
    /// The label of every fault the run sets: the faults of a POST whose answer never came are found by it.
    public var runLabel = FaultLedger.newLabel(prefix: "gameday")
    /// Set by a signal: every control request after it ends by then.
    public var stopDeadline = StopDeadline()
    /// Told when each step starts (index, step) and, for load steps, given the generator for a live view.
    public var onStepStart: @Sendable (Int, String) -> Void = { _, _ in }
    public var onLoad: @Sendable (LoadGenerator, LoadConfiguration) -> Task<Void, Never>? = { _, _ in nil }

    public init(gameday: GameDay, configuration: LoadConfiguration, controlTLS: TLSContextSource?, maxDuration: Double) {
        steps = gameday.steps
        abortFile = gameday.abortFile
        recognizer = gameday.recognizer
        self.configuration = configuration
        self.controlTLS = controlTLS
        self.maxDuration = maxDuration
    }

    /// The control APIs the steps will set faults through, in the order the steps name them.
    public var controlTargets: [String] {
        var out: [String] = []
        for step in steps {
            switch step.kind {
            case .load: out += step.faults.map(\.target)
            case .outlierDetection(let e): out += e.faultTargets
            case .circuitBreaker, .retries, .access: break
            }
        }
        return out.reduce(into: []) { if !$0.contains($1) { $0.append($1) } }
    }

    /// Asks every control API the steps need for this run's faults (none yet), so that an unreachable or refusing
    /// workload stops the game day before its first step sends anything; nil when all answered, else why not.
    public func preflight(group: any EventLoopGroup) async -> String? {
        var problems: [String] = []
        for url in controlTargets {
            do {
                let client = try FaultClient(url: url, tlsSource: controlTLS).bounded(by: stopDeadline)
                _ = try await client.list(label: runLabel, group: group)
            } catch {
                problems.append("\(error)")
            }
        }
        guard !problems.isEmpty else { return nil }
        return "before the first step, \(counted(problems.count, "workload's control API", plural: "workloads' control APIs")) "
            + "did not answer, so no step was run and no fault set: " + problems.joined(separator: "; ")
    }

    public func run(abort: AbortSwitch, group: any EventLoopGroup) async -> Outcome {
        let ledger = FaultLedger(label: runLabel, deadline: stopDeadline)
        if let why = await preflight(group: group) {
            abort.abort(why)
            var machine = GameDayStateMachine(steps: steps.map(\.name))
            _ = machine.nextAction(aborted: true)  // every step skipped
            return machine.outcome(abortReason: why, faultsLeft: [])
        }
        let started = ContinuousClock.now
        var machine = GameDayStateMachine(steps: steps.map(\.name))
        while case .start(let index) = machine.nextAction(aborted: abort.abortReason != nil) {
            let step = steps[index]
            onStepStart(index, step.name)
            let stepStart = ContinuousClock.now
            let task = Task { await self.runStep(step, ledger: ledger, group: group) }
            // Watch for an abort, the abort file and the time cap while the step runs.
            let watcher = Task {
                while !Task.isCancelled {
                    let why = GameDayStateMachine.watch(abortFile: abortFile,
                                                        abortFileExists: abortFile.map { FileManager.default.fileExists(atPath: $0) } ?? false,
                                                        elapsed: OutlierDetectionCheck.seconds(ContinuousClock.now - started),
                                                        maxDuration: maxDuration)
                    if let why { abort.abort(why) }
                    if abort.abortReason != nil {
                        task.cancel()
                        return
                    }
                    try? await Task.sleep(for: .milliseconds(100))
                }
            }
            let outcome = await task.value
            watcher.cancel()
            // Faults the step set and did not clear itself (or whose answer never came): cleared now, before the next
            // step, once the step's requests have ended.
            let notCleared = await ledger.clearAll(group: group)
            if let why = machine.stepEnded(outcome, notCleared: notCleared, seconds: OutlierDetectionCheck.seconds(ContinuousClock.now - stepStart),
                                           abortReason: abort.abortReason, cancelled: task.isCancelled) {
                abort.abort(why)
            }
        }
        let left = await ledger.clearAll(group: group)
        return machine.outcome(abortReason: abort.abortReason, faultsLeft: left)
    }

    func runStep(_ step: GameDayStep, ledger: FaultLedger, group: any EventLoopGroup) async -> StepOutcome {
        var outcome = StepOutcome(name: step.name, seconds: 0)
        do {
            switch step.kind {
            case .load(let rate, let duration):
                var set: [(FaultClient, String)] = []
                for f in step.faults {
                    let client = try FaultClient(url: f.target, tlsSource: controlTLS)
                    let fault = try await ledger.set(f.fault, on: client, group: group)
                    set.append((client, fault.id))
                    outcome.faults.append("\(fault.id) on \(client.url): \(fault.summary)")
                }
                var c = configuration
                c.plan.model = .open(rate: .constant(rate), arrivals: .uniform)
                c.plan.duration = duration
                c.plan.requests = nil
                c.plan.warmup = 0
                // The objectives take the connection as the unit, as verify's do: behind a proxy that routes whole
                // connections (L4), a connection's requests are one sample, and the bounds' error rates hold for any
                // routing only so. The load runs its course whatever they say.
                let objectives = try StepObjectives(step)
                c.connectionObserver = objectives
                let generator = LoadGenerator(configuration: c, group: group)
                let view = onLoad(generator, c)
                let result = try await generator.run()
                view?.cancel()
                for (client, id) in set { try? await ledger.clear(id, on: client, group: group) }
                if Task.isCancelled { return outcome }
                var slo = objectives.checks()
                // A server refused for what it presented fails the step, as it fails verify's split; a server refusing
                // the prober's certificate leaves it undecided.
                let wrongServer = result.responses == 0 ? result.serverIdentityRefusal : nil
                let refusedClient = result.clientIdentityRefusal
                outcome.failure = wrongServer.map { "\($0): the traffic did not reach the workloads the identity section expects" }
                if result.connectionsEstablished == 0 || wrongServer != nil || refusedClient != nil {
                    // No request reached the target: the objectives have no sample, whatever the counts of errors say.
                    for i in slo.indices {
                        slo[i].decided = wrongServer != nil
                        slo[i].passed = false
                        slo[i].reason = wrongServer.map { "\($0): the objective was not measured" }
                            ?? refusedClient.map { "undecided: \($0)" }
                            ?? "undecided: no connection to the target was made, so no request reached it: nothing to judge"
                    }
                }
                outcome.verdicts = .load(result, slo: slo)
                // Every connection given up (a refusal retrying cannot change): the step did not run its course, and
                // the steps after it would set faults on a mesh this prober cannot reach.
                if let why = result.endedEarly {
                    if outcome.failure == nil { outcome.problem = refusedClient ?? "the load ended before its planned end: \(why)" }
                    outcome.endsGameDay = "step '\(step.name)' could not reach the target: \(why)"
                }
            case .circuitBreaker(let e):
                let result = try await CircuitBreakerCheck.run(e, configuration: configuration, group: group)
                if Task.isCancelled { return outcome }
                outcome.verdicts = .circuitBreaker(result)
            case .outlierDetection(let e):
                let result = try await OutlierDetectionCheck.run(e, configuration: configuration, recognizer: recognizer,
                                                                 controlTLS: controlTLS, ledger: ledger, group: group)
                if Task.isCancelled { return outcome }
                outcome.verdicts = .outlierDetection(result)
            case .retries(let e):
                let result = try await RetryCheck.run(e, configuration: configuration, group: group)
                if Task.isCancelled { return outcome }
                outcome.verdicts = .retries(result)
            case .access(let e):
                let result = try await AccessCheck.run(e, configuration: configuration, callers: accessCallers, group: group)
                if Task.isCancelled { return outcome }
                outcome.verdicts = .access(result)
            }
        } catch {
            outcome.problem = "\(error)"
        }
        return outcome
    }
}

/// A load step's objectives, judged by connection (`SLOTracker` with the connection unit) as the step's load runs;
/// never ends the load, which keeps its rate and duration.
final class StepObjectives: ConnectionObserver {
    private let tracker: SLOTracker
    private let test: PolicyVerification.SharedTest

    init(_ step: GameDayStep) throws {
        tracker = try SLOTracker(minimumSuccessRate: step.minimumSuccessRate, latencyCeilings: step.latencyCeilings,
                                 statistics: SplitTestConfiguration(), unit: .connection, countsAfterVerdict: true)
        test = try PolicyVerification.SharedTest(expectation: nil, routing: .auto, slo: tracker)
    }

    func opened() -> Int { test.opened() }

    func response(_ identity: WorkloadIdentity, status: Int, latencyMicros: UInt64, connection: Int) -> Bool {
        _ = test.response(identity, status: status, latencyMicros: latencyMicros, connection: connection)
        return false
    }

    func failed(connection: Int) { test.failed(connection: connection) }

    func ended(connection: Int) -> Bool {
        _ = test.ended(connection: connection)
        return false
    }

    /// The verdicts, once the load has ended (the connections it cut count as far as they went).
    func checks() -> [SLOCheck] {
        test.finishRun()
        return tracker.checks()
    }
}

