/// How a split's counts grew while its test ran: responses by destination after so many judged responses, for the
/// report's convergence chart (the observed shares against the tolerance band, by request count).
///
/// Bounded whatever the run's length: a point every `spacing` responses, at most `limit` points; when the limit is
/// reached every other point goes and the spacing doubles, so the points stay evenly spread over the run (between
/// `limit / 2` and `limit` of them once the run is long).
public struct SplitTrajectory: Sendable, Equatable {
    public struct Point: Sendable, Equatable {
        /// Responses judged so far.
        public var samples: Int
        /// Those responses by destination.
        public var counts: [String: Int]

        public init(samples: Int, counts: [String: Int]) {
            self.samples = samples
            self.counts = counts
        }
    }

    public static let limit = 200

    public private(set) var points: [Point] = []
    private var counts: [String: Int] = [:]
    private var samples = 0
    private var spacing = 1
    private var next = 1

    public init() {}

    /// Adds responses by destination (one response per request; a connection's responses with the connection as the
    /// unit).
    public mutating func add(_ destinations: [String: Int]) {
        for (name, n) in destinations where n > 0 { counts[name, default: 0] += n }
        samples += destinations.values.reduce(0) { $0 + max(0, $1) }
        guard samples >= next else { return }
        points.append(Point(samples: samples, counts: counts))
        if points.count >= Self.limit {
            points = points.enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
            spacing *= 2
        }
        next = samples + spacing
    }

    /// The points up to the test's decision (`samples` responses judged, which may be fewer than were added: the test
    /// stops counting once decided or capped), ending with the test's own counts at that point.
    public func upTo(samples: Int, counts final: [String: Int]) -> [Point] {
        var kept = points.filter { $0.samples < samples }
        if samples > 0 { kept.append(Point(samples: samples, counts: final)) }
        return kept
    }
}
