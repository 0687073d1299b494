import MeshprobeIdentity

/// A load as its user declares it, from `load`'s flags or a scenario or policy file's `load`, `http` and `guards`
/// sections: values already read by their types, nil where not given. A `LoadPlan` takes it by one function
/// (`LoadPlan.apply`), which also judges the combinations.
public struct LoadSpec: Sendable, Equatable {
    public var connections: Int?
    public var streams: Int?
    public var requests: Int?
    /// Seconds.
    public var duration: Double?
    public var warmup: Double?
    public var requestTimeout: Double?
    public var connectTimeout: Double?
    public var churn: ConnectionChurn?
    /// Requests per second: the open model when given.
    public var rate: Double?
    public var stages: [LoadStage] = []
    public var arrivals: ArrivalProcess?
    public var think: Double?
    public var thinkJitter: Double?
    public var seed: UInt64?
    public var sendTick: Double?
    /// Seconds; 0: off.
    public var coalesceWindow: Double?
    public var httpVersion: HTTPVersionPreference?
    public var guards: [LoadGuard] = []
    public var guardAction: GuardAction?
    public var thresholds: [LoadThreshold] = []

    public init() {}

    /// What a combination of values can refer to; each reader names it its way (`--think`, `load.think`).
    public enum Field: Sendable, Equatable {
        case connections, streams, rate, stages, arrivals, think, thinkJitter, sendTick
    }

    /// A combination that cannot work; `message` names the other fields the reader's way.
    public struct Problem: Error, Sendable, Equatable {
        public enum Kind: Sendable, Equatable {
            /// Rate 0 with no stages to ramp from it.
            case zeroRateWithoutStages
            /// A think time in the open model.
            case thinkWithRate
            /// Arrivals or a send tick in the closed model.
            case openModelOnly
            /// A jitter wider than the think time.
            case jitterAboveThink(think: Double)
            /// A closed model's stage above connections x streams.
            case concurrencyAboveCapacity(most: Double, capacity: Int)
        }

        public var field: Field
        public var kind: Kind

        public init(field: Field, kind: Kind) {
            self.field = field
            self.kind = kind
        }

        /// The reason, naming the fields it refers to with `name` (not `field` itself, which the reader puts first).
        public func message(naming name: (Field) -> String) -> String {
            switch kind {
            case .zeroRateWithoutStages:
                return "must be more than 0 requests per second (or 0 with \(name(.stages)) to ramp up from nothing)"
            case .thinkWithRate:
                return "is for the closed model; with \(name(.rate)), requests are sent on schedule"
            case .openModelOnly:
                return "is for the open model (with \(name(.rate)))"
            case .jitterAboveThink(let think):
                return "must not be more than \(name(.think)) (\(think)s)"
            case .concurrencyAboveCapacity(let most, let capacity):
                return "a concurrency of \(Int(most)) needs more than \(name(.connections)) x \(name(.streams)) = \(capacity) streams"
            }
        }
    }
}
