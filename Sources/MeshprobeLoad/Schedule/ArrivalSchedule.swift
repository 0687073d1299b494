import Foundation
import MeshprobeSpec

/// When requests should be sent in the open model: arrival times fixed in advance from the rate profile,
/// independent of how fast the server answers (so that latency is measured from the intended time, wrk2-style).
///
/// Each worker owns a share of the total rate. With uniform arrivals the k-th request of a worker is due when
/// the profile's cumulative count reaches `(k + phase) / share`; workers get different phases so that their
/// arrivals interleave. With Poisson arrivals the gaps are exponential in the same cumulative scale
/// (time-rescaling), which gives a Poisson process whose rate follows the profile.
public struct ArrivalSchedule: Sendable {
    public typealias Process = ArrivalProcess

    public let profile: LoadProfile
    public let share: Double
    public let process: Process
    private var position: Double
    private var random: SplitMix64

    /// - Parameters:
    ///   - share: this worker's fraction of the total rate, (0, 1].
    ///   - phase: 0..<1, offsets uniform arrivals between workers.
    public init(profile: LoadProfile, share: Double, process: Process, phase: Double = 0, seed: UInt64 = 1) {
        self.profile = profile
        self.share = share
        self.process = process
        self.random = SplitMix64(seed: seed)
        switch process {
        case .uniform: position = phase / share
        case .poisson: position = 0
        }
        if process == .poisson { position = nextGap() }
    }

    private mutating func nextGap() -> Double {
        switch process {
        case .uniform:
            return 1 / share
        case .poisson:
            // Exp(1) by inversion; 1 - u is in (0, 1].
            let u = Double(random.next() >> 11) / Double(1 << 53)
            return -log(1 - u) / share
        }
    }

    /// How many arrivals after those already taken fall before `end` (seconds from the start of the run, or the
    /// profile's own end): exact for uniform arrivals, the expected count for Poisson ones.
    public func count(before end: Double?) -> Int {
        guard let end = end ?? profile.totalDuration else { return 0 }
        let left = (profile.cumulative(at: end) - position) * share
        return left > 0 ? Int(left.rounded(.up)) : 0
    }

    /// The intended time, seconds from the start of the run, of the next arrival; nil when the profile has ended.
    public mutating func next() -> Double? {
        guard let t = profile.time(forCumulative: position) else { return nil }
        position += nextGap()
        return t
    }
}

/// A small, fast, seedable generator (SplitMix64): reproducible schedules and per-request entropy.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E4B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
