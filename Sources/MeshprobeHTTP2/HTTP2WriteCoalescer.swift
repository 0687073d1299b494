import NIOCore

/// Write coalescing for the HTTP/2 client connections of one event loop.
///
/// A client connection normally sends the requests it submits while reading at the end of that read burst: one
/// write per burst. Under load most bursts carry one or two responses, so the requests they free leave in small
/// writes, each costing a system call, the TCP send path, and the server a read and a wake-up. With coalescing, a
/// connection whose responses are arriving in quick succession (its previous read burst ended at most `window` ago)
/// and which still has other requests in flight (so another response is on its way) keeps the new requests for its
/// next read burst; that burst sends both sets in one write. It never defers two bursts in a row, and this object
/// sends whatever is still held `window` after the first deferral at the latest (one timer per event loop, armed
/// only while something is held). The delegate hears when held requests are written
/// (`http2HeldRequestsWritten`), so a load generator times them from then.
///
/// Measured against nginx at `-c 10 -m 10` (bench/ab-builds.sh, 20 alternating rounds each): writes per request
/// 0.69 -> 0.2-0.6, CPU per request 0.86x without the recency condition, 0.97x and 0.99x with a 200 us window, on a
/// noisy host; throughput up, since the server reads and answers larger batches. Off by default (see the load
/// engine's `coalesceWindow`).
///
/// Shared by the connections of one event loop, and used only on it.
public final class HTTP2WriteCoalescer {
    /// How recent the previous read burst must be for a connection to hold its requests, and the longest they wait.
    public let window: TimeAmount
    private let eventLoop: any EventLoop
    private var held: [HTTP2ClientConnectionHandler] = []
    private var armed = false
    /// After `stop()`: nothing is held any more, and a pending deadline does nothing.
    private(set) var stopped = false

    public init(eventLoop: any EventLoop, window: TimeAmount) {
        self.eventLoop = eventLoop
        self.window = window
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
}

@available(*, unavailable)
extension HTTP2WriteCoalescer: Sendable {}

private struct Sweep: NIOScheduledCallbackHandler {
    let coalescer: HTTP2WriteCoalescer

    func handleScheduledCallback(eventLoop: some EventLoop) {
        coalescer.sweep()
    }
}
