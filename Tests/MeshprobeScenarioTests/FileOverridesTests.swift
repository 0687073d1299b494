import Foundation
import MeshprobeSpec
import MeshprobeYAML
import Testing
@testable import MeshprobeScenario

/// `--target`, `--svid-dir` and `--set` change the file's tree before it is read: the file's own checks judge the
/// result, at the field's place, saying where the value came from; and `--check` reads none of the identity's files.
@Suite struct FileOverridesTests {
    let base = URL(fileURLWithPath: "/srv/scenarios")
    let file = """
        name: canary
        targets:
          - https://reviews.bookinfo:8443/a
          - {url: https://gw.example:443/b, sni: outbound_.9080_._.reviews}
        identity: {cert: c.pem, key: k.pem, ca: ca.pem, expectPeer: spiffe://cluster.local/ns/bookinfo/sa/reviews}
        load:
          connections: 4
          requests: 100
        """

    func parse(_ text: String, _ overrides: FileOverrides) throws -> Scenario {
        try Scenario.parse(text, file: "s.yaml", baseDirectory: base, overrides: overrides)
    }

    func error(_ text: String, _ overrides: FileOverrides) -> YAMLInputError? {
        do { _ = try parse(text, overrides) } catch { return error as? YAMLInputError }
        return nil
    }

    func set(_ assignments: String...) throws -> FileOverrides {
        FileOverrides(assignments: try assignments.map { text in try YAMLOverride(assignment: text) })
    }

    @Test func targetReplacesEveryTargetOfTheFileWithTheOnesGiven() throws {
        let one = try parse(file, FileOverrides(targets: ["https://127.0.0.1:8443/x"]))
        #expect(one.plan.targets.map(\.description) == ["https://127.0.0.1:8443/x"])
        #expect(one.plan.targets[0].serverName == nil)
        let two = try parse("target: https://a/\nload: {requests: 1}\n", FileOverrides(targets: ["http://127.0.0.1:1/", "http://127.0.0.1:2/"]))
        #expect(two.plan.targets.count == 2)
    }

    @Test func svidDirReplacesTheIdentitySourcesAndKeepsExpectPeer() throws {
        let s = try parse(file, FileOverrides(svidDir: "/lab/prober"))
        #expect(s.identity.tls.svidDir == "/lab/prober")
        #expect(s.identity.tls.cert == nil && s.identity.tls.key == nil && s.identity.tls.ca == nil)
        #expect(s.identity.expectPeer?.description == "spiffe://cluster.local/ns/bookinfo/sa/reviews")
        // Relative to the working directory, not to the file's.
        let relative = try parse(file, FileOverrides(svidDir: "prober"))
        #expect(relative.identity.tls.svidDir == URL(fileURLWithPath: "prober").path)
    }

    @Test func setChangesAScalarAndCreatesWhatTheFileLeavesOut() throws {
        let s = try parse(file, try set("load.connections=20", "load.streams=5", "request.method=POST"))
        #expect(s.plan.connections == 20 && s.plan.streamsPerConnection == 5 && s.plan.method == "POST")
        let item = try parse("target: https://a/\nidentity: {ca: ca.pem}\nload: {requests: 1}\nsteps:\n  - {name: a, path: /a}\n  - {name: b, path: /b}\n",
                             try set("steps[1].path=/c"))
        #expect(item.plan.flow.map(\.path) == ["/a", "/c"])
    }

    @Test func aBadValueFromSetIsAFileErrorAtTheFieldSayingWhereItCameFrom() throws {
        let e = try #require(error(file, try set("load.connections=many")))
        #expect(e.file == "s.yaml" && e.line == 7 && e.field == "load.connections", "\(e)")
        #expect(e.message.contains("expected a whole number") && e.message.hasSuffix("(the value comes from --set load.connections=many)"), "\(e)")
        let unknown = try #require(error(file, try set("load.streems=4")))
        #expect(unknown.field == "load.streems" && unknown.message.contains("unknown field") && unknown.message.contains("--set load.streems=4"), "\(unknown)")
        let target = try #require(error(file, FileOverrides(targets: ["ftp://x/"])))
        #expect(target.field == "targets[0]" && target.message.contains("(the value comes from --target)"), "\(target)")
    }

    @Test func setRefusesToReplaceAMappingOrGoThroughAScalar() throws {
        let mapping = try #require(error(file, try set("load=3")))
        #expect(mapping.field == "load" && mapping.message.contains("--set load=3") && mapping.message.contains("a mapping"), "\(mapping)")
        let through = try #require(error(file, try set("name.first=x")))
        #expect(through.line == 1 && through.message.contains("name is not a mapping"), "\(through)")
        let past = try #require(error(file, try set("targets[5]=https://x/")))
        #expect(past.message.contains("targets has 2 items"), "\(past)")
        #expect(throws: (any Error).self) { try YAMLOverride(assignment: "load.connections") }
        #expect(throws: (any Error).self) { try YAMLOverride(assignment: "load..connections=1") }
        #expect(throws: (any Error).self) { try YAMLOverride(assignment: "steps[x].path=/") }
    }

    @Test func theIdentityCheckWithoutReadingFilesNeedsNoSVIDDirectory() throws {
        let s = try parse("target: https://h/\nidentity: {svidDir: /nonexistent/svid, expectPeer: cluster.local}\nload: {requests: 1}\n",
                          FileOverrides())
        try s.identity.check(https: true, file: "s.yaml", readFiles: false)
        #expect(throws: YAMLInputError.self) { try s.identity.check(https: true, file: "s.yaml") }
        // What needs no file is still checked: an https target needs a trust bundle named somewhere.
        let bare = try parse("target: https://h/\nidentity: {cert: /no/c.pem, key: /no/k.pem}\nload: {requests: 1}\n", FileOverrides())
        #expect(throws: YAMLInputError.self) { try bare.identity.check(https: true, file: "s.yaml", readFiles: false) }
    }

    @Test func anIdentityErrorAtAFieldTheSVIDDirFlagSetSaysSo() throws {
        let s = try parse(file, FileOverrides(svidDir: "/nonexistent/lab"))
        do {
            try s.identity.check(https: true, file: "s.yaml")
            Issue.record("a missing SVID directory is refused")
        } catch {
            #expect(error.field == "identity.svidDir" && error.message.contains("(the value comes from --svid-dir /nonexistent/lab)"), "\(error)")
        }
    }
}
