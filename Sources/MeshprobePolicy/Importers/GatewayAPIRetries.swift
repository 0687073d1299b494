import MeshprobeYAML

/// An HTTPRoute rule's `timeouts` and `retry` (Gateway API v1: `timeouts` standard since v1.2, `retry` since v1.7),
/// and a route's Linkerd retry annotations, as retry expectations.
///
/// - `timeouts.request`: the whole request's limit, retries included: the route timeout (`0s` disables it);
/// - `timeouts.backendRequest`: one try's limit: the per-try timeout when the rule declares no `retry` (the request
///   then ends after that one try); with `retry`, whether a try it cuts is retried is left to the implementation, so
///   a slow request must end between one try and `timeouts.request` (`earliestEnd`), and without a request limit
///   the timing is not checked;
/// - `retry.attempts` (retries after the first try) and `retry.codes` (the statuses retried): the attempts checks;
///   either left out is implementation-specific and not checked; `retry.backoff` is not checked.
///
/// GRPCRoute rules have neither field in Gateway API; one given there is noted as not checked.
enum GatewayAPIRetries {
    /// The rule's expectation (nil when it declares nothing checkable) and its notes. `label`: the route and rule as
    /// verdicts name them (`HTTPRoute reviews rules[0]`).
    static func expectation(rule: YAMLValue, kind: String, label: String) throws(YAMLInputError) -> (RetryExpectation?, [String]) {
        let retry = rule["retry"], timeouts = rule["timeouts"]
        guard retry != nil || timeouts != nil else { return (nil, []) }
        guard kind == "HTTPRoute" else {
            return (nil, ["\(rule.file):\(rule.line): \(label): timeouts and retry are not Gateway API fields of a \(kind) rule: not checked"])
        }
        var notes: [String] = []
        var e = RetryExpectation(attempts: nil, source: "\(rule.file):\(rule.line) \(label)")
        var retried = false
        let retryFields = try retry?.mapping(allowed: ["attempts", "codes", "backoff"]) ?? [:]
        let timeoutFields = try timeouts?.mapping(allowed: ["request", "backendRequest"]) ?? [:]
        // Every field checked in the order written, so that the first error of the file is the one told.
        for (name, value) in (retryFields.map { ("retry.\($0.key)", $0.value) } + timeoutFields.map { ("timeouts.\($0.key)", $0.value) })
            .sorted(by: { ($0.1.line, $0.1.column) < ($1.1.line, $1.1.column) }) {
            switch name {
            case "retry.attempts": _ = try RetryExpectation.checkable(attempts: value)
            case "retry.codes": _ = try Self.statuses(value)
            case "retry.backoff": _ = try value.duration(allowZero: true)
            default: _ = try RetryExpectation.checkable(try value.duration(allowZero: true), at: value)
            }
        }
        if let retry {
            let m = retryFields
            retried = true
            if let backoff = m["backoff"] {
                notes.append("\(backoff.file):\(backoff.line): \(label): retry.backoff is not checked")
            }
            let attempts = try m["attempts"].map { v throws(YAMLInputError) in try RetryExpectation.checkable(attempts: v) }
            let statuses = try m["codes"].map { v throws(YAMLInputError) in try Self.statuses(v) } ?? []
            switch (attempts, statuses.isEmpty) {
            case (let attempts?, false):
                e.attempts = attempts
                e.retryOn = RetryConditions(declared: statuses.map(String.init), statuses: Set(statuses), retriesTimeouts: false)
            case (nil, _):
                notes.append("\(retry.file):\(retry.line): \(label): retry without attempts: how many retries is implementation-specific, not checked")
            case (_, true):
                notes.append("\(retry.file):\(retry.line): \(label): retry without codes: which failures are retried is implementation-specific "
                    + "(connection errors at most), the attempts are not checked")
            }
        }
        if let timeouts {
            let m = timeoutFields
            let request = try m["request"].map { v throws(YAMLInputError) in try RetryExpectation.checkable(try v.duration(allowZero: true), at: v) }
            let backend = try m["backendRequest"].map { v throws(YAMLInputError) in
                try RetryExpectation.checkable(try v.duration(allowZero: true), at: v)
            }
            if let request, request > 0, let backend, backend > request, let v = m["backendRequest"] {
                throw v.error("timeouts.backendRequest (\(YAMLValue.format(backend))s) is longer than timeouts.request (\(YAMLValue.format(request))s): "
                    + "Gateway API requires backendRequest to be at most request")
            }
            if let request, request > 0 { e.timeout = request }
            if let backend, backend > 0 {
                if !retried {
                    e.perTryTimeout = backend
                } else if e.timeout != nil {
                    // Whether a try it cuts is retried is the implementation's choice: a slow request ends after one
                    // try at the earliest, and by the request's limit at the latest.
                    e.earliestEnd = backend
                } else {
                    notes.append("\(timeouts.file):\(timeouts.line): \(label): whether a try cut by timeouts.backendRequest is retried is left to "
                        + "the implementation, and no timeouts.request bounds it: timeouts.backendRequest is not checked")
                }
            }
        }
        guard e.attempts != nil || e.timeout != nil || e.perTryTimeout != nil else { return (nil, notes) }
        return (e, notes)
    }

    /// `retry.codes`: statuses from 400 to 599.
    static func statuses(_ value: YAMLValue) throws(YAMLInputError) -> [Int] {
        var statuses: [Int] = []
        for code in try value.list() {
            let n = try code.int(minimum: 400)
            guard n <= 599 else { throw code.error("\(n) is not a retriable status (400 to 599)") }
            statuses.append(n)
        }
        return statuses
    }
}
