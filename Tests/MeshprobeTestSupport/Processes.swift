import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// What a finished process did.
public struct ProcessOutput: Sendable {
    /// The exit status, or the number of the signal that ended it when `uncaughtSignal`.
    public var status: Int32
    public var stdout: String
    public var stderr: String
    /// Whether a signal ended it.
    public var uncaughtSignal: Bool
    /// Whether it was still running at its time limit (and was stopped then).
    public var timedOut: Bool

    /// Both streams, standard output first: for checks that do not care which stream said it.
    public var output: String { stdout + stderr }

    public init(status: Int32, stdout: String, stderr: String, uncaughtSignal: Bool = false, timedOut: Bool = false) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
        self.uncaughtSignal = uncaughtSignal
        self.timedOut = timedOut
    }
}

/// Runs a program to its end, stopped after `timeout` seconds (SIGTERM, SIGKILL 2 s later); `stdin` is what it reads.
///
/// The one process runner of the tests. Nothing waits on Swift's cooperative pool (the exit is noted by a thread
/// blocked in waitpid), so tests that run processes never starve the other tests' loads and timers; output goes to
/// files, so a chatty child (or a grandchild that keeps a pipe open) can never block.
public func run(_ executable: String, _ arguments: [String], timeout: Double = 60, environment: [String: String]? = nil,
                stdin: String? = nil) async throws -> ProcessOutput {
    try await SignalledProcess(executable, arguments, environment: environment, stdin: stdin).finish(within: timeout)
}

/// A child process that the test may signal: its output goes to files (so a chatty child never blocks) and the moment
/// of its exit is noted by a thread of its own blocked in `waitpid` (polling would note it late on a busy machine).
///
/// Spawned with `posix_spawn`, not Foundation's `Process`: its `run()` in Swift 6.3 reads `/proc/self/fd` with a
/// 256-byte copy of each directory entry, past the end of glibc's buffer when an entry ends it (a SIGSEGV in a test
/// run with a thousand descriptors open; swift-corelibs-foundation#5472).
public final class SignalledProcess: @unchecked Sendable {
    // @unchecked: `pid` and the paths are set in `init` and only read afterwards; what changes (`exit`) is under its
    // lock.
    private let pid: pid_t
    private let out: URL
    private let err: URL
    private let input: URL?
    private let ended = DispatchGroup()
    private let exit = NIOLockedValueBox<(at: Date?, status: Int32, timedOut: Bool)>((nil, 0, false))
    /// When it was started.
    public let started: Date

    /// Starts `executable` with `arguments`, in `environment` (this process's when nil), reading `stdin` (nothing when
    /// nil).
    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, stdin: String? = nil) throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-process-\(UUID().uuidString)")
        out = base.appendingPathExtension("out")
        err = base.appendingPathExtension("err")
        input = stdin.map { _ in base.appendingPathExtension("in") }
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        if let input, let stdin { _ = FileManager.default.createFile(atPath: input.path, contents: Data(stdin.utf8)) }
        started = Date()
        pid = try spawn(executable, arguments, environment: environment ?? ProcessInfo.processInfo.environment,
                        stdin: input?.path ?? "/dev/null", stdout: out.path, stderr: err.path)
        ended.enter()
        let child = pid
        let thread = Thread { [exit, ended] in
            var status: Int32 = 0
            while waitpid(child, &status, 0) == -1 && errno == EINTR {}
            exit.withLockedValue {
                $0.at = Date()
                $0.status = status
            }
            ended.leave()
        }
        thread.start()
    }

    deinit {
        if isRunning { kill(pid, SIGKILL) }
        for file in [out, err] + (input.map { [$0] } ?? []) { try? FileManager.default.removeItem(at: file) }
    }

    /// Whether it has not exited yet.
    public var isRunning: Bool { exitedAt == nil }
    /// When it exited, as its termination handler saw it.
    public var exitedAt: Date? { exit.withLockedValue { $0.at } }
    /// What it has written to stdout so far.
    public var stdout: String { (try? String(contentsOf: out, encoding: .utf8)) ?? "" }
    /// What it has written to stderr so far.
    public var stderr: String { (try? String(contentsOf: err, encoding: .utf8)) ?? "" }

    /// Sends `sig` unless it has exited.
    public func send(_ sig: Int32) {
        if isRunning { kill(pid, sig) }
    }

    /// SIGTERM now, SIGKILL 2 s later if it still runs; returns at once (`finish(within:)` waits for the exit).
    public func stop() {
        _ = escalate(after: 0)
    }

    /// Waits for its exit; still running after `timeout` seconds, it gets SIGTERM, and SIGKILL 2 s later.
    public func finish(within timeout: Double) async -> ProcessOutput {
        let escalation = escalate(after: timeout)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            ended.notify(queue: .global()) { continuation.resume() }
        }
        escalation.forEach { $0.cancel() }
        return output
    }

    /// `finish(within:)` blocking the calling thread: for Dispatch threads and `deinit`, never Swift's cooperative pool.
    public func finishBlocking(within timeout: Double) -> ProcessOutput {
        let escalation = escalate(after: timeout)
        ended.wait()
        escalation.forEach { $0.cancel() }
        return output
    }

    /// Polls `condition` every 10 ms while it runs, for at most `timeout` seconds; whether the condition held.
    public func wait(upTo timeout: Double = 20, until condition: () throws -> Bool) async throws -> Bool {
        _ = try await waitUntil(seconds: timeout, every: .milliseconds(10)) { try !isRunning || condition() }
        return try condition()
    }

    /// Sends `sig`, then waits up to `timeout` seconds for the exit (see `finish(within:)`): the seconds from the
    /// signal to the exit, and the output.
    public func signal(_ sig: Int32, timeout: Double = 15) async throws -> (seconds: Double, output: ProcessOutput) {
        let signalled = Date()
        send(sig)
        let output = await finish(within: timeout)
        return ((exitedAt ?? Date()).timeIntervalSince(signalled), output)
    }

    /// SIGTERM, then waits up to `timeout` seconds for the exit (see `finish(within:)`).
    public func terminate(timeout: Double = 15) async throws -> ProcessOutput { try await signal(SIGTERM, timeout: timeout).output }

    /// SIGTERM at the deadline, SIGKILL 2 s after it: a child may inherit a signal mask that blocks SIGTERM (nginx
    /// does), and a timed-out run must end.
    private func escalate(after timeout: Double) -> [DispatchWorkItem] {
        let terminate = DispatchWorkItem { [weak self] in
            guard let self, isRunning else { return }
            exit.withLockedValue { $0.timedOut = true }
            send(SIGTERM)
        }
        let kill = DispatchWorkItem { [weak self] in self?.send(SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + max(0, timeout), execute: terminate)
        DispatchQueue.global().asyncAfter(deadline: .now() + max(0, timeout) + 2, execute: kill)
        return [terminate, kill]
    }

    /// The output of the exited process.
    private var output: ProcessOutput {
        let (status, timedOut) = exit.withLockedValue { ($0.status, $0.timedOut) }
        // The wait status: the signal in the low 7 bits when one ended it, else the exit status in the next byte.
        let signal = status & 0x7f
        return ProcessOutput(status: signal != 0 ? signal : (status >> 8) & 0xff, stdout: stdout, stderr: stderr,
                             uncaughtSignal: signal != 0, timedOut: timedOut)
    }
}

/// `posix_spawn`s `executable` in a process group of its own, with stdin, stdout and stderr opened on the given files
/// and no other descriptor of this process (every one from 3 up is closed in the child); its pid.
private func spawn(_ executable: String, _ arguments: [String], environment: [String: String], stdin: String, stdout: String,
                   stderr: String) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, stdin, O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_TRUNC, 0o644)
    posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_TRUNC, 0o644)
    guard closeFrom(&actions, 3) == 0 else { throw PeerError(message: "posix_spawn_file_actions_addclosefrom_np failed") }
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
    let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
    let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { for pointer in argv + envp { free(pointer) } }
    var pid = pid_t()
    let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
    guard result == 0 else { throw PeerError(message: "cannot start \(executable): \(String(cString: strerror(result)))") }
    return pid
}

/// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34), which Swift's Glibc module does not declare.
private let closeFrom: @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32 = {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else {
        fatalError("glibc 2.34 or later is needed: posix_spawn_file_actions_addclosefrom_np is missing")
    }
    return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
}()

/// A long-running peer (nghttpd, nginx, HAProxy, an echo process), ready once it accepts connections; stopped at
/// deinit.
public final class BackgroundProcess: Sendable {
    private let child: SignalledProcess

    /// Starts it and waits, at most `timeout` seconds, until something accepts TCP connections on 127.0.0.1:`port`
    /// (one connection: a peer that accepts a fixed number of them has one fewer left); throws with its output when it
    /// exits or never listens.
    public convenience init(_ executable: String, _ arguments: [String], waitForPort port: Int, timeout: Double = 10,
                            environment: [String: String]? = nil) async throws {
        try await self.init(executable, arguments, timeout: timeout, environment: environment, waitingFor: "start listening on \(port)") {
            await isListening(port: port)
        }
    }

    /// Starts it and waits, at most `timeout` seconds, until the Unix socket `socketPath` exists (a peer on a Unix
    /// socket in a temporary directory, such as a Workload API server); throws with its output when it exits first.
    public convenience init(_ executable: String, _ arguments: [String], waitForSocket socketPath: String, timeout: Double = 10,
                            environment: [String: String]? = nil) async throws {
        try await self.init(executable, arguments, timeout: timeout, environment: environment, waitingFor: "create the socket \(socketPath)") {
            var info = stat()
            return stat(socketPath, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK
        }
    }

    private init(_ executable: String, _ arguments: [String], timeout: Double, environment: [String: String]?, waitingFor what: String,
                 ready: () async -> Bool) async throws {
        let child = try SignalledProcess(executable, arguments, environment: environment)
        self.child = child
        var isReady = false
        _ = try await waitUntil(seconds: timeout, every: .milliseconds(50)) {
            guard child.isRunning else { return true }
            isReady = await ready()
            return isReady
        }
        guard isReady && child.isRunning else {
            stop()
            throw PeerError(message: "\(executable) did not \(what): \(log)")
        }
    }

    /// Starts a peer on a port from `freePort()`, on another one when it does not come up there (a test running in
    /// parallel may take a free port between its finding and its binding), at most `tries` times.
    public static func onFreePort(tries: Int = 3, _ start: (Int) async throws -> BackgroundProcess) async throws -> (BackgroundProcess, Int) {
        var lastError: (any Error)?
        for _ in 0..<tries {
            let port = try freePort()
            do {
                return (try await start(port), port)
            } catch {
                lastError = error
            }
        }
        throw lastError ?? PeerError(message: "no tries")
    }

    /// What it has written so far: stdout, then stderr.
    public var log: String { child.stdout + child.stderr }

    /// SIGTERM, and SIGKILL 2 s later if it still runs; returns at once, so a `defer` or the deinit never holds a
    /// thread of Swift's cooperative pool (nginx, which blocks SIGTERM, would hold it 2 s). Before its port is used
    /// again or its last output is read, `stopAndWait()`.
    public func stop() {
        child.stop()
    }

    /// `stop()`, then waits (without blocking a thread) until it has exited.
    public func stopAndWait() async {
        _ = await child.finish(within: 0)
    }

    deinit { stop() }
}

/// Whether something accepts TCP connections on 127.0.0.1:`port` now (the connection is closed at once).
public func isListening(port: Int) async -> Bool {
    guard let channel = try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .connectTimeout(.seconds(1))
        .connect(host: "127.0.0.1", port: port).get()
    else { return false }
    try? await channel.close()
    return true
}

struct PeerError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
