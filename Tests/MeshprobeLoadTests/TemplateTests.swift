import MeshprobeSpec
import Testing
@testable import MeshprobeLoad

@Suite struct TemplateTests {
    func compile(_ text: String, csv: CSVTable? = nil, env: [String: String] = [:]) throws -> TemplateString {
        try TemplateString(text, field: "test", csvHeader: csv?.header, environment: env)
    }

    @Test func constantTextIsAFastPath() throws {
        let t = try compile("/reviews/1")
        #expect(t.constantValue == "/reviews/1")
        #expect(try compile("/x/{{env:HOME_DIR}}", env: ["HOME_DIR": "h"]).constantValue == "/x/h")
    }

    @Test func sequenceAdvancesByTheWorkerStep() throws {
        let t = try compile("/item/{{seq}}")
        var values = TemplateValues(sequence: 1, seed: 1, csv: nil)
        var seen: [String] = []
        for _ in 0..<3 {
            seen.append(t.render(&values))
            values.advance(by: 2)
        }
        #expect(seen == ["/item/1", "/item/3", "/item/5"])
    }

    @Test func uuidsAreVersion4AndDistinct() throws {
        let t = try compile("{{uuid}}")
        var values = TemplateValues(sequence: 0, seed: 9, csv: nil)
        var all = Set<String>()
        for _ in 0..<500 {
            let u = t.render(&values)
            let parts = u.split(separator: "-")
            #expect(parts.map(\.count) == [8, 4, 4, 4, 12])
            #expect(parts[2].first == "4")
            #expect(["8", "9", "a", "b"].contains(parts[3].first.map(String.init) ?? ""))
            all.insert(u)
        }
        #expect(all.count == 500)
    }

    @Test func randomAndPickStayInBoundsAndCoverTheirRange() throws {
        var values = TemplateValues(sequence: 0, seed: 3, csv: nil)
        let r = try compile("{{random:5}}")
        let p = try compile("{{pick:a,b,c}}")
        var rs = Set<String>(), ps = Set<String>()
        for _ in 0..<300 {
            rs.insert(r.render(&values))
            ps.insert(p.render(&values))
        }
        #expect(rs == ["0", "1", "2", "3", "4"])
        #expect(ps == ["a", "b", "c"])
    }

    @Test func csvColumnsByNameOrNumberReadOneRowPerRequest() throws {
        let csv = try CSVTable(parsing: "user,token\nalice,\"a,1\"\nbob,\"b \"\"2\"\"\"\n", source: "users.csv")
        #expect(csv.rows == [["alice", "a,1"], ["bob", "b \"2\""]])
        let t = try compile("{{csv:user}}={{csv:2}}", csv: csv)
        var values = TemplateValues(sequence: 0, seed: 1, csv: csv)
        var seen: [String] = []
        for _ in 0..<3 {
            seen.append(t.render(&values))
            values.advance(by: 1)
        }
        #expect(seen == ["alice=a,1", "bob=b \"2\"", "alice=a,1"])
    }

    @Test(arguments: ["{{nope}}", "{{seq", "{{random:0}}", "{{random:x}}", "{{env:MISSING_VAR}}", "{{csv:user}}", "{{pick:}}"])
    func badPlaceholdersAreErrorsNamingTheField(_ text: String) {
        #expect {
            try TemplateString(text, field: "-H x-id", csvHeader: nil, environment: [:])
        } throws: { error in
            (error as? LoadPlanError)?.field == "-H x-id"
        }
    }

    @Test func csvErrorsNameTheFile() {
        #expect(throws: LoadPlanError.self) { try CSVTable(parsing: "", source: "empty.csv") }
        #expect(throws: LoadPlanError.self) { try CSVTable(parsing: "a,b\n", source: "header-only.csv") }
        #expect(throws: LoadPlanError.self) { try CSVTable(parsing: "a\n\"open", source: "quote.csv") }
    }
}
