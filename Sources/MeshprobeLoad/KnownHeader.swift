import MeshprobeIdentity

/// The response headers the engine reads, told apart once per name (the HTTP/2 client hands each interned header
/// over with its index, `HTTP2Header.known`, so a response's stamps are read without comparing names).
enum KnownHeader: UInt8, Sendable {
    case workload, version, cluster, identity, pod, caller, inFlight, serverName, attempt, connectionRequest, retriesInFlight
    case grpcStatus, grpcMessage, grpcEncoding
    /// Any other header (the echo's other stamps, a signature's, a flow's, the identity header).
    case other

    private static let byName: [String: KnownHeader] = [
        EchoStamp.workload: .workload, EchoStamp.version: .version, EchoStamp.cluster: .cluster, EchoStamp.identity: .identity,
        EchoStamp.pod: .pod, EchoStamp.caller: .caller, EchoStamp.inFlight: .inFlight, EchoStamp.serverName: .serverName,
        EchoStamp.attempt: .attempt, EchoStamp.connectionRequest: .connectionRequest, EchoStamp.retriesInFlight: .retriesInFlight,
        "grpc-status": .grpcStatus, "grpc-message": .grpcMessage, "grpc-encoding": .grpcEncoding,
    ]

    /// The kind of a lower-case header name.
    init(name: String) { self = Self.byName[name] ?? .other }
}
