import MeshprobeIdentity

/// Whether terminal output gets colours: only on a terminal, never with `NO_COLOR` set (https://no-color.org: any
/// non-empty value) or `TERM=dumb`.
public struct TerminalStyle: Sendable, Equatable {
    public var color: Bool

    public init(color: Bool) {
        self.color = color
    }

    /// The style for a stream: `isTerminal` is `isatty(fd) == 1`; `environment` the process's.
    public static func detect(isTerminal: Bool, environment: [String: String]) -> TerminalStyle {
        if let noColor = environment["NO_COLOR"], !noColor.isEmpty { return TerminalStyle(color: false) }
        if environment["TERM"] == "dumb" { return TerminalStyle(color: false) }
        return TerminalStyle(color: isTerminal)
    }

    /// Untrusted text (a stamp, an error message) made safe to print: control characters, escape sequences among
    /// them, become U+FFFD, so a server cannot move the cursor or recolour the terminal; tabs and newlines become spaces.
    public static func sanitize(_ text: String) -> String {
        var out = ""
        out.unicodeScalars.append(contentsOf: text.unicodeScalars.map { scalar -> Unicode.Scalar in
            if scalar == "\t" || scalar == "\n" || scalar == "\r" { return " " }
            return isDangerous(scalar) ? "\u{FFFD}" : scalar
        })
        return out
    }

    /// The escape sequences meshprobe itself writes (the colours below, and `cursorUpAndClear` for the live view).
    static let ownSequences = ["[0m", "[1m", "[31m", "[32m", "[33m"].map { Array($0.unicodeScalars) }

    /// A whole block of terminal output made safe at the last moment, whatever went into it: every control
    /// character but newline and tab (escape sequences, carriage return, backspace, bell, the C1 controls that some
    /// terminals obey in UTF-8) and every bidirectional override becomes U+FFFD, except meshprobe's own colour
    /// sequences. A value from the network (a stamp, a certificate's URI, a control API's answer) or from a file
    /// cannot move the cursor, rewrite a verdict or retitle the window. Values are also sanitised where they are
    /// written (`sanitize`), which turns their newlines into spaces.
    public static func defang(_ text: String) -> String {
        // Almost every line has nothing to defang: look first, copy only when needed.
        guard text.unicodeScalars.contains(where: { isDangerous($0) }) else { return text }
        let scalars = Array(text.unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        while i < scalars.count {
            let scalar = scalars[i]
            if scalar == "\u{1B}", let own = ownSequences.first(where: { scalars[(i + 1)...].starts(with: $0) }) {
                out.append(scalar)
                out.append(contentsOf: own)
                i += 1 + own.count
                continue
            }
            out.append(isDangerous(scalar) ? "\u{FFFD}" : scalar)
            i += 1
        }
        return String(out)
    }

    public static func isDangerous(_ scalar: Unicode.Scalar) -> Bool {
        scalar != "\n" && scalar != "\t" && PrintableText.isControl(scalar)
    }

    public func bold(_ s: String) -> String { color ? "\u{1B}[1m\(s)\u{1B}[0m" : s }
    public func red(_ s: String) -> String { color ? "\u{1B}[31m\(s)\u{1B}[0m" : s }
    public func green(_ s: String) -> String { color ? "\u{1B}[32m\(s)\u{1B}[0m" : s }
    public func yellow(_ s: String) -> String { color ? "\u{1B}[33m\(s)\u{1B}[0m" : s }

    /// A status word, coloured by what it means.
    public func status(_ status: RunReport.Status, label: String? = nil) -> String {
        let text = label ?? status.label
        switch status {
        case .passed: return green(text)
        case .failed: return bold(red(text))
        case .undecided, .skipped: return yellow(text)
        }
    }
}

/// The verdicts of a run as an aligned table for the terminal: status, check, one-line reason; then the outcome.
public struct VerdictTable {
    public var report: RunReport
    public var style: TerminalStyle

    public init(_ report: RunReport, style: TerminalStyle) {
        self.report = report
        self.style = style
    }

    public func render() -> String {
        var rows: [[String]] = []
        var statuses: [RunReport.Status] = []
        let grouped = report.sections.count > 1
        for section in report.sections {
            let prefix = grouped ? "\(section.name): " : ""
            if section.skipped {
                rows.append([RunReport.Status.skipped.label, section.name, section.problem ?? "not run: the run aborted before it"])
                statuses.append(.skipped)
                continue
            }
            if let problem = section.problem {
                rows.append([RunReport.Status.undecided.label, "\(section.name): ran to the end", problem])
                statuses.append(.undecided)
            }
            if section.checks.isEmpty && section.problem == nil {
                rows.append([RunReport.Status.passed.label, "\(section.name): ran to the end", section.notes.first ?? ""])
                statuses.append(.passed)
            }
            for check in section.checks {
                rows.append([check.status.label, prefix + check.name, check.oneLine])
                statuses.append(check.status)
            }
        }
        rows = rows.map { $0.map(TerminalStyle.sanitize) }
        // Pad before colouring: escape sequences have no width on screen.
        let width = rows.map { $0[0].count }.max() ?? 0
        let nameWidth = min(60, rows.map { $0[1].count }.max() ?? 0)
        var out = style.bold("verdicts") + "\n"
        for (row, status) in zip(rows, statuses) {
            let label = row[0] + String(repeating: " ", count: width - row[0].count)
            let name = row[1].count > nameWidth ? row[1] : row[1] + String(repeating: " ", count: nameWidth - row[1].count)
            let line = "  \(style.status(status, label: label))  \(name)  \(row[2])"
            out += line.droppingTrailingWhitespace() + "\n"
        }
        if rows.isEmpty { out += "  (no checks)\n" }
        return out
    }

    /// The last line: PASS, FAIL, UNDECIDED or ABORTED, coloured on a terminal.
    public var outcome: String {
        style.status(report.status, label: report.statusLabel)
    }
}

extension String {
    /// The line without its trailing spaces (a padded last column leaves them).
    func droppingTrailingWhitespace() -> String {
        var end = endIndex
        while end > startIndex, self[index(before: end)].isWhitespace { end = index(before: end) }
        return String(self[..<end])
    }
}
