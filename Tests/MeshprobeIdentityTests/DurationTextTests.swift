import Testing
import MeshprobeIdentity

@Suite struct DurationTextTests {
    @Test func readsANumberAndItsUnit() throws {
        #expect(try DurationText.seconds("250us") == 250e-6)
        #expect(try DurationText.seconds("250µs") == 250e-6)
        #expect(try DurationText.seconds("500ms") == 0.5)
        #expect(try DurationText.seconds("1.5s") == 1.5)
        #expect(try DurationText.seconds("2m") == 120)
        #expect(try DurationText.seconds("1h") == 3600)
        #expect(try DurationText.seconds("0") == 0)
        #expect(try DurationText.seconds("0s") == 0)
        // The sign is the caller's to judge.
        #expect(try DurationText.seconds("-1s") == -1)
    }

    @Test func refusesANumberWithoutAUnitNamingTheChoices() {
        for text in ["10", "0.5", "1e3", "-3"] {
            #expect(throws: DurationText.ParseError(kind: .noUnit, text: text)) { try DurationText.seconds(text) }
        }
        #expect(DurationText.ParseError(kind: .noUnit, text: "10").description
                == "'10' has no unit: write 10s or 10ms (units: us, ms, s, m or h)")
    }

    @Test func refusesWhatIsNotADuration() {
        for text in ["", "s", "fast", "10 s", "10sec", "1d", "infs", "nanms", "10S"] {
            #expect(throws: DurationText.ParseError(kind: .notADuration, text: text)) { try DurationText.seconds(text) }
        }
    }

    @Test func aDurationIsWrittenBackAsAPersonWouldTypeItAndReadsBackTheSame() throws {
        let cases: [(Double, String)] = [(32_400_000, "9000h"), (120, "2m"), (90, "90s"), (5, "5s"), (0.5, "0.5s"),
                                         (0.0005, "0.0005s"), (0, "0")]
        for (seconds, text) in cases {
            #expect(DurationText.text(seconds: seconds) == text)
            #expect(try DurationText.seconds(text) == seconds, "\(text)")
        }
    }
}
