import MeshprobeGRPC
import MeshprobePolicy
import MeshprobeSpec

/// The echo's per-request knobs a procedure sets on its load: the query string of an HTTP request's path; for a gRPC
/// run, the same knobs as fields of the echo's `CallRequest`, merged into the call's message. Only the echo's
/// `meshprobe.echo.v1.Echo/Call` reads them: a gRPC run of another method cannot be held or faulted per call.
public enum EchoKnobs {
    /// Every request held `seconds` at the echo before it answers (`delay=`), so that requests pile up in flight.
    static func hold(_ seconds: Double, in plan: inout LoadPlan, check: String) throws(LoadPlanError) {
        if var call = plan.grpc {
            guard call.method == EchoCallKnobs.method else {
                throw LoadPlanError(field: check, value: call.method,
                                    reason: "holds each call with the echo's delay knob, which only \(EchoCallKnobs.method) reads: call that method of the echo (it serves gRPC)")
            }
            call.message += EchoCallKnobs(delaySeconds: seconds).serialized()
            plan.grpc = call
            return
        }
        let delay = "delay=\(Int((seconds * 1000).rounded()))ms"
        for i in plan.targets.indices {
            plan.targets[i].path += plan.targets[i].path.contains("?") ? "&\(delay)" : "?\(delay)"
        }
    }

    /// Why a gRPC run cannot check what `policy` declares, or nil: the circuit breaker holds calls with the echo's
    /// delay knob (so it calls the echo's method); the other procedures set per-request faults (statuses, resets) that
    /// are not carried to gRPC calls yet, and would otherwise call a method with a query string.
    public static func grpcProblem(_ policy: Policy, method: String) -> String? {
        var notYet: [String] = []
        if !policy.retries.isEmpty { notYet.append("retries and timeouts") }
        if !policy.outlierDetections.isEmpty { notYet.append("outlier detection") }
        if !policy.connectionReuse.isEmpty { notYet.append("requests per connection") }
        if !notYet.isEmpty {
            return "\(notYet.joined(separator: ", ")) cannot be checked with gRPC calls yet (the echo's per-request faults are not carried to them); check them with an HTTP target"
        }
        if policy.circuitBreakers.contains(where: { $0.hold != nil }), method != EchoCallKnobs.method {
            return "the circuit breaker holds each call with the echo's delay knob, which only \(EchoCallKnobs.method) reads: call that method of the echo (it serves gRPC), or set hold: 0s when the upstream is slow on its own"
        }
        return nil
    }
}
