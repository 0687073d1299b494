import Foundation
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeReport
import MeshprobeSpec
import Testing

/// The HTML report laid out by a real browser at 1280 x 900: every chart inside the viewport and filling its place,
/// no horizontal scrolling, no chart text cut at the chart's edge or covering other text.
///
/// The report itself runs no script (its Content-Security-Policy forbids it). The test measures a copy whose policy
/// lets one inline script run: it reads the element boxes after layout and writes what it found into the page,
/// which `--dump-dom` prints.
extension EndToEnd.ReportOutputTests {
    static let viewport = (width: 1280, height: 900)

    /// Measures the layout: the document's width, each chart's box against the viewport and its container, and each
    /// chart text's box against its chart and the other texts.
    static let layoutScript = """
        <script>
        (() => {
          const vw = window.innerWidth, problems = [], eps = 0.5;
          const doc = document.documentElement.scrollWidth;
          if (doc > vw) problems.push(`the document is ${doc} px wide in a ${vw} px viewport`);
          const charts = [...document.querySelectorAll('svg.chart')];
          charts.forEach((svg, i) => {
            const name = `chart ${i + 1} (${svg.querySelector('title').textContent})`;
            const b = svg.getBoundingClientRect();
            if (b.left < -eps || b.right > vw + eps) problems.push(`${name}: ${b.left}..${b.right} outside the viewport`);
            const place = svg.parentElement.clientWidth - parseFloat(getComputedStyle(svg.parentElement).paddingLeft)
              - parseFloat(getComputedStyle(svg.parentElement).paddingRight);
            if (Math.abs(b.width - place) > 1) problems.push(`${name}: ${b.width} px wide in a place of ${place} px`);
            const texts = [...svg.querySelectorAll('text')].map(t => [t.textContent, t.getBoundingClientRect()]);
            for (const [s, r] of texts) {
              if (r.left < b.left - eps || r.right > b.right + eps || r.top < b.top - eps || r.bottom > b.bottom + eps)
                problems.push(`${name}: text '${s}' cut: ${r.left}..${r.right} x ${r.top}..${r.bottom} in ${b.left}..${b.right} x ${b.top}..${b.bottom}`);
            }
            texts.forEach(([s, r], j) => texts.slice(j + 1).forEach(([t, q]) => {
              const w = Math.min(r.right, q.right) - Math.max(r.left, q.left), h = Math.min(r.bottom, q.bottom) - Math.max(r.top, q.top);
              if (w > 1 && h > 1) problems.push(`${name}: text '${s}' covers '${t}'`);
            }));
          });
          const out = document.createElement('pre');
          out.id = 'layout';
          out.textContent = JSON.stringify({viewport: vw, charts: charts.map(c => Math.round(c.getBoundingClientRect().width)),
            titles: charts.map(c => c.querySelector('title').textContent), problems});
          document.body.appendChild(out);
        })();
        </script>
        """

    struct Layout: Decodable {
        var viewport: Int
        var charts: [Int]
        /// Each chart's title, in the order of `charts`.
        var titles: [String]
        var problems: [String]
    }

    /// Lays `html` out in Chromium at 1280 x 900 and returns what the layout script found; takes a screenshot too
    /// (kept in `MESHPROBE_REPORT_SHOTS` when that is set, to look at).
    func layout(_ html: String, name: String, in dir: URL) async throws -> Layout {
        let page = try String(contentsOfFile: html, encoding: .utf8)
        let policy = "default-src 'none'; style-src 'unsafe-inline'"
        #expect(page.contains(policy))
        let measured = page.replacingOccurrences(of: policy, with: "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
            .replacingOccurrences(of: "</body>", with: Self.layoutScript + "</body>")
        let copy = dir.appendingPathComponent("\(name)-measured.html")
        try measured.write(to: copy, atomically: true, encoding: .utf8)
        let size = "--window-size=\(Self.viewport.width),\(Self.viewport.height)"
        let dom = try await chromium(copy.path, ["--dump-dom", size], profile: dir.appendingPathComponent("profile-\(name)-dom"))
        #expect(dom.status == 0, "\(dom.stderr)")
        #expect(consoleLines(dom.stderr).isEmpty, "\(consoleLines(dom.stderr))")
        let start = try #require(dom.stdout.range(of: "<pre id=\"layout\">"), "\(dom.stdout.suffix(2000))\(dom.stderr)")
        let end = try #require(dom.stdout.range(of: "</pre>", range: start.upperBound..<dom.stdout.endIndex))
        let json = String(dom.stdout[start.upperBound..<end.lowerBound]).replacingOccurrences(of: "&amp;", with: "&")
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&quot;", with: "\"")
        let result = try JSONDecoder().decode(Layout.self, from: Data(json.utf8))

        let png = dir.appendingPathComponent("\(name).png").path
        let shot = try await chromium(html, ["--screenshot=\(png)", size], profile: dir.appendingPathComponent("profile-\(name)-png"))
        #expect(shot.status == 0, "\(shot.stderr)")
        let facts = try await pngFacts(png)
        #expect(facts.width == Self.viewport.width && facts.height == Self.viewport.height, "\(facts)")
        #expect(facts.distinct > 20, "the screenshot looks blank: \(facts)")
        if let keep = ProcessInfo.processInfo.environment["MESHPROBE_REPORT_SHOTS"] {
            try? FileManager.default.createDirectory(atPath: keep, withIntermediateDirectories: true)
            for file in [html, png] {
                let target = URL(fileURLWithPath: keep).appendingPathComponent("\(name).\(URL(fileURLWithPath: file).pathExtension)")
                try? FileManager.default.removeItem(at: target)
                try? FileManager.default.copyItem(atPath: file, toPath: target.path)
            }
        }
        return result
    }

    /// Lays the page out and expects it to fit; `titles`: charts (by the start of their title) that must be there,
    /// laid out with the rest.
    func expectLaidOut(_ html: String, name: String, in dir: URL, charts: Int, titles: [String] = []) async throws {
        let found = try await layout(html, name: name, in: dir)
        #expect(found.viewport == Self.viewport.width)
        #expect(found.charts.count >= charts, "\(name): \(found.charts)")
        // The charts use the page: the narrowest (two side by side) takes more than a third of the viewport.
        #expect(found.charts.allSatisfy { $0 > Self.viewport.width / 3 }, "\(name): chart widths \(found.charts)")
        #expect(found.problems.isEmpty, "\(name):\n\(found.problems.joined(separator: "\n"))")
        for title in titles { #expect(found.titles.contains { $0.hasPrefix(title) }, "\(name): no chart '\(title)' in \(found.titles)") }
    }

    /// The lines of the throughput-by-identity chart in `page`: each line's group title (`NAME: N responses`).
    func identityLines(_ page: String) -> [String] {
        let pattern = try! NSRegularExpression(pattern: "<g class=\"ident [a-z0-9]+\"><title>([^<]*)</title>")
        return pattern.matches(in: page, range: NSRange(page.startIndex..., in: page)).map { String(page[Range($0.range(at: 1), in: page)!]) }
    }

    /// Negative control: the layout check sees a page wider than the viewport, a chart wider than its place, and
    /// text cut at a chart's edge and covering other text.
    @Test func theLayoutCheckSeesOverflowAndCutText() async throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let page = dir.appendingPathComponent("broken.html")
        try """
            <!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
            </head><body><div style="width:1500px">wide</div>
            <div><svg class="chart" xmlns="http://www.w3.org/2000/svg" width="760" height="100" viewBox="0 0 760 100"><title>fixed</title>
            <text x="740" y="50">cut at the edge</text><text x="10" y="80">one</text><text x="14" y="80">two</text></svg></div>
            </body></html>
            """.write(to: page, atomically: true, encoding: .utf8)
        let found = try await layout(page.path, name: "broken", in: dir)
        #expect(found.problems.contains { $0.contains("the document is") }, "\(found.problems)")
        #expect(found.problems.contains { $0.contains("text 'cut at the edge' cut") }, "\(found.problems)")
        #expect(found.problems.contains { $0.contains("text 'one' covers 'two'") }, "\(found.problems)")
        #expect(found.problems.contains { $0.contains("760 px wide in a place of") }, "\(found.problems)")
    }

    @Test func loadAndDemoReportsFitAt1280() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let canary = try await startEcho(version: "v2", tls: nil)
        defer { Task { await canary.close() } }
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        // 4.5 s over two workloads (connections alternate between them): per-second charts with a partial last
        // second, throughput by identity a line each; 1 s: a histogram.
        let both = ["http://127.0.0.1:\(echo.port)/reviews", "http://127.0.0.1:\(canary.port)/reviews"]
        for (name, urls, duration, charts) in [("load-long", both, "4.5s", 4), ("load-short", [both[0]], "1s", 2)] {
            let html = dir.appendingPathComponent("\(name).html").path
            let out = try await run(meshprobeBinary, ["load"] + urls + ["-c", "2", "--rate", "200", "-d", duration, "--quiet", "--html", html], timeout: 60)
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            let page = try String(contentsOfFile: html, encoding: .utf8)
            #expect(page.contains(name == "load-long" ? "<title>throughput: " : "<title>latency histogram: "))
            if name == "load-long" {
                let lines = identityLines(page)
                #expect(lines.count == 2, "\(lines)")
                #expect(lines.contains { $0.hasPrefix("reviews/v1: ") } && lines.contains { $0.hasPrefix("reviews/v2: ") }, "\(lines)")
            }
            try await expectLaidOut(html, name: name, in: dir, charts: charts, titles: name == "load-long" ? ["throughput by identity: "] : [])
        }
        // The demo's circuit breaker (behind HAProxy) over time.
        let demo = dir.appendingPathComponent("demo.html").path
        let out = try await run(meshprobeBinary, ["demo", "-n", "4000", "--html", demo], timeout: 90)
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
        let haproxy = which("haproxy") != nil
        try await expectLaidOut(demo, name: "demo", in: dir, charts: haproxy ? 6 : 4, titles: haproxy ? ["circuit breaker over time: "] : [])
        // The demo's access step: its matrix, three cells as declared, inside the page (the layout check above sees a
        // page wider than the viewport).
        let page = try String(contentsOfFile: demo, encoding: .utf8)
        #expect(page.contains("<table class=\"access\">") && page.components(separatedBy: "<td class=\"cell passed\"").count == 4, "no access matrix")
    }

    /// A load answered by a dozen identities with long names (a broken setup): six lines and "other", their names
    /// at the lines' ends inside the chart, apart from each other.
    @Test func aLoadOfManyIdentitiesFitsAt1280() async throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        var result = LoadResult()
        let identities = (1...12).map {
            WorkloadIdentity(identity: "spiffe://cluster.local/ns/bookinfo/sa/reviews", workload: "reviews-with-a-rather-long-name", version: "v\($0)")
        }
        for second in 0..<5 {
            var bucket = TimelineBucket(second: second)
            for (i, identity) in identities.enumerated() {
                // Nearly equal counts, so that the lines' ends crowd: their names must still not cover each other.
                let n = second == 4 ? (60 - i) / 2 : 60 - i
                bucket.responses += n
                bucket.succeeded += n
                bucket.identities[identity] = n
                for _ in 0..<n { _ = bucket.latency.record(UInt64(800 + 10 * i)) }
                result.identities[identity, default: IdentityStats()].requests += n
                result.identities[identity, default: IdentityStats()].succeeded += n
                for _ in 0..<n { _ = result.latency.record(UInt64(800 + 10 * i)) }
            }
            result.responses += bucket.responses
            result.succeeded += bucket.succeeded
            result.timeline.append(TimelinePoint(bucket))
        }
        result.elapsedSeconds = 4.5
        let configuration = LoadConfiguration(targets: [try LoadTarget(parsing: "http://127.0.0.1:8080/reviews")])
        let load = RunReport.Load(name: "reviews", result: result, configuration: configuration)
        let report = RunReport(command: "load", title: "reviews", inputs: [], version: "test", commandLine: ["meshprobe", "load"], startedAt: Date(),
                               seconds: 4.5, sections: [RunReport.Section(name: "load", seconds: 4.5, loads: [load])])
        let html = dir.appendingPathComponent("identities.html")
        let page = HTMLReport(report).render()
        try page.write(to: html, atomically: true, encoding: .utf8)
        let lines = identityLines(page)
        #expect(lines.count == 7, "six identities and the rest: \(lines)")
        #expect(lines.last?.hasPrefix("other (6): ") == true, "\(lines)")
        try await expectLaidOut(html.path, name: "identities", in: dir, charts: 4, titles: ["throughput by identity: "])
    }

    /// A game day with crowded markers, a step name longer than a line and a load per step.
    @Test func aGameDayReportFitsAt1280() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        // 3.5 s of about 100 requests a second, a tenth failing (per-second charts, failed bars ending with a partial
        // second), and 200 requests at once (a histogram).
        let url = "http://127.0.0.1:\(echo.port)/reviews"
        let steady = try await runLoad([url + "?status=503:10"], connections: 1, streams: 1) {
            $0.plan.requests = nil
            $0.plan.duration = 3.5
            $0.plan.model = .closed(concurrency: nil, thinkTime: 0.01)
        }
        let burst = try await runLoad([url], requests: 200)
        let configuration = LoadConfiguration(targets: [try LoadTarget(parsing: url)])
        let load = RunReport.Load(name: "reviews steady", result: steady, configuration: configuration)
        let short = RunReport.Load(name: "reviews burst", result: burst, configuration: configuration)
        let long = "v1 answers 503 to half its requests; retries should hide it from the callers of the reviews service at every hop"
        let outlier = RunReport.Check(
            kind: "outlier_detection", name: "outlier detection: ejected", status: .passed, summary: "ejected 1", seconds: 4,
            timeline: [RunReport.Event(at: 0.1, text: "fault f1 set"), RunReport.Event(at: 0.15, text: "reviews-v1 ejected after 5 errors"),
                       RunReport.Event(at: 0.2, text: "reviews-v2 ejected after 5 errors"), RunReport.Event(at: 3.4, text: "reviews-v1 back after 3 s"),
                       RunReport.Event(at: 3.5, text: "fault f1 cleared")])
        // A circuit breaker's two phases over time, as `verify` keeps them: 10 at once, then 22 with overflow replies.
        let declared: [String: Double] = ["max_requests": 10, "max_pending": 1, "hold_ms": 100]
        let points: [VerifyReport.OverTime.Point] = (0..<24).map { (i: Int) -> VerifyReport.OverTime.Point in
            VerifyReport.OverTime.Point(at: Double(i) / 10, held: i == 0 ? 9 : 10, succeeded: i == 0 ? 0 : 100, overflow: i >= 15 ? 110 : 0,
                                        failed: i == 20 ? 3 : 0)
        }
        let phases = [VerifyReport.OverTime.Phase(name: "at the limit", concurrency: 10, start: 0, end: 1.52),
                      VerifyReport.OverTime.Phase(name: "above it", concurrency: 22, start: 1.53, end: 2.37)]
        let series = VerifyReport.OverTime(interval: 0.1, phases: phases, points: points)
        let breaker = [
            RunReport.Check(kind: "circuit_breaker", name: "circuit breaker (reviews): above the limit (22 concurrent): overflow replies, fast", status: .passed,
                            summary: "", seconds: 2.4,
                            observed: ["concurrency": 22, "overflow": 990, "overflow_p50_ms": 1.2, "overflow_p99_ms": 4.5, "requests": 1500] as [String: Double],
                            declared: declared),
            RunReport.Check(kind: "circuit_breaker", name: "circuit breaker (reviews): the service (all endpoints together) never had more than 10 in flight",
                            status: .passed, summary: "", seconds: 2.4, observed: ["limit": 10, "peak_in_flight_service": 10, "requests": 3000],
                            declared: declared, overTime: series),
        ]
        let report = RunReport(
            command: "gameday", title: "reviews game day", inputs: ["gamedays/reviews.yaml"], version: "test", commandLine: ["meshprobe", "gameday"],
            startedAt: Date(), seconds: 42.4, sections: [
                RunReport.Section(name: "baseline", offset: 0, seconds: 2, loads: [load]),
                RunReport.Section(name: long, offset: 2, seconds: 0.4, notes: ["f1 on v1: status 503 (cleared)"], loads: [short]),
                RunReport.Section(name: "eject v1", offset: 2.4, seconds: 30, checks: [outlier]),
                RunReport.Section(name: "after", offset: 32.4, seconds: 8, loads: [load]),
                RunReport.Section(name: "breaker", offset: 40.4, seconds: 2.4, checks: breaker),
            ])
        let html = dir.appendingPathComponent("gameday.html")
        let page = HTMLReport(report).render()
        try page.write(to: html, atomically: true, encoding: .utf8)
        // The steps' loads end with a partial second: their failed bars there are rates, drawn lighter.
        #expect(page.contains("<rect class=\"failed partial\""))
        try await expectLaidOut(html.path, name: "gameday", in: dir, charts: 10, titles: ["circuit breaker over time: ", "ejections: "])
    }
}
