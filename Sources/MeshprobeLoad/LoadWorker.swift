import Foundation
import Dispatch
import MeshprobeGRPC
import MeshprobeHTTP2
import MeshprobeIdentity
import MeshprobeSpec
import NIOCore

/// The part of a load run that lives on one event loop: its connections, its share of the request budget and of
/// the rate or concurrency, and its own `LoadResult`, merged with the other loops' at the end. No locks:
/// everything here runs on `eventLoop`.
final class LoadWorker {
    /// A request the worker lets a connection send: when it was meant to leave and when it did.
    struct Ticket {
        var intended: UInt64
        var sent: UInt64
        /// The multi-step iteration this request belongs to (nil outside flows).
        var iteration: FlowIteration? = nil
    }

    /// One run through a flow's steps: where it is and what it has extracted so far.
    final class FlowIteration {
        var step = 0
        var variables: [String: String]
        init(variables: [String: String]) { self.variables = variables }
    }

    let eventLoop: any EventLoop
    /// HTTP/2 write coalescing for this loop's connections (`LoadPlan.effectiveCoalesceWindow`); nil when off.
    let writeCoalescer: HTTP2WriteCoalescer?
    let configuration: LoadConfiguration
    var result = LoadResult()
    private var connections: [LoadConnection] = []
    /// Which requests may start, and when: exactly one of the two is set, by the configuration's model.
    private var open: OpenAdmission?
    private var closed: ClosedAdmission?
    /// The requests in flight on all connections: the sum of their in-flight tables, changed only with them
    /// (`LoadConnection.track` and `untrack`).
    var inFlightTotal = 0
    /// The run in time. It starts at once in the closed model; in the open model once the connections are up, so
    /// that the first arrivals do not wait for handshakes.
    private var clock: RunClock
    /// Connecting, running, stopping, finished (see `WorkerLifecycle`).
    private var lifecycle = WorkerLifecycle()
    /// The worker has handed its result over: nothing it or its connections see counts any more.
    var finished: Bool { lifecycle.isFinished }
    private let promise: EventLoopPromise<LoadResult>
    private var sweepTask: Scheduled<Void>?
    /// The last failed connection attempt of any slot: it names an outage, and the requests left when every slot
    /// gives up.
    private(set) var lastConnectionFailure: (kind: ErrorKind, message: String)?

    /// This worker's share of the run's connections (and of its rate or concurrency).
    private let share: Double
    /// When the last sweep ran (the unreachable time is counted from sweep to sweep).
    private var lastSweep: UInt64 = 0
    /// The run's evidence of each target answering, shared with the other workers (see `TargetEvidence`).
    let evidence: TargetEvidence
    /// The explanations given before a target first answered that guessed at why it did not (a TLS port, an L4
    /// proxy refusing), by target: replaced once the target has answered, here or on another worker.
    private var guesses: [Int: String] = [:]

    /// A connection to `index` answered for the first time.
    func targetAnswered(_ index: Int) {
        evidence.connectionAnswered(index)
        withdrawGuess(index)
    }

    func hasAnswered(_ index: Int) -> Bool { evidence.hasAnswered(index) }


    /// `message` explained a close of `index` by a guess that an answer from the target disproves.
    func guessed(_ message: String, target index: Int) { guesses[index] = message }

    private func withdrawGuess(_ index: Int) {
        guard let guess = guesses.removeValue(forKey: index) else { return }
        let authority = configuration.plan.targets[index].authority
        for (kind, text) in result.errorExplanations where text == guess {
            result.errorExplanations[kind] = "\(authority) closed connections with a request in flight, without answering it (it answered others)"
        }
    }

    /// A connection attempt failed (refused, timed out, closed before it could carry or answer a request).
    func connectionFailed(_ kind: ErrorKind, _ message: String) {
        result.recordConnectionFailure(kind, explanation: message)
        lastConnectionFailure = (kind, message)
    }

    // The open model's timer.
    /// The open model: requests have intended send times from an arrival schedule.
    var isOpenModel: Bool { open != nil }
    private var arrivalTask: NIOScheduledCallback?
    private var arrivalTimerDue: UInt64 = 0
    private var dispatchCursor = 0

    // The closed model's think time.
    let thinkTimeNanoseconds: UInt64
    /// Virtual users (closed model) waiting out their think time: they count against the concurrency target. The sum
    /// of the connections' counts, changed only with them (`LoadConnection.setThinking`).
    var thinking = 0
    private let thinkJitterNanoseconds: UInt64
    private var jitterRandom: SplitMix64

    // Multi-step flows.
    let flowSteps: [CompiledFlowStep]
    /// Flows with a JSON extraction, and one-shot requests that keep their response, need response bodies.
    let collectBodies: Bool
    /// gRPC: every request is a unary call, and a response's code is its `grpc-status` (`ResponseCode`).
    let isGRPC: Bool
    /// gRPC health checks: an OK answer counts by the serving status in its message (`ResponseCode.health`), so their
    /// bodies are kept.
    let isHealthCheck: Bool
    /// The headers every gRPC call carries (before the run's metadata); empty for HTTP.
    private let grpcHeaders: [HTTP2Header]

    // Per-request templates.
    private let templates: CompiledRequestTemplates?
    private var templateValues: TemplateValues
    private let sequenceStep: UInt64

    init(eventLoop: any EventLoop, configuration: LoadConfiguration, budget: Int?, share: Double, index: Int, workers: Int,
         slots: [(target: Int, address: SocketAddress)], evidence: TargetEvidence, promise: EventLoopPromise<LoadResult>) {
        self.evidence = evidence
        self.share = share
        let phase = Double(index) / Double(workers)
        // Validated by LoadConfiguration.validate() before any worker starts.
        templates = (try? configuration.plan.compileTemplates()) ?? nil
        flowSteps = (try? configuration.plan.compileFlow()) ?? []
        isGRPC = configuration.plan.grpc != nil
        internedHeaderNames = EchoStamp.all + (isGRPC ? ["grpc-status", "grpc-message"] : []) + (configuration.plan.identityHeader.map { [$0] } ?? [])
        internedKinds = internedHeaderNames.map(KnownHeader.init(name:))
        isHealthCheck = configuration.plan.grpc?.method == GRPCCall.healthCheckMethod
        collectBodies = configuration.keepLastStepResponse || isHealthCheck
            || flowSteps.contains { $0.extract.contains { if case .json = $0.source { return true } else { return false } } }
        if configuration.countsPods { result.podsSeen = [:] }
        templateValues = TemplateValues(sequence: UInt64(index), seed: configuration.plan.seed &+ UInt64(index) &* 0x9E37_79B9, csv: configuration.plan.csv)
        sequenceStep = UInt64(workers)
        self.eventLoop = eventLoop
        let coalesceWindow = configuration.plan.effectiveCoalesceWindow
        self.writeCoalescer = coalesceWindow > 0
            ? HTTP2WriteCoalescer(eventLoop: eventLoop, window: .nanoseconds(Int64(coalesceWindow * 1e9)),
                                  policy: configuration.coalescePolicy) : nil
        self.configuration = configuration
        self.promise = promise
        let clock = RunClock(startingAt: Self.monotonicNanoseconds(), plannedDuration: configuration.plan.plannedDuration,
                             warmup: configuration.plan.warmup)
        self.clock = clock
        self.thinkJitterNanoseconds = UInt64(configuration.plan.thinkJitter * 1e9)
        self.jitterRandom = SplitMix64(seed: configuration.plan.seed &+ 0x4A17 &+ UInt64(index))
        switch configuration.plan.model {
        case .open(let rate, let process):
            open = OpenAdmission(rate: rate, process: process, budget: budget, share: share, phase: phase,
                                 seed: configuration.plan.seed, plannedDuration: configuration.plan.plannedDuration,
                                 fixedTick: configuration.plan.sendTick.map { UInt64(max(0, $0) * 1e9) })
            thinkTimeNanoseconds = 0
        case .closed(let profile, let think):
            closed = ClosedAdmission(budget: budget, deadline: clock.deadline, concurrency: profile, share: share, start: clock.start,
                                     warmupEnd: clock.warmupEnd)
            thinkTimeNanoseconds = UInt64(think * 1e9)
        }
        hasBudget = budget != 0
        var body: ByteBuffer?
        if let bytes = configuration.plan.body { body = ByteBuffer(bytes: bytes) }
        let grpcHeaders = configuration.plan.grpc.map { GRPCRequest.headers(for: $0, timeout: configuration.plan.requestTimeout) } ?? []
        self.grpcHeaders = grpcHeaders
        if let call = configuration.plan.grpc { body = GRPCRequest.body(for: call) }
        for (targetIndex, address) in slots {
            let target = configuration.plan.targets[targetIndex]
            var headers = grpcHeaders + configuration.plan.headers.map { HTTP2Header($0.name.lowercased(), $0.value) }
            if let body, grpcHeaders.isEmpty, !headers.contains(where: { $0.name == "content-length" }) {
                headers.append(HTTP2Header("content-length", String(body.readableBytes)))
            }
            let request = HTTP2Request(method: configuration.plan.method, scheme: target.scheme.rawValue,
                                       authority: target.authority, path: target.path, headers: headers, body: body)
            connections.append(LoadConnection(worker: self, target: target, targetIndex: targetIndex, address: address, request: request))
        }
    }

    /// The response headers an HTTP/2 connection keeps (by name prefix; it drops the others as nghttp2 hands them
    /// over): the echo's stamps (`x-meshprobe-`), the configured identity header, the failure signatures' headers and
    /// the headers flow steps extract.
    var keptHeaderPrefixes: [String] {
        var names = ["x-meshprobe-"] + (configuration.plan.identityHeader.map { [$0] } ?? []) + configuration.plan.signatures.headerNames
        if isGRPC { names += ["grpc-status", "grpc-message"] + (isHealthCheck ? ["grpc-encoding"] : []) }
        for step in flowSteps {
            for e in step.extract { if case .header(let name) = e.source { names.append(name.lowercased()) } }
        }
        return names
    }

    /// The kept headers on most responses: the echo's stamps, a gRPC answer's status and message, the identity header.
    let internedHeaderNames: [String]

    /// What each of `internedHeaderNames` is, by its index (`HTTP2Header.known`).
    private let internedKinds: [KnownHeader]

    /// What a response header is: by its interned index when the HTTP/2 client gave one, else by its name.
    @inline(__always) func kind(of header: HTTP2Header) -> KnownHeader {
        header.known >= 0 && header.known < internedKinds.count ? internedKinds[header.known] : KnownHeader(name: header.name)
    }

    @inline(__always) func now() -> UInt64 { Self.monotonicNanoseconds() }

    /// CLOCK_MONOTONIC, read directly: `DispatchTime.now()` reads the same clock through libdispatch, and the
    /// worker reads it about twice per request.
    @inline(__always) static func monotonicNanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }

    /// The timeline second of an instant.
    @inline(__always) func second(of time: UInt64) -> Int { clock.second(of: time) }

    /// False for a worker whose share of the request budget is zero.
    private let hasBudget: Bool

    func start() {
        switch lifecycle.start(hasWork: !connections.isEmpty && hasBudget, waitsForConnections: open != nil) {
        case .finish:
            finish()
        case .connect(let awaitingThem):
            for connection in connections { connection.connect() }
            if awaitingThem {
                let limit = configuration.plan.connectTimeout
                eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(limit * 1e9))) { self.beginArrivals() }
            }
            scheduleSweep()
        }
    }

    /// Open model: starts the clock and the arrivals once every connection is ready or has failed (a target that is
    /// down is not waited for: its arrivals are due and counted), or after the connect timeout.
    private func beginArrivals() {
        guard lifecycle.connectionsSettled() else { return }
        let t = now()
        clock.restart(at: t)
        open?.begin(at: t, deadline: clock.deadline, warmupEnd: clock.warmupEnd)
        advanceArrivals()
    }

    /// A connection became ready.
    func connectionReady() {
        if lifecycle.isConnecting, connections.allSatisfy({ $0.state == .ready || $0.isFailing }) { beginArrivals() }
    }

    /// A run with an end in time (a duration, or the open model's arrival schedule): its connections keep trying
    /// through an outage until then.
    var isBoundedByTime: Bool { clock.deadline != nil || open != nil }

    /// True while requests may still be started.
    var wantsMoreRequests: Bool {
        guard !lifecycle.isStopping else { return false }
        // Open model: arrivals due before the deadline are still sent after it, never dropped.
        if open != nil { return lifecycle.isConnecting || open!.wantsMore(at: 0) }
        // The clock is read only when a deadline needs it (this runs after every response).
        return closed!.wantsMore(at: closed!.deadline != nil ? now() : 0)
    }

    // MARK: handing out requests

    /// The next think time: the configured one, spread uniformly by the jitter.
    func nextThinkTime() -> UInt64 {
        guard thinkJitterNanoseconds > 0 else { return thinkTimeNanoseconds }
        let span = 2 * thinkJitterNanoseconds + 1
        return thinkTimeNanoseconds - thinkJitterNanoseconds + jitterRandom.next() % span
    }

    /// Why a rendered request cannot go on the wire, or nil. Static parts were checked before the run; a template
    /// (a CSV row, an environment variable, an extracted value) can still produce a header value with CR, LF or NUL,
    /// or a path with a space, which neither HTTP/1.1 nor HTTP/2 can carry.
    func unsendable(_ request: HTTP2Request, ticket: Ticket) -> String? {
        guard templates != nil || ticket.iteration != nil else { return nil }
        if let bad = request.headers.first(where: { $0.value.utf8.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0 } }) {
            return "the value of header \(bad.name) rendered from its template contains CR, LF or NUL: \(bad.value.debugDescription)"
        }
        if request.path.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) {
            return "the path rendered from its template contains a space or a control character: \(request.path.debugDescription)"
        }
        return nil
    }

    /// The request to send next on `connection` for `ticket`: its fixed request, one rendered from the templates,
    /// or the iteration's current flow step.
    @inline(__always) func request(for connection: LoadConnection, ticket: Ticket) -> HTTP2Request {
        if let iteration = ticket.iteration { return flowRequest(for: connection, iteration: iteration) }
        guard let templates else { return connection.request }
        var request = connection.request
        request.path = templates.paths[connection.targetIndex].render(&templateValues)
        var headers = grpcHeaders
        headers.reserveCapacity(grpcHeaders.count + templates.headers.count + 1)
        for (name, value) in templates.headers { headers.append(HTTP2Header(name, value.render(&templateValues))) }
        if let body = templates.body {
            let rendered = body.render(&templateValues)
            request.body = ByteBuffer(string: rendered)
            headers.append(HTTP2Header("content-length", String(rendered.utf8.count)))
        }
        request.headers = headers
        templateValues.advance(by: sequenceStep)
        return request
    }


    /// The next request a connection with a free stream may send at `t` (now, or the time of the delivery the
    /// connection is in, see `LoadConnection.deliveryTime`), or nil. The connection reports what became of it:
    /// `sent`, or `returnRequest` when it could not take it after all.
    @inline(__always) func nextRequest(at t: UInt64) -> (ticket: Ticket, admitted: Admitted)? {
        guard !lifecycle.isStopping else { return nil }
        let admitted = open != nil ? open!.admit(at: t, busy: 0) : closed!.admit(at: t, busy: inFlightTotal + thinking)
        guard let admitted else { return nil }
        let ticket = Ticket(intended: admitted.intended, sent: t,
                            iteration: flowSteps.isEmpty ? nil : FlowIteration(variables: configuration.plan.flowVariables))
        return (ticket, admitted)
    }

    /// A request from `nextRequest` went on the wire at `t`: it counts in its second, and in the open model its
    /// delay from the intended time (and whether and why it was late).
    @inline(__always) func sent(_ admitted: Admitted, at t: UInt64) {
        result.requestsSent += 1
        if admitted.scheduled {
            recordSend(intended: admitted.intended, at: t, reason: admitted.waited ?? .generatorLag)
        } else {
            result.bucket(second(of: t)) { $0.sent += 1 }
        }
    }

    /// A flow's next step went on the wire on the connection of its iteration (admitted with the iteration's first
    /// step, so it counts in no second of its own).
    func sentFlowStep() {
        result.requestsSent += 1
    }

    /// A connection could not send a request from `nextRequest` after all: it is owed again, as it was.
    func returnRequest(_ admitted: Admitted) {
        if open != nil { open!.putBack(admitted) } else { closed!.putBack(admitted) }
    }

    private func recordSend(intended: UInt64, at t: UInt64, reason: LateReason) {
        let delay = t > intended ? t - intended : 0
        _ = result.sendDelay.record(max(1, delay / 1000))
        let isLate = Double(delay) / 1e9 > configuration.lateThreshold
        if isLate, clock.counts(intended: intended) { result.late[reason, default: 0] += 1 }
        result.bucket(second(of: t)) { bucket in
            bucket.sent += 1
            if isLate { bucket.late += 1 }
        }
    }

    private func flowRequest(for connection: LoadConnection, iteration: FlowIteration) -> HTTP2Request {
        let step = flowSteps[iteration.step]
        templateValues.variables = iteration.variables
        var request = connection.request
        request.method = step.method
        request.path = step.path.render(&templateValues)
        var headers: [HTTP2Header] = []
        for (name, value) in step.headers { headers.append(HTTP2Header(name, value.render(&templateValues))) }
        if let body = step.body {
            let rendered = body.render(&templateValues)
            request.body = ByteBuffer(string: rendered)
            headers.append(HTTP2Header("content-length", String(rendered.utf8.count)))
        } else {
            request.body = nil
        }
        request.headers = headers
        if iteration.step == 0 { templateValues.advance(by: sequenceStep) }
        return request
    }

    /// After a flow step's response: takes its values and returns the ticket of the next step, or nil when the
    /// iteration is over (all steps done, a failed status, or a failed extraction, counted as its own kind).
    func continueFlow(_ ticket: Ticket, status: Int, headers: [(name: String, value: String)], body: ByteBuffer?,
                      identity: WorkloadIdentity) -> Ticket? {
        guard let iteration = ticket.iteration else { return nil }
        let step = flowSteps[iteration.step]
        let ok = ResponseCode.succeeded(status)
        if clock.counts(intended: ticket.intended) {
            let t = now()
            updateStep(step.name) { stats in
                stats.requests += 1
                if ok { stats.succeeded += 1 } else { stats.failed += 1 }
                _ = stats.latency.record(max(1, (t &- ticket.sent) / 1000))
            }
        }
        if configuration.keepLastStepResponse {
            result.lastStepResponse = StepResponse(step: step.name, status: status, body: body.map { Array($0.readableBytesView) } ?? [])
        }
        guard ok else { return nil }
        if !step.extract.isEmpty {
            let data = body.map { Data($0.readableBytesView) }
            for extraction in step.extract {
                guard let value = extraction.value(headers: headers, body: data) else {
                    updateStep(step.name) { $0.extractionFailures += 1 }
                    recordError(.extractionFailed, identity: identity,
                                explanation: "step '\(step.name)' could not take \(extraction.variable) from the response's \(extraction.source)",
                                intended: ticket.intended)
                    return nil
                }
                iteration.variables[extraction.variable] = value
            }
        }
        if iteration.step + 1 >= flowSteps.count {
            result.iterationsCompleted += 1
            result.lastIterationVariables = iteration.variables
            return nil
        }
        iteration.step += 1
        let t = now()
        return Ticket(intended: t, sent: t, iteration: iteration)
    }

    private func updateStep(_ name: String, _ body: (inout StepStats) -> Void) {
        body(&result.steps[name, default: StepStats()])
    }

    // MARK: the open model's arrivals

    /// Moves due arrivals into the backlog, hands the backlog to free connections, and sets the timer for the next.
    fileprivate func advanceArrivals() {
        guard open != nil, !lifecycle.isStopping else { return }
        let t = now()
        if arrivalTimerDue > 0, t > arrivalTimerDue {
            _ = result.loopLag.record(max(1, (t - arrivalTimerDue) / 1000))
        }
        let wake = open!.advance(to: t)
        dispatchBacklog()
        if let due = wake {
            arrivalTimerDue = due
            let delay = due > t ? due - t : 0
            // A scheduled callback, not a task: no promise and no closure to allocate on every tick.
            arrivalTask = try? eventLoop.assumeIsolated().scheduleCallback(in: .nanoseconds(Int64(delay)), handler: ArrivalTick(worker: self))
        } else {
            checkDone()
        }
    }

    /// Offers the backlog to connections round-robin until it is empty or every stream is busy.
    private func dispatchBacklog() {
        guard open!.waiting > 0 else { return }
        var anyReady = false
        for i in 0..<connections.count {
            let connection = connections[(dispatchCursor + i) % connections.count]
            if connection.state == .ready { anyReady = true }
            connection.pump(flush: true)
            if open!.waiting == 0 {
                dispatchCursor = (dispatchCursor + i + 1) % connections.count
                return
            }
        }
        open!.blocked(anyConnectionReady: anyReady)
    }

    // MARK: outcomes

    /// A request finished (response or failure): frees its concurrency slot and finishes the worker when done.
    @inline(__always) func requestFinished() {
        if !wantsMoreRequests { checkDone() }
    }

    /// The series counted so far, labelled (for a live metrics endpoint; the result keeps counting).
    func seriesSnapshot() -> IdentityMetrics {
        result.seriesTable.metrics(SeriesContext(configuration: configuration)).merging(result.metrics)
    }

    /// Records a response unless it belongs to the warm-up.
    /// `time`: when it arrived, if the caller has read the clock already (see `LoadConnection.deliveryTime`).
    func recordResponse(status: Int, ticket: Ticket, identity: WorkloadIdentity, failure: FailureClass?, failureMessage: String? = nil,
                        target: Int, connection: Int, at time: UInt64? = nil, slot: inout LoadResult.IdentitySlot?) {
        let t = time ?? now()
        guard clock.counts(intended: ticket.intended) else {
            result.warmupRequests += 1
            return
        }
        let latencyMicros = (t &- ticket.intended) / 1000
        result.recordResponse(status: status, latencyMicros: latencyMicros,
                              serviceMicros: (t &- ticket.sent) / 1000, identity: identity, second: second(of: t),
                              target: target, route: ticket.iteration.map { $0.step + 1 } ?? 0, failure: failure, slot: &slot)
        if let failure { result.recordFailure(failure, latencyMicros: latencyMicros, message: failureMessage) }
        if let observer = configuration.responseObserver, observer(identity, status, failure) {
            decided?()
        }
        if let observer = configuration.connectionObserver,
           observer.response(identity, status: status, latencyMicros: latencyMicros, connection: connection) {
            decided?()
        }
    }

    /// Some response of this worker carried an application stamp: unstamped failures are a proxy's.
    var sawStamps = false

    /// Set by the generator: ends the whole run early as decided (every worker stops starting requests).
    var decided: (@Sendable () -> Void)?

    /// Records failed requests unless they belong to the warm-up (`intended` nil: not tied to one request).
    /// `waitedSince`: for one request handed to a connection, where its latency starts (`Ticket.intended`);
    /// `abandoned`: meshprobe gave the request up with its connection (its wait is a lower bound).
    func recordError(_ kind: ErrorKind, identity: WorkloadIdentity?, count: Int = 1, explanation: String, intended: UInt64?,
                     target: Int = -1, route: Int = 0, waitedSince: UInt64? = nil, abandoned: Bool = false) {
        if let intended, !clock.counts(intended: intended) {
            result.warmupRequests += count
            return
        }
        let t = now()
        result.recordError(kind, identity: identity ?? .unknown, count: count, explanation: explanation, second: second(of: t),
                           target: target, route: route, latencyMicros: waitedSince.map { (t &- $0) / 1000 }, abandoned: abandoned)
    }

    func connectionStateChanged() {
        if lifecycle.isConnecting, connections.allSatisfy({ $0.state == .ready || $0.isFailing }) {
            beginArrivals()
            return
        }
        checkDone()
    }

    /// Holds the load where it is: the rate or concurrency stops following the stages and stays at its current
    /// value until the run ends (a guard's `hold` action).
    func hold() {
        guard !finished else { return }
        let t = now()
        if open != nil {
            // Before the clock starts there is nothing to hold: the schedule has not begun.
            guard lifecycle.begun else { return }
            arrivalTask?.cancel()
            if open!.hold(at: t) {
                advanceArrivals()
            } else {
                checkDone()
            }
        } else {
            _ = closed!.hold(at: t)
        }
    }

    /// Stops starting requests; in-flight requests get `grace` seconds, then count as aborted. `abort: false` is
    /// a decided end (a verdict reached), not an abort.
    func stop(grace: Double, abort: Bool = true) {
        guard lifecycle.stop(at: now(), grace: UInt64(grace * 1e9)) else { return }
        if abort { result.aborted = true }
        arrivalTask?.cancel()
        // Arrivals that were due but never left are counted, not dropped.
        if let waiting = open?.dropWaiting(), waiting > 0 {
            recordError(.notSent, identity: nil, count: waiting,
                        explanation: abort ? "the run was stopped before these due requests could be sent" : "the verdict was reached before these due requests were sent", intended: nil)
        }
        checkDone()
    }

    private func checkDone() {
        guard !finished else { return }
        if connections.allSatisfy(\.isDead) {
            // No connection can carry the rest: count it, named by the last connection failure (a stopped run
            // owes nothing more: what was waiting was counted when it stopped).
            let nextArrival = open?.nextArrival
            let unsent: Int
            if lifecycle.isStopping {
                unsent = open?.dropWaiting() ?? 0
                _ = open?.giveUp(begun: true)
                _ = closed?.giveUp(begun: true)
            } else if open != nil {
                unsent = open!.giveUp(begun: lifecycle.begun)
            } else {
                unsent = closed!.giveUp(begun: true)
            }
            let reason = lastConnectionFailure ?? (.notSent, "no connection could be established")
            if unsent > 0 {
                result.recordError(reason.kind, identity: .unknown, count: unsent, explanation: reason.message)
            }
            if !lifecycle.isStopping, unsent > 0 || nextArrival != nil || clock.isBeforeDeadline(now()) {
                let tries = configuration.maxConsecutiveConnectFailures
                result.endedEarly = "every connection failed \(tries) time\(tries == 1 ? "" : "s") in a row (last: \(reason.kind.rawValue): \(reason.message))"
                    + (unsent > 0 ? "; the requests left are counted under \(reason.kind.rawValue)" : "")
            }
            finish()
            return
        }
        if !wantsMoreRequests && inFlightTotal == 0 {
            finish()
        }
    }

    /// Why open-model arrivals were given up: every stream was busy (the requests in flight held them: a target that
    /// slowed down or held them, or a rate beyond what connections x streams carry at its latency) or no connection
    /// was ready.
    static func notSentExplanation(timeout: Double, reason: LateReason) -> String {
        let why = switch reason {
        case .noConnection: "no connection was ready to send them on"
        default: "every stream was busy with requests in flight: the target slowed down or held them, or the rate is more than "
            + "connections x streams can carry at its latency"
        }
        return "waited more than \(numberText(timeout))s for a free stream (\(reason.rawValue)): \(why)"
    }

    private func scheduleSweep() {
        let due = now() + 50_000_000
        sweepTask = eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(50)) {
            let t = self.now()
            if t > due { _ = self.result.loopLag.record(max(1, (t - due) / 1000)) }
            self.sweep()
        }
    }

    /// Periodic housekeeping: request timeouts, arrivals stuck in the backlog, concurrency ramps, the deadline,
    /// the abort grace period.
    private func sweep() {
        guard !finished else { return }
        let t = now()
        // The closed model sends nothing while no connection is up: the time every slot of this worker spent failing
        // (refused, reset, given up) while the run wanted requests is counted, weighted by its share of the run, so
        // that the verdicts can tell an outage from a quiet run (`LoadResult.unreachableSeconds`).
        if open == nil, lastSweep > 0, lifecycle.begun, !lifecycle.isStopping, clock.counts(intended: t), wantsMoreRequests,
           connections.allSatisfy(\.isFailing) {
            result.unreachableSeconds += Double(t &- lastSweep) / 1e9 * share
        }
        lastSweep = t
        let timeoutNs = UInt64(configuration.plan.requestTimeout * 1e9)
        if t > timeoutNs {
            let cutoff = t - timeoutNs
            // A gRPC call's deadline is the server's too (grpc-timeout): its DEADLINE_EXCEEDED is waited for a little
            // beyond it, so that a server that keeps its deadlines is not raced.
            let inFlightCutoff = isGRPC ? t - min(t, timeoutNs + UInt64(GRPCRequest.deadlineGrace(configuration.plan.requestTimeout) * 1e9)) : cutoff
            for connection in connections where connection.inFlightCount > 0 {
                connection.expireRequests(olderThan: inFlightCutoff)
            }
            // Arrivals that waited longer than the timeout for a free stream were never sent.
            if let expired = open?.expire(olderThan: cutoff), expired > 0 {
                // Their latency counts from the intended time (the open model): each is at least the timeout old.
                if let failure = lastConnectionFailure, !connections.contains(where: { $0.state == .ready }) {
                    // An outage: no connection to send them on, named by why.
                    recordError(failure.kind, identity: nil, count: expired, explanation: failure.message, intended: cutoff,
                                waitedSince: cutoff, abandoned: true)
                } else {
                    recordError(.notSent, identity: nil, count: expired,
                                explanation: Self.notSentExplanation(timeout: configuration.plan.requestTimeout, reason: open!.waitingReason),
                                intended: cutoff, waitedSince: cutoff, abandoned: true)
                }
            }
        }
        // Past the end of the schedule with no connection up: the arrivals still waiting are counted now, named by
        // the last connection failure, instead of holding the run for the request timeout.
        if let waiting = open?.waiting, waiting > 0, open!.nextArrival == nil, let deadline = clock.deadline, t >= deadline,
           let failure = lastConnectionFailure, !connections.contains(where: { $0.state == .ready }) {
            recordError(failure.kind, identity: nil, count: open!.dropWaiting(), explanation: failure.message, intended: nil)
        }
        if lifecycle.drainIsOver(at: t) {
            for connection in connections { connection.shutdown(inFlightAs: .aborted) }
            finish()
            return
        }
        if closed?.movesWithTime == true {
            // The concurrency target moves with time: let idle slots start.
            for connection in connections { connection.pump(flush: true) }
        }
        checkDone()
        if !finished { scheduleSweep() }
    }

    /// The seconds this worker has finished counting, handed to the generator, which merges them over workers.
    func collectSeconds() -> (buckets: [TimelineBucket], current: Int) {
        // Once finished, the rest travels with the result the worker handed over.
        if finished { return ([], Int.max) }
        // Before the open model's clock starts (connections still coming up) no second is finished: the clock
        // will restart at zero.
        if !lifecycle.begun { return ([], 0) }
        let current = second(of: now())
        return (result.takeOpenSeconds(before: current), current)
    }

    func progress() -> LoadGenerator.Progress {
        let t = now()
        return LoadGenerator.Progress(responses: result.responses, succeeded: result.succeeded, failed: result.failed,
                                      inFlight: inFlightTotal, sent: result.requestsSent, errors: result.errors,
                                      late: result.late.values.reduce(0, +), warmupRequests: result.warmupRequests,
                                      identities: result.identities.mapValues(\.requests),
                                      clock: lifecycle.begun ? Double(t &- min(t, clock.start)) / 1e9 : nil,
                                      targetRate: open?.targetRate(at: t, begun: lifecycle.begun))
    }

    private func finish() {
        guard lifecycle.finish() else { return }
        sweepTask?.cancel()
        arrivalTask?.cancel()
        writeCoalescer?.stop()
        // Throughput counts from the end of the warm-up.
        let t = now()
        result.elapsedSeconds = clock.measuredSeconds(at: t)
        for index in guesses.keys where evidence.hasAnswered(index) { withdrawGuess(index) }
        result.sawStamps = sawStamps
        for connection in connections { connection.shutdown(inFlightAs: .aborted) }
        // Each connection holds this worker strongly; a channel still closing keeps its connection (and so this
        // worker) alive until its close callback has run, then everything goes.
        connections.removeAll()
        result.labelSeries(SeriesContext(configuration: configuration))
        promise.succeed(result)
    }
}

/// The open model's send tick: runs the worker's arrivals on its event loop.
private struct ArrivalTick: NIOScheduledCallbackHandler {
    let worker: LoadWorker

    func handleScheduledCallback(eventLoop: some EventLoop) {
        worker.advanceArrivals()
    }
}
