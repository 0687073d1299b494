import MeshprobeGRPC
import MeshprobePolicy
import MeshprobeSpec

/// What a gRPC run's routes will call, checked before anything is sent: each route's calls must match the route,
/// and a method other than the run's must exist, be unary and take the same request message (the run's message is
/// sent to it) when a descriptor set tells.
public enum GRPCRoutes {
    /// Problems (the run is refused) and notes (said, not refused) for the routes of `policy` with the run's `call`.
    public static func check(_ policy: Policy, call: GRPCCall) -> (problems: [String], notes: [String]) {
        var problems: [String] = []
        var notes: [String] = []
        var set: DescriptorSet?
        var runRequest: String?
        if let file = call.descriptorSet {
            set = try? DescriptorSet(file: file)
            runRequest = (try? set?.method(call.method))?.request.name
        }
        for route in policy.routes {
            // Named with where it was declared (a manifest's rule, the policy's entry) when known.
            let named = "route '\(route.name)'" + (route.source.map { " (\($0))" } ?? "")
            guard let condition = route.conditions.first(where: { $0.subject == .path }) else { continue }
            if condition.match.matches(call.path) { continue }
            guard let method = try? GRPCCall.parseMethod(condition.sent) else {
                problems.append("\(named): its path condition (\(condition.match)) does not take the run's method (\(call.method)) and names no method to call (/package.Service/Method)")
                continue
            }
            guard let set else {
                notes.append("\(named) calls \(method) with the run's message (no descriptor set tells whether that method takes it)")
                continue
            }
            do {
                let resolved = try set.method(method)
                if let runRequest, resolved.request.name != runRequest {
                    problems.append("\(named) calls \(method), whose request is a \(resolved.request.name), with the run's message, a \(runRequest)")
                }
            } catch {
                problems.append("\(named) calls \(method): \(error.reason)")
            }
        }
        return (problems, notes)
    }
}
