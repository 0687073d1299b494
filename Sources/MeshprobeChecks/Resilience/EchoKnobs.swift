import MeshprobeGRPC
import MeshprobeIdentity
import MeshprobeSpec

/// The echo's per-request knobs a procedure sets on its load: the query string of an HTTP request's path; for a gRPC
/// run, the same knobs as fields of the echo's `CallRequest`, merged into the call's message. Only the echo's
/// `meshprobe.echo.v1.Echo/Call` reads them: a gRPC run of another method cannot be held or faulted per call.
public enum EchoKnobs {
    /// Every request held `seconds` at the echo before it answers (`delay=`), so that requests pile up in flight.
    static func hold(_ seconds: Double, in plan: inout LoadPlan, check: String) throws(LoadPlanError) {
        try set(delay: seconds, in: &plan, check: check)
    }

    /// Every request answered with `status` (a `ResponseCode`: an HTTP status for HTTP requests, `status=N:100`; a gRPC
    /// status for gRPC calls, the `grpc_status` field, answered trailers-only as Envoy's retry and outlier rules read
    /// it) and/or held `delay` seconds first.
    static func set(status: Int? = nil, delay: Double? = nil, in plan: inout LoadPlan, check: String) throws(LoadPlanError) {
        if var call = plan.grpc {
            guard call.method == EchoCallKnobs.method else {
                throw LoadPlanError(field: check, value: call.method,
                                    reason: "\(knobsWord(status: status, delay: delay)) with the echo's CallRequest knobs, which only \(EchoCallKnobs.method) reads: call that method of the echo (it serves gRPC)")
            }
            // An HTTP status asked of a gRPC call is the status a gRPC client reads from it (503: UNAVAILABLE).
            let grpcStatus = status.map { ResponseCode.grpcStatus($0) ?? GRPCStatusCode(httpStatus: $0) }
            call.message += EchoCallKnobs(delaySeconds: delay, grpcStatus: grpcStatus).serialized()
            plan.grpc = call
            return
        }
        var query: [String] = []
        if let status { query.append("status=\(ResponseCode.httpEquivalent(status)):100") }
        if let delay { query.append("delay=\(Int((delay * 1000).rounded()))ms") }
        guard !query.isEmpty else { return }
        let text = query.joined(separator: "&")
        for i in plan.targets.indices {
            plan.targets[i].path += plan.targets[i].path.contains("?") ? "&\(text)" : "?\(text)"
        }
    }

    private static func knobsWord(status: Int?, delay: Double?) -> String {
        switch (status, delay) {
        case (nil, _?): "holds each call"
        case (_?, nil): "fails each call"
        default: "fails and holds each call"
        }
    }
}
