import Foundation
import MeshprobeIdentity

/// A run as JUnit XML (`--junit FILE`), the Ant/Jenkins format CI systems read: one `testsuite` per section (the
/// verify run, each game-day step, the load), one `testcase` per check.
///
/// A failed check is a `failure` (its reason as the message, its evidence as the text); a check that could not
/// decide, and a section that could not run, is an `error` (the command exits 3: never green); a game-day step never
/// started because the game day aborted is `skipped`. Valid against the Jenkins xunit plugin's `junit-10.xsd` (see
/// the tests).
public struct JUnitReport {
    public var report: RunReport
    /// The machine the run came from (`hostname` on each suite).
    public var hostname: String

    public init(_ report: RunReport, hostname: String = ProcessInfo.processInfo.hostName) {
        self.report = report
        self.hostname = hostname
    }

    public func render() -> String {
        let sections = report.sections
        var suites = ""
        var totals = (tests: 0, failures: 0, errors: 0)
        for (index, section) in sections.enumerated() {
            let cases = Self.cases(section)
            let failures = cases.filter { $0.outcome == .failed }.count
            let errors = cases.filter { $0.outcome == .undecided }.count
            let skipped = cases.filter { $0.outcome == .skipped }.count
            totals.tests += cases.count
            totals.failures += failures
            totals.errors += errors
            let start = report.startedAt.addingTimeInterval(section.offset)
            suites += "  <testsuite" + Self.attributes([
                ("name", section.name), ("tests", String(cases.count)), ("failures", String(failures)), ("errors", String(errors)),
                ("skipped", String(skipped)), ("time", Self.time(section.seconds)), ("timestamp", Self.timestamp(start)),
                ("hostname", hostname), ("id", String(index)), ("package", "meshprobe.\(report.command)"),
            ]) + ">\n"
            suites += "    <properties>\n"
            for (name, value) in properties(section) {
                suites += "      <property" + Self.attributes([("name", name), ("value", value)]) + "/>\n"
            }
            suites += "    </properties>\n"
            for c in cases { suites += c.xml(classname: "meshprobe.\(report.command).\(c.kind)") }
            suites += "  </testsuite>\n"
        }
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<testsuites" + Self.attributes([
            ("name", "meshprobe \(report.command): \(report.title)"), ("tests", String(totals.tests)),
            ("failures", String(totals.failures)), ("errors", String(totals.errors)), ("time", Self.time(report.seconds)),
        ]) + ">\n"
        out += suites
        out += "</testsuites>\n"
        return out
    }

    private func properties(_ section: RunReport.Section) -> [(String, String)] {
        var out: [(String, String)] = [("meshprobe.version", report.version), ("meshprobe.command_line", report.commandLine.joined(separator: " "))]
        for (i, input) in report.inputs.enumerated() { out.append(("meshprobe.input.\(i)", input)) }
        for (i, note) in section.notes.enumerated() { out.append(("meshprobe.note.\(i)", note)) }
        if let note = report.outcomeNote { out.append(("meshprobe.outcome", note)) }
        if let why = report.abortReason { out.append(("meshprobe.aborted", why)) }
        return out
    }

    /// One `testcase`.
    struct Case {
        var kind: String
        var name: String
        var outcome: RunReport.Status
        var message: String?
        var text: String
        var seconds: Double

        func xml(classname: String) -> String {
            var out = "    <testcase" + JUnitReport.attributes([("name", name), ("classname", classname), ("time", JUnitReport.time(seconds))])
            let body = MarkupText.escape(text)
            switch outcome {
            case .passed:
                return out + ">\n      <system-out>\(body)</system-out>\n    </testcase>\n"
            case .failed:
                out += ">\n      <failure" + JUnitReport.attributes([("message", message ?? "failed"), ("type", kind)]) + ">\(body)</failure>\n"
            case .undecided:
                out += ">\n      <error" + JUnitReport.attributes([("message", message ?? "undecided"), ("type", "undecided")]) + ">\(body)</error>\n"
            case .skipped:
                out += ">\n      <skipped" + JUnitReport.attributes([("message", message ?? "not run")]) + "/>\n"
            }
            return out + "    </testcase>\n"
        }
    }

    /// The test cases of a section: its checks, or one case saying why it has none.
    static func cases(_ section: RunReport.Section) -> [Case] {
        if section.skipped {
            return [Case(kind: "step", name: section.name, outcome: .skipped, message: section.problem ?? "not run: the run aborted before it",
                         text: "", seconds: 0)]
        }
        var cases = section.checks.map { check in
            var lines = [check.summary]
            if let reason = check.reason, check.status == .passed { lines.append(reason) }
            lines += check.evidence
            lines += check.timeline.map { String(format: "%8.3f s  %@", $0.at, $0.text) }
            return Case(kind: check.kind, name: check.name, outcome: check.status, message: check.reason ?? check.summary,
                        text: lines.joined(separator: "\n"), seconds: check.seconds)
        }
        if let problem = section.problem {
            cases.append(Case(kind: "step", name: "\(section.name): ran to the end", outcome: .undecided, message: problem,
                              text: (section.notes + [problem]).joined(separator: "\n"), seconds: section.seconds))
        } else if cases.isEmpty {
            let loads = section.loads.map { "\($0.name): \(counted($0.report.summary.requests, "request")), \($0.report.summary.failed) failed" }
            cases.append(Case(kind: "step", name: "\(section.name): ran to the end", outcome: .passed, message: nil,
                              text: (section.notes + loads).joined(separator: "\n"), seconds: section.seconds))
        }
        return cases
    }

    static func attributes(_ pairs: [(String, String)]) -> String {
        pairs.map { " \($0.0)=\"\(MarkupText.escape($0.1, attribute: true))\"" }.joined()
    }

    /// Seconds with at most three decimals (the Surefire-style `time` the stricter schema requires).
    static func time(_ seconds: Double) -> String {
        String(format: "%.3f", seconds.isFinite ? max(0, seconds) : 0)
    }

    /// ISO 8601 without a zone designator, as Ant writes it (UTC).
    static func timestamp(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
        return formatter.string(from: date)
    }
}
