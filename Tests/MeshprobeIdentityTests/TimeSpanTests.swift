import MeshprobeIdentity
import Testing

@Suite struct TimeSpanTests {
    @Test func readsADurationAndKeepsItsSpelling() throws {
        let span = try TimeSpan(parsing: "500ms")
        #expect(span.seconds == 0.5)
        #expect(span.description == "500ms")
        #expect(try TimeSpan(parsing: "87840h").seconds == DurationText.maximumSeconds)
        #expect(try TimeSpan(parsing: "0", allowZero: true).seconds == 0)
        #expect(try TimeSpan(parsing: "0s", allowZero: true).seconds == 0)
        #expect(TimeSpan("10s") == (try TimeSpan(parsing: "10000ms")))
    }

    @Test func refusesEachWrongSpellingWithItsMessage() {
        let cases: [(String, Bool, String)] = [
            ("10", false, "'10' has no unit: write 10s or 10ms (units: us, ms, s, m or h)"),
            ("fast", false, "'fast' is not a duration such as 30s, 500ms or 2m (units: us, ms, s, m or h)"),
            ("0", false, "'0': expected a positive duration such as 30s, 500ms or 2m"),
            ("-1s", false, "'-1s': expected a positive duration such as 30s, 500ms or 2m"),
            ("-1s", true, "'-1s': expected a zero or positive duration such as 30s, 500ms or 2m"),
            ("87841h", false, "'87841h': must be at most 87840h (10 years)"),
        ]
        for (text, allowZero, message) in cases {
            #expect(throws: InputValueError(message), "\(text)") { try TimeSpan(parsing: text, allowZero: allowZero) }
        }
    }
}
