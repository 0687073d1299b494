extension LoadPlan {
    /// Sets what `spec` gives, leaving the rest as it is, and builds the model: the open model with a rate (its
    /// stages move the rate), else the closed model (its stages move the concurrency, at most connections x
    /// streams). Refuses what the model cannot use: a think time with a rate, arrivals or a send tick without one.
    public mutating func apply(_ spec: LoadSpec) throws(LoadSpec.Problem) {
        if let v = spec.connections { connections = v }
        if let v = spec.streams { streamsPerConnection = v }
        if let v = spec.requests { requests = v }
        if let v = spec.duration { duration = v }
        if let v = spec.warmup { warmup = v }
        if let v = spec.requestTimeout { requestTimeout = v }
        if let v = spec.connectTimeout { connectTimeout = v }
        if let v = spec.churn { churn = v }
        if let v = spec.seed { seed = v }
        if let v = spec.coalesceWindow { coalesceWindow = v }
        if let v = spec.httpVersion { httpVersion = v }
        guards += spec.guards
        thresholds += spec.thresholds
        if let v = spec.guardAction { guardAction = v }
        if let rate = spec.rate {
            if rate == 0 && spec.stages.isEmpty { throw LoadSpec.Problem(field: .rate, kind: .zeroRateWithoutStages) }
            if spec.think != nil { throw LoadSpec.Problem(field: .think, kind: .thinkWithRate) }
            if spec.thinkJitter != nil { throw LoadSpec.Problem(field: .thinkJitter, kind: .thinkWithRate) }
            if let v = spec.sendTick { sendTick = v }
            model = .open(rate: LoadProfile(start: rate, stages: spec.stages), arrivals: spec.arrivals ?? .uniform)
            return
        }
        if spec.arrivals != nil { throw LoadSpec.Problem(field: .arrivals, kind: .openModelOnly) }
        if spec.sendTick != nil { throw LoadSpec.Problem(field: .sendTick, kind: .openModelOnly) }
        let think = spec.think ?? 0
        if let jitter = spec.thinkJitter {
            if jitter > think { throw LoadSpec.Problem(field: .thinkJitter, kind: .jitterAboveThink(think: think)) }
            thinkJitter = jitter
        }
        guard let most = spec.stages.map(\.target).max() else {
            model = .closed(concurrency: nil, thinkTime: think)
            return
        }
        let capacity = connections * streamsPerConnection
        if most > Double(capacity) { throw LoadSpec.Problem(field: .stages, kind: .concurrencyAboveCapacity(most: most, capacity: capacity)) }
        model = .closed(concurrency: LoadProfile(start: 0, stages: spec.stages), thinkTime: think)
    }
}
