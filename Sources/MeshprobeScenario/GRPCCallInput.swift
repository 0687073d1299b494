import MeshprobeGRPC
import MeshprobeIdentity
import MeshprobeSpec

/// What a user gives for a gRPC run, on the command line (`--grpc`, `--data`, `--protoset`, `--grpc-health`,
/// `--grpc-compression`) or in a file's `grpc` section, and the one place that turns it into the plan's call.
public struct GRPCCallInput: Sendable, Equatable {
    /// Which input a problem is about; each reader names it its way (`--data`, `grpc.data`).
    public enum Field: Sendable, Equatable { case target, data, protoset, health, compression, method, body }

    public struct Problem: Error, Sendable, Equatable {
        public var field: Field
        public var value: String
        public var reason: String
    }

    /// Every target is gRPC, whatever its scheme (`--grpc`, a file's `grpc` section).
    public var everyTarget = false
    /// Call the standard health check for this service ('' for the server as a whole) instead of the URL's method.
    public var health: String?
    /// As `--data` takes it: inline JSON, or `@PATH` (JSON or a binary message).
    public var data: String?
    /// A descriptor set's path.
    public var protoset: String?
    public var gzip = false

    public init() {}

    /// True when the run makes gRPC calls.
    public func isOn(for targets: [LoadTarget]) -> Bool { everyTarget || health != nil || targets.contains(where: \.grpc) }

    /// Makes the plan's requests gRPC calls when the run makes them: marks the targets, names the method (the URLs'
    /// path, or the health check), builds the message (JSON encoded with the descriptor set, or a binary message); JSON
    /// without a descriptor set is left for the server's reflection service (`GRPCCall.awaitingReflection`).
    public func apply(to plan: inout LoadPlan) throws(Problem) {
        guard isOn(for: plan.targets) else {
            if gzip { throw Problem(field: .compression, value: "gzip", reason: "is for gRPC calls (grpc:// or grpcs:// URLs)") }
            if let protoset { throw Problem(field: .protoset, value: protoset, reason: "a descriptor set is for gRPC calls (grpc:// or grpcs:// URLs)") }
            return
        }
        // What an HTTP request would carry and a call cannot: refused, not dropped.
        if plan.method != "GET", plan.method != "POST" {
            throw Problem(field: .method, value: plan.method, reason: "a gRPC call is a POST; leave the method out")
        }
        if plan.body != nil {
            throw Problem(field: .body, value: "", reason: "a gRPC call sends its request message (grpc.data), not an HTTP body")
        }
        var call: GRPCCall
        if let service = health {
            if let data { throw Problem(field: .data, value: data, reason: "the health check sends its own request") }
            if let protoset { throw Problem(field: .protoset, value: protoset, reason: "the health check sends its own request") }
            if let named = plan.targets.first(where: { $0.path != "/" }) {
                throw Problem(field: .target, value: named.description,
                              reason: "with a health check the URL names no method (the health check is \(GRPCCall.healthCheckMethod))")
            }
            call = GRPCCall(method: GRPCCall.healthCheckMethod, message: GRPCHealthCheck.request(service: service),
                            messageSource: "health check of '\(service)'")
        } else {
            guard let first = plan.targets.first, first.path != "/" else {
                throw Problem(field: .target, value: plan.targets.first?.description ?? "",
                              reason: "name the gRPC method in the path: grpcs://HOST:PORT/package.Service/Method (or call the health check)")
            }
            let name: String
            do { name = try GRPCCall.parseMethod(first.path) } catch { throw Problem(field: .target, value: first.description, reason: error.message) }
            call = GRPCCall(method: name)
            var method: ProtosetMethod?
            call.descriptorSet = protoset
            if let protoset {
                call.descriptors = "protoset"
                do { method = try DescriptorSet(file: protoset).method(name) } catch {
                    throw Problem(field: .protoset, value: protoset, reason: error.reason)
                }
            }
            if let data {
                let input: GRPCRequestData
                do { input = try GRPCRequestData.read(data) } catch { throw Problem(field: .data, value: data, reason: error.reason) }
                let form = if case .json = input { "JSON" } else { "binary" }
                var from = protoset.map { ", descriptor set \($0)" } ?? ""
                if case .json(let text) = input, method == nil {
                    // Encoded before the run, once the server's reflection service has described the method.
                    call.awaitingReflection = text
                    from = ", server reflection"
                } else {
                    do { call.message = try input.message(for: method) } catch { throw Problem(field: .data, value: "", reason: error.reason) }
                }
                call.messageSource = "\(data.hasPrefix("@") ? String(data.dropFirst()) : "inline") (\(form)\(from))"
            }
        }
        call.gzip = gzip
        for i in plan.targets.indices where everyTarget || health != nil {
            plan.targets[i].grpc = true
            if health != nil { plan.targets[i].path = call.path }
        }
        plan.method = "POST"
        plan.body = nil
        plan.grpc = call
    }
}
