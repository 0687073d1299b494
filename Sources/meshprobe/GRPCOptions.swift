import ArgumentParser
import MeshprobeGRPC
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeScenario
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

    @Option(help: ArgumentHelp("gRPC: a descriptor set (protoc --descriptor_set_out=FILE --include_imports, or buf build -o FILE.binpb): JSON --data is encoded to the method's request type with it, and the method is checked to exist and be unary. Without one, JSON --data is encoded with the server's reflection service (grpc.reflection.v1, or v1alpha), asked once before the run.",
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

    /// What the flags give, for `GRPCCallInput` (`--data` is the load's).
    func input(data: String?) -> GRPCCallInput {
        var input = GRPCCallInput()
        input.everyTarget = grpc
        input.health = grpcHealth
        input.data = data
        input.protoset = protoset
        input.gzip = compression == .gzip
        return input
    }

    /// Turns the plan's requests into gRPC calls when the run makes them (`GRPCCallInput.apply`); errors name the flag.
    func apply(to plan: inout LoadPlan, data: String?, method: String?) throws {
        let input = input(data: data)
        if input.isOn(for: plan.targets), let method, method != "POST" {
            throw CLIError.badInput("--method \(method): a gRPC call is a POST; leave --method out")
        }
        do { try input.apply(to: &plan) } catch {
            let flag = switch error.field {
            case .target: "URL"
            case .data: "--data"
            case .protoset: "--protoset"
            case .health: "--grpc-health"
            case .compression: "--grpc-compression"
            case .method: "--method"
            case .body: "--data"
            }
            throw CLIError.badInput(error.value.isEmpty ? "\(flag): \(error.reason)" : "\(flag) '\(error.value)': \(error.reason)")
        }
    }
}

/// Encodes a gRPC run's JSON request with the server's reflection service when no descriptor set was given
/// (`LoadConfiguration.resolveGRPCReflection`), once, before the run; a failure is bad input (exit 2) naming `field`.
func resolveGRPCReflection(_ configuration: inout LoadConfiguration, field: String, protoset: String = "--protoset FILE") async throws {
    do { try await configuration.resolveGRPCReflection(protoset: protoset) } catch {
        throw CLIError.badInput("\(field): \(error.reason)")
    }
}
