import MeshprobeIdentity
import Testing
@testable import MeshprobeEcho

@Suite struct FaultSpecTests {
    @Test func parsesFortioStyleStatusDelayAndSize() throws {
        let spec = try FaultSpec.parse(path: "/echo?status=503:50,502:10&delay=20ms:10&size=1024")
        #expect(spec.statuses == [.init(value: 503, percent: 50), .init(value: 502, percent: 10)])
        #expect(spec.delays == [.init(value: 20_000_000, percent: 10)])
        #expect(spec.sizes == [.init(value: 1024, percent: 100)])
    }

    @Test func noQueryMeansNoFault() throws {
        #expect(try FaultSpec.parse(path: "/reviews/1").isEmpty)
        #expect(try FaultSpec.parse(path: "/?other=1").isEmpty)
    }

    @Test(arguments: [
        ("/?status=999", "status"), ("/?status=101", "status"), ("/?status=abc", "status"), ("/?status=503:150", "status"),
        ("/?status=503:60,502:50", "status"), ("/?delay=fast", "delay"), ("/?delay=11s", "delay"),
        ("/?size=-1", "size"), ("/?size=99999999", "size"), ("/?close=200", "close"), ("/?status=:5", "status"),
    ])
    func rejectsMalformedOrOutOfBoundsValues(_ path: String, _ parameter: String) {
        #expect {
            try FaultSpec.parse(path: path)
        } throws: { error in
            (error as? FaultSpecError)?.parameter == parameter
        }
    }

    @Test func picksByCumulativePercent() throws {
        let spec = try FaultSpec.parse(path: "/?status=503:20,502:10")
        #expect(spec.pick(spec.statuses, roll: 0) == 503)
        #expect(spec.pick(spec.statuses, roll: 19.99) == 503)
        #expect(spec.pick(spec.statuses, roll: 20) == 502)
        #expect(spec.pick(spec.statuses, roll: 29.99) == 502)
        #expect(spec.pick(spec.statuses, roll: 30) == nil)
    }

    @Test func parsesDurationsWithUnitsAndRefusesANumberWithout() throws {
        #expect(try FaultSpec.delayNanoseconds("500us") == 500_000)
        #expect(try FaultSpec.delayNanoseconds("1.5s") == 1_500_000_000)
        #expect(try FaultSpec.delayNanoseconds("0") == 0)
        #expect(throws: DurationText.ParseError(kind: .notADuration, text: "-1ms")) { try FaultSpec.delayNanoseconds("-1ms") }
        // `delay=20` was 20 ms once, and 20 s in a flag: every duration names its unit now.
        #expect(throws: DurationText.ParseError(kind: .noUnit, text: "20")) { try FaultSpec.delayNanoseconds("20") }
        do {
            _ = try FaultSpec.parse(path: "/?delay=20:50")
            Issue.record("a delay without a unit was taken")
        } catch {
            #expect(error.parameter == "delay" && error.reason == "'20' has no unit: write 20s or 20ms (units: us, ms, s, m or h)", "\(error)")
        }
    }
}
