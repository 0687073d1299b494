import MeshprobeEchoAPI
import MeshprobeReport
import Foundation
import Testing

/// What a server or a file puts into a line cannot drive the terminal: every line meshprobe prints is defanged, and
/// only meshprobe's own colours (a `TerminalText` from `TerminalStyle`) are escape sequences.
@Suite struct TerminalDefangTests {
    @Test func ownColoursStayEverythingElseThatControlsTheTerminalGoes() {
        let style = TerminalStyle(color: true)
        let ours = style.status(.passed) + " " + style.bold(style.red("FAIL"))
        #expect(ours.rendered == "\u{1B}[32mPASS\u{1B}[0m \u{1B}[1m\u{1B}[31mFAIL\u{1B}[0m\u{1B}[0m", "meshprobe's own colour sequences are kept")
        let hostile = "a\u{1B}[2K\u{1B}]0;pwned\u{07}\r\u{8}b\u{9B}2J\u{9D}x\u{202E}y\u{1B}[1A"
        let safe = TerminalStyle.defang(hostile)
        #expect(!safe.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) || $0 == "\u{202E}" }, "\(safe.debugDescription)")
        #expect(safe.hasPrefix("a\u{FFFD}[2K"), "\(safe.debugDescription)")
        #expect(TerminalStyle.defang("line 1\n\tline 2") == "line 1\n\tline 2", "newlines and tabs are meshprobe's own layout")
        #expect(TerminalStyle.defang("plain text") == "plain text")
    }

    /// A value that spells one of meshprobe's own colours is still a value: plain wherever it goes, in a `String`
    /// line or inside coloured output.
    @Test func aValueSpellingOurOwnColoursDoesNotColour() {
        let style = TerminalStyle(color: true)
        let value = "spiffe://td/\u{1B}[32mPASS\u{1B}[0m"
        #expect(TerminalStyle.defang(value) == "spiffe://td/\u{FFFD}[32mPASS\u{FFFD}[0m")
        let line = style.bold("identity: ") + value + "\n"
        #expect(line.rendered == "\u{1B}[1midentity: \u{1B}[0mspiffe://td/\u{FFFD}[32mPASS\u{FFFD}[0m\n")
        var block = TerminalText("header\n")
        block += value
        block += style.red(value)
        #expect(block.rendered.components(separatedBy: "\u{1B}").count - 1 == 2, "only the red and its reset: \(block.rendered.debugDescription)")
        #expect(TerminalText(value).rendered == TerminalStyle.defang(value))
    }

    @Test func aControlAPIAnswerIsPrintableWhenDecoded() throws {
        let json = #"{"id":"f1\u001b[31m\nPASS","status":503,"statusShare":50,"delayMs":0,"delayShare":0,"resetShare":0,"path":"/\u009b2J","expiresInSeconds":30,"setBy":"x\u0007"}"#
        let fault = try JSONDecoder().decode(FaultControlJSON.Fault.self, from: Data(json.utf8))
        for text in [fault.id, fault.path, fault.setBy] {
            #expect(!text.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }, "\(text.debugDescription)")
        }
        #expect(fault.status == 503 && fault.expiresInSeconds == 30)
    }
}
