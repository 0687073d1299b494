import Testing

@testable import MeshprobeIdentity

/// Numbers and counts as meshprobe prints them.
@Suite struct NumberTextTests {
    @Test func aNumberReadsAsWritten() {
        #expect(numberText(50) == "50")
        #expect(numberText(12.5) == "12.5")
        #expect(numberText(-3) == "-3")
    }

    @Test func oneIsSingularAndEveryOtherCountPlural() {
        #expect(counted(1, "request") == "1 request")
        #expect(counted(2, "request") == "2 requests")
        #expect(counted(0, "request") == "0 requests")
        #expect(counted(1, "try", plural: "tries") == "1 try")
        #expect(counted(3, "try", plural: "tries") == "3 tries")
    }
}
