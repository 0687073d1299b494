#if canImport(Glibc)
import Glibc
#endif
import MeshprobeLoad
import Testing

extension EndToEnd {
    /// What is still running on the event loops after `LoadGenerator.run()` has returned and its workers are gone.
    @Suite(.timeLimit(.minutes(1)), .tags(.timing)) struct RunLifetimeTests {
    /// A connection attempt that is still pending when the run ends completes later, on its own: its callback must
    /// find the connection's worker alive. (With an `unowned` worker reference this crashed the process with
    /// "Attempted to read an unowned reference but object ... was already deallocated"; it did in CI.)
    @Test func aConnectAttemptThatEndsAfterTheRunDoesNotReachAFreedWorker() async throws {
        // A loopback listener that never accepts, with its accept queue full: Linux drops further SYNs, so the load's
        // connects stay pending until their timeout.
        let listener = try BlackholeListener()
        defer { listener.close() }
        let result = try await runLoad(["http://127.0.0.1:\(listener.port)/"], connections: 2, streams: 1) { configuration in
            configuration.plan.requests = nil
            configuration.plan.duration = 0.3
            configuration.plan.connectTimeout = 0.8
        }
        #expect(result.succeeded == 0)
        #expect(result.connectionsEstablished == 0, "the accept queue was not full: the test did not exercise a pending connect")
        // The run is over and its workers released; the pending connects time out now and run their callbacks.
        try await Task.sleep(for: .milliseconds(1500))
        // Still here: a second run on the same event loops works.
        let again = try await runLoad(["http://127.0.0.1:\(listener.port)/"], connections: 1, streams: 1) { configuration in
            configuration.plan.requests = nil
            configuration.plan.duration = 0.2
            configuration.plan.connectTimeout = 0.1
        }
        #expect(again.succeeded == 0)
    }
    }
}

/// A TCP listener on 127.0.0.1 with a backlog of 0 that never accepts, filled by non-blocking connects of its own.
private struct BlackholeListener {
    let fd: Int32
    let fillers: [Int32]
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SetupError("socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0, listen(fd, 0) == 0 else {
            _ = Glibc.close(fd)
            throw SetupError("bind/listen: errno \(errno)")
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let port = Int(UInt16(bigEndian: address.sin_port))
        // Backlog 0 queues one connection (the queue is full when it holds more than the backlog); a few more to be
        // sure, each non-blocking so that a dropped SYN does not block the test.
        var fillers: [Int32] = []
        for _ in 0..<3 {
            let f = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            guard f >= 0 else { continue }
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(f, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            fillers.append(f)
        }
        self.fd = fd
        self.port = port
        self.fillers = fillers
        // Let the fillers' handshakes complete (on loopback, well under this).
        usleep(100_000)
    }

    func close() {
        for f in fillers { _ = Glibc.close(f) }
        _ = Glibc.close(fd)
    }
}

private struct SetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
