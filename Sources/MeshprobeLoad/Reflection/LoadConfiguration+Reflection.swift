import MeshprobeGRPC
import MeshprobeSpec

extension LoadConfiguration {
    /// Encodes a gRPC run's JSON request with the descriptors the first target's reflection service gives
    /// (`GRPCCall.awaitingReflection`), once, before the run: over the run's TLS context (its current one while the
    /// SVID rotates), metadata, connect timeout and request timeout. Nothing happens when no JSON awaits reflection.
    /// Errors say what failed (the reflection, the method, the JSON) without naming the flag; `protoset` is how the
    /// user would give a descriptor set instead (`--protoset FILE`, `grpc.protoset`).
    package mutating func resolveGRPCReflection(protoset: String = "--protoset FILE") async throws(GRPCRequestError) {
        guard var call = plan.grpc, let json = call.awaitingReflection, let target = plan.targets.first else { return }
        let service = String(call.method.split(separator: "/").first ?? "")
        let settings = GRPCReflectionClient.Settings(target: target, tls: tlsSource?.current ?? tls, headers: plan.headers,
                                                     connectTimeout: plan.connectTimeout, timeout: plan.requestTimeout)
        let bytes: [UInt8]
        do { bytes = try await GRPCReflectionClient.descriptorSet(service: service, settings: settings) } catch {
            throw GRPCRequestError("server reflection (\(target.authority)): \(error.message(protoset: protoset))")
        }
        let method: ProtosetMethod
        do { method = try DescriptorSet(bytes: bytes, file: "the server's reflection").method(call.method) } catch {
            throw GRPCRequestError("server reflection (\(target.authority)): \(error.reason)")
        }
        call.message = try GRPCRequestData.json(json).message(for: method)
        call.awaitingReflection = nil
        call.descriptors = "reflection"
        plan.grpc = call
    }
}
