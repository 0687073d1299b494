import MeshprobeGRPC
import MeshprobeHTTP1
import MeshprobeHTTP2
import MeshprobeIdentity
import MeshprobeSpec
import MeshprobeTLS
import NIOCore
import NIOHTTP1
import NIOPosix

/// One connection slot of a worker: connects (TCP, TLS, ALPN), carries requests, reconnects when lost.
///
/// Confined to its worker's event loop; every method runs there.
final class LoadConnection {
    /// Strong, never `unowned`: a channel's close callback can reach this connection after the run is over and the
    /// generator has let go of the worker, and it must still find the worker. The worker drops its connections when
    /// it finishes, which breaks the cycle.
    let worker: LoadWorker
    let target: LoadTarget
    let targetIndex: Int
    /// The target's `:authority` / `Host`, computed once: requests carry it, and working it out takes string searches.
    private let authority: String
    let address: SocketAddress
    let request: HTTP2Request
    /// The attempt's stage, and what closes and failures mean for the slot.
    private var lifecycle: ConnectionLifecycle
    var state: ConnectionLifecycle.State { lifecycle.state }
    private var channel: (any Channel)?
    /// The HTTP session requests are sent on, from the moment the protocol's handler is installed.
    private var session: (any RequestSession)?
    /// The same session when it is HTTP/1.1 (its one pending request is read when the connection closes).
    private var h1: HTTP1ClientHandler?
    /// The TLS peer's SPIFFE ID (or subject) on the current connection.
    private var tlsPeer: String = ""
    /// Where that identity's stats sit in the worker's result (skips hashing on the next response).
    private var identitySlot: LoadResult.IdentitySlot?
    /// Each request in flight, by token: when it was meant to leave and when it did.
    private var inFlight = InFlightTable()
    /// `--churn N` (or 1 for `request`): requests per connection before it is replaced; nil to reuse for ever.
    private let churnEvery: Int?
    /// Requests sent on the current connection (for churn).
    private var sentOnConnection = 0
    /// Closes a connection that is not ready by the connect timeout; cancelled once it is (with churn a run opens
    /// thousands of connections a second, and a timer left to fire would wake the loop for each).
    private var setupDeadline: Scheduled<Void>?
    private var connectStart: UInt64 = 0
    /// An error seen on the connection before it closed (TLS failures, alerts), used to name in-flight losses.
    private var closeReason: (kind: ErrorKind, message: String)?
    /// The current attempt's number from the configuration's `connectionObserver` (-1: none, or its end reported).
    private var observedConnection = -1
    /// The clock read once for all the responses of one HTTP/2 delivery (one read's worth: they arrived together)
    /// and for the requests sent after them; 0 outside a delivery. The responses of a read differ only by the time
    /// we take to process the ones before them, and the requests sent meanwhile leave together in one write at
    /// the end of the read, so one reading per read changes what is measured by at most the time to process one
    /// read, and saves two clock reads per request.
    private var deliveryTime: UInt64 = 0
    /// Requests on the current attempt that failed because the connection was lost (HTTP/2 streams).
    private var lostWithConnection = 0
    /// When the connection last answered a request (a response or a stream's failure): a request that timed out
    /// before it is given up alone, on a connection known to be alive (see `expireRequests`).
    private var lastAnswered: UInt64 = 0

    init(worker: LoadWorker, target: LoadTarget, targetIndex: Int, address: SocketAddress, request: HTTP2Request) {
        self.worker = worker
        self.target = target
        self.targetIndex = targetIndex
        self.authority = target.authority
        self.address = address
        self.request = request
        if case .every(let n) = worker.configuration.plan.churn { churnEvery = n } else { churnEvery = nil }
        lifecycle = ConnectionLifecycle(maximumConsecutiveFailures: worker.configuration.maxConsecutiveConnectFailures)
    }

    var inFlightCount: Int { inFlight.count }

    /// Puts a request in flight on this connection; the worker's total moves with the table, and only here.
    @inline(__always) private func track(_ ticket: LoadWorker.Ticket) -> UInt64 {
        worker.inFlightTotal += 1
        return inFlight.insert(ticket)
    }

    /// Takes the request of `token` out of flight, or nil if it is not in flight (any more).
    @inline(__always) private func untrack(_ token: UInt64) -> LoadWorker.Ticket? {
        guard let ticket = inFlight.remove(token) else { return nil }
        worker.inFlightTotal -= 1
        return ticket
    }

    private func untrackAll() {
        worker.inFlightTotal -= inFlight.count
        inFlight.removeAll()
    }
    var isDead: Bool { state == .dead }
    /// The last attempt failed (it is retrying or given up): nothing to wait for before the open model's clock starts.
    var isFailing: Bool { lifecycle.isFailing }

    // MARK: connecting

    func connect() {
        guard !worker.finished, lifecycle.startAttempt() else { return }
        closeReason = nil
        sentOnConnection = 0
        lostWithConnection = 0
        lastAnswered = 0
        if let observer = worker.configuration.connectionObserver { observedConnection = observer.opened() }
        worker.result.connectAttempts += 1
        connectStart = worker.now()
        let timeout = TimeAmount.nanoseconds(Int64(worker.configuration.plan.connectTimeout * 1e9))
        ClientBootstrap(group: worker.eventLoop)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(timeout)
            .connect(to: address)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel): self.connected(channel)
                case .failure(let error): self.failedToConnect(error)
                }
            }
    }

    private func connected(_ channel: any Channel) {
        guard !worker.finished else {
            channel.close(promise: nil)
            return
        }
        self.channel = channel
        worker.result.connectionsEstablished += 1
        armSetupDeadline(for: channel)
        let sync = channel.pipeline.syncOperations
        do {
            try sync.addHandler(ConnectionEventsHandler(owner: self))
            if target.scheme == .https, let tls = worker.configuration.tlsSource?.current ?? worker.configuration.tls {
                lifecycle.handshaking()
                // The context's configured SNI (--sni) wins; else the URL host (none for IP literals).
                let handler = target.serverName.map { tls.makeHandler(serverName: $0) } ?? tls.makeHandler(connectingTo: target.host)
                try sync.addHandler(handler, position: .first)
            } else {
                try sync.addHandler(TLSRecordSniffer(owner: self), position: .first)
                try install(http2: worker.configuration.plan.httpVersion != .http1)
            }
        } catch {
            closeReason = (.connectFailed, "could not set up the connection: \(error)")
            channel.close(promise: nil)
        }
    }

    /// A peer that accepts the TCP connection and then never finishes the TLS handshake or never sends its HTTP/2
    /// SETTINGS would hold the connection (and a run bounded only by -n) for ever: the connect timeout covers
    /// everything up to the first request.
    private func armSetupDeadline(for channel: any Channel) {
        let seconds = worker.configuration.plan.connectTimeout
        setupDeadline = worker.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(seconds * 1e9))) {
            guard self.channel === channel, self.state == .handshaking else { return }
            let stage = self.session == nil ? "did not finish the TLS handshake" : "sent no HTTP/2 SETTINGS"
            self.closeReason = (.connectTimeout, "\(self.target.authority) accepted the connection but \(stage) within \(seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds))s")
            channel.close(promise: nil)
        }
    }

    private func failedToConnect(_ error: any Error) {
        reportEnded()
        // After the run: the result has been handed over; nothing to record or retry.
        guard !worker.finished else {
            lifecycle.shutDown()
            return
        }
        let (kind, message) = target.connectFailure(error)
        worker.connectionFailed(kind, message)
        lifecycle.connectFailed(kind)
        scheduleReconnect()
    }

    /// TLS is done: record it and install the protocol ALPN chose.
    func handshakeCompleted(_ event: TLSHandshakeCompleted) {
        guard state == .handshaking else { return }
        tlsPeer = event.peer?.spiffeID?.description ?? event.peer?.subject ?? ""
        worker.result.recordHandshake(event, latencyMicros: (worker.now() &- connectStart) / 1000, peer: tlsPeer)
        let wantsH2: Bool
        switch ConnectionLifecycle.protocolAfterHandshake(alpn: event.negotiatedProtocol, preference: worker.configuration.plan.httpVersion) {
        case .success(let http2):
            wantsH2 = http2
        case .failure(let refusal):
            closeReason = (refusal.kind, refusal.message)
            channel?.close(promise: nil)
            return
        }
        do {
            try install(http2: wantsH2)
        } catch {
            closeReason = (.protocolError, "could not install the HTTP handler: \(error)")
            channel?.close(promise: nil)
        }
    }

    /// The client's HTTP/2 settings; HTTP/1.1 keeps a collected body to the same limit.
    private static let http2Settings = HTTP2Settings()

    private func install(http2: Bool) throws {
        guard let channel else { return }
        let sync = channel.pipeline.syncOperations
        let events = try sync.handler(type: ConnectionEventsHandler.self)
        if http2 {
            let handler = HTTP2ClientConnectionHandler(settings: Self.http2Settings, collectBodies: worker.collectBodies,
                                                       keepingHeadersWithPrefixes: worker.keptHeaderPrefixes,
                                                       keepingErrorBodyPrefix: HTTP1ClientHandler.errorBodyPrefix,
                                                       internedNames: worker.internedHeaderNames,
                                                       writeCoalescer: worker.writeCoalescer, delegate: self)
            session = handler
            lifecycle.handshaking()  // ready when the peer's SETTINGS arrive
            try sync.addHandler(handler, position: .before(events))
            // TLS right below: plaintext both ways by direct calls, not through the pipeline (a hop less per read and
            // per write). The two handlers hold each other until they are removed with the channel.
            if let tls = try? sync.handler(type: TLSHandler.self) {
                tls.deliverPlaintext { handler.receive($0) }
                handler.writeDirectly { tls.writeAndFlush(plaintext: $0) }
            }
        } else {
            let handler = HTTP1ClientHandler(collectBody: worker.collectBodies, maxCollectedBodyBytes: Self.http2Settings.maxCollectedBodyBytes)
            handler.delegate = self
            h1 = handler
            session = handler
            try sync.addHTTPClientHandlers(position: .before(events))
            try sync.addHandler(handler, position: .before(events))
            becameReady()
        }
    }

    private func becameReady() {
        setupDeadline?.cancel()
        setupDeadline = nil
        lifecycle.ready()
        worker.connectionReady()
        pump(flush: true)
    }

    /// A plaintext connection's first bytes from the peer are a TLS record: the URL should say https://.
    func peerAnsweredWithTLS() {
        if closeReason == nil {
            let (tls, plain) = target.grpc ? ("grpcs", "grpc") : ("https", "http")
            closeReason = (.wrongScheme, "\(target.authority) answered with TLS: use \(tls):// (and --svid-dir or --ca), the URL says \(plain)://")
        }
        channel?.close(promise: nil)
    }

    /// A plaintext connection closed before the peer sent anything, after we had spoken (the HTTP/2 preface, or a
    /// request): what a TLS server built on OpenSSL does with plaintext, though a plaintext server may do it too.
    func peerClosedWithoutAByte() {
        guard closeReason == nil, state == .handshaking || sentOnConnection > 0 else { return }
        if worker.hasAnswered(targetIndex) {
            // The port speaks HTTP (it answered on other connections): no TLS port, a request dropped or the target
            // refusing connections now.
            closeReason = (.connectionLost, state == .ready
                ? "\(target.authority) closed the connection with a request in flight, without answering it (it answered other requests)"
                : "\(target.authority) closed the connection without answering a byte, after answering on others (a server refusing connections, or an L4 proxy whose backend is down)")
            return
        }
        let guess = "\(target.authority) closed the connection without answering a byte (a TLS port does so with plaintext: if it serves TLS, use \(target.grpc ? "grpcs" : "https")://; an L4 proxy does so when its backend refuses the connection)"
        closeReason = (.connectionLost, guess)
        worker.guessed(guess, target: targetIndex)
    }

    /// A TLS failure as this connection names it: the TLS layer does not know the URL, and its wrong-scheme hint
    /// names http(s):// (a gRPC target's is grpc(s)://).
    private func reason(_ tlsError: TLSError) -> (kind: ErrorKind, message: String) {
        guard target.grpc, tlsError.kind == .wrongScheme else { return (tlsError.kind, tlsError.message) }
        return (tlsError.kind, tlsError.message.replacing("use http://, the URL says https://", with: "use grpc://, the URL says grpcs://"))
    }

    /// An error reached the end of the pipeline: remember why, then close.
    func errorCaught(_ error: any Error) {
        if let tlsError = error as? TLSError {
            if closeReason == nil { closeReason = reason(tlsError) }
        } else if closeReason == nil {
            closeReason = (.connectionLost, "\(error)")
        }
        channel?.close(promise: nil)
    }

    /// The channel is gone. Everything in flight has been accounted for by the protocol handler's callbacks.
    func channelClosed() {
        setupDeadline?.cancel()
        setupDeadline = nil
        guard channel != nil || state != .idle else { return }
        releaseThinking()
        if worker.finished || state == .dead {
            // Closed by the end of the run (shutdown counted anything in flight).
            reportEnded()
            channel = nil
            h1 = nil
            session = nil
            return
        }
        // The requests this close fails (the server's doing, unless meshprobe closed it after a timeout): HTTP/2
        // reported its streams' already, HTTP/1.1 has its pending one in flight.
        let drops = lostWithConnection + inFlight.count
        if let h1, let token = h1.pendingToken, let ticket = untrack(token) {
            recordFailure(closeReason?.kind ?? .connectionLost, ticket: ticket,
                          message: closeReason?.message ?? "the server closed the HTTP/1.1 connection with a request in flight")
        }
        // Anything the handlers did not report (should be nothing) is still counted, never dropped.
        // Counted while still in flight, so that the worker cannot finish in the middle of the loop.
        for ticket in inFlight.tickets {
            recordFailure(closeReason?.kind ?? .connectionLost, ticket: ticket, message: closeReason?.message ?? "connection lost")
        }
        untrackAll()
        reportEnded()
        // A churn retirement or a close after a timeout is not a failure; a close before the connection answered
        // anything is (see `ConnectionLifecycle.closed`).
        // A close with requests in flight before any answer on this connection: a dropped request, or the target
        // refusing when the run's evidence makes it an outage (`TargetEvidence`).
        let byPeer = !lifecycle.closedForTimeout && !lifecycle.isRetiring
        let outage = worker.evidence.connectionClosed(targetIndex, answers: lifecycle.responses, drops: byPeer ? drops : 0)
        let dropped = !worker.finished && lifecycle.isReadyWithoutAnswers && sentOnConnection > 0 && !outage
        if !worker.finished, let failure = lifecycle.closed(reason: closeReason, authority: target.authority, droppedRequests: dropped) {
            worker.connectionFailed(failure.kind, failure.message)
        }
        channel = nil
        h1 = nil
        session = nil
        tlsPeer = ""
        scheduleReconnect()
    }

    /// Tells the connection observer that the current attempt is over (once).
    private func reportEnded() {
        guard observedConnection >= 0 else { return }
        let number = observedConnection
        observedConnection = -1
        if let observer = worker.configuration.connectionObserver, observer.ended(connection: number) {
            worker.decided?()
        }
    }

    private func scheduleReconnect() {
        guard !worker.finished else { return }
        switch lifecycle.next(boundedByTime: worker.isBoundedByTime, wantsMoreRequests: worker.wantsMoreRequests) {
        case .giveUp, .stayIdle:
            break
        case .connectNow:
            connect()
        case .connect(let milliseconds):
            worker.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(milliseconds)) { self.connect() }
        }
        worker.connectionStateChanged()
    }

    // MARK: sending

    /// Stream slots waiting out their think time after a response (closed model with think time).
    private var thinking = 0
    /// Moves on when thinking slots are released, so a think timer from before does not end a later one early.
    private var thinkGeneration = 0

    /// The worker's count of thinking slots moves with this connection's, and only here.
    private func setThinking(_ count: Int) {
        worker.thinking += count - thinking
        thinking = count
    }

    /// The connection closed or the run ended: its thinking slots no longer hold the worker's concurrency.
    private func releaseThinking() {
        setThinking(0)
        thinkGeneration &+= 1
    }

    /// Requests this connection may still start before churn replaces it.
    private var churnAllowance: Int {
        if let churnEvery { return churnEvery - sentOnConnection }
        return Int.max
    }

    /// How long a connection waits before taking the next request after one it could not send.
    private static let retryAfterUnsendable = TimeAmount.microseconds(100)

    /// Sends as many requests as the connection, the churn setting and the worker allow.
    ///
    /// `time`: the send time to stamp (the delivery's, see `deliveryTime`); else the clock is read once for the
    /// whole burst (its requests leave together, in one write at its end).
    func pump(flush: Bool, at time: UInt64? = nil) {
        guard state == .ready, !lifecycle.isRetiring, let session else { return }
        // HTTP/1.1 carries one request at a time, and a virtual user thinking holds that one slot.
        let limit = session.isMultiplexed ? worker.configuration.plan.streamsPerConnection : 1
        var t = time ?? 0
        var sent = false
        while inFlight.count + thinking < limit, churnAllowance > 0, session.availableStreams > 0 {
            if t == 0 { t = worker.now() }
            guard let (ticket, admitted) = worker.nextRequest(at: t) else { break }
            let token = track(ticket)
            let request = worker.request(for: self, ticket: ticket)
            if let problem = worker.unsendable(request, ticket: ticket) {
                _ = untrack(token)
                recordFailure(.notSent, ticket: ticket, message: problem)
                // The next request a little later, not at once: when every rendered request fails, the event loop
                // must still read its sockets and run its timers between them, and NIO runs tasks that are due
                // before it reads again (an immediate re-pump would keep it from reading for the rest of the run).
                worker.eventLoop.assumeIsolated().scheduleTask(in: Self.retryAfterUnsendable) { self.pump(flush: true) }
                break
            }
            guard session.send(request, authority: authority, token: token) else {
                _ = untrack(token)
                worker.returnRequest(admitted)
                break
            }
            worker.sent(admitted, at: t)
            sentOnConnection += 1
            sent = true
        }
        if sent && flush { session.flush() }
    }

    /// After a request completes: retire the connection when churn says so, else send more (now or after the
    /// think time).
    private func afterCompletion(flush: Bool, at time: UInt64? = nil) {
        if churnAllowance <= 0 {
            if inFlight.isEmpty, !lifecycle.isRetiring {
                lifecycle.retire()
                channel?.close(promise: nil)
            }
            return
        }
        if worker.thinkTimeNanoseconds > 0 {
            // The slot is busy thinking: no other pump (a new connection, the worker's sweep) may fill it meanwhile.
            let think = worker.nextThinkTime()
            setThinking(thinking + 1)
            let generation = thinkGeneration
            worker.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(think))) {
                // After a close or the end of the run the slot was released (and the worker may be gone).
                guard self.thinkGeneration == generation, self.thinking > 0 else { return }
                self.setThinking(self.thinking - 1)
                self.pump(flush: true)
            }
        } else {
            pump(flush: flush, at: time)
        }
    }

    /// Counts requests older than the timeout and frees their streams. On HTTP/2, a connection that has answered
    /// anything since a timed-out request left (or in the read that sent it) is alive: only that request's stream is
    /// reset (CANCEL) and the other streams go on; if it died since, the next request's timeout closes it. A connection silent since then (a dead peer or path), and HTTP/1.1 (whose one request cannot
    /// be given up alone), are closed.
    func expireRequests(olderThan cutoff: UInt64) {
        var expired = 0
        var closing = false
        let http2 = session as? HTTP2ClientConnectionHandler
        for token in inFlight.tokens(where: { $0.sent < cutoff }) {
            // Nil when recording an earlier one finished the run (which counted the rest as aborted).
            guard let ticket = untrack(token) else { continue }
            let cancelled = lastAnswered >= ticket.sent && http2?.cancel(token: token) == true
            if !cancelled { closing = true }
            let timeout = worker.configuration.plan.requestTimeout
            recordFailure(.requestTimeout, ticket: ticket, message: worker.isGRPC
                ? "no answer within the call's deadline (\(timeout)s, sent as grpc-timeout) and \(GRPCRequest.deadlineGrace(timeout))s more for the server's DEADLINE_EXCEEDED"
                : "no response within \(timeout)s")
            expired += 1
        }
        guard expired > 0 else { return }
        guard closing else {
            // The streams are free again: the connection takes new requests in their place.
            afterCompletion(flush: true)
            return
        }
        lifecycle.closingForTimeout()
        closeReason = (.connectionLost, "closed by meshprobe after a request timed out on the connection, which answered nothing since it was sent")
        channel?.close(promise: nil)
    }

    /// Stops the connection at the end of the run; in-flight requests are counted with `kind`.
    func shutdown(inFlightAs kind: ErrorKind) {
        for ticket in inFlight.tickets {
            recordFailure(kind, ticket: ticket, message: "the run ended with the request in flight")
        }
        untrackAll()
        releaseThinking()
        lifecycle.shutDown()
        channel?.close(promise: nil)
    }

    // MARK: recording

    /// The identity a response names, its stamps told apart by kind (`LoadWorker.kind(of:)`: the interned index the
    /// HTTP/2 client gave, no name compared); the echo's other stamps are counted on the way.
    private func identity(from headers: [HTTP2Header]) -> WorkloadIdentity {
        var id = WorkloadIdentity(identity: tlsPeer)
        guard !headers.isEmpty else { return id }
        let worker = self.worker
        let identityHeader = worker.configuration.plan.identityHeader
        // Read in place (a `for header in headers` copies each header, retaining and releasing its two strings).
        headers.withUnsafeBufferPointer { headers in
            for i in headers.indices {
                switch worker.kind(of: headers[i]) {
                case .workload:
                    // A configured identity header names the workload instead of the echo's stamp (recognise: header:NAME).
                    if identityHeader == nil { id.workload = headers[i].value }
                case .version:
                    id.version = headers[i].value
                case .cluster:
                    id.cluster = headers[i].value
                case .identity:
                    if id.identity.isEmpty { id.identity = headers[i].value }
                case .grpcStatus, .grpcMessage, .grpcEncoding, .other:
                    break
                case let kind:
                    worker.result.recordUpstreamStamp(kind, headers[i].value)
                }
                if let identityHeader, equal(headers[i].name, identityHeader) { id.workload = headers[i].value }
            }
        }
        return id
    }

    /// The `HealthCheckResponse.status` of a health check's answer (its one message, decompressed as `grpc-encoding`
    /// says); 0 (UNKNOWN) when there is no message or it does not decode.
    static func servingStatus(_ body: ByteBuffer?, headers: [HTTP2Header]) -> Int {
        guard let body else { return 0 }
        let encoding = headers.first { equal($0.name, "grpc-encoding") }?.value
        guard let message = (try? GRPCMessageFraming.messages(in: body, encoding: encoding))?.first else { return 0 }
        return GRPCHealthCheck.servingStatus(reply: message) ?? 0
    }

    /// Records a response; for a flow step, sends the iteration's next step on this connection (before the
    /// worker can decide that nothing is left in flight), or counts it when the connection cannot carry it.
    private func recordResponse(token: UInt64, status: Int, headers: [HTTP2Header], body: ByteBuffer?,
                                canContinue: Bool, flush: Bool, at time: UInt64? = nil) {
        guard let ticket = untrack(token) else { return }
        let worker = self.worker
        let id = identity(from: headers)
        // As the failure signatures and flows read them; made only for them (not per response).
        var fields: [(name: String, value: String)] { headers.map { ($0.name, $0.value) } }
        if lifecycle.responded() { worker.targetAnswered(targetIndex) }
        var failure: FailureClass?
        let stamped = !id.workload.isEmpty || !id.version.isEmpty
        if stamped {
            worker.sawStamps = true
        }
        // A gRPC call counts by its grpc-status; its grpc-message is the text a proxy's signature looks for (Envoy
        // answers a gRPC call's local reply with the same words in grpc-message as in an HTTP body).
        var code = status
        var grpcMessage: String?
        var grpcAnswer = false
        if worker.isGRPC {
            var grpcStatus: String?
            headers.withUnsafeBufferPointer { headers in
                for i in headers.indices {
                    switch worker.kind(of: headers[i]) {
                    case .grpcStatus: grpcStatus = headers[i].value
                    case .grpcMessage: grpcMessage = headers[i].value
                    default: break
                    }
                }
            }
            (code, grpcMessage) = GRPCMetadata.responseCode(httpStatus: status, grpcStatus: grpcStatus, grpcMessage: grpcMessage)
            grpcAnswer = grpcStatus != nil
            // A health check's OK answer counts by the serving status it carries: anything but SERVING fails.
            if worker.isHealthCheck, code == ResponseCode.grpc(.ok) {
                code = ResponseCode.health(servingStatus: Self.servingStatus(body, headers: headers))
            }
        }
        if ResponseCode.healthStatus(code) != nil {
            // The server's health service said so, whoever stamps its answers.
            failure = FailureClass(origin: .application, reason: ResponseCode.text(code))
        } else if !ResponseCode.succeeded(code) {
            let text = grpcMessage
                ?? body.map { String(decoding: $0.readableBytesView.prefix(HTTP1ClientHandler.errorBodyPrefix), as: UTF8.self) } ?? ""
            // A gRPC server answers some calls itself, without the handler's metadata (DEADLINE_EXCEEDED,
            // UNIMPLEMENTED, a request it cannot decode, an interceptor's refusal): an unstamped gRPC status that no
            // proxy signature claims is of unknown origin, not a proxy's.
            failure = worker.configuration.plan.signatures.classify(
                status: code, headers: fields, body: text, stamped: stamped,
                stampsExpected: !grpcAnswer && (worker.sawStamps || worker.configuration.plan.identityHeader != nil))
            // An answer with no grpc-status at all, whose code meshprobe made INTERNAL: said so, not the server's 13.
            // After the workload's stamped headers, who ended the call is not known (a proxy's timeout, the server).
            if worker.isGRPC, !grpcAnswer, code == ResponseCode.grpc(.internal) {
                failure = FailureClass(origin: .unknown, reason: stamped ? FailureClass.Reason.endedAfterHeaders : FailureClass.Reason.noGRPCStatus)
                if stamped, grpcMessage == nil {
                    grpcMessage = "the call ended after the workload's headers without a grpc-status: cut by a proxy (a timeout) or ended by the server"
                }
            }
        }
        worker.recordResponse(status: code, ticket: ticket, identity: id, failure: failure, failureMessage: grpcMessage, target: targetIndex,
                              connection: observedConnection, at: time, slot: &identitySlot)
        if ticket.iteration != nil,
           let next = worker.continueFlow(ticket, status: status, headers: fields, body: body, identity: id) {
            if canContinue {
                sendContinuation(next, flush: flush)
            } else {
                recordFailure(.connectionLost, ticket: next, message: "the server closed the HTTP/1.1 connection in the middle of an iteration")
            }
        }
        worker.requestFinished()
    }

    /// Sends an iteration's next step on this connection at once (it does not take a new request from the worker).
    private func sendContinuation(_ ticket: LoadWorker.Ticket, flush: Bool) {
        let token = track(ticket)
        let request = worker.request(for: self, ticket: ticket)
        if let problem = worker.unsendable(request, ticket: ticket) {
            _ = untrack(token)
            recordFailure(.notSent, ticket: ticket, message: problem)
            return
        }
        var sent = false
        if let session, session.availableStreams > 0 {
            sent = session.send(request, authority: authority, token: token)
            if sent && flush { session.flush() }
        }
        if sent {
            worker.sentFlowStep()
        } else {
            _ = untrack(token)
            recordFailure(.notSent, ticket: ticket, message: "the connection could not carry the next step of an iteration")
        }
    }

    /// A request without a response is counted under the connection's TLS peer only: which workload would have
    /// answered is not known (behind a proxy that routes each request, not the one that answered the last).
    private func recordFailure(_ kind: ErrorKind, ticket: LoadWorker.Ticket, message: String) {
        let id = tlsPeer.isEmpty ? nil : WorkloadIdentity(identity: tlsPeer)
        // Lost because meshprobe closed the connection after a timeout: how long it would have taken is unknown.
        let abandoned = lifecycle.closedForTimeout && kind != .requestTimeout
        worker.recordError(kind, identity: id ?? .unknown, explanation: message, intended: ticket.intended, target: targetIndex,
                           route: ticket.iteration.map { $0.step + 1 } ?? 0, waitedSince: ticket.intended, abandoned: abandoned)
        if observedConnection >= 0, let observer = worker.configuration.connectionObserver { observer.failed(connection: observedConnection) }
        worker.requestFinished()
    }
}

extension LoadConnection: HTTP2ClientDelegate {
    func http2ConnectionReady(_ connection: HTTP2ClientConnectionHandler) {
        if state == .handshaking {
            // A peer whose first SETTINGS allow no streams at all cannot carry a request: a failed connection, not
            // one that waits for ever.
            guard connection.availableStreams > 0 else {
                closeReason = (.protocolError, "\(target.authority) allows no concurrent streams (SETTINGS_MAX_CONCURRENT_STREAMS 0)")
                channel?.close(promise: nil)
                return
            }
            becameReady()
        } else {
            pump(flush: true)
        }
    }

    func http2Response(_ connection: HTTP2ClientConnectionHandler, token: UInt64, response: HTTP2Response) {
        if deliveryTime == 0 { deliveryTime = worker.now() }
        // A local: a delivery nested in this one (a close, say) ends by clearing `deliveryTime`.
        let t = deliveryTime
        lastAnswered = t
        recordResponse(token: token, status: response.status, headers: response.headers, body: response.body, canContinue: true,
                       flush: false, at: t)
        afterCompletion(flush: false, at: t)
    }

    func http2DeliveryEnded(_ connection: HTTP2ClientConnectionHandler) {
        deliveryTime = 0
    }

    /// Write coalescing held these requests until now: their latency counts from now (the closed model) or their
    /// service latency does (the open model, whose latency counts from the intended time anyway).
    func http2HeldRequestsWritten(_ connection: HTTP2ClientConnectionHandler, tokens: [UInt64]) {
        let t = worker.now()
        let closed = !worker.isOpenModel
        for token in tokens { inFlight.markWritten(token, at: t, intendedToo: closed) }
        worker.result.coalescedRequests += tokens.count
    }

    func http2StreamFailed(_ connection: HTTP2ClientConnectionHandler, token: UInt64, failure: HTTP2StreamFailure) {
        guard let ticket = untrack(token) else { return }
        if case .reset = failure { lastAnswered = worker.now() }
        let kind: ErrorKind
        let message: String
        switch failure {
        case .reset(let code):
            kind = .streamReset
            message = "the server reset the stream (RST_STREAM error code \(code))"
        case .refusedByGoAway(let last, let code):
            kind = .goAway
            message = "the server sent GOAWAY (last stream \(last), error code \(code)) before answering"
        case .connectionLost:
            lostWithConnection += 1
            if let reason = closeReason {
                kind = reason.kind
                message = reason.message
            } else {
                kind = .connectionLost
                message = "the connection closed with the request in flight"
            }
        case .protocolError(let text):
            kind = .protocolError
            message = "HTTP/2 protocol error: \(text)"
        }
        recordFailure(kind, ticket: ticket, message: message)
        afterCompletion(flush: false)
    }

    func http2GoAwayReceived(_ connection: HTTP2ClientConnectionHandler, errorCode: UInt32) {}

    /// The HTTP/2 handler consumes pipeline errors (a TLS alert after a TLS 1.3 handshake, for one) and hands
    /// them over here, before the channel's closure reaches `channelClosed`.
    func http2ConnectionClosed(_ connection: HTTP2ClientConnectionHandler, error: (any Error)?) {
        guard closeReason == nil, let error else { return }
        if let tlsError = error as? TLSError {
            closeReason = reason(tlsError)
        } else if let h2Error = error as? HTTP2ConnectionError {
            closeReason = (.protocolError, "\(h2Error)")
        } else {
            closeReason = (.connectionLost, "\(error)")
        }
    }
}

extension LoadConnection: HTTP1ClientDelegate {
    func http1Response(token: UInt64, status: Int, headers: HTTPHeaders, body: ByteBuffer?, keepAlive: Bool) {
        let continuing = h1?.pendingToken == nil
        recordResponse(token: token, status: status, headers: headers.map { HTTP2Header($0.name.lowercased(), $0.value) },
                       body: body, canContinue: keepAlive, flush: true)
        // A continuation now occupies the HTTP/1.1 connection: nothing else to start.
        if continuing, h1?.pendingToken != nil { return }
        if keepAlive {
            afterCompletion(flush: true)
        } else {
            channel?.close(promise: nil)
        }
    }

    func http1Closed(error: (any Error)?) {}
}

/// What a client connection's last handler tells: TLS completion, an error that reached the end, the closure.
protocol ConnectionEventsOwner: AnyObject {
    func handshakeCompleted(_ event: TLSHandshakeCompleted)
    func errorCaught(_ error: any Error)
    func channelClosed()
}

extension LoadConnection: ConnectionEventsOwner {}
extension ReflectionSession: ConnectionEventsOwner {}

/// Sits last in a client connection's pipeline (a load's, the reflection call's): forwards TLS completion, errors and
/// closure to the owner.
final class ConnectionEventsHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Any

    private let owner: any ConnectionEventsOwner

    init(owner: any ConnectionEventsOwner) {
        self.owner = owner
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let done = event as? TLSHandshakeCompleted {
            owner.handshakeCompleted(done)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        owner.errorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        owner.channelClosed()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

/// Equal strings, tested by length first: the HTTP/2 client hands the stamps' names over as the very strings they
/// are compared with (see `LoadWorker.internedHeaderNames`), and strings of different lengths are told apart without
/// a call into the standard library's comparison.
@inline(__always) func equal(_ a: String, _ b: String) -> Bool { a.utf8.count == b.utf8.count && a == b }
