import MeshprobeHistogram
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeSpec

/// A threshold's verdict on a finished load (`thresholds` in the JSON result), decided on the result itself so that a
/// merged result (shards, `merge`) is judged again on the merged counts and histograms.
///
/// A percentile needs at least `10 / (1 - p)` responses (10 beyond it: 200 for p95, 1000 for p99), or 10 responses
/// on the side of the limit that fails it (then more than the percentile allows are there, whatever the size): on
/// fewer, the value is little more than the largest few and the verdict is undecided, never a pass or a fail by
/// chance. An error-rate ceiling likewise needs `10 / limit` requests (1000 for 0.01) or 10 failures.
public struct ThresholdVerdict: Codable, Sendable, Equatable {
    /// As written, without spaces (`version=v2:p99<300ms`): the verdict's name in every report.
    public var threshold: String
    public var passed: Bool
    public var decided: Bool
    /// Why it failed or could not decide.
    public var reason: String?
    /// The responses (latency, rate) or requests (error rate) the value comes from.
    public var sample: Int
    /// Latency thresholds, in milliseconds.
    public var observedMs: Double?
    public var limitMs: Double?
    /// Error-rate thresholds, as fractions.
    public var observedFraction: Double?
    public var limitFraction: Double?
    /// Rate thresholds, per second.
    public var observedPerS: Double?
    public var limitPerS: Double?

    enum CodingKeys: String, CodingKey {
        case threshold, passed, decided, reason, sample
        case observedMs = "observed_ms"
        case limitMs = "limit_ms"
        case observedFraction = "observed_fraction"
        case limitFraction = "limit_fraction"
        case observedPerS = "observed_per_s"
        case limitPerS = "limit_per_s"
    }

    /// The observed value and the limit as a person reads them (`p95 212.4 ms against < 250 ms`).
    public var comparisonText: String {
        // Tenths of a millisecond, thousandths below 1 ms (a limit of 250us reads 0.25 ms, not 0).
        func ms(_ v: Double) -> String { "\(numberText(v < 1 ? (v * 1000).rounded() / 1000 : (v * 10).rounded() / 10)) ms" }
        if let limitMs {
            return observedMs.map { "\(ms($0)) (limit \(ms(limitMs)))" } ?? "no value (limit \(ms(limitMs)))"
        }
        if let limitFraction {
            func pct(_ v: Double) -> String { "\(numberText((v * 10000).rounded() / 100))%" }
            return observedFraction.map { "\(pct($0)) (limit \(pct(limitFraction)))" } ?? "no value (limit \(pct(limitFraction)))"
        }
        let limit = limitPerS ?? 0
        return observedPerS.map { "\(numberText(($0 * 10).rounded() / 10))/s (limit \(numberText(limit))/s)" } ?? "no value (limit \(numberText(limit))/s)"
    }
}

extension LoadReport {
    /// The least responses a percentile's value is judged on: 10 beyond it.
    static func minimumSample(percentile: Double) -> Int {
        Int((10 / (1 - percentile / 100) - 1e-6).rounded(.up))
    }

    /// The least requests an error-rate ceiling is judged on: 10 failures' worth at the limit (1000 for 0.01).
    static func minimumSample(errorRate limit: Double) -> Int {
        Int((10 / limit - 1e-6).rounded(.up))
    }

    /// Each threshold's verdict on this result.
    public func evaluate(_ thresholds: [LoadThreshold]) -> [ThresholdVerdict] {
        thresholds.map(evaluate)
    }

    /// A latency threshold counts the requests that failed without a response, each at the time it failed (a reset
    /// after 2 s waited 2 s), and says so.
    func evaluate(_ threshold: LoadThreshold) -> ThresholdVerdict {
        var verdict = evaluateCountingTimeouts(threshold)
        let unsent = unsentDuringOutage
        if unsent > 0, verdict.decided {
            switch threshold.metric {
            case .percentile, .mean, .max, .errorRate:
                // The closed model sent nothing while the target was unreachable: the requests it would have sent
                // failed or took longer than any limit, or would have; the verdict stands only if it is the same so.
                let with = evaluate(threshold, timedOut: nil, unsent: unsent)
                if !(with.decided && with.passed == verdict.passed) {
                    let words = threshold.metric == .errorRate ? "counting them as failed" : "counting them as longer than any limit"
                    verdict.reason = "the target could not be reached for \(numberText(summary.unreachableSeconds ?? 0))s of the "
                        + "\(numberText(summary.elapsedSeconds))s run (no connection up; the closed model sent nothing then): about "
                        + "\(counted(unsent, "request")) at the run's rate were not sent, whose outcome is unknown; without them it "
                        + "\(verdict.passed ? "passes" : "fails") (\(verdict.comparisonText)), \(words) it \(with.passed ? "passes" : "fails")"
                        + (with.decided ? "" : " or is undecided")
                    verdict.decided = false
                    verdict.passed = false
                    return verdict
                }
            default:
                break
            }
        }
        switch threshold.metric {
        case .percentile, .mean, .max:
            let failed = failedWithoutResponse(threshold.selector)
            guard failed.count > 0 else { break }
            verdict.reason = (verdict.reason.map { "\($0); " } ?? "")
                + "\(counted(failed.count, "request")) that failed without a response (\(failed.kinds)) counted at the time they failed"
        default:
            break
        }
        return verdict
    }

    /// A latency threshold counts the requests that timed out too: each took at least the timeout, and how much longer
    /// is unknown. The verdict stands when it is the same with them at the timeout and beyond any limit (an identity's
    /// threshold also counts, in the second, the timeouts no identity can be given, which may be its own); otherwise it
    /// is UNDECIDED, naming them.
    func evaluateCountingTimeouts(_ threshold: LoadThreshold) -> ThresholdVerdict {
        let plain = evaluate(threshold, timedOut: nil)
        switch threshold.metric {
        case .percentile, .mean, .max: break
        default: return plain
        }
        let (definite, maybe) = timedOutRequests(beside: threshold.selector)
        // An identity's threshold: the answers no identity can be given (a proxy's unstamped replies) may be its own too.
        let unattributed = threshold.selector.map(unattributed)
        let others = unattributed?.latency ?? LatencyHistogram.latency()
        // The requests meshprobe gave up without an answer (`histograms.abandoned`) took at least their wait so far:
        // counted so in the whole run's lower bound, beyond any limit in every upper bound (whose they were is not known).
        let abandoned = histograms.abandoned.map(ResultMerger.histogram) ?? LatencyHistogram.latency()
        let lost = Int(abandoned.totalCount)
        guard definite + maybe > 0 || others.totalCount > 0 || lost > 0 else { return plain }
        let lowExtra = threshold.selector == nil && lost > 0 ? abandoned : nil
        // Without a timeout on record (an older result), the responses alone are the lower bound.
        let low = meta.requestTimeoutSeconds.map { evaluate(threshold, timedOut: (definite, UInt64($0 * 1e6)), adding: lowExtra) }
            ?? evaluate(threshold, timedOut: nil, adding: lowExtra)
        let high = evaluate(threshold, timedOut: (definite + maybe + lost, Self.beyondAnyLimit), adding: others)
        guard low.decided else { return low }
        if high.decided && high.passed == low.passed {
            guard !low.passed else { return low }
            var failed = low
            if definite > 0, let t = meta.requestTimeoutSeconds {
                failed.reason = (failed.reason.map { "\($0); " } ?? "") + "\(counted(definite, "timed-out request")) counted at the timeout (\(numberText(t))s)"
            }
            if lowExtra != nil {
                failed.reason = (failed.reason.map { "\($0); " } ?? "")
                    + "\(counted(lost, "request")) given up without an answer counted at their wait so far"
            }
            return failed
        }
        var verdict = low
        verdict.decided = false
        verdict.passed = false
        let scope = threshold.selector.map { "\($0.field.rawValue)=\($0.value)" } ?? ""
        var othersText = ""
        if others.totalCount > 0 {
            let failedOthers = unattributed?.failedWithoutResponse ?? 0
            let answers = Int(others.totalCount) - failedOthers
            let what = switch (answers > 0, failedOthers > 0) {
            case (true, false): "\(counted(answers, "answer")) with no identity (a proxy's unstamped replies)"
            case (false, _): "\(counted(failedOthers, "request")) that failed without a response, with nothing to say whose"
            case (true, true): "\(counted(answers, "answer")) with no identity (a proxy's unstamped replies) and \(failedOthers) that failed without a response"
            }
            othersText = "\(what) may be \(scope)'s"
        }
        if lost > 0 {
            // Said in its own words: the lost requests' bounds are their waits, not the timeout.
            let timedOut = definite + maybe > 0 ? "\(counted(definite + maybe, "request")) timed out (at least the timeout"
                + (meta.requestTimeoutSeconds.map { ", \(numberText($0))s)" } ?? ")") + " and " : ""
            let lowWords = threshold.selector == nil
                ? "counting each at the least it can have taken" : "without the ones that may be another identity's"
            verdict.reason = (othersText.isEmpty ? "" : "\(othersText); ") + "\(timedOut)\(counted(lost, "request")) were given up by meshprobe "
                + "without an answer (lost with a connection it closed after a timeout, or no free stream within the timeout; at "
                + "least their wait so far, at most \(numberText((Double(abandoned.max) / 100).rounded() / 10)) ms): their latency is unknown; "
                + "\(lowWords) it \(low.passed ? "passes" : "fails") (\(low.comparisonText)), counting them as longer than any limit "
                + "it \(high.passed ? "passes" : "fails")"
            return verdict
        }
        let timeout = meta.requestTimeoutSeconds.map { " (at least the timeout, \(numberText($0))s)" } ?? " (the result does not say its timeout)"
        var which = switch (definite, maybe) {
        case (0, 0): ""
        case (_, 0): "\(counted(definite, "request")) timed out"
        case (0, _): "\(counted(maybe, "request")) timed out with nothing to say whose and may be \(scope)'s"
        default: "\(counted(definite, "request")) timed out, and \(maybe) more with nothing to say whose that may be \(scope)'s"
        }
        if !othersText.isEmpty { which += (which.isEmpty ? "" : "; ") + othersText }
        // What the lower bound counted: its own timed-out requests at the timeout (when known), never the maybe ones.
        let lowWords = switch (definite > 0 && meta.requestTimeoutSeconds != nil, maybe > 0) {
        case (true, false): "counting them at the timeout"
        case (true, true): "counting its own at the timeout and not the others"
        default: "without them"
        }
        let unknown = definite + maybe == 0 ? "" : (others.totalCount > 0 ? ": the timed-out ones' latency is unknown" : ": their latency is unknown") + timeout
        let highWords = switch (definite + maybe > 0, others.totalCount > 0) {
        case (true, false): "counting them all as longer than any limit"
        case (false, _): "counting them as its own"
        default: "counting the answers as its own and the timed-out ones as longer than any limit"
        }
        verdict.reason = "\(which)\(unknown); \(lowWords) it \(low.passed ? "passes" : "fails") "
            + "(\(low.comparisonText)), \(highWords) it \(high.passed ? "passes" : "fails")"
        return verdict
    }

    /// Latency values no limit reaches: the latency histogram's highest (an hour).
    static let beyondAnyLimit: UInt64 = 3_600_000_000

    /// The requests that timed out in a threshold's scope, and (for an identity's) those no identity can be given.
    func timedOutRequests(beside selector: LoadThreshold.Selector?) -> (definite: Int, maybe: Int) {
        let kind = ErrorKind.requestTimeout.rawValue
        guard let selector else { return (summary.errors[kind] ?? 0, 0) }
        let definite = workloads.filter { Self.field(selector.field, of: $0) == selector.value }.reduce(0) { $0 + ($1.errorKinds[kind] ?? 0) }
        let maybe = workloads.filter { Self.field(selector.field, of: $0) != selector.value && Self.unattributed($0, for: selector) }
            .reduce(0) { $0 + ($1.errorKinds[kind] ?? 0) }
        return (definite, maybe)
    }

    /// A row that says nothing about `selector`'s field: no stamp, and for an `identity` selector no peer either.
    static func unattributed(_ row: Workload, for selector: LoadThreshold.Selector) -> Bool {
        row.workload.isEmpty && row.version.isEmpty && row.cluster.isEmpty && (selector.field != .identity || row.identity.isEmpty)
    }

    /// The requests a latency threshold counts at the time they failed without a response, with their kinds
    /// (`stream_reset: 3`): for an identity's, those of its series (the series' latency has them); for the whole run,
    /// the client classes of `failures` that carry a latency (added to the responses' by `evaluate`).
    func failedWithoutResponse(_ selector: LoadThreshold.Selector?) -> (count: Int, kinds: String, latency: LatencyHistogram) {
        var latency = LatencyHistogram.latency()
        var kinds: [String: Int] = [:]
        if let selector {
            for row in series where row.labels.responseCode == 0 && Self.field(selector.field, of: row.labels) == selector.value {
                let h = ResultMerger.histogram(row.histogram)
                guard h.totalCount > 0 else { continue }
                latency.add(h)
                kinds[row.labels.failureClass.replacingOccurrences(of: "client:", with: ""), default: 0] += Int(h.totalCount)
            }
        } else {
            for failure in failures where failure.origin == FailureClass.Origin.client.rawValue {
                guard let text = failure.histogram else { continue }
                let h = ResultMerger.histogram(text)
                guard h.totalCount > 0 else { continue }
                latency.add(h)
                kinds[failure.reason, default: 0] += Int(h.totalCount)
            }
        }
        let text = kinds.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
        return (Int(latency.totalCount), text, latency)
    }

    /// The series that say nothing about `selector`'s field (no stamp; for `identity`, no peer): their latency (the
    /// answers', and the waits of the requests that failed without a response), and how many of those were failures.
    func unattributed(_ selector: LoadThreshold.Selector) -> (latency: LatencyHistogram, failedWithoutResponse: Int) {
        var h = LatencyHistogram.latency()
        var failed = 0
        for row in series where Self.field(selector.field, of: row.labels) != selector.value
            && row.labels.destinationWorkload.isEmpty && row.labels.destinationVersion.isEmpty && row.labels.destinationCluster.isEmpty
            && (selector.field != .identity || row.labels.destinationPrincipal.isEmpty) {
            let rowLatency = ResultMerger.histogram(row.histogram)
            h.add(rowLatency)
            if row.labels.responseCode == 0 { failed += Int(rowLatency.totalCount) }
        }
        return (h, failed)
    }

    /// Closed model: the requests the run would have sent while the target was unreachable (no connection up), at its
    /// rate while it was reachable; 0 when it always was.
    var unsentDuringOutage: Int {
        guard let unreachable = summary.unreachableSeconds, unreachable > 0, summary.elapsedSeconds > unreachable else { return 0 }
        return Int((Double(summary.requests) / (summary.elapsedSeconds - unreachable) * unreachable).rounded())
    }

    /// `timedOut`: requests to count as responses of that latency (microseconds), nil for none; `adding`: more responses;
    /// `unsent`: requests never sent, counted as failed and beyond any limit.
    func evaluate(_ threshold: LoadThreshold, timedOut: (count: Int, micros: UInt64)?, adding extra: LatencyHistogram? = nil,
                  unsent: Int = 0) -> ThresholdVerdict {
        var verdict = ThresholdVerdict(threshold: threshold.text, passed: false, decided: false, sample: 0)
        let scope = threshold.selector.map { "\($0.field.rawValue)=\($0.value)" }
        let elapsed = summary.elapsedSeconds
        // What the threshold is about: every response, or one identity's.
        var requests: Int, failed: Int
        var latency: LatencyHistogram
        if let selector = threshold.selector {
            let rows = workloads.filter { Self.field(selector.field, of: $0) == selector.value }
            requests = rows.reduce(0) { $0 + $1.requests }
            failed = rows.reduce(0) { $0 + $1.errors }
            var h = LatencyHistogram.latency()
            for row in series where Self.field(selector.field, of: row.labels) == selector.value {
                h.add(ResultMerger.histogram(row.histogram))
            }
            latency = h
        } else {
            requests = summary.requests
            failed = summary.failed
            latency = ResultMerger.histogram(histograms.latency)
            latency.add(failedWithoutResponse(nil).latency)
        }
        if let timedOut, timedOut.count > 0 { _ = latency.record(timedOut.micros, count: UInt64(timedOut.count)) }
        if unsent > 0 {
            _ = latency.record(Self.beyondAnyLimit, count: UInt64(unsent))
            requests += unsent
            failed += unsent
        }
        if let extra, extra.totalCount > 0 { latency.add(extra) }
        let responses = Int(latency.totalCount)
        func judge(_ observed: Double) {
            verdict.decided = true
            verdict.passed = threshold.comparison.holds(observed, threshold.limit)
        }
        switch threshold.metric {
        case .percentile, .mean, .max:
            verdict.limitMs = threshold.limit * 1000
            verdict.sample = responses
            guard responses > 0 else {
                verdict.reason = scope.map { "no response from \($0)" } ?? "no response to measure"
                return verdict
            }
            let micros: Double
            switch threshold.metric {
            case .percentile(let p):
                micros = Double(LatencySummary.percentile(latency, p))
                verdict.observedMs = (micros / 10).rounded() / 100
                let least = Self.minimumSample(percentile: p)
                // As an error-rate ceiling: 10 responses' worth beyond the percentile, or 10 responses on the side of
                // the limit that fails it (then the share there is over what the percentile allows, whatever the size).
                let limitMicros = UInt64(max(0, threshold.limit * 1e6))
                let ceiling = threshold.comparison == .below || threshold.comparison == .atMost
                var failing = 0
                for step in latency.recordedValues() {
                    let value = latency.lowestEquivalentForValue(step.value)
                    if ceiling ? value > limitMicros : value < limitMicros { failing += Int(step.count) }
                }
                guard responses >= least || failing >= 10 else {
                    // The sample is every latency counted: answers, and failures or timeouts counted at their time.
                    verdict.reason = "\(counted(responses, "measured request")) are too few to judge p\(numberText(p)): it needs \(least) "
                        + "(10 beyond it) or 10 on the failing side of the limit"
                    if let selector = threshold.selector {
                        let maybe = Int(unattributed(selector).latency.totalCount) + timedOutRequests(beside: selector).maybe
                        if maybe > 0 {
                            verdict.reason! += "; \(counted(maybe, "request")) with nothing to say whose (answers without a stamp, failures "
                                + "without a response, timeouts) may be \(scope!)'s"
                        }
                    }
                    return verdict
                }
            case .mean: micros = latency.meanValue
            default: micros = Double(latency.max)
            }
            verdict.observedMs = (micros / 10).rounded() / 100
            judge(micros / 1e6)
        case .errorRate:
            verdict.limitFraction = threshold.limit
            verdict.sample = requests
            guard requests > 0 else {
                verdict.reason = scope.map { "no request attributed to \($0)" } ?? "no request was sent"
                return verdict
            }
            let rate = Double(failed) / Double(requests)
            verdict.observedFraction = (rate * 1e6).rounded() / 1e6
            // A ceiling on errors is judged on 10 failures' worth of requests at the limit, or on 10 failures (then
            // the rate is over it whatever the sample); a ceiling of 0 is judged as written.
            let ceiling = threshold.comparison == .below || threshold.comparison == .atMost
            if ceiling && threshold.limit > 0 {
                let least = Self.minimumSample(errorRate: threshold.limit)
                guard requests >= least || failed >= 10 else {
                    verdict.reason = "\(counted(requests, "request")) are too few to judge an error rate of \(numberText(threshold.limit)): "
                        + "it needs \(least) (10 failures' worth at the limit) or 10 failures"
                    if let selector = threshold.selector {
                        let (count, kinds) = unattributedFailures(beside: selector)
                        if count > 0 {
                            verdict.reason! += "; \(counted(count, "failed request")) could not be attributed to an identity (\(kinds)) and may be \(scope!)'s"
                        }
                    }
                    return verdict
                }
            }
            // Failures no identity can be given (no response, or an answer without a stamp) may be this identity's:
            // the verdict stands only if it is the same with them counted as its own.
            if let selector = threshold.selector {
                let (count, kinds) = unattributedFailures(beside: selector)
                if count > 0 {
                    let worst = Double(failed + count) / Double(requests + count)
                    if threshold.comparison.holds(rate, threshold.limit) != threshold.comparison.holds(worst, threshold.limit) {
                        func pct(_ v: Double) -> String { "\(numberText((v * 10000).rounded() / 100))%" }
                        verdict.reason = "\(counted(count, "failed request")) could not be attributed to an identity (\(kinds)) and may be "
                            + "\(scope!)'s: its error rate is \(pct(rate)) without them, \(pct(worst)) with them (limit \(pct(threshold.limit)))"
                        return verdict
                    }
                }
            }
            judge(rate)
        case .rps:
            verdict.limitPerS = threshold.limit
            verdict.sample = threshold.selector == nil ? summary.responses : requests
            guard elapsed > 0 else {
                verdict.reason = "the run measured no time"
                return verdict
            }
            let rate = threshold.selector == nil ? summary.rps : Double(requests) / elapsed
            verdict.observedPerS = (rate * 10).rounded() / 10
            judge(rate)
        }
        if verdict.decided && !verdict.passed {
            verdict.reason = "observed \(verdict.comparisonText)"
        }
        return verdict
    }

    /// The failures of the rows that say nothing about `selector`'s field: no stamp (a request without a response is
    /// counted under its connection's TLS peer alone, an unstamped answer under its peer), and for an `identity`
    /// selector no peer either. With what they were, for a verdict's reason (`request_timeout 12, 503 3`).
    func unattributedFailures(beside selector: LoadThreshold.Selector) -> (count: Int, kinds: String) {
        var count = 0
        var kinds: [String: Int] = [:]
        for row in workloads where row.errors > 0 && Self.unattributed(row, for: selector) {
            count += row.errors
            for (kind, n) in row.errorKinds { kinds[kind, default: 0] += n }
            for (status, n) in row.statuses {
                guard let code = ResponseCode.parse(status), !ResponseCode.succeeded(code) else { continue }
                kinds[status, default: 0] += n
            }
        }
        let text = kinds.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
        return (count, text)
    }

    static func field(_ field: LoadThreshold.Selector.Field, of row: Workload) -> String {
        switch field {
        case .version: row.version
        case .workload: row.workload
        case .cluster: row.cluster
        case .identity: row.identity
        }
    }

    static func field(_ field: LoadThreshold.Selector.Field, of labels: SeriesLabels) -> String {
        switch field {
        case .version: labels.destinationVersion
        case .workload: labels.destinationWorkload
        case .cluster: labels.destinationCluster
        case .identity: labels.destinationPrincipal
        }
    }
}
