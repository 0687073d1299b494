import MeshprobeIdentity
import MeshprobeLoad
import MeshprobePolicy
import MeshprobeSpec
import MeshprobeTLS
import NIOCore

/// How one try of an access cell ended, by who decided it: the workload answered (allowed), a proxy answered for it
/// with a denial (L7), the TLS handshake refused the caller, the connection was reset or closed after the handshake
/// (an L4 deny, or a STRICT port meeting plaintext), or nothing that decides (timeouts, 5xx, this prober refusing the
/// server).
public enum AccessTryKind: String, Sendable, CaseIterable, Comparable {
    case allowed
    case deniedL7 = "denied_l7"
    case refusedTLS = "refused_tls"
    case reset
    case inconclusive

    /// The decision a try of this kind shows; nil for an inconclusive one.
    public var decision: AccessDecision? {
        switch self {
        case .allowed: .allow
        case .deniedL7, .refusedTLS, .reset: .deny
        case .inconclusive: nil
        }
    }

    public static func < (a: AccessTryKind, b: AccessTryKind) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// What a cell's tries showed: each try's kind and origin, and the decision they agree on (nil when they do not,
/// or when any is inconclusive: a flaky network is not read as a decision).
public struct AccessObservation: Sendable, Equatable {
    /// Tries by kind and origin (`envoy RBAC: 403`, `TLS alert 'certificate required'`, `the workload answered 200`).
    public var tries: [Entry]
    /// The servers' SPIFFE IDs seen in the handshakes (the destination principal).
    public var servers: [String]

    public struct Entry: Sendable, Equatable {
        public var kind: AccessTryKind
        public var origin: String
        public var count: Int
    }

    public var total: Int { tries.reduce(0) { $0 + $1.count } }

    /// The decision every try shows; nil when one is inconclusive or they disagree.
    public var decision: AccessDecision? {
        let decisions = tries.filter { $0.count > 0 }.map(\.kind.decision)
        guard !decisions.isEmpty, !decisions.contains(nil), let first = decisions.first, decisions.allSatisfy({ $0 == first }) else { return nil }
        return first
    }

    /// The most frequent origin, as the cell's one-word answer names it.
    public var mainOrigin: String? { tries.max { ($0.count, $1.origin) < ($1.count, $0.origin) }?.origin }

    /// The tries in words, most frequent first: `3 denied_l7 (envoy RBAC: 403)`.
    public var summary: String {
        tries.sorted { ($0.count, $1.kind, $1.origin) > ($1.count, $0.kind, $0.origin) }
            .map { "\($0.count) \($0.kind.rawValue) (\($0.origin))" }.joined(separator: ", ")
    }

    /// Whether a response came from the workload: its stamp (or the configured identity header) says who it is.
    static func stamped(_ identity: WorkloadIdentity) -> Bool { !identity.workload.isEmpty || !identity.version.isEmpty }

    /// Classifies a cell's load (one request per connection) try by try, from its counts.
    /// - Parameter stampsExpected: the target stamps its answers (some cell's answers carried the workload's stamp).
    ///   Then an unstamped 3xx is a proxy's redirect (an auth proxy's way to deny) and an unstamped 2xx decides
    ///   nothing; without stamps anywhere, a 2xx or 3xx is the answer of whatever the target is, an allow.
    public init(_ r: LoadResult, stampsExpected: Bool = false) {
        var entries: [String: Entry] = [:]
        func add(_ kind: AccessTryKind, _ origin: String, _ n: Int) {
            guard n > 0 else { return }
            entries["\(kind.rawValue)|\(origin)", default: Entry(kind: kind, origin: origin, count: 0)].count += n
        }
        for (identity, stats) in r.identities {
            if Self.stamped(identity) {
                // The workload itself answered, whatever its status: the mesh let the request through.
                for (status, n) in stats.statuses { add(.allowed, "the workload answered \(status)", n) }
                continue
            }
            for (status, n) in stats.statuses where ResponseCode.succeeded(status) {
                switch (stampsExpected, status) {
                case (false, _): add(.allowed, "\(status) response", n)
                case (true, 300..<400): add(.deniedL7, "a redirect (\(status)) without the workload's stamp", n)
                default: add(.inconclusive, "\(status) without the workload's stamp", n)
                }
            }
        }
        for (failure, stats) in r.failedResponses {
            switch failure.origin {
            case .application:
                // Counted above, with the workload's other answers.
                break
            case .unknown where failure.reason == FailureClass.Reason.endedAfterHeaders:
                // Its headers carried the workload's stamp: counted above too.
                break
            case .proxy where failure.reason == FailureClass.Reason.accessDenied:
                add(.deniedL7, "\(failure.proxy ?? "a proxy") denial" + (failure.flag.map { " (\($0))" } ?? ""), stats.count)
            default:
                add(.inconclusive, failure.description, stats.count)
            }
        }
        for (kind, n) in r.errors {
            let why = r.errorExplanations[kind].map { ": \($0)" } ?? ""
            switch kind {
            case .tlsPeerRejectedCertificate, .tlsHandshakeFailed:
                // The alert names the refusal (`certificate required`, `unknown CA`, `bad certificate`).
                let explanation = r.errorExplanations[kind] ?? ""
                if let start = explanation.range(of: "alert '"), let end = explanation[start.upperBound...].firstIndex(of: "'") {
                    add(.refusedTLS, "TLS alert '\(explanation[start.upperBound..<end])'", n)
                } else {
                    add(.refusedTLS, "TLS handshake ended by the server (\(kind.rawValue)\(why))", n)
                }
            case .wrongScheme:
                add(.refusedTLS, "the port answered in TLS: plaintext refused", n)
            case .connectionLost, .streamReset, .goAway:
                add(.reset, "\(kind.rawValue) before a response", n)
            default:
                add(.inconclusive, "\(kind.rawValue)\(why)", n)
            }
        }
        tries = entries.values.sorted { ($0.kind, $0.origin) < ($1.kind, $1.origin) }
        servers = r.peerIdentities.keys.sorted()
    }

    public init(tries: [Entry], servers: [String] = []) {
        self.tries = tries
        self.servers = servers
    }
}

/// The access procedure: every cell of `expect.access` sent `attempts` times as its caller, each try on a fresh
/// connection, and judged against the declared decision.
public enum AccessCheck {
    public struct CellOutcome: Sendable {
        public var cell: AccessCell
        public var observation: AccessObservation
        /// PASS, FAIL or undecided, and why in words.
        public var passed: Bool
        public var decided: Bool
        public var reason: String?
        public var seconds: Double
    }

    public struct Outcome: Sendable {
        public var expectation: AccessExpectation
        public var cells: [CellOutcome]
        /// The SPIFFE ID each caller presented (its TLS context's), by caller.
        public var callerIDs: [AccessCaller: String] = [:]
    }

    /// Why a caller cannot be tried (no SVID for it), before anything is sent.
    public struct MissingCaller: Error, CustomStringConvertible {
        public var caller: AccessCaller
        public var source: String
        public var description: String {
            "\(source): no SVID for the caller \(caller): add it to identities (svidDir, or cert and key), or use the identity section's own SPIFFE ID"
        }
    }

    /// Judges a cell's observation against its declaration.
    public static func judge(_ cell: AccessCell, _ observation: AccessObservation) -> (passed: Bool, decided: Bool, reason: String?) {
        guard let expected = cell.expected else { return (false, false, "not checked: \(cell.notChecked ?? "no decision declared")") }
        guard observation.total > 0 else { return (false, false, "undecided: no try was made") }
        guard let observed = observation.decision else {
            if observation.tries.allSatisfy({ $0.kind == .inconclusive }) {
                return (false, false, "undecided: no try decided (\(observation.summary))")
            }
            return (false, false, "undecided: the tries do not show one decision (\(observation.summary)); "
                + "a cell is decided only when every try says the same")
        }
        if observed == expected { return (true, true, nil) }
        return (false, true, "declared \(expected.rawValue), but \(observed == .allow ? "allowed" : "denied"): \(observation.summary)")
    }

    /// Runs every cell. `callers` holds the TLS context of each caller with an SVID and of `anonymous`; `plaintext`
    /// needs none. The base configuration gives the target, timeouts and headers.
    public static func run(_ expectation: AccessExpectation, configuration: LoadConfiguration, callers: [AccessCaller: TLSContext],
                           group: any EventLoopGroup, onCell: @Sendable (AccessCell) -> Void = { _ in }) async throws -> Outcome {
        for cell in expectation.cells where cell.caller != .plaintext && callers[cell.caller] == nil {
            throw MissingCaller(caller: cell.caller, source: cell.source)
        }
        var runs: [(cell: AccessCell, result: LoadResult, seconds: Double)] = []
        for cell in expectation.cells {
            // After a signal every cell is still listed: the ones not tried are undecided ("no try was made").
            if Task.isCancelled {
                runs.append((cell, LoadResult(), 0))
                continue
            }
            onCell(cell)
            let c = Self.configuration(configuration, cell: cell, attempts: expectation.attempts, tls: callers[cell.caller])
            let started = ContinuousClock.now
            let result = try await LoadGenerator(configuration: c, group: group).run()
            runs.append((cell, result, (ContinuousClock.now - started) / .seconds(1)))
        }
        // Whether the target stamps its answers is known once every cell has run.
        let stampsExpected = configuration.plan.identityHeader != nil
            || runs.contains { $0.result.identities.contains { AccessObservation.stamped($0.key) && $0.value.requests > 0 } }
        let outcomes = runs.map { run in
            let observation = AccessObservation(run.result, stampsExpected: stampsExpected)
            let (passed, decided, reason) = judge(run.cell, observation)
            return CellOutcome(cell: run.cell, observation: observation, passed: passed, decided: decided, reason: reason, seconds: run.seconds)
        }
        var ids: [AccessCaller: String] = [:]
        for (caller, tls) in callers { if let id = tls.localIdentity?.description { ids[caller] = id } }
        return Outcome(expectation: expectation, cells: outcomes, callerIDs: ids)
    }

    /// 401 and 403 replies no known signature names, from a proxy the report cannot name.
    static let unidentifiedDenials = [401, 403].map {
        ProxySignature(proxy: "unidentified proxy", reason: FailureClass.Reason.accessDenied, flag: String($0), status: $0)
    }

    /// One cell's load: `attempts` requests, one per fresh connection, to the target's host (the request's port when
    /// it names one), over TLS as the caller or in plaintext.
    static func configuration(_ base: LoadConfiguration, cell: AccessCell, attempts: Int, tls: TLSContext?) -> LoadConfiguration {
        var c = base
        guard let first = base.plan.targets.first else { return c }
        let (target, headers) = cell.sent(to: first, headers: base.plan.headers)
        if cell.caller == .plaintext {
            // HTTP/1.1, the plaintext every port that takes plaintext reads (h2c's preface is HTTP/2's alone).
            c.plan.httpVersion = .http1
        }
        c.plan.targets = [target]
        c.plan.method = cell.request.method
        c.plan.headers = headers
        c.plan.requests = attempts
        c.plan.duration = nil
        c.plan.connections = 1
        c.plan.streamsPerConnection = 1
        c.plan.churn = .perRequest
        c.plan.model = .closedAsFastAsPossible
        c.plan.warmup = 0
        c.plan.guards = []
        c.plan.thresholds = []
        c.plan.flow = []
        c.plan.csv = nil
        // After the known signatures: an unstamped 401 or 403 is a denial by whatever answered for the workload.
        c.plan.signatures.signatures += Self.unidentifiedDenials
        // The prober's own SVID keeps the run's rotating source (the Workload API's, rewritten files); any other caller
        // presents its own context, never the source's.
        if let source = c.tlsSource, cell.caller == .plaintext || tls?.localIdentity == nil || tls?.localIdentity != source.current.localIdentity {
            c.tlsSource = nil
        }
        c.tls = cell.caller == .plaintext ? nil : tls
        return c
    }
}
