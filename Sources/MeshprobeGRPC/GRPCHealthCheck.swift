/// The standard health service (grpc/grpc doc/health-checking.md, `grpc.health.v1`).
public enum GRPCHealthCheck {
    /// `HealthCheckRequest { string service = 1; }` in protobuf's binary encoding (empty for the server as a whole).
    public static func request(service: String) -> [UInt8] {
        guard !service.isEmpty else { return [] }
        var out: [UInt8] = [0x0A]
        var length = UInt64(service.utf8.count)
        while length >= 0x80 {
            out.append(UInt8(length & 0x7F) | 0x80)
            length >>= 7
        }
        out.append(UInt8(length))
        return out + Array(service.utf8)
    }
}
