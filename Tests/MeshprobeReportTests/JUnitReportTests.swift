import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import MeshprobeReport

@Suite struct JUnitReportTests {
    func parse(_ xml: String) throws -> XMLDocument {
        try XMLDocument(data: Data(xml.utf8), options: [])
    }

    func elements(_ document: XMLDocument, _ xpath: String) throws -> [XMLElement] {
        try document.nodes(forXPath: xpath).compactMap { $0 as? XMLElement }
    }

    @Test func oneSuitePerSectionAndOneCasePerCheckWithCounts() throws {
        let document = try parse(JUnitReport(try sampleReport(), hostname: "ci").render())
        let root = try #require(document.rootElement())
        #expect(root.name == "testsuites")
        // 3 checks, the step that could not run, the skipped step.
        #expect(root.attribute(forName: "tests")?.stringValue == "5")
        #expect(root.attribute(forName: "failures")?.stringValue == "1")
        #expect(root.attribute(forName: "errors")?.stringValue == "2")
        let suites = try elements(document, "/testsuites/testsuite")
        #expect(suites.map { $0.attribute(forName: "name")?.stringValue } == ["baseline", "v1 fails", "eject v1", "breaker", "after"])
        #expect(suites.map { $0.attribute(forName: "skipped")?.stringValue } == ["0", "0", "0", "0", "1"])
        #expect(suites[1].attribute(forName: "time")?.stringValue == "3.000")
        #expect(suites[1].attribute(forName: "timestamp")?.stringValue == "2027-01-15T08:00:03")
    }

    @Test func aFailureCarriesTheReasonAsMessageAndTheEvidenceAsText() throws {
        let document = try parse(JUnitReport(try sampleReport()).render())
        let failure = try #require(try elements(document, "//testcase[@name='SLO: success rate >= 0.999']/failure").first)
        #expect(failure.attribute(forName: "message")?.stringValue == "success rate 0.97 < 0.999: 9 of 300 failed <with> \"quotes\" & ampersands")
        #expect(failure.attribute(forName: "type")?.stringValue == "slo")
        #expect(failure.stringValue == "observed 0.9700\npoint estimate over every request\nsecond line\twith a tab")
        let testcase = try #require(failure.parent as? XMLElement)
        #expect(testcase.attribute(forName: "classname")?.stringValue == "meshprobe.gameday.slo")
        #expect(testcase.attribute(forName: "time")?.stringValue == "3.000")
    }

    @Test func undecidedChecksAndStepsThatCouldNotRunAreErrorsAndNeverStartedStepsAreSkipped() throws {
        let document = try parse(JUnitReport(try sampleReport()).render())
        let errors = try elements(document, "//error")
        #expect(errors.count == 2)
        #expect(errors.allSatisfy { $0.attribute(forName: "type")?.stringValue == "undecided" })
        #expect(errors.contains { $0.attribute(forName: "message")?.stringValue == "cannot reach the echo at https://127.0.0.1:1" })
        // The outlier check's timeline is part of its evidence.
        #expect(errors.contains { ($0.stringValue ?? "").contains("1.200 s  reviews-v1 ejected after 5 consecutive errors") })
        let skipped = try elements(document, "//skipped")
        #expect(skipped.count == 1)
        #expect(skipped.first?.attribute(forName: "message")?.stringValue == "not run: aborted: step 'breaker' could not run")
        let passing = try elements(document, "//testcase[not(failure) and not(error) and not(skipped)]")
        #expect(passing.count == 1)
    }

    @Test func hostileTextRoundTripsThroughAnXMLParser() throws {
        let document = try parse(JUnitReport(try sampleReport()).render())
        let names = try elements(document, "//testcase").compactMap { $0.attribute(forName: "name")?.stringValue }
        // Control characters become U+FFFD; everything else comes back as it went in.
        let expected = "reviews canary " + hostile.replacingOccurrences(of: "\u{01}", with: "\u{FFFD}").replacingOccurrences(of: "\u{1B}", with: "\u{FFFD}")
        #expect(names.contains(expected), "\(names)")
        let properties = try elements(document, "/testsuites/testsuite[1]/properties/property")
        #expect(properties.contains { $0.attribute(forName: "value")?.stringValue == "meshprobe gameday gamedays/reviews.yaml --junit out.xml" })
    }

    @Test func timesHaveAtMostThreeDecimals() {
        #expect(JUnitReport.time(1.23456) == "1.235")
        #expect(JUnitReport.time(-1) == "0.000")
        #expect(JUnitReport.time(.nan) == "0.000")
    }

    /// The Jenkins xunit plugin's junit-10.xsd, both versions scripts/install-deps takes from PyPI (the later one
    /// requires a suite's name, failures and errors and Surefire-style times), checked by xmllint (libxml2).
    @Test func validatesAgainstTheJenkinsJUnitSchema() async throws {
        let xmllint = "/usr/bin/xmllint"
        try #require(FileManager.default.isExecutableFile(atPath: xmllint), "xmllint (Debian's libxml2-utils) is installed by scripts/install-deps")
        let schemas = junitSchemas
        try #require(schemas.count == 2, "scripts/install-deps puts junit-10.xsd in /usr/local/share/meshprobe-test/junit-xsd")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-junit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var passing = try sampleReport(command: "verify")
        passing.sections = [passing.sections[0]]
        passing.abortReason = nil
        let empty = RunReport(command: "load", title: "nothing", inputs: [], version: "0", commandLine: [], startedAt: Date(), seconds: 0,
                              sections: [RunReport.Section(name: "load", seconds: 0)])
        for (name, report) in [("gameday", try sampleReport()), ("verify", passing), ("empty", empty)] {
            let file = dir.appendingPathComponent("\(name).xml").path
            try ReportFile.write(JUnitReport(report).render(), to: file, flag: "--junit")
            for schema in schemas {
                let out = try await run(xmllint, ["--noout", "--schema", schema, file])
                #expect(out.status == 0, "\(name) against \(schema): \(out.stderr)")
            }
        }
        // The validator is not a rubber stamp: a suite without its required counts is refused.
        let broken = dir.appendingPathComponent("broken.xml").path
        try #"<?xml version="1.0"?><testsuites><testsuite name="x"><testcase name="a"/></testsuite></testsuites>"#
            .write(toFile: broken, atomically: true, encoding: .utf8)
        for schema in schemas {
            let out = try await run(xmllint, ["--noout", "--schema", schema, broken])
            #expect(out.status != 0, "\(schema) accepted a suite without tests=")
        }
    }
}
