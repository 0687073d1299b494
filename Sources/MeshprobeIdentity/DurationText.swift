/// Durations as users write them, the one rule for every flag, file and query that takes one: a number and its unit,
/// `250us` (or `250µs`), `500ms`, `30s`, `2m`, `1h`.
///
/// A number without a unit is refused, naming the units (is `-d 10` ten seconds or ten milliseconds?); only `0`
/// needs none. Sign, zero and range are each caller's to judge.
public enum DurationText {
    /// The longest duration any flag or file takes: ten years (in nanoseconds, sums of a few still fit in 64 bits).
    public static let maximumSeconds: Double = 10 * 366 * 86400
    /// How the maximum reads in errors.
    public static let maximumText = "87840h (10 years)"
    /// The units, as errors name them.
    public static let unitsText = "us, ms, s, m or h"

    /// Each unit as a multiple of a second, or as its fraction (`perSecond`): `700ms` is 700 / 1000 = 0.7, where
    /// 700 * 0.001 is 0.7000000000000001 and would print so.
    static let units: [(suffix: String, seconds: Double, perSecond: Double)] = [
        ("ms", 0, 1e3), ("us", 0, 1e6), ("µs", 0, 1e6), ("s", 1, 0), ("m", 60, 0), ("h", 3600, 0),
    ]

    /// Why a text is not a duration; `description` quotes it and names the units.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public enum Kind: Sendable, Equatable {
            /// A number alone, such as `10`.
            case noUnit
            /// Anything else that is not a number and a unit.
            case notADuration
        }

        public var kind: Kind
        public var text: String

        package init(kind: Kind, text: String) {
            self.kind = kind
            self.text = text
        }

        public var description: String {
            switch kind {
            case .noUnit: return "'\(text)' has no unit: write \(text)s or \(text)ms (units: \(unitsText))"
            case .notADuration: return "'\(text)' is not a duration such as 30s, 500ms or 2m (units: \(unitsText))"
            }
        }
    }

    /// The duration in seconds.
    public static func seconds(_ text: String) throws(ParseError) -> Double {
        for (suffix, scale, perSecond) in units where text.hasSuffix(suffix) {
            guard let n = Double(text.dropLast(suffix.count)), n.isFinite else { break }
            return perSecond > 0 ? n / perSecond : n * scale
        }
        if text == "0" { return 0 }
        if let n = Double(text), n.isFinite { throw ParseError(kind: .noUnit, text: text) }
        throw ParseError(kind: .notADuration, text: text)
    }

    /// A duration written back as a person would type it: whole hours or minutes as such (`9000h`, `2m`), else
    /// seconds (`90s`, `0.5s`, `0.0005s`); `seconds(text(x)) == x`.
    public static func text(seconds: Double) -> String {
        guard seconds.isFinite, seconds != 0 else { return seconds == 0 ? "0" : "\(seconds)s" }
        for (suffix, scale) in [("h", 3600.0), ("m", 60.0)] where abs(seconds) >= scale && (seconds / scale).rounded() == seconds / scale {
            return numberText(seconds / scale) + suffix
        }
        return numberText(seconds) + "s"
    }
}
