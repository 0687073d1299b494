import MeshprobeGRPC
import MeshprobePolicy
import MeshprobeSpec

/// What a gRPC run can check, decided before anything is sent, by `verify` and `gameday` alike (and by their `--check`):
/// a procedure that sets per-call faults needs the echo's own method, outlier detection needs calls the echo serves, and
/// a route's method must take the run's message (`GRPCRoutes`). A problem refuses the run (exit 2); a note is said.
public enum GRPCPreflight {
    /// The problems and notes of `policy`'s routes and procedures with the run's `call`.
    public static func check(_ policy: Policy, call: GRPCCall) -> (problems: [String], notes: [String]) {
        var problems: [String] = []
        for e in policy.circuitBreakers { if let p = problem(circuitBreaker: e, method: call.method) { problems.append("\(e.source): \(p)") } }
        for e in policy.retries { if let p = problem(retries: e, method: call.method) { problems.append("\(e.source): \(p)") } }
        for e in policy.outlierDetections { if let p = problem(outlierDetection: e, method: call.method) { problems.append("\(e.source): \(p)") } }
        let routes = GRPCRoutes.check(policy, call: call)
        return (problems + routes.problems.map { "\(policy.file): \($0)" }, routes.notes)
    }

    /// The problems of `gameday`'s procedure steps with the run's `call`, each at its step's line.
    public static func check(_ gameday: GameDay, call: GRPCCall) -> [String] {
        var problems: [String] = []
        for step in gameday.steps {
            let p: String? = switch step.kind {
            case .circuitBreaker(let e): problem(circuitBreaker: e, method: call.method)
            case .retries(let e): problem(retries: e, method: call.method)
            case .outlierDetection(let e): problem(outlierDetection: e, method: call.method)
            case .load, .access: nil
            }
            if let p {
                var error = step.at
                error.message = "step '\(step.name)': \(p)"
                problems.append(error.description)
            }
        }
        return problems
    }

    /// The methods of the echo that a control-API fault reaches (it answers any other UNIMPLEMENTED, before faults).
    static let echoServed: Set<String> = [EchoCallKnobs.method, GRPCCall.healthCheckMethod]

    static func problem(circuitBreaker e: CircuitBreakerExpectation, method: String) -> String? {
        guard e.hold != nil, method != EchoCallKnobs.method else { return nil }
        return "the circuit breaker holds each call with the echo's delay knob, which only \(EchoCallKnobs.method) reads: call that method of the echo (it serves gRPC), or set hold: 0s when the upstream is slow on its own"
    }

    static func problem(retries e: RetryExpectation, method: String) -> String? {
        guard method != EchoCallKnobs.method else { return nil }
        return "retries and timeouts fail and hold each call with the echo's CallRequest knobs (grpc_status, delay), which only \(EchoCallKnobs.method) reads: call that method of the echo (it serves gRPC)"
    }

    static func problem(outlierDetection e: OutlierExpectation, method: String) -> String? {
        guard !echoServed.contains(method) else { return nil }
        return "outlier detection makes echo workloads fail through their control API, and the echo answers \(method) UNIMPLEMENTED whatever its faults (no baseline could pass): call \(EchoCallKnobs.method) or \(GRPCCall.healthCheckMethod)"
    }
}
