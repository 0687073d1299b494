import Foundation
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Debian's HAProxy, started on a configuration for the lab (the demo's proxies; the tests start theirs the same way).
public enum HAProxyLauncher {
    /// The installed HAProxy, if any.
    public static var executable: String? {
        ["/usr/sbin/haproxy", "/usr/bin/haproxy", "/usr/local/sbin/haproxy"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Starts `haproxy -f config -db` and waits (bounded: 5 s) until it accepts connections on `port`; the caller
    /// stops it. `started` gets the process id as soon as there is one (to kill it on a signal). Nil (and killed)
    /// when it never became ready.
    public static func start(_ haproxy: String, config: String, port: Int, group: any EventLoopGroup,
                             started: (Int32) -> Void = { _ in }) async throws -> Process? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: haproxy)
        process.arguments = ["-f", config, "-db"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        started(process.processIdentifier)
        for _ in 0..<100 {
            if (try? await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).get())
                .map({ $0.close(promise: nil); return true }) == true {
                return process
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        kill(process.processIdentifier, SIGKILL)
        return nil
    }
}
