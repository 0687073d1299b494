/// A target value over time: a request rate (open model) or a concurrency (closed model), as k6-style stages.
///
/// The profile starts at `start`; each stage moves to its `target` over its `duration`, linearly (`ramp`) or at
/// once (a step), and holds there until the next stage begins. After the last stage the profile ends
/// (`totalDuration`); a profile without stages holds `start` for ever.
public struct LoadProfile: Sendable, Equatable {
    public typealias Stage = LoadStage

    public var start: Double
    public var stages: [Stage]

    public init(start: Double, stages: [Stage] = []) {
        self.start = start
        self.stages = stages
    }

    /// A constant value; `duration` nil holds it for ever.
    public static func constant(_ value: Double, duration: Double? = nil) -> LoadProfile {
        guard let duration else { return LoadProfile(start: value) }
        return LoadProfile(start: value, stages: [Stage(duration: duration, target: value, ramp: false)])
    }

    /// Seconds until the profile ends, nil for an endless one.
    public var totalDuration: Double? {
        stages.isEmpty ? nil : stages.reduce(0) { $0 + $1.duration }
    }

    /// Checks the values: names the stage that is wrong. Values are 0 or between `smallest` and `largest`.
    public func validate(what: String, smallest: Double = 0, largest: Double) throws(LoadPlanError) {
        func check(_ value: Double, field: String) throws(LoadPlanError) {
            if !(value >= 0) || !value.isFinite {
                throw LoadPlanError(field: field, value: "\(value)", reason: "must be zero or more")
            }
            if value > largest || (value > 0 && value < smallest) {
                throw LoadPlanError(field: field, value: "\(value)", reason: "must be 0 or \(smallest)-\(Int(largest))")
            }
        }
        try check(start, field: what)
        var total = 0.0
        for (i, stage) in stages.enumerated() {
            if !(stage.duration > 0) || !stage.duration.isFinite || stage.duration > LoadPlan.maximumDuration {
                throw LoadPlanError(field: "\(what) stage \(i + 1) duration", value: "\(stage.duration)",
                                             reason: "must be a positive duration of at most \(LoadPlan.maximumDurationText)")
            }
            try check(stage.target, field: "\(what) stage \(i + 1) target")
            total += stage.duration
        }
        if total > LoadPlan.maximumDuration {
            throw LoadPlanError(field: "\(what) stages", value: "\(total)s", reason: "must add up to at most \(LoadPlan.maximumDurationText)")
        }
    }

    /// The segments as (start time, duration, value at start, value at end).
    private func segments() -> [(t0: Double, d: Double, a: Double, b: Double)] {
        var out: [(Double, Double, Double, Double)] = []
        var t = 0.0
        var v = start
        for stage in stages {
            let a = stage.ramp ? v : stage.target
            out.append((t, stage.duration, a, stage.target))
            t += stage.duration
            v = stage.target
        }
        return out
    }

    /// The value at `t` seconds; 0 after the end.
    public func value(at t: Double) -> Double {
        if stages.isEmpty { return start }
        if t < 0 { return stages[0].ramp ? start : stages[0].target }
        for s in segments() where t < s.t0 + s.d {
            return s.a + (s.b - s.a) * (t - s.t0) / s.d
        }
        return 0
    }

    /// The integral of the value from 0 to `t` (for a rate: the number of arrivals due by `t`).
    public func cumulative(at t: Double) -> Double {
        if t <= 0 { return 0 }
        if stages.isEmpty { return start * t }
        var total = 0.0
        for s in segments() {
            let tau = min(max(t - s.t0, 0), s.d)
            if tau <= 0 { break }
            total += s.a * tau + (s.b - s.a) * tau * tau / (2 * s.d)
        }
        return total
    }

    /// The earliest time at which `cumulative` reaches `x`, or nil when the profile ends first (the end itself
    /// is excluded: a 1 s profile at 1000/s yields 1000 arrivals, at 0 ms to 999 ms).
    public func time(forCumulative x: Double) -> Double? {
        guard let t = unboundedTime(forCumulative: x) else { return nil }
        if let end = totalDuration, t >= end - 1e-12 { return nil }
        return t
    }

    private func unboundedTime(forCumulative x: Double) -> Double? {
        if x <= 0 { return 0 }
        if stages.isEmpty { return start > 0 ? x / start : nil }
        var remaining = x
        for s in segments() {
            let area = (s.a + s.b) * s.d / 2
            if remaining <= area, area > 0 {
                let k = (s.b - s.a) / s.d
                // Solve a*tau + k/2*tau^2 = remaining, in the form that is stable for k near 0 and k < 0.
                let root = (s.a * s.a + 2 * k * remaining).squareRoot()
                let denominator = s.a + root
                let tau = denominator > 0 ? 2 * remaining / denominator : s.d
                return s.t0 + min(max(tau, 0), s.d)
            }
            remaining -= area
        }
        return nil
    }
}
