import Foundation
import Testing

@testable import MeshprobeReport

/// `--json-log`'s block: the begin line, the JSON as `--json` writes it, the end line; and the JSON cut out of a log
/// that holds the lines for people around it.
@Suite struct ResultLogTests {
    let json = Data("{\n  \"summary\" : {\n    \"requests\" : 20\n  }\n}".utf8)

    @Test func theBlockIsTheMarkersAroundTheJSON() {
        let block = String(decoding: ResultLog.framed(json), as: UTF8.self)
        #expect(block == "----- BEGIN MESHPROBE RESULT -----\n{\n  \"summary\" : {\n    \"requests\" : 20\n  }\n}\n----- END MESHPROBE RESULT -----\n")
        // A JSON that ends with its newline gets no second one.
        #expect(ResultLog.framed(json + Data("\n".utf8)) == ResultLog.framed(json))
    }

    @Test func theJSONIsCutOutOfALogWithTheLinesForPeopleAroundIt() throws {
        let log = "meshprobe verify: sidecar: the istio proxy is ready\n  PASS  reviews answers as v1\n"
            + String(decoding: ResultLog.framed(json), as: UTF8.self)
            + "meshprobe verify: sidecar: asked the istio proxy to stop\n"
        let extracted = try #require(ResultLog.extract(log))
        #expect(Data(extracted.utf8) == json + Data("\n".utf8))
    }

    @Test func aMarkerInsideAJSONStringIsNotALine() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let hostile = try encoder.encode(["note": "\n\(ResultLog.end)\n\(ResultLog.begin)\n"])
        let extracted = try #require(ResultLog.extract(String(decoding: ResultLog.framed(hostile), as: UTF8.self)))
        #expect(try JSONDecoder().decode([String: String].self, from: Data(extracted.utf8)) == ["note": "\n\(ResultLog.end)\n\(ResultLog.begin)\n"])
    }

    @Test func theLastCompleteBlockCountsAndAnUnfinishedOneDoesNot() {
        let first = String(decoding: ResultLog.framed(Data("{\"n\":1}".utf8)), as: UTF8.self)
        let second = String(decoding: ResultLog.framed(Data("{\"n\":2}".utf8)), as: UTF8.self)
        #expect(ResultLog.extract(first + second) == "{\"n\":2}\n")
        #expect(ResultLog.extract(first + "\(ResultLog.begin)\n{\"n\":") == "{\"n\":1}\n")
        #expect(ResultLog.extract("\(ResultLog.begin)\n{\"n\":") == nil)
        #expect(ResultLog.extract("no result here\n") == nil)
    }
}
