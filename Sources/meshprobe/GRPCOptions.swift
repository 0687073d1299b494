import ArgumentParser
import MeshprobeGRPC
import MeshprobeIdentity
import MeshprobeSpec

/// How `load` makes gRPC calls: the targets' scheme (`grpc://`, `grpcs://`) or `--grpc` says that it does, the URL path
/// names the method, `--data` gives the request message.
struct GRPCOptions: ParsableArguments {
    @Flag(help: "Make gRPC calls to http:// and https:// URLs too (as grpc:// and grpcs:// do): the URL path names the method, /package.Service/Method.")
    var grpc = false

    @Option(name: .customLong("grpc-health"), help: ArgumentHelp(
        "gRPC: call the standard health service's Check (grpc.health.v1.Health/Check) for SERVICE ('' for the server as a whole); the URLs name no method.",
        valueName: "service"))
    var grpcHealth: String?

    @Option(help: ArgumentHelp("gRPC: a descriptor set (protoc --descriptor_set_out=FILE --include_imports, or buf build -o FILE.binpb): --data is then JSON encoded to the method's request type, and the method is checked to exist and be unary.",
                               valueName: "file"), completion: .file())
    var protoset: String?

    @Option(name: .customLong("grpc-compression"), help: .defaulted("gRPC: send the request message identity (uncompressed) or gzip.", GRPCCompression.identity.rawValue),
            completion: .list(GRPCCompression.allCases.map(\.rawValue)), transform: GRPCOptions.compression)
    var compression: GRPCCompression = .identity

    static func compression(_ text: String) throws -> GRPCCompression {
        guard let value = GRPCCompression(rawValue: text) else {
            throw ValidationError("'\(text)': the compression must be identity or gzip")
        }
        return value
    }

    /// True when the run makes gRPC calls.
    func isOn(for targets: [LoadTarget]) -> Bool { grpc || grpcHealth != nil || targets.contains(where: \.grpc) }

    /// Turns the plan's requests into gRPC calls when the run makes them: marks every target, names the method (from
    /// the URLs, or the health check), reads the message (`--data @FILE`: its bytes, protobuf's binary encoding).
    func apply(to plan: inout LoadPlan, data: String?, method: String?) throws {
        guard isOn(for: plan.targets) else {
            if compression != .identity { throw CLIError.badInput("--grpc-compression is for gRPC calls (grpc:// or grpcs:// URLs, or --grpc)") }
            if let protoset { throw CLIError.badInput("--protoset '\(protoset)': a descriptor set is for gRPC calls (grpc:// or grpcs:// URLs, or --grpc)") }
            return
        }
        if let method, method != "POST" {
            throw CLIError.badInput("--method \(method): a gRPC call is a POST; leave --method out")
        }
        let callMethod: String
        var call: GRPCCall
        if let service = grpcHealth {
            if let data { throw CLIError.badInput("--data '\(data)': --grpc-health sends the health check's own request") }
            if let protoset { throw CLIError.badInput("--protoset '\(protoset)': --grpc-health sends the health check's own request") }
            if let named = plan.targets.first(where: { $0.path != "/" }) {
                throw CLIError.badInput("URL '\(named)': with --grpc-health the URL names no method (the health check is \(GRPCCall.healthCheckMethod))")
            }
            callMethod = GRPCCall.healthCheckMethod
            call = GRPCCall(method: callMethod, message: GRPCHealthCheck.request(service: service),
                            messageSource: "health check of '\(service)'")
        } else {
            guard let first = plan.targets.first, first.path != "/" else {
                throw CLIError.badInput("URL '\(plan.targets.first?.description ?? "")': name the gRPC method in the path: grpcs://HOST:PORT/package.Service/Method (or give --grpc-health SERVICE)")
            }
            do { callMethod = try GRPCCall.parseMethod(first.path) } catch {
                throw CLIError.badInput("URL '\(first)': \(error.message)")
            }
            call = GRPCCall(method: callMethod)
            var method: ProtosetMethod?
            if let protoset {
                do { method = try DescriptorSet(file: protoset).method(callMethod) } catch {
                    throw CLIError.badInput("--protoset \(error)")
                }
            }
            if let data {
                let input: GRPCRequestData
                do { input = try GRPCRequestData.read(data) } catch { throw CLIError.badInput("--data '\(data)': \(error.reason)") }
                do { call.message = try input.message(for: method) } catch { throw CLIError.badInput("--data: \(error.reason)") }
                let form = if case .json = input { "JSON" } else { "binary" }
                call.messageSource = "--data \(data.hasPrefix("@") ? data : "(inline)") (\(form)\(protoset.map { ", --protoset \($0)" } ?? ""))"
            }
        }
        call.gzip = compression == .gzip
        // --grpc and --grpc-health make every URL gRPC; written schemes are left as they are (a mix is refused).
        for i in plan.targets.indices where grpc || grpcHealth != nil {
            plan.targets[i].grpc = true
            if grpcHealth != nil { plan.targets[i].path = call.path }
        }
        plan.method = "POST"
        plan.body = nil
        plan.grpc = call
    }
}
