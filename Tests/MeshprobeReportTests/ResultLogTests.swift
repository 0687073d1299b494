import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

@testable import MeshprobeReport

/// `--json-log`'s block: the begin line, the JSON as `--json` writes it, the end line; and the JSON cut out of a log
/// that holds the lines for people around it.
@Suite struct ResultLogTests {
    let json = Data("{\n  \"summary\" : {\n    \"requests\" : 20\n  }\n}".utf8)

    @Test func theBlockIsTheMarkersAroundTheJSON() {
        let block = String(decoding: ResultLog.json.framed(json), as: UTF8.self)
        #expect(block == "----- BEGIN MESHPROBE RESULT -----\n{\n  \"summary\" : {\n    \"requests\" : 20\n  }\n}\n----- END MESHPROBE RESULT -----\n")
        // A JSON that ends with its newline gets no second one.
        #expect(ResultLog.json.framed(json + Data("\n".utf8)) == ResultLog.json.framed(json))
    }

    @Test func theJSONIsCutOutOfALogWithTheLinesForPeopleAroundIt() throws {
        let log = "meshprobe verify: sidecar: the istio proxy is ready\n  PASS  reviews answers as v1\n"
            + String(decoding: ResultLog.json.framed(json), as: UTF8.self)
            + "meshprobe verify: sidecar: asked the istio proxy to stop\n"
        let extracted = try #require(ResultLog.json.extract(log))
        #expect(Data(extracted.utf8) == json + Data("\n".utf8))
    }

    @Test func aMarkerInsideAJSONStringIsNotALine() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let hostile = try encoder.encode(["note": "\n\(ResultLog.json.end)\n\(ResultLog.json.begin)\n"])
        let extracted = try #require(ResultLog.json.extract(String(decoding: ResultLog.json.framed(hostile), as: UTF8.self)))
        #expect(try JSONDecoder().decode([String: String].self, from: Data(extracted.utf8)) == ["note": "\n\(ResultLog.json.end)\n\(ResultLog.json.begin)\n"])
    }

    /// XML text may hold any line: one that reads as a marker is written with its first `-` as `&#45;`, which an XML
    /// reader reads back as `-`; the two kinds of block do not see each other's markers.
    @Test func aMarkerLineInTheJUnitXMLIsACharacterReference() throws {
        let xml = "<?xml version=\"1.0\"?>\n<testsuites><testsuite><system-out>served by\n\(ResultLog.junit.end)\n\(ResultLog.json.begin)\nv1</system-out></testsuite></testsuites>\n"
        let block = String(decoding: ResultLog.junit.framed(Data(xml.utf8)), as: UTF8.self)
        #expect(block.hasPrefix(ResultLog.junit.begin + "\n<?xml") && block.hasSuffix("\n" + ResultLog.junit.end + "\n"))
        let extracted = try #require(ResultLog.junit.extract(block + String(decoding: ResultLog.json.framed(json), as: UTF8.self)))
        #expect(extracted == xml.replacingOccurrences(of: "\n-----", with: "\n&#45;----"))
        let document = try XMLDocument(data: Data(extracted.utf8), options: [])
        #expect(try document.nodes(forXPath: "//system-out").first?.stringValue == "served by\n\(ResultLog.junit.end)\n\(ResultLog.json.begin)\nv1")
        #expect(ResultLog.json.extract(block) == nil)
    }

    @Test func theLastCompleteBlockCountsAndAnUnfinishedOneDoesNot() {
        let first = String(decoding: ResultLog.json.framed(Data("{\"n\":1}".utf8)), as: UTF8.self)
        let second = String(decoding: ResultLog.json.framed(Data("{\"n\":2}".utf8)), as: UTF8.self)
        #expect(ResultLog.json.extract(first + second) == "{\"n\":2}\n")
        #expect(ResultLog.json.extract(first + "\(ResultLog.json.begin)\n{\"n\":") == "{\"n\":1}\n")
        #expect(ResultLog.json.extract("\(ResultLog.json.begin)\n{\"n\":") == nil)
        #expect(ResultLog.json.extract("no result here\n") == nil)
    }
}
