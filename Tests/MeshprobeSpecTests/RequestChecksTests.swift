import MeshprobeSpec
import Testing

/// Load settings that cannot work are refused before a run, naming the flag (they used to crash the process on an
/// overflowing conversion, hang an HTTP/1.1 run, or fail every request).
@Suite struct RequestChecksTests {
    func plan(_ change: (inout LoadPlan) -> Void) throws -> LoadPlan {
        var c = LoadPlan(targets: [try LoadTarget(parsing: "http://127.0.0.1:8080/")])
        c.requests = 1
        change(&c)
        return c
    }

    func problem(_ change: (inout LoadPlan) -> Void) throws -> LoadPlanError? {
        let c = try plan(change)
        do throws(LoadPlanError) {
            try c.validate()
            return nil
        } catch {
            return error
        }
    }

    @Test func methodsMustBeTokens() throws {
        #expect(try problem { $0.method = "GE T" }?.field == "--method")
        #expect(try problem { $0.method = "" }?.field == "--method")
        #expect(try problem { $0.method = "PURGE" } == nil)
    }

    @Test func headerNamesMustBeTokensAndValuesSingleLines() throws {
        #expect(try problem { $0.headers = [HTTP2HeaderPair("bad name", "v")] }?.reason.contains("token") == true)
        #expect(try problem { $0.headers = [HTTP2HeaderPair("x-a", "b\r\nx-evil: 1")] }?.reason.contains("CR, LF or NUL") == true)
        #expect(try problem { $0.headers = [HTTP2HeaderPair("x-a", "b\u{0}")] }?.reason.contains("CR, LF or NUL") == true)
        #expect(try problem { $0.headers = [HTTP2HeaderPair("content-length", "99999")] }?.reason.contains("from the body") == true)
        #expect(try problem { $0.headers = [HTTP2HeaderPair("x-request-id", "abc-123"), HTTP2HeaderPair("authorization", "Bearer x")] } == nil)
    }

    @Test func connectionHeadersOnlyForHTTP1() throws {
        #expect(try problem { $0.headers = [HTTP2HeaderPair("connection", "close")] }?.reason.contains("--http 1.1") == true)
        #expect(try problem { $0.headers = [HTTP2HeaderPair("connection", "close")]; $0.httpVersion = .http1 } == nil)
        #expect(try problem { $0.headers = [HTTP2HeaderPair("transfer-encoding", "chunked")]; $0.httpVersion = .http2 } != nil)
    }

    @Test func flowStepsAreCheckedToo() throws {
        let e = try problem { $0.flow = [FlowStep(name: "login", method: "PO ST", path: "/login")] }
        #expect(e?.field == "steps[0] (login).method")
    }

    @Test func urlsWithSpacesOrControlCharactersAreRefused() {
        #expect(throws: LoadPlanError.self) { try LoadTarget(parsing: "http://127.0.0.1:8080/a b") }
        #expect(throws: LoadPlanError.self) { try LoadTarget(parsing: "http://127.0.0.1:8080/a\tb") }
        #expect((try? LoadTarget(parsing: "http://127.0.0.1:8080/a%20b")) != nil)
    }

    @Test func ratesDurationsAndStagesAreBounded() throws {
        #expect(try problem { $0.model = .open(rate: LoadProfile(start: 1e308), arrivals: .uniform) }?.field == "--rate")
        #expect(try problem { $0.model = .open(rate: LoadProfile(start: 1e-10), arrivals: .uniform) }?.field == "--rate")
        #expect(try problem { $0.model = .open(rate: LoadProfile(start: 0.001), arrivals: .uniform) } == nil)
        #expect(try problem { $0.duration = 400 * 86400 }?.field == "--duration")
        #expect(try problem { $0.requests = nil; $0.duration = 1; $0.warmup = 0.5; $0.requestTimeout = 1e12 }?.field == "--timeout")
        #expect(try problem { $0.model = .closed(concurrency: nil, thinkTime: 1e12) }?.field == "--think")
        let hugeStage = LoadProfile(start: 1, stages: [.init(duration: 1, target: 1e308)])
        #expect(try problem { $0.model = .open(rate: hugeStage, arrivals: .uniform) }?.field == "--rate stage 1 target")
        let longStages = LoadProfile(start: 1, stages: [.init(duration: 300 * 86400, target: 1), .init(duration: 300 * 86400, target: 1)])
        #expect(try problem { $0.model = .open(rate: longStages, arrivals: .uniform) }?.field == "--rate stages")
    }
}
