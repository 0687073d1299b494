import Foundation
import MeshprobeEchoAPI
import MeshprobeHTTP1
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeSpec
import MeshprobeTLS
import NIOCore
import NIOHTTP1
import NIOPosix

/// A client of one echo workload's control API (`/.meshprobe/faults`): `meshprobe fault`, the outlier-detection
/// check and game days set and clear faults through it. Each call is one HTTP/1.1 exchange on a connection of its own
/// (`HTTP1Exchange`), over mTLS with the caller's SVID when `tls` is given; the context's peer rules check the echo.
public struct FaultClient: Sendable {
    /// One answer of the echo: its status and body, whatever the status.
    public struct Answer: Sendable, Equatable {
        public var status: Int
        public var body: [UInt8]

        public init(status: Int, body: [UInt8]) {
            self.status = status
            self.body = body
        }
    }

    /// The echo's base URL as given (`https://HOST:PORT`), for messages.
    public var url: String
    var target: LoadTarget
    public var tls: TLSContext?
    /// The caller's rotating identity (the Workload API's, watched SVID files): each call takes its current context,
    /// so that a fault set early is cleared with the SVID valid then. Wins over `tls`.
    public var tlsSource: TLSContextSource?
    /// How long to wait for an answer.
    public var timeout: Double = 10
    /// How long an answer may still take once the calling task is cancelled (an aborted step): a fault set meanwhile
    /// is found by its label.
    public static let graceOnCancel = 0.25

    /// Checks the URL: the echo's base URL, nothing after the port.
    public init(url: String, tls: TLSContext?) throws(FaultClientError) {
        do {
            target = try LoadTarget(parsing: url)
        } catch {
            throw .badInput(error.description)
        }
        guard target.path == "/" else {
            throw .badInput("URL '\(url)': give the echo's base URL, https://HOST:PORT (the API is at \(FaultControlJSON.apiPath))")
        }
        self.url = url
        self.tls = tls
    }

    /// A client whose every call presents `tlsSource`'s current context.
    public init(url: String, tlsSource: TLSContextSource?) throws(FaultClientError) {
        try self.init(url: url, tls: nil)
        self.tlsSource = tlsSource
    }

    /// Sends one request and returns the answer whatever its status; no answer at all is `.unreachable`.
    public func send(_ method: String, _ path: String, json body: String? = nil, group: any EventLoopGroup) async throws(FaultClientError) -> Answer {
        var target = self.target
        target.path = path
        var tls: TLSContext?
        if target.scheme == .https {
            guard let given = tlsSource?.current ?? self.tls else {
                throw .badInput(LoadPlanError(field: "URL", value: target.description, reason: "https needs a TLS configuration").description)
            }
            tls = try Self.http1(given)
        }
        let answer: HTTP1Exchange.Response
        do {
            answer = try await HTTP1Exchange.response(
                HTTPMethod(rawValue: method), host: target.host, port: target.port, path: path,
                headers: body == nil ? [:] : ["content-type": "application/json"], body: body ?? "", tls: tls,
                connectTimeout: .nanoseconds(Int64(min(5, timeout) * 1e9)), timeout: .nanoseconds(Int64(timeout * 1e9)),
                graceOnCancel: .nanoseconds(Int64(Self.graceOnCancel * 1e9)), group: group)
        } catch {
            let why = "cannot reach the echo at \(url): \(Self.explain(error, target: target))"
            throw Self.neverConnected(error) ? .notConnected(why) : .unreachable(why)
        }
        return Answer(status: Int(answer.status.code), body: answer.body)
    }

    /// The caller's TLS context offering HTTP/1.1 alone by ALPN, so that the echo answers the exchange's protocol.
    static func http1(_ tls: TLSContext) throws(FaultClientError) -> TLSContext {
        if tls.configuration.applicationProtocols == ["http/1.1"] { return tls }
        var configuration = tls.configuration
        configuration.applicationProtocols = ["http/1.1"]
        do { return try TLSContext(configuration: configuration) } catch { throw .badInput(error.description) }
    }

    /// No connection was made (refused, no route, the connect timed out): the request never left.
    static func neverConnected(_ error: any Error) -> Bool {
        if let e = error as? ChannelError, case .connectTimeout = e { return true }
        return error is IOError || error is NIOConnectionError
    }

    /// Why no answer came, named as the load engine names a failed connection (`KIND: why`).
    static func explain(_ error: any Error, target: LoadTarget) -> String {
        if neverConnected(error) {
            let (kind, why) = target.connectFailure(error)
            return "\(kind.rawValue): \(why)"
        }
        if let failure = error as? HTTP1Exchange.Failure, failure.timedOut {
            return "\(ErrorKind.requestTimeout.rawValue): \(failure.description)"
        }
        return "\(error)"
    }

    /// Sets one fault; the echo's answer with its id.
    public func set(_ fault: FaultControlJSON.NewFault, group: any EventLoopGroup) async throws(FaultClientError) -> FaultControlJSON.Fault {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body: String
        do { body = String(decoding: try encoder.encode(fault), as: UTF8.self) } catch { throw .badInput("\(error)") }
        return try Self.decode(try await send("POST", FaultControlJSON.apiPath, json: body, group: group), from: url)
    }

    /// Clears one fault (by id), every fault set with `label`, or every fault (both nil); how many were cleared.
    @discardableResult
    public func clear(id: String? = nil, label: String? = nil, group: any EventLoopGroup) async throws(FaultClientError) -> Int {
        let answer: FaultControlJSON.Cleared = try Self.decode(try await send("DELETE", Self.path(id: id, label: label), group: group), from: url)
        return answer.cleared
    }

    /// The active faults; with `label`, those set with it (an echo that predates labels lists every fault).
    public func list(label: String? = nil, group: any EventLoopGroup) async throws(FaultClientError) -> [FaultControlJSON.Fault] {
        let answer: FaultControlJSON.List = try Self.decode(try await send("GET", Self.path(label: label), group: group), from: url)
        return answer.faults
    }

    /// `/.meshprobe/faults`, `/.meshprobe/faults/ID` or `/.meshprobe/faults?label=LABEL` (a label needs no escaping).
    public static func path(id: String? = nil, label: String? = nil) -> String {
        if let id { return FaultControlJSON.apiPath + "/" + id }
        return FaultControlJSON.apiPath + (label.map { "?label=" + $0 } ?? "")
    }

    /// A 2xx answer's JSON body; a refusal becomes `.refused` (or `.rejected` for a 400) with the echo's reason.
    public static func decode<Body: Decodable>(_ response: Answer, from url: String) throws(FaultClientError) -> Body {
        let data = Data(response.body)
        guard (200..<300).contains(response.status) else {
            let problem = try? JSONDecoder().decode(FaultControlJSON.Problem.self, from: data)
            let reason = FaultControlJSON.printable(problem?.error ?? String(decoding: data.prefix(512), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines))
            let message = "the echo at \(url) answered \(response.status): \(reason.isEmpty ? "(no reason given)" : reason)"
            throw response.status == 400 ? .rejected(message, field: problem?.field) : .refused(message, status: response.status)
        }
        do {
            return try JSONDecoder().decode(Body.self, from: data)
        } catch {
            throw .refused("the echo at \(url) answered \(response.status) with a body that is not the control API's JSON", status: response.status)
        }
    }
}

/// Why a control-API call did not do what was asked.
public enum FaultClientError: Error, Sendable, CustomStringConvertible {
    /// The request could not be made as given (bad URL, bad TLS configuration).
    case badInput(String)
    /// The echo answered 400: the fault was malformed (the field it names, when it does).
    case rejected(String, field: String?)
    /// The echo refused (403 not on the allow list, 404 no control API, 409 too many faults, ...).
    case refused(String, status: Int)
    /// No answer at all: the request may have reached the echo.
    case unreachable(String)
    /// No connection could be made: the request never left.
    case notConnected(String)

    public var description: String {
        switch self {
        case .badInput(let m), .rejected(let m, _), .refused(let m, _), .unreachable(let m), .notConnected(let m): return m
        }
    }
}

/// Every fault a run has set and not yet cleared, across procedures: whatever happens (a failed step, an abort, a
/// signal), the run clears what is left here before it exits.
///
/// Every fault it sets carries the run's label, and every echo asked to set one is remembered before the request
/// goes: a fault whose answer never came (the run stopped while its POST was in flight) is found by the label.
/// After a signal, every request ends by the deadline.
// @unchecked: every access to `open` and `echoes` holds `lock`.
public final class FaultLedger: @unchecked Sendable {
    /// The label of every fault this ledger sets: the run's id.
    public let label: String
    public let deadline: StopDeadline
    private let lock = NSLock()
    private var open: [(client: FaultClient, fault: FaultControlJSON.Fault)] = []
    /// Echoes asked to set a fault and not yet seen free of the label, by URL, with when the last of those faults
    /// expires at the latest.
    private var echoes: [String: (client: FaultClient, expires: ContinuousClock.Instant)] = [:]

    public init(label: String = FaultLedger.newLabel(), deadline: StopDeadline = StopDeadline()) {
        self.label = label
        self.deadline = deadline
    }

    /// `PREFIX-` and 12 random hex digits: one run's label.
    public static func newLabel(prefix: String = "run") -> String {
        prefix + "-" + String((0..<12).map { _ in "0123456789abcdef".randomElement()! })
    }

    /// Sets a fault (with the ledger's label) and records it.
    public func set(_ fault: FaultControlJSON.NewFault, on client: FaultClient, group: any EventLoopGroup) async throws(FaultClientError) -> FaultControlJSON.Fault {
        // No fault is set after a signal: the run is ending, and what it set is about to be cleared.
        if Task.isCancelled { throw .unreachable("not sent to the echo at \(client.url): the run was stopped by a signal") }
        var fault = fault
        fault.label = label
        let lasts = Duration.seconds(fault.durationSeconds ?? FaultSettings.maxDurationSeconds)
        let before = lock.withLock { () -> (client: FaultClient, expires: ContinuousClock.Instant)? in
            let before = echoes[client.url]
            let expires = ContinuousClock.now + lasts
            echoes[client.url] = (client, max(expires, before?.expires ?? expires))
            return before
        }
        // In the caller's task: an aborted step cancels it (its answer then has `graceOnCancel` to come), and the
        // clearing after the step starts once it has ended.
        let set: FaultControlJSON.Fault
        do {
            set = try await client.bounded(by: deadline).set(fault, group: group)
        } catch {
            // A request that never left set nothing: the echo is not one to clear (unless an earlier fault was set).
            if case .notConnected = error { lock.withLock { echoes[client.url] = before } }
            throw error
        }
        lock.withLock { open.append((client, set)) }
        return set
    }

    /// Clears one fault, in a task of its own so that a cancelled caller (an aborted step) still clears it.
    public func clear(_ id: String, on client: FaultClient, group: any EventLoopGroup) async throws(FaultClientError) {
        try await request(client) { client throws(FaultClientError) in try await client.clear(id: id, group: group) }
        lock.withLock { open.removeAll { $0.client.url == client.url && $0.fault.id == id } }
    }

    /// Clears every fault still recorded, by id, then makes sure no fault with the label is left on any echo asked to
    /// set one (listing them, clearing by label what is listed, and listing again); what is left, each as `ID on URL:
    /// path PATH, expires in N s (why)` or, for an echo that could not be listed, `faults labelled LABEL on URL: ...`.
    public func clearAll(group: any EventLoopGroup) async -> [String] {
        var failures: [String: [String]] = [:]
        for (client, fault) in lock.withLock({ open }) {
            do {
                try await clear(fault.id, on: client, group: group)
            } catch {
                failures[client.url, default: []].append("\(fault.id) on \(client.url): path \(fault.path), expires in at most \(fault.expiresInSeconds) s (\(error))")
            }
        }
        var left: [String] = []
        for (url, echo) in lock.withLock({ echoes }).sorted(by: { $0.key < $1.key }) {
            do {
                let listed = try await clearLabelled(on: echo.client, group: group)
                if listed.isEmpty {
                    lock.withLock {
                        open.removeAll { $0.client.url == url }
                        if echoes[url]?.expires == echo.expires { echoes[url] = nil }
                    }
                }
                left += listed.map { "\($0.id) on \(url): path \($0.path), expires in \($0.expiresInSeconds) s (still listed with label \(label))" }
            } catch {
                let seconds = Int((OutlierDetectionCheck.seconds(echo.expires - .now)).rounded(.up))
                left += failures[url] ?? []
                left.append("faults labelled \(label) on \(url): not confirmed cleared, any expires within \(max(0, seconds)) s (\(error))")
            }
        }
        return left
    }

    /// The faults with the label left on an echo: listed, cleared by label when there are any, and listed again. An
    /// echo that predates labels lists faults without it (it refused the label when they were set: none is ours).
    private func clearLabelled(on client: FaultClient, group: any EventLoopGroup) async throws(FaultClientError) -> [FaultControlJSON.Fault] {
        let label = self.label
        let listed = try await request(client) { client throws(FaultClientError) in try await client.list(label: label, group: group) }
        if listed.isEmpty || listed.contains(where: { $0.label != label }) { return [] }
        try await request(client) { client throws(FaultClientError) in try await client.clear(label: label, group: group) }
        return try await request(client) { client throws(FaultClientError) in try await client.list(label: label, group: group) }
    }

    /// One control request in a task of its own, ended by the deadline. A request that failed while the client's SVID
    /// had expired (an identity feed that was down longer than the SVID's life) is sent once more after the feed
    /// delivers a new one, if it does before the deadline (at most `refreshWaitSeconds`).
    @discardableResult
    private func request<T: Sendable>(_ client: FaultClient,
                                      _ call: @escaping @Sendable (FaultClient) async throws(FaultClientError) -> T) async throws(FaultClientError) -> T {
        // Every call made here (list, clear) may be sent twice.
        do throws(FaultClientError) {
            return try await attempt(client, call)
        } catch {
            switch error {
            case .unreachable, .notConnected:
                guard await renewedIdentity(of: client) else { throw error }
                return try await attempt(client, call)
            case .badInput, .rejected, .refused:
                throw error
            }
        }
    }

    private func attempt<T: Sendable>(_ client: FaultClient,
                                      _ call: @escaping @Sendable (FaultClient) async throws(FaultClientError) -> T) async throws(FaultClientError) -> T {
        let client = try client.bounded(by: deadline)
        let outcome = await deadline.bound { () async -> Result<T, FaultClientError> in
            do throws(FaultClientError) { return .success(try await call(client)) } catch { return .failure(error) }
        }
        guard let outcome else { throw .unreachable("no answer from the echo at \(client.url) before the stop deadline") }
        return try outcome.get()
    }

    /// The longest wait for a new SVID before a control request is sent again.
    static let refreshWaitSeconds = 15.0

    /// Whether the client's identity had expired and its feed then delivered a new one (asked for at once).
    private func renewedIdentity(of client: FaultClient) async -> Bool {
        guard let source = client.tlsSource, let notAfter = source.current.localNotAfter, notAfter <= Date(),
              let seconds = deadline.secondsLeft(atMost: Self.refreshWaitSeconds) else { return false }
        let before = source.rotations.count
        source.requestRefresh()
        return await source.waitForRotation(after: before, timeout: .milliseconds(Int64(seconds * 1000)))
    }
}

extension FaultClient {
    /// This client with its timeout cut to the time left before `deadline`; no time left is `.unreachable`.
    func bounded(by deadline: StopDeadline) throws(FaultClientError) -> FaultClient {
        guard let seconds = deadline.secondsLeft(atMost: timeout) else {
            throw .unreachable("not sent to the echo at \(url): the stop deadline has passed")
        }
        var client = self
        client.timeout = seconds
        return client
    }
}
