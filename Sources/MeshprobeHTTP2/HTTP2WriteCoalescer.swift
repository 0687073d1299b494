#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// Write coalescing for the HTTP/2 client connections of one event loop, when that loop is the bottleneck.
///
/// A client connection normally sends the requests it submits while reading at the end of that read burst: one
/// write per burst. Under load most bursts carry one or two responses, so the requests they free leave in small
/// writes, each costing a system call, the TCP send path, and the server a read and a wake-up. With coalescing, a
/// connection keeps the requests a burst frees for a later burst, so that several bursts' requests leave in one
/// write, and this object sends whatever is still held `window` after the first hold at the latest (one timer per
/// event loop, armed only while something is held, never cancelled). The delegate hears when held requests are
/// written (`http2HeldRequestsWritten`), so a load generator times them from then.
///
/// A hold only pays when the loop has other work meanwhile; otherwise it leaves the loop idle, costs a timer
/// wake-up, and slows a closed-model run down. So a connection holds only while (see `Policy`) the loop's thread
/// was busy for most of the last few milliseconds, other connections share the loop, and this connection has
/// several other requests in flight (its next response is near).
///
/// Measured against nginx (`perf stat`, 20 alternating rounds of 100000 requests, twice, noisy host): at
/// `-c 10 -m 10` the CPU per request 0.91x and 0.92x of not coalescing with a 500 us window (0.86x and 0.94x with
/// 1 ms), writes 67000 -> 20000 per 100000 requests, the same throughput; at `-c 1 -m 8`, and against a server
/// that takes milliseconds, it does not engage. The load engine's closed model uses it by default (see
/// `LoadPlan.coalesceWindow`).
///
/// Shared by the connections of one event loop, and used only on it.
public final class HTTP2WriteCoalescer {
    /// When a connection may hold the requests a read burst freed.
    public struct Policy: Sendable {
        /// Open connections this coalescer must serve: with fewer, a hold leaves the loop with nothing to do.
        public var minimumConnections: Int
        /// Requests the connection must have in flight besides the ones the burst submitted.
        public var minimumOthersInFlight: Int
        /// Holding starts when the loop's thread was on the CPU for at least this share of the last sample period
        /// (at least 5 ms), and stops when the share falls below `busyFloor`. 0 and 0: no CPU condition.
        public var busyThreshold: Double
        public var busyFloor: Double

        public init(minimumConnections: Int, minimumOthersInFlight: Int, busyThreshold: Double, busyFloor: Double) {
            self.minimumConnections = minimumConnections
            self.minimumOthersInFlight = minimumOthersInFlight
            self.busyThreshold = busyThreshold
            self.busyFloor = busyFloor
        }

        /// Two connections, four other requests in flight, the loop 70% busy to start holding and 55% to go on.
        /// (With coalescing engaged, a saturated `-c 10 -m 10` loop measured 75-80% busy: it spends less per request,
        /// and waits on the server for the rest.)
        public static let `default` = Policy(minimumConnections: 2, minimumOthersInFlight: 4, busyThreshold: 0.7, busyFloor: 0.55)
        /// Hold whenever another request is in flight (tests).
        public static let always = Policy(minimumConnections: 1, minimumOthersInFlight: 1, busyThreshold: 0, busyFloor: 0)
    }

    /// The longest a request is held.
    public let window: TimeAmount
    public let policy: Policy
    private let eventLoop: any EventLoop
    private var held: [HTTP2ClientConnectionHandler] = []
    private var armed = false
    /// After `stop()`: nothing is held any more, and a pending deadline does nothing.
    private(set) var stopped = false
    /// Connections whose handler is in a pipeline and whose channel is open.
    private(set) var openConnections = 0
    private var load: LoopLoad

    public init(eventLoop: any EventLoop, window: TimeAmount, policy: Policy = .default) {
        self.eventLoop = eventLoop
        self.window = window
        self.policy = policy
        self.load = LoopLoad(busyThreshold: policy.busyThreshold, busyFloor: policy.busyFloor)
    }

    func connectionOpened() { openConnections += 1 }
    func connectionClosed() { openConnections -= 1 }

    /// Whether a connection with `othersInFlight` requests in flight besides the ones its burst submitted may hold.
    func mayHold(othersInFlight: Int) -> Bool {
        guard !stopped, othersInFlight >= policy.minimumOthersInFlight, openConnections >= policy.minimumConnections else {
            return false
        }
        guard policy.busyThreshold > 0 else { return true }
        return load.isBusy(wallNanoseconds: NIODeadline.now().uptimeNanoseconds, cpuNanoseconds: Self.threadCPUTime)
    }

    /// `connection` holds requests for its next read burst: make sure they leave within `window` anyway.
    func hold(_ connection: HTTP2ClientConnectionHandler) {
        held.append(connection)
        guard !armed else { return }
        armed = true
        // A scheduled callback, not a task: no promise or closure allocated per arming. Never cancelled (SwiftNIO
        // leaves its timer armed on cancel, so a cancelled callback would still wake the loop).
        if (try? eventLoop.assumeIsolated().scheduleCallback(in: window, handler: Sweep(coalescer: self))) == nil {
            sweep()
        }
    }

    /// The run is over: drop the held connections (their channels are closing) so that a pending deadline neither
    /// keeps them alive nor calls into them after their owner has gone.
    public func stop() {
        stopped = true
        held.removeAll()
    }

    /// Sends what every connection still holds.
    fileprivate func sweep() {
        armed = false
        guard !stopped else { return }
        let connections = held
        held.removeAll(keepingCapacity: true)
        for connection in connections { connection.sendHeldRequests() }
    }

    /// CPU time of the calling thread (the event loop's), nanoseconds: read only once per sample period (a system
    /// call, not a vDSO read).
    private static func threadCPUTime() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

@available(*, unavailable)
extension HTTP2WriteCoalescer: Sendable {}

/// How busy an event loop's thread is: the share of wall time it spent on the CPU, sampled at most every 5 ms,
/// with hysteresis (busy from `busyThreshold` up, until it falls below `busyFloor`).
struct LoopLoad {
    static let samplePeriod: UInt64 = 5_000_000
    let busyThreshold: Double
    let busyFloor: Double
    private var sampleWall: UInt64 = 0
    private var sampleCPU: UInt64 = 0
    private(set) var busy = false

    init(busyThreshold: Double, busyFloor: Double) {
        self.busyThreshold = busyThreshold
        self.busyFloor = busyFloor
    }

    /// - Parameter cpuNanoseconds: read only when a sample period has passed.
    mutating func isBusy(wallNanoseconds wall: UInt64, cpuNanoseconds: () -> UInt64) -> Bool {
        guard wall &- sampleWall >= Self.samplePeriod else { return busy }
        let cpu = cpuNanoseconds()
        if sampleWall != 0 {
            let share = Double(cpu &- sampleCPU) / Double(wall &- sampleWall)
            busy = share >= (busy ? busyFloor : busyThreshold)
        }
        sampleWall = wall
        sampleCPU = cpu
        return busy
    }
}

private struct Sweep: NIOScheduledCallbackHandler {
    let coalescer: HTTP2WriteCoalescer

    func handleScheduledCallback(eventLoop: some EventLoop) {
        coalescer.sweep()
    }
}
