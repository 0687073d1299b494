import MeshprobeIdentity
import MeshprobeSpec
import Testing

@Suite struct GRPCCallTests {
    @Test func grpcSchemesAreH2cAndTLS() throws {
        let tls = try LoadTarget(parsing: "grpcs://ratings.bookinfo:9080/bookinfo.Ratings/Get")
        #expect(tls.scheme == .https && tls.grpc && tls.port == 9080 && tls.path == "/bookinfo.Ratings/Get")
        #expect(tls.description == "grpcs://ratings.bookinfo:9080/bookinfo.Ratings/Get")
        let plain = try LoadTarget(parsing: "GRPC://127.0.0.1:50051/pkg.Svc/M")
        #expect(plain.scheme == .http && plain.grpc && plain.authority == "127.0.0.1:50051")
        #expect(try !LoadTarget(parsing: "https://h/").grpc)
    }

    @Test func methodNamesFollowGRPCsPath() throws {
        #expect(try GRPCCall.parseMethod("/grpc.health.v1.Health/Check") == "grpc.health.v1.Health/Check")
        #expect(try GRPCCall.parseMethod("Svc/Method") == "Svc/Method")
        for bad in ["/", "pkg.Svc", "pkg.Svc/", "/Method", "a/b/c", "pkg.Svc/M.x", ".pkg/M", "pkg svc/M", "pkg.Svc/M?x=1"] {
            #expect(throws: InputValueError("'\(bad)': \(GRPCCall.methodRule)")) { try GRPCCall.parseMethod(bad) }
        }
    }

    @Test func aGRPCPlanIsPostOverHTTP2ToOneMethod() throws {
        var plan = LoadPlan(targets: [try LoadTarget(parsing: "grpc://127.0.0.1:1/p.S/M")])
        plan.requests = 1
        #expect(throws: LoadPlanError(field: "URL", value: "grpc://127.0.0.1:1/p.S/M", reason: "a gRPC target needs the call to make (its method and message)")) {
            try plan.validate()
        }
        plan.grpc = GRPCCall(method: "p.S/M")
        #expect(throws: LoadPlanError(field: "--method", value: "GET", reason: "a gRPC call is a POST (leave the method out)", setting: .method)) {
            try plan.validate()
        }
        plan.method = "POST"
        try plan.validate()
        plan.body = [1]
        #expect(throws: LoadPlanError(field: "body", value: "", reason: "a gRPC run sends its request message, not an HTTP body")) { try plan.validate() }
        plan.body = nil
        plan.headers = [HTTP2HeaderPair("grpc-timeout", "1S")]
        #expect(throws: LoadPlanError(field: "--header grpc-timeout", value: "1S", reason: "is gRPC's own header, which the call sets (use --timeout for grpc-timeout)",
                                      setting: .header("grpc-timeout"))) { try plan.validate() }
        plan.headers = [HTTP2HeaderPair("x-tenant", "a")]
        try plan.validate()
    }
}
