import Foundation
import MeshprobeEchoAPI
import MeshprobeScenario
import MeshprobeSpec
import MeshprobeYAML

/// A game-day file: a scenario (target, identity, load settings) plus `gameday`, the steps to run in order. Each
/// step is a load at a fixed rate for a while, with faults set on workloads for its length and objectives to hold,
/// or one of the resilience procedures (circuit breaker, outlier detection).
public struct GameDay {
    public static let version = "meshprobe.gameday/v1"

    public var name: String
    public var file: String
    public var scenario: Scenario
    public var steps: [GameDayStep]
    /// The run aborts as soon as this file exists (an operator's `touch`).
    public var abortFile: String?
    public var recognizer: DestinationRecognizer = .version
    /// The SVIDs access steps call as besides the identity's own (`identities:`).
    public var identities: [CallerIdentity] = []

    /// The access steps' checks, in order.
    public var accessChecks: [AccessExpectation] {
        steps.compactMap { if case .access(let e) = $0.kind { e } else { nil } }
    }

    /// A load step's connections carry this many requests each unless the file's `load.churn` says otherwise.
    public static let defaultChurn = ConnectionChurn.every(10)

    /// Reads a game-day file; errors name the file, line and field, every section's and step's in one error
    /// (`YAMLInputError.others`).
    /// - Parameter overrides: the command line's changes to the file (`--target`, `--svid-dir`, `--set`).
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment,
                            overrides: FileOverrides = FileOverrides()) throws(YAMLInputError) -> GameDay {
        // Each step sets its own end (a load's duration, a procedure's request counts): the placeholder only satisfies
        // the scenario's rule that a load ends on its own. A load step's objectives take the connection as the unit:
        // a fresh connection every 10 requests unless the file says otherwise, so that a step has samples to decide on.
        var errors = YAMLErrors()
        let scenario = try Scenario.load(path: path, environment: environment, extraKeys: ["gameday", "identities"], defaultRequests: 1,
                                         defaultChurn: GameDay.defaultChurn, overrides: overrides,
                                         thresholdsRefusal: "thresholds gate a load (meshprobe run); a game day's load steps are judged by their expect (successRate, p95: 250ms, ...)",
                                         errors: &errors)
        let gameday = read(scenario, path: path, errors: &errors)
        try scenario.report(errors)
        return gameday
    }

    /// Reads the `gameday` section of a scenario read with it left to the caller, each key and each step on its own:
    /// an error is recorded in `errors` (the game day is then incomplete).
    static func read(_ scenario: Scenario, path: String, errors: inout YAMLErrors) -> GameDay {
        var gameday = GameDay(name: scenario.name ?? URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent,
                              file: path, scenario: scenario, steps: [])
        guard let read = scenario.section("gameday", allowed: ["version", "abortFile", "recognise", "steps"],
                                          missing: "a game-day file needs a gameday section with steps", errors: &errors) else { return gameday }
        let (section, g, misspelt) = read
        errors.attempt { () throws(YAMLInputError) in
            if let v = g["version"], try v.string() != Self.version { throw v.error("this meshprobe reads '\(Self.version)'") }
        }
        errors.attempt { () throws(YAMLInputError) in
            guard let a = g["abortFile"] else { return }
            let text = try a.string()
            guard !text.isEmpty, !text.hasSuffix("/") else { throw a.error("expected the path of a file that appears to abort the game day") }
            let file = text.hasPrefix("/") ? text : URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent(text).path
            // A directory can never be touched into appearing: it would abort the game day at once.
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory), isDirectory.boolValue {
                throw a.error("'\(file)' is a directory: name a file that does not exist yet")
            }
            gameday.abortFile = file
        }
        errors.attempt { () throws(YAMLInputError) in
            guard let r = g["recognise"] else { return }
            switch try r.string() {
            case "version": gameday.recognizer = .version
            case "workload": gameday.recognizer = .workload
            case "identity": gameday.recognizer = .identity
            default: throw r.error("expected version, workload or identity")
            }
        }
        guard let list = g["steps"] else {
            if !misspelt { errors.record(section.error("gameday needs steps")) }
            return gameday
        }
        guard let items = errors.attempt({ () throws(YAMLInputError) in try list.list() }) else { return gameday }
        let identitiesRead = errors.attempt { () throws(YAMLInputError) -> Void in
            guard let v = scenario.extras["identities"] else { return }
            let base = URL(fileURLWithPath: path).deletingLastPathComponent()
            gameday.identities = try Policy.identities(v) { value throws(YAMLInputError) in
                let p = try value.string()
                return p.hasPrefix("/") ? p : base.appendingPathComponent(p).path
            }
        } != nil
        let holders = Set(gameday.identities.map(\.caller))
        var names = Set<String>()
        for (index, item) in items.enumerated() {
            errors.attempt { () throws(YAMLInputError) in
                // An access step is judged against the identities when they read: else their error is the one to fix.
                if !identitiesRead, case .mapping = item.node, item["access"] != nil { return }
                let step = try GameDayStep.parse(item, index: index, holders: holders)
                guard names.insert(step.name).inserted else { throw item.error("another step is named '\(step.name)'") }
                gameday.steps.append(step)
            }
        }
        if items.isEmpty { errors.record(list.error("steps is empty")) }
        return gameday
    }

    /// Refuses a plan that goes past the operator's caps (which the file cannot raise); the message names the step
    /// and the flag that raises the cap.
    public func check(maxRate: Double, maxDuration: Double) throws(YAMLInputError) {
        do { try checkCaps(maxRate: maxRate, maxDuration: maxDuration) } catch { throw scenario.explain(error) }
    }

    func checkCaps(maxRate: Double, maxDuration: Double) throws(YAMLInputError) {
        var errors = YAMLErrors()
        var total = 0.0
        var overDuration = false
        for step in steps {
            if let rate = step.rate, rate > maxRate {
                errors.record(step.error(at: step.rateAt, "\(YAMLValue.format(rate)) requests/s is above the cap of \(YAMLValue.format(maxRate))/s: raise it with --max-rate if you mean it"))
            }
            total += step.plannedSeconds
            // At the step that takes the plan past the cap (once).
            if total > maxDuration, !overDuration {
                overDuration = true
                errors.record(step.error(String(format: "the steps up to this one plan about %.0f s, above the cap of %.0f s: raise it with --max-duration if you mean it", total, maxDuration)))
            }
        }
        try errors.check()
    }
}

/// A fault a load step sets on one workload for the step's length (cleared when the step ends).
public struct StepFault: Sendable {
    /// The workload's control-API base URL.
    public var target: String
    public var fault: FaultControlJSON.NewFault
}

/// One step of a game day.
public struct GameDayStep: Sendable {
    public enum Kind: Sendable {
        /// An open-model load at `rate` for `duration` seconds.
        case load(rate: Double, duration: Double)
        case circuitBreaker(CircuitBreakerExpectation)
        case outlierDetection(OutlierExpectation)
        case retries(RetryExpectation)
        /// Who may call whom, each cell tried as its caller (after rotating a policy, say).
        case access(AccessExpectation)
    }

    public var name: String
    public var kind: Kind
    public var faults: [StepFault] = []
    public var minimumSuccessRate: Double?
    public var latencyCeilings: [(percentile: Double, seconds: Double)] = []
    /// Where the step is written, for messages: an error about the whole step.
    public var at: YAMLInputError
    /// Where its rate is written.
    var rateAt: YAMLInputError?

    func error(at place: YAMLInputError? = nil, _ message: String) -> YAMLInputError {
        var e = place ?? at
        e.message = message
        return e
    }

    /// The requests per second the step sends, where it has a pace (load and outlier steps).
    public var rate: Double? {
        switch kind {
        case .load(let rate, _): return rate
        case .outlierDetection(let e): return e.rate
        case .circuitBreaker, .retries, .access: return nil
        }
    }

    /// About how long the step takes at most, for the duration cap.
    public var plannedSeconds: Double {
        switch kind {
        case .load(_, let duration): return duration
        case .circuitBreaker(let e): return 2 * (Double(e.requestsPerPhase) * (e.hold ?? 0.01) / Double(e.maxRequests) + 5)
        case .outlierDetection(let e): return 2 * (3 + e.ejectionWindow.latest + max(5, e.baseEjectionTime))
        case .retries(let e):
            // Three phases of `requests`, 10 at a time, each request at worst the timeouts of every try.
            let worst = e.timeout ?? (Double((e.attempts ?? 0) + 1) * (e.perTryTimeout ?? 1))
            return 3 * (Double(e.requests) / 10 * worst + 2)
        case .access(let e):
            // One request per connection, one cell after another: a handshake and an answer each, a second at most.
            return Double(e.cells.count * e.attempts) + 2
        }
    }

    /// - Parameter holders: the callers `identities` holds SVIDs for (an access step's `foreign` needs its entry).
    static func parse(_ item: YAMLValue, index: Int, holders: Set<AccessCaller> = []) throws(YAMLInputError) -> GameDayStep {
        let m = try item.mapping(allowed: ["name", "rate", "duration", "faults", "expect", "circuitBreaker", "outlierDetection", "retries", "access"])
        let name = try m["name"]?.name() ?? "step \(index + 1)"
        let kinds = ["rate", "circuitBreaker", "outlierDetection", "retries", "access"].filter { m[$0] != nil }
        guard kinds.count == 1 else {
            throw item.error(kinds.isEmpty ? "a step needs rate and duration (a load), circuitBreaker, outlierDetection, retries or access"
                                           : "a step is one of: a load (rate), circuitBreaker, outlierDetection, retries or access, not \(kinds.joined(separator: " and "))")
        }
        var step: GameDayStep
        if let r = m["rate"] {
            let rate = try r.double(minimum: 0, exclusive: true)
            if rate < LoadPlan.minimumRate {
                throw r.error("must be at least \(YAMLValue.format(LoadPlan.minimumRate)) requests per second")
            }
            guard let d = m["duration"] else { throw item.error("a load step needs a duration (e.g. 30s)") }
            let duration = try d.duration()
            step = GameDayStep(name: name, kind: .load(rate: rate, duration: duration), at: item.error(""), rateAt: r.error(""))
            if let faults = m["faults"] {
                for f in try faults.list() { step.faults.append(try parseFault(f, lasting: duration)) }
            }
            if let e = m["expect"] { (step.minimumSuccessRate, step.latencyCeilings) = try Policy.slo(e) }
        } else {
            for key in ["duration", "faults", "expect"] where m[key] != nil {
                throw m[key]!.error("\(key) belongs to a load step (with rate); the procedures set their own load and faults")
            }
            // A procedure's verdicts are named by its step, not its place in the list (a step added before it
            // would rename them in CI's history).
            func site(_ v: YAMLValue) -> String { "\(v.file):\(v.line) step '\(name)'" }
            if let a = m["access"] {
                var e = try Policy.access(a, holders: holders)
                // No manifests in a game day: every cell needs its rule.
                try e.checkDecided()
                e.source = site(a)
                step = GameDayStep(name: name, kind: .access(e), at: item.error(""))
            } else if let cb = m["circuitBreaker"] {
                var e = try Policy.circuitBreaker(cb)
                e.source = site(cb)
                step = GameDayStep(name: name, kind: .circuitBreaker(e), at: item.error(""))
            } else if let r = m["retries"] {
                var e = try RetryExpectation(policy: r)
                e.source = site(r)
                step = GameDayStep(name: name, kind: .retries(e), at: item.error(""))
            } else {
                let od = m["outlierDetection"]!
                guard var e = try Policy.outlierDetection(od).0 else {
                    throw od.error("give consecutive5xxErrors or consecutiveGatewayErrors")
                }
                e.source = site(od)
                step = GameDayStep(name: name, kind: .outlierDetection(e), at: item.error(""), rateAt: od["rate"]?.error(""))
            }
        }
        return step
    }

    /// `{target: https://reviews-v1:8443, status: 503, grpcStatus: UNAVAILABLE, statusShare: 50, delay: 200ms, delayShare: 10, resetShare: 5,
    /// path: /api}`: set for the step's length plus a minute (it is cleared when the step ends).
    static func parseFault(_ value: YAMLValue, lasting duration: Double) throws(YAMLInputError) -> StepFault {
        let m = try value.mapping(allowed: ["target", "status", "grpcStatus", "statusShare", "delay", "delayShare", "resetShare", "path"])
        guard let t = m["target"] else { throw value.error("a fault needs a target: the workload's https://HOST:PORT") }
        let target = try t.string()
        guard target.hasPrefix("https://"), (try? LoadTarget(parsing: target))?.path == "/" else {
            throw t.error("'\(target)': give the workload's control API as https://HOST:PORT (mTLS)")
        }
        var fault = FaultControlJSON.NewFault(durationSeconds: min(FaultSettings.maxDurationSeconds, (duration + 60).rounded(.up)))
        if let v = m["status"] { fault.status = try v.int(minimum: 200) }
        if let v = m["grpcStatus"] { fault.grpcStatus = try v.string() }
        if let v = m["statusShare"] { fault.statusShare = try v.double(minimum: 0, exclusive: true) }
        if let v = m["delay"] { fault.delayMs = try v.duration() * 1000 }
        if let v = m["delayShare"] { fault.delayShare = try v.double(minimum: 0, exclusive: true) }
        if let v = m["resetShare"] { fault.resetShare = try v.double(minimum: 0, exclusive: true) }
        if let v = m["path"] { fault.path = try v.string() }
        // The echo checks again (against its own limits); here what holds for every echo, with the field's line.
        var limits = FaultLimits()
        limits.maxDelayNanoseconds = .max
        do {
            _ = try FaultSettings(fault, limits: limits)
        } catch {
            let keys = ["delayMs": "delay", "durationSeconds": "duration"]
            let key = keys[error.field] ?? error.field
            throw (m[key] ?? value).error(error.reason)
        }
        return StepFault(target: target, fault: fault)
    }
}
