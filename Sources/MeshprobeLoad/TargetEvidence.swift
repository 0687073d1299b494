import NIOConcurrencyHelpers

/// What a run has seen of each target's connections that carried requests, shared by every worker: whether a close
/// without an answer is a dropped request (a server that drops some, an HTTP/1.1 server closing mid-request) or the
/// target refusing (an L4 proxy whose backend is down, a TLS port sent plaintext, a server gone).
///
/// Counted per request: `answered` requests answered (a connection's first answer at once, its others when it
/// closes), `dropped` requests failed by a close of their connection, `streak` the drops since answers were last
/// counted. A connection that closes before answering anything is an outage when the streak is implausible for the
/// target as seen: with answers, when the share of drops seen before the streak (its upper 99.9% bound, Wilson's score
/// interval) to the power of the streak is under one in a million (about 24 in a row at 50% and 135 at 90% over many
/// requests, more over few; 3 after a thousand answered and none dropped); before any answer, after 20 in a row. So a
/// port that never answers, or a backend that goes away behind an L4 proxy, is given up, and a server that drops half
/// its requests is not, whichever connection, worker or event loop saw its answers.
struct TargetCounts: Equatable, Sendable {
    var answered = 0
    var dropped = 0
    var streak = 0

    /// Drops in a row, before any answer, after which the target is taken as refusing.
    static let streakWithoutAnswers = 20
    /// The chance below which a streak of drops is not taken for chance.
    static let implausible = 1e-6

    /// A connection's first answer.
    mutating func connectionAnswered() {
        answered += 1
        streak = 0
    }

    /// A connection closed: it had `answers` (its first counted already) and its close failed `drops` requests in
    /// flight. Returns true when it answered nothing and the streak of drops makes that the target refusing.
    mutating func connectionClosed(answers: Int, drops: Int) -> Bool {
        if answers > 1 {
            answered += answers - 1
            streak = 0
        }
        dropped += drops
        streak += drops
        guard answers == 0, drops > 0 else { return false }
        guard answered > 0 else { return streak >= Self.streakWithoutAnswers }
        let before = dropped - streak
        let n = Double(answered + before), p = Double(before) / n, z = 3.09
        let share = (p + z * z / (2 * n) + z * (p * (1 - p) / n + z * z / (4 * n * n)).squareRoot()) / (1 + z * z / n)
        var chance = 1.0
        for _ in 0..<streak { chance *= share }
        return chance < Self.implausible
    }
}

/// The run's `TargetCounts`, one per target, shared by its workers (each on its own event loop). Touched on a
/// connection's first answer and on a close without one, never per request.
final class TargetEvidence: Sendable {
    private let counts: NIOLockedValueBox<[TargetCounts]>

    init(targets: Int) {
        counts = NIOLockedValueBox(Array(repeating: TargetCounts(), count: max(1, targets)))
    }

    func connectionAnswered(_ target: Int) {
        counts.withLockedValue { $0[target].connectionAnswered() }
    }

    /// See `TargetCounts.connectionClosed`.
    func connectionClosed(_ target: Int, answers: Int, drops: Int) -> Bool {
        guard answers > 1 || drops > 0 else { return false }
        return counts.withLockedValue { $0[target].connectionClosed(answers: answers, drops: drops) }
    }

    func hasAnswered(_ target: Int) -> Bool {
        counts.withLockedValue { $0[target].answered > 0 }
    }
}
