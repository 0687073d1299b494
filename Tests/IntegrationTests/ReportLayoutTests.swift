import Foundation
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
          out.textContent = JSON.stringify({viewport: vw, charts: charts.map(c => Math.round(c.getBoundingClientRect().width)), problems});
          document.body.appendChild(out);
        })();
        </script>
        """

    struct Layout: Decodable {
        var viewport: Int
        var charts: [Int]
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

    func expectLaidOut(_ html: String, name: String, in dir: URL, charts: Int) async throws {
        let found = try await layout(html, name: name, in: dir)
        #expect(found.viewport == Self.viewport.width)
        #expect(found.charts.count >= charts, "\(name): \(found.charts)")
        // The charts use the page: the narrowest (two side by side) takes more than a third of the viewport.
        #expect(found.charts.allSatisfy { $0 > Self.viewport.width / 3 }, "\(name): chart widths \(found.charts)")
        #expect(found.problems.isEmpty, "\(name):\n\(found.problems.joined(separator: "\n"))")
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
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        // 4.5 s: per-second charts with a partial last second; 1 s: a histogram.
        for (name, duration, charts) in [("load-long", "4.5s", 3), ("load-short", "1s", 2)] {
            let html = dir.appendingPathComponent("\(name).html").path
            let out = try await run(meshprobeBinary, ["load", "http://127.0.0.1:\(echo.port)/reviews", "--rate", "200", "-d", duration, "--quiet",
                                                      "--html", html], timeout: 60)
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            let page = try String(contentsOfFile: html, encoding: .utf8)
            #expect(page.contains(name == "load-long" ? "<title>throughput: " : "<title>latency histogram: "))
            try await expectLaidOut(html, name: name, in: dir, charts: charts)
        }
        let demo = dir.appendingPathComponent("demo.html").path
        let out = try await run(meshprobeBinary, ["demo", "-n", "4000", "--html", demo], timeout: 90)
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
        try await expectLaidOut(demo, name: "demo", in: dir, charts: 5)
    }

    /// A game day with crowded markers, a step name longer than a line and a load per step.
    @Test func aGameDayReportFitsAt1280() async throws {
        let echo = try await startEcho(version: "v1", tls: nil)
        defer { Task { await echo.close() } }
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        // 3.5 s of about 100 requests a second (per-second charts), and 200 requests at once (a histogram).
        let url = "http://127.0.0.1:\(echo.port)/reviews"
        let steady = try await runLoad([url], connections: 1, streams: 1) {
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
        let report = RunReport(
            command: "gameday", title: "reviews game day", inputs: ["gamedays/reviews.yaml"], version: "test", commandLine: ["meshprobe", "gameday"],
            startedAt: Date(), seconds: 40, sections: [
                RunReport.Section(name: "baseline", offset: 0, seconds: 2, loads: [load]),
                RunReport.Section(name: long, offset: 2, seconds: 0.4, notes: ["f1 on v1: status 503 (cleared)"], loads: [short]),
                RunReport.Section(name: "eject v1", offset: 2.4, seconds: 30, checks: [outlier]),
                RunReport.Section(name: "after", offset: 32.4, seconds: 8, loads: [load]),
            ])
        let html = dir.appendingPathComponent("gameday.html")
        try HTMLReport(report).render().write(to: html, atomically: true, encoding: .utf8)
        try await expectLaidOut(html.path, name: "gameday", in: dir, charts: 8)
    }
}
