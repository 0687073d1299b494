import MeshprobeIdentity

/// How the open model spaces its arrivals: evenly, or as a Poisson process (exponential gaps), at the profile's rate.
public enum ArrivalProcess: String, Sendable, CaseIterable {
    case uniform
    case poisson

    /// Parses `uniform` or `poisson`.
    public init(parsing text: String) throws(InputValueError) {
        guard let process = ArrivalProcess(rawValue: text) else { throw InputValueError("'\(text)': expected uniform or poisson") }
        self = process
    }
}
