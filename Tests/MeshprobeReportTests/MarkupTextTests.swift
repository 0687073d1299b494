import Testing
@testable import MeshprobeReport

@Suite struct MarkupTextTests {
    @Test func escapesMarkupQuotesAndAmpersands() {
        #expect(MarkupText.escape("<a href=\"x\">Tom's & co</a>") == "&lt;a href=&quot;x&quot;&gt;Tom&#39;s &amp; co&lt;/a&gt;")
    }

    @Test func replacesControlCharactersThatXMLForbids() {
        let escaped = MarkupText.escape("a\u{00}b\u{01}c\u{1B}[31md\u{7F}e\u{85}f\u{FFFE}g")
        #expect(escaped == "a\u{FFFD}b\u{FFFD}c\u{FFFD}[31md\u{FFFD}e\u{FFFD}f\u{FFFD}g")
    }

    @Test func keepsTabsAndNewlinesInTextButEncodesThemInAttributes() {
        #expect(MarkupText.escape("a\tb\nc\rd") == "a\tb\nc\rd")
        #expect(MarkupText.escape("a\tb\nc\rd", attribute: true) == "a&#9;b&#10;c&#13;d")
    }

    @Test func invalidUTF8ArrivesAsReplacementCharactersAndStaysValid() {
        let decoded = String(decoding: [0x41, 0xFF, 0xC3, 0x28, 0x42] as [UInt8], as: UTF8.self)
        let escaped = MarkupText.escape(decoded)
        #expect(escaped.hasPrefix("A\u{FFFD}") && escaped.hasSuffix("(B"), "\(escaped.unicodeScalars.map(\.value))")
        #expect(String(validating: Array(escaped.utf8), as: UTF8.self) != nil)
    }

    @Test func leavesOrdinaryUnicodeAlone() {
        #expect(MarkupText.escape("café — 東京 🚀") == "café — 東京 🚀")
    }
}
