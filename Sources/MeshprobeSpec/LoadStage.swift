import MeshprobeIdentity

/// A stage of a load profile (k6-style): the rate or concurrency moves to `target` over `duration`, linearly (`ramp`)
/// or at once (a step), and holds there until the next stage begins.
public struct LoadStage: Sendable, Equatable {
    /// Seconds.
    public var duration: Double
    public var target: Double
    /// Linear ramp from the previous value to `target` (true), or a step to `target` at the stage's start.
    public var ramp: Bool

    public init(duration: Double, target: Double, ramp: Bool = true) {
        self.duration = duration
        self.target = target
        self.ramp = ramp
    }

    /// Parses `DURATION:TARGET` (a ramp) or `DURATION:TARGET:step`, as `--stage` takes it.
    public init(parsing text: String) throws(InputValueError) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2 || (parts.count == 3 && parts[2] == "step") else {
            throw InputValueError("'\(text)': expected DURATION:TARGET or DURATION:TARGET:step, e.g. 30s:500")
        }
        self.init(duration: try TimeSpan(parsing: parts[0]).seconds, target: try Self.target(parsing: parts[1]), ramp: parts.count == 2)
    }

    /// Parses a stage's target: a number, zero or more (a rate or a concurrency; the model bounds it).
    public static func target(parsing text: String) throws(InputValueError) -> Double {
        guard let target = Double(text), target >= 0, target.isFinite else {
            throw InputValueError("the target '\(text)' must be a number, zero or more")
        }
        return target
    }

    /// Parses a stage's shape as a file names it: `linear` (a ramp, true) or `step` (false).
    public static func ramp(parsing text: String) throws(InputValueError) -> Bool {
        switch text {
        case "linear": return true
        case "step": return false
        default: throw InputValueError("'\(text)': expected linear or step")
        }
    }
}
