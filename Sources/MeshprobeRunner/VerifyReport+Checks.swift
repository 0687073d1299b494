import Foundation
import MeshprobeChecks
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobePolicy
import MeshprobeReport
import MeshprobeSpec
import MeshprobeStatistics
import MeshprobeYAML

/// The verify result (`VerifyReport`, in MeshprobeReport) built from the policy's checks and procedures.
extension VerifyReport {
    /// The split verdicts of a policy's routes.
    package init(policy: Policy, outcomes: [PolicyVerification.Outcome]) {
        self.init(file: policy.file)
        verdicts = outcomes.map { outcome in
            let statistics = outcome.route.statistics
            let e = outcome.evidence
            let samples = e.samples
            let counts = e.counts
            let sampling = Self.sampling(outcome)
            var evidence = Evidence(
                requests: samples, counts: counts, declared: outcome.route.weights.mapValues { $0 / 100 },
                observed: counts.mapValues { samples > 0 ? (Double($0) / Double(samples) * 10000).rounded() / 10000 : 0 },
                tolerance: statistics.tolerance, falseFailRate: statistics.falseFailRate, missRate: statistics.missRate,
                test: e.unit == .connection
                    ? "sequential test on connections: test martingales per destination (Bonferroni over destinations), bets sized by the measured clustering"
                    : "sequential probability ratio tests per destination on responses (Bonferroni over destinations)",
                truncated: e.truncated, unsuccessfulResponses: outcome.unsuccessful,
                matchHeaders: Dictionary(outcome.route.matchHeaders.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a }),
                matchPath: outcome.route.matchPath, matchMethod: outcome.route.matchMethod,
                match: outcome.route.conditions.map(\.description), connections: outcome.result.connectionsEstablished,
                propagation: outcome.propagation.map {
                    Propagation(settled: $0.settled, seconds: ($0.seconds * 1000).rounded() / 1000, requests: $0.requests,
                                connections: $0.connections, windows: $0.windows)
                })
            evidence.sampling = sampling
            if !outcome.unsuccessfulByDestination.isEmpty { evidence.unsuccessfulByDestination = outcome.unsuccessfulByDestination }
            if !outcome.trajectory.isEmpty {
                evidence.trajectory = outcome.trajectory.map { TrajectoryPoint(samples: $0.samples, counts: $0.counts) }
            }
            var reason: String?
            // A server refused for its identity or certificate is a decided failure, whatever the split would have been;
            // a server refusing the prober's certificate leaves the split undecided (undecidedSplitReason says why).
            let refusal = outcome.verdict == nil ? outcome.result.serverIdentityRefusal.map { $0 + ": the split was not measured" } : nil
            var verdict = outcome.verdict
            if case .fail? = verdict, let failing = Self.failingDestinationReason(counts: counts, unsuccessful: outcome.unsuccessfulByDestination,
                                                                                  declared: evidence.declared, tolerance: statistics.tolerance) {
                verdict = nil
                reason = failing
            } else if case .fail? = verdict,
                      let down = Self.unattributedFailuresReason(
                          counts: counts, unattributed: outcome.unsuccessful - outcome.unsuccessfulByDestination.values.reduce(0, +),
                          declared: evidence.declared, tolerance: statistics.tolerance, failures: outcome.result.failureSummary()) {
                verdict = nil
                reason = down
            } else if case .fail? = verdict, e.unit == .connection,
               let keyed = Self.clientKeyedReason(counts: counts, declared: evidence.declared, routing: outcome.route.routing.rawValue,
                                                  connections: e.connections) {
                verdict = nil
                reason = keyed
            }
            switch verdict {
            case .fail(let why, _)?:
                reason = why
                if e.unit == .request && e.connections < 30 {
                    reason! += "; the responses came from only \(e.connections) connections: if the proxy routes per connection (an L4 balancer), "
                        + "they are not independent samples (routing: auto)"
                }
            case .pass?:
                break
            case nil:
                reason = reason ?? refusal ?? Self.undecidedSplitReason(outcome)
            }
            return Verdict(name: outcome.route.name, passed: verdict?.passed == true, decided: verdict != nil || refusal != nil,
                           reason: reason, evidence: evidence)
        }
        passed = verdicts.allSatisfy(\.passed)
        decided = verdicts.allSatisfy(\.decided)
    }

    /// Why a split has no verdict, with the figures.
    static func undecidedSplitReason(_ outcome: PolicyVerification.Outcome) -> String {
        let e = outcome.evidence
        if let misconfiguration = outcome.misconfiguration {
            return "undecided: \(misconfiguration)" + (outcome.result.failureSummary().map { "; failures: \($0)" } ?? "")
        }
        if let refused = outcome.result.clientIdentityRefusal { return "undecided: \(refused): the split was not measured" }
        if outcome.contradictsPerRequestRouting {
            return "undecided: routing was declared per request, but responses cluster by connection (\(e.clustering?.summary ?? "")): "
                + "the stated error rates do not hold for these samples; use routing: auto"
        }
        var text = e.truncated
            ? "undecided: the request cap came before the test decided (\(e.samples) successful responses on \(e.connections) connections)"
            : "undecided: the run ended after \(e.samples) successful responses on \(e.connections) connections"
        if let failures = outcome.result.failureSummary() { text += "; failures: \(failures)" }
        return text
    }

    /// The sampling facts of a split verdict.
    static func sampling(_ outcome: PolicyVerification.Outcome) -> Sampling {
        let e = outcome.evidence
        let c = e.clustering
        let routing = outcome.route.routing
        let m = outcome.requestsPerConnection.filter { $0 > 0 }
        let perConnectionText = m.isEmpty ? "" : m.count == 1 || Set(m).count == 1 ? " of \(m[0]) requests each"
            : " of \(m[0]) requests each, then \(m.last!) once the connections showed clustering"
        var words: String
        switch routing {
        case .perRequest:
            words = "routing declared per request: each response counted as an independent sample (\(e.samples) responses on \(e.connections) connections)"
        case .perConnection:
            words = "routing declared per connection: one request per connection, each connection one sample (\(e.connections) connections)"
        case .auto:
            words = "unit: the connection (the error rates hold for any routing): \(e.connections) connections\(perConnectionText)"
            if let rho = c?.correlation, (c?.connections ?? 0) >= 10 {
                // Named only when the count of mixed connections says so (a point estimate of rho is noisy).
                let clustered = c?.contradictsPerRequestRouting() ?? false
                words += clustered ? (rho >= 0.5 ? "; routing looks per connection" : "; requests partly cluster by connection")
                    : rho <= 0.1 ? "; routing looks per request" : ""
            }
        }
        if let c, c.connections > 0 { words += "; " + c.summary }
        if let n = e.effectiveSamples { words += String(format: "; worth %.0f independent responses", n) }
        return Sampling(routing: routing.rawValue, unit: e.unit.rawValue, connections: e.connections,
                        requestsPerConnection: outcome.requestsPerConnection, effectiveSamples: e.effectiveSamples.map { ($0 * 10).rounded() / 10 },
                        pairedConnections: c?.connections ?? 0, mixedConnections: c?.mixedConnections ?? 0,
                        expectedMixedConnections: c?.expectedMixedConnections.map { ($0 * 10).rounded() / 10 },
                        correlation: c?.correlation.map { ($0 * 1000).rounded() / 1000 }, assumption: words,
                        tests: e.unit == .connection ? e.tests : nil)
    }

    /// Adds the mTLS verdict (no sequential test: every response must show the expected caller).
    package mutating func add(_ check: CallerCheck) {
        let evidence = Evidence.facts(
            requests: check.responses, counts: check.seen, declared: [check.expected: 1],
            observed: check.seen.mapValues { check.responses > 0 ? Double($0) / Double(check.responses) : 0 },
            test: "every response's caller (x-meshprobe-caller) must be the expected SPIFFE ID")
        appendVerdict(Verdict(kind: "mtls", name: "mTLS in effect (caller \(check.expected.isEmpty ? "unknown" : check.expected))",
                              passed: check.passed, decided: check.decided, reason: check.reason, evidence: evidence))
    }

    /// Adds one verdict per access cell (kind `access`), named by caller and request, with the SPIFFE ID each caller
    /// presented (`foreign`'s, the prober's own).
    package mutating func add(_ outcome: AccessCheck.Outcome) {
        for cell in outcome.cells {
            let o = cell.observation
            var evidence = Evidence.facts(
                requests: o.total, counts: Dictionary(o.tries.map { ("\($0.kind.rawValue): \($0.origin)", $0.count) }, uniquingKeysWith: +),
                declared: [:], observed: [:],
                test: "\(counted(outcome.expectation.attempts, "try", plural: "tries")) on fresh connections; decided when every try shows one decision",
                declaredAt: cell.cell.source)
            let request = cell.cell.request
            evidence.access = AccessCellEvidence(
                caller: cell.cell.caller.description, callerID: outcome.callerIDs[cell.cell.caller], method: request.method, path: request.path,
                headers: request.headers.isEmpty ? nil : request.headers, port: request.port,
                expected: cell.cell.expected?.rawValue ?? "unknown", observed: o.decision?.rawValue ?? "inconclusive",
                origin: o.mainOrigin ?? "no try", servers: o.servers,
                tries: o.tries.map { AccessCellEvidence.Try(kind: $0.kind.rawValue, origin: $0.origin, count: $0.count) })
            appendVerdict(Verdict(kind: "access", name: cell.cell.name, passed: cell.passed, decided: cell.decided, reason: cell.reason,
                                  evidence: evidence))
        }
    }

    /// Adds the circuit-breaker verdicts: one per check of the procedure.
    package mutating func add(_ outcome: CircuitBreakerCheck.Outcome) {
        let e = outcome.expectation
        var declared: [String: Double] = ["max_requests": Double(e.maxRequests)]
        if let pending = e.maxPending { declared["max_pending"] = Double(pending) }
        if let hold = e.hold { declared["hold_ms"] = hold * 1000 }
        let site = DeclarationSite(e.source)
        for check in outcome.checks {
            add(check, name: "circuit breaker (\(site.name))", declared: declared,
                test: "limits are per client proxy: each caller's sidecar counts on its own (envoy#24579, istio#37009); "
                    + "this is one client's view", declaredAt: site.position)
        }
        if let series = outcome.overTime, !outcome.checks.isEmpty {
            verdicts[verdicts.count - 1].evidence.overTime = OverTime(series)
        }
    }

    /// Adds one connection-pool check (kind `circuit_breaker`) as it was judged: decided or not, on its requests, at
    /// its scope.
    package mutating func add(_ check: ProcedureCheck, name: String, declared: [String: Double], test: String, declaredAt: String?) {
        appendProcedureCheck(kind: "circuit_breaker", name: "\(name): \(check.name)", passed: check.passed, decided: check.decided,
                             reason: check.reason, requests: check.requests, observed: check.evidence, declared: declared, test: test,
                             scope: check.scope, declaredAt: declaredAt)
    }

    /// Adds the retry and timeout verdicts: one per check of the procedure (kind `retries` or `timeout`).
    package mutating func add(_ outcome: RetryCheck.Outcome) {
        let e = outcome.expectation
        var declared: [String: Double] = [:]
        if let attempts = e.attempts { declared["attempts"] = Double(attempts) }
        if let perTry = e.perTryTimeout { declared["per_try_timeout_ms"] = perTry * 1000 }
        if let timeout = e.timeout { declared["timeout_ms"] = timeout * 1000 }
        let site = DeclarationSite(e.source)
        for check in outcome.checks {
            let kind = check.kind ?? "retries"
            appendProcedureCheck(kind: kind, name: "\(kind) (\(site.name)): \(check.name)", passed: check.passed, decided: check.decided,
                                 reason: check.reason, observed: check.evidence, declared: declared,
                                 test: "retryOn \(e.retryOn); tries counted by the echo per x-request-id (exact with one upstream "
                                     + "endpoint); times within max(50 ms, 10%), later by up to Envoy's default retry back-off",
                                 declaredAt: site.position)
        }
    }

    /// Adds the concurrent-retry verdict.
    package mutating func add(_ outcome: RetryBudgetCheck.Outcome) {
        let site = DeclarationSite(outcome.expectation.source)
        add(outcome.check, name: "connection pool (\(site.name))", declared: ["max_retries": Double(outcome.expectation.maxRetries)],
            test: "every request fails with a retried status at several times the limit in concurrent requests; the echo stamps its retries in flight",
            declaredAt: site.position)
    }

    /// Adds the requests-per-connection verdict.
    package mutating func add(_ outcome: ConnectionReuseCheck.Outcome) {
        let site = DeclarationSite(outcome.expectation.source)
        add(outcome.check, name: "connection pool (\(site.name))",
            declared: ["max_requests_per_connection": Double(outcome.expectation.maxRequestsPerConnection)],
            test: "the echo stamps which request each one is on its connection; the most any upstream connection carried",
            declaredAt: site.position)
    }

    /// Adds the outlier-detection verdicts: one per check, the timeline with the last.
    package mutating func add(_ outcome: OutlierDetectionCheck.Outcome) {
        let e = outcome.expectation
        let declared: [String: Double] = [
            "consecutive_errors": Double(e.consecutiveErrors), "interval_s": e.interval, "base_ejection_s": e.baseEjectionTime,
            "max_ejection_percent": e.maxEjectionPercent, "jitter": e.jitter,
        ]
        let site = DeclarationSite(e.source)
        for (index, check) in outcome.checks.enumerated() {
            var evidence = Evidence.facts(
                requests: check.requests, declared: declared, observed: check.evidence,
                test: "one workload made to fail through its control API, one request at a time at \(YAMLValue.format(e.rate))/s; "
                    + "ejection is per client proxy (each caller's sidecar counts its own errors)", scope: "client proxy",
                declaredAt: site.position)
            if index == outcome.checks.count - 1 {
                evidence.timeline = outcome.timeline.map { TimelineEvent(at: $0.at, event: $0.what) }
            }
            appendVerdict(Verdict(kind: "outlier_detection", name: "outlier detection (\(site.name)): \(check.name)",
                                  passed: check.decided && check.passed, decided: check.decided, reason: check.reason, evidence: evidence))
        }
    }

    /// Adds the cluster verdict (every listed cluster answered at least once; avoided ones never).
    package mutating func add(_ check: ClusterCheck) {
        let total = check.seen.values.reduce(0, +)
        var declared: [String: Double] = [:]
        for c in check.reach { declared[c] = 1 }
        for c in check.avoid { declared[c] = 0 }
        let evidence = Evidence.facts(
            requests: total, counts: check.seen, declared: declared,
            observed: check.seen.mapValues { total > 0 ? Double($0) / Double(total) : 0 },
            test: "responses by the echo's cluster stamp: reach >= 1 each, avoid = 0 each")
        var name: [String] = []
        if !check.reach.isEmpty { name.append("reach \(check.reach.joined(separator: ", "))") }
        if !check.avoid.isEmpty { name.append("avoid \(check.avoid.joined(separator: ", "))") }
        append(kind: "clusters", name: "clusters: \(name.joined(separator: "; "))", passed: check.passed, reason: check.reason,
               evidence: evidence)
    }

    /// Adds an SLO verdict: decided by a bound at the stated error rates, or undecided with the figures.
    package mutating func add(_ check: SLOCheck) {
        var declared = ["limit": check.limit]
        if let percentile = check.percentile { declared["percentile"] = percentile }
        var evidence = Evidence.facts(
            requests: check.samples, declared: declared,
            observed: ["observed": check.observed, "interval_low": check.interval.low, "interval_high": check.interval.high,
                       "log_evidence_pass": check.logEvidence.pass, "log_evidence_fail": check.logEvidence.fail]
                .merging(check.samplesToPass.map { ["samples_to_pass": Double($0)] } ?? [:]) { a, _ in a },
            test: "sequential bound on the share of \(check.unit == .connection ? "connections' requests" : "requests") "
                + (check.percentile == nil ? "that succeed" : "at or under the ceiling")
                + " (mixture test martingales, anytime valid; unit: \(check.unit.rawValue))")
        evidence.falseFailRate = check.falseFailRate
        evidence.missRate = check.missRate
        let verdict = Verdict(kind: "slo", name: "SLO: \(check.name)", passed: check.passed, decided: check.decided, reason: check.reason,
                              evidence: evidence)
        appendVerdict(verdict)
    }
}

extension VerifyReport.OverTime {
    /// A circuit-breaker procedure's series as the verify result keeps it (times to the millisecond).
    init(_ series: CircuitBreakerCheck.OverTime) {
        func ms(_ t: Double) -> Double { (t * 1000).rounded() / 1000 }
        self.init(interval: series.interval,
                  phases: series.phases.map { Phase(name: $0.name, concurrency: $0.concurrency, start: ms($0.start), end: ms($0.end)) },
                  points: series.points.map {
                      Point(at: ms($0.at), held: $0.held, succeeded: $0.succeeded, overflow: $0.overflow, failed: $0.failed)
                  })
    }
}
