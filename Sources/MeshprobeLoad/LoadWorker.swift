import Dispatch
import MeshprobeHTTP2
import MeshprobeIdentity
import NIOCore

/// The part of a load run that lives on one event loop: its connections, its share of the request budget,
/// and its own `LoadResult`, merged with the other loops' at the end. No locks: everything here runs on
/// `eventLoop`.
final class LoadWorker {
    let eventLoop: any EventLoop
    let configuration: LoadConfiguration
    var result = LoadResult()
    private var connections: [LoadConnection] = []
    /// Requests this worker may still start; `Int.max` when the run is bounded by duration only.
    private var remaining: Int
    private let deadline: UInt64?
    private var stopping = false
    private(set) var finished = false
    private let startTime: UInt64
    private let promise: EventLoopPromise<LoadResult>
    private var sweepTask: Scheduled<Void>?
    private var drainDeadline: UInt64?
    var lastConnectionFailure: (kind: ErrorKind, message: String)?

    init(eventLoop: any EventLoop, configuration: LoadConfiguration, budget: Int?, slots: [(LoadTarget, SocketAddress)],
         promise: EventLoopPromise<LoadResult>) {
        self.eventLoop = eventLoop
        self.configuration = configuration
        self.remaining = budget ?? Int.max
        self.promise = promise
        let startTime = DispatchTime.now().uptimeNanoseconds
        self.startTime = startTime
        self.deadline = configuration.duration.map { startTime + UInt64($0 * 1e9) }
        var body: ByteBuffer?
        if let bytes = configuration.body { body = ByteBuffer(bytes: bytes) }
        for (target, address) in slots {
            var headers = configuration.headers.map { HTTP2Header($0.name.lowercased(), $0.value) }
            if let body, !headers.contains(where: { $0.name == "content-length" }) {
                headers.append(HTTP2Header("content-length", String(body.readableBytes)))
            }
            let request = HTTP2Request(method: configuration.method, scheme: target.scheme.rawValue,
                                       authority: target.authority, path: target.path, headers: headers, body: body)
            connections.append(LoadConnection(worker: self, target: target, address: address, request: request))
        }
    }

    @inline(__always) func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    func start() {
        if connections.isEmpty || remaining == 0 {
            finish()
            return
        }
        for connection in connections { connection.connect() }
        scheduleSweep()
    }

    /// True while requests may still be started.
    var wantsMoreRequests: Bool {
        guard !stopping, remaining > 0 else { return false }
        if let deadline, now() >= deadline { return false }
        return true
    }

    /// Takes one request from the budget; returns its start time, or nil when the run should send no more.
    @inline(__always) func takeRequest() -> UInt64? {
        guard !stopping, remaining > 0 else { return nil }
        let t = now()
        if let deadline, t >= deadline { return nil }
        if remaining != Int.max { remaining -= 1 }
        return t
    }

    func returnRequest() {
        if remaining != Int.max { remaining += 1 }
    }

    /// Called after each response or failure: finishes the worker when nothing more will happen.
    @inline(__always) func responseRecorded() {
        if !wantsMoreRequests { checkDone() }
    }

    func connectionStateChanged() {
        checkDone()
    }

    /// Stops starting requests; in-flight requests get `grace` seconds, then count as aborted.
    func stop(grace: Double) {
        guard !finished else { return }
        stopping = true
        result.aborted = true
        drainDeadline = now() + UInt64(grace * 1e9)
        checkDone()
    }

    func progress() -> LoadGenerator.Progress {
        LoadGenerator.Progress(responses: result.responses, succeeded: result.succeeded, failed: result.failed,
                               inFlight: connections.reduce(0) { $0 + $1.inFlightCount })
    }

    private func checkDone() {
        guard !finished else { return }
        let inFlight = connections.reduce(0) { $0 + $1.inFlightCount }
        let allDead = connections.allSatisfy(\.isDead)
        if allDead {
            // No connection can carry the rest of the budget: count it, named by the last connection failure.
            if remaining != Int.max && remaining > 0 && !stopping {
                let reason = lastConnectionFailure ?? (.notSent, "no connection could be established")
                result.recordError(reason.kind, identity: .unknown, count: remaining, explanation: reason.message)
                remaining = 0
            }
            finish()
            return
        }
        if !wantsMoreRequests && inFlight == 0 {
            finish()
        }
    }

    private func scheduleSweep() {
        sweepTask = eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(50)) {
            self.sweep()
        }
    }

    /// Periodic housekeeping: request timeouts, the duration deadline, the abort grace period.
    private func sweep() {
        guard !finished else { return }
        let t = now()
        let timeoutNs = UInt64(configuration.requestTimeout * 1e9)
        if t > timeoutNs {
            for connection in connections where connection.inFlightCount > 0 {
                connection.expireRequests(olderThan: t - timeoutNs)
            }
        }
        if let drainDeadline, t >= drainDeadline {
            for connection in connections { connection.shutdown(inFlightAs: .aborted) }
            finish()
            return
        }
        checkDone()
        if !finished { scheduleSweep() }
    }

    private func finish() {
        guard !finished else { return }
        finished = true
        sweepTask?.cancel()
        result.elapsedSeconds = Double(now() - startTime) / 1e9
        for connection in connections { connection.shutdown(inFlightAs: .aborted) }
        promise.succeed(result)
    }
}
