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

    /// Text made safe for the terminal, whatever went into it: every control character but newline and tab (escape
    /// sequences, carriage return, backspace, bell, the C1 controls that some terminals obey in UTF-8) and every
    /// bidirectional override becomes U+FFFD, with no exception. A value from the network (a stamp, a certificate's
    /// URI, a control API's answer) or from a file cannot colour the output, move the cursor, rewrite a verdict or
    /// retitle the window, even when it spells one of meshprobe's own colours: those exist only in `TerminalText`.
    /// Values are also sanitised where they are written (`sanitize`), which turns their newlines into spaces.
    public static func defang(_ text: String) -> String {
        // Almost every line has nothing to defang: look first, copy only when needed.
        guard text.unicodeScalars.contains(where: isDangerous) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars { out.append(isDangerous(scalar) ? "\u{FFFD}" : scalar) }
        return String(out)
    }

    public static func isDangerous(_ scalar: Unicode.Scalar) -> Bool {
        scalar != "\n" && scalar != "\t" && PrintableText.isControl(scalar)
    }

    public func bold(_ text: TerminalText) -> TerminalText { styled(1, text) }
    public func red(_ text: TerminalText) -> TerminalText { styled(31, text) }
    public func green(_ text: TerminalText) -> TerminalText { styled(32, text) }
    public func yellow(_ text: TerminalText) -> TerminalText { styled(33, text) }
    public func bold(_ text: String) -> TerminalText { bold(TerminalText(text)) }
    public func red(_ text: String) -> TerminalText { red(TerminalText(text)) }
    public func green(_ text: String) -> TerminalText { green(TerminalText(text)) }
    public func yellow(_ text: String) -> TerminalText { yellow(TerminalText(text)) }

    /// `text` between SGR `code` and a reset, when colours are on.
    private func styled(_ code: Int, _ text: TerminalText) -> TerminalText {
        color ? TerminalText(own: "\u{1B}[\(code)m") + text + TerminalText(own: "\u{1B}[0m") : text
    }

    /// A status word, coloured by what it means.
    public func status(_ status: RunReport.Status, label: String? = nil) -> TerminalText {
        let text = label ?? status.label
        switch status {
        case .passed: return green(text)
        case .failed: return bold(red(text))
        case .undecided, .skipped: return yellow(text)
        }
    }
}

/// Terminal output in which the only escape sequences are meshprobe's own colours.
///
/// Text goes in as a `String` (`init(_:)`, `+`, `+=`) and is made plain at once (`TerminalStyle.defang`: every
/// control character but newline and tab becomes U+FFFD); only `TerminalStyle`'s colour methods add sequences. So
/// nothing from a file, a certificate or the network can colour or move anything, whatever it spells, and a whole
/// block stays safe however it was put together. `printLine` and `printError` write a `String` defanged the same way.
public struct TerminalText: Sendable, Equatable, CustomStringConvertible {
    /// The text to write as it is.
    public private(set) var rendered: String

    public init(_ plain: String = "") {
        rendered = TerminalStyle.defang(plain)
    }

    /// A sequence of meshprobe's own (`TerminalStyle` only).
    fileprivate init(own sequence: String) {
        rendered = sequence
    }

    public var description: String { rendered }

    public static func + (a: TerminalText, b: TerminalText) -> TerminalText {
        var out = a
        out.rendered += b.rendered
        return out
    }

    public static func + (a: TerminalText, b: String) -> TerminalText { a + TerminalText(b) }
    public static func + (a: String, b: TerminalText) -> TerminalText { TerminalText(a) + b }
    public static func += (a: inout TerminalText, b: TerminalText) { a.rendered += b.rendered }
    public static func += (a: inout TerminalText, b: String) { a.rendered += TerminalStyle.defang(b) }
}

/// The verdicts of a run as an aligned table for the terminal: status, check, one-line reason; then the outcome.
public struct VerdictTable {
    public var report: RunReport
    public var style: TerminalStyle
    /// The reasons were printed in full above the table (verify's and a game day's verdict blocks): the table then
    /// shows each shortened to `shortReason` characters, so that a long one is read once. A load's table is the only
    /// place its reasons are printed, so it shows them whole.
    public var reasonsAbove: Bool

    /// The longest a reason is in a table under its verdict blocks.
    public static let shortReason = 120

    public init(_ report: RunReport, style: TerminalStyle, reasonsAbove: Bool = false) {
        self.report = report
        self.style = style
        self.reasonsAbove = reasonsAbove
    }

    /// `text` in at most `limit` characters: whole when it fits, else up to the last end of a sentence or clause
    /// (`. `, `; `) that fits, else up to the last space, then `…`.
    public static func shortened(_ text: String, limit: Int = shortReason) -> String {
        guard text.count > limit else { return text }
        let head = String(text.prefix(limit - 1))
        let minimum = limit / 3
        for separator in [". ", "; "] {
            if let r = head.range(of: separator, options: .backwards), head.distance(from: head.startIndex, to: r.lowerBound) >= minimum {
                return String(head[..<r.lowerBound]) + " …"
            }
        }
        if let space = head.lastIndex(of: " "), head.distance(from: head.startIndex, to: space) >= minimum {
            return String(head[..<space]).droppingTrailingWhitespace() + " …"
        }
        return head + "…"
    }

    public func render() -> TerminalText {
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
        if reasonsAbove { rows = rows.map { [$0[0], $0[1], Self.shortened($0[2])] } }
        // Pad before colouring: escape sequences have no width on screen.
        let width = rows.map { $0[0].count }.max() ?? 0
        let nameWidth = min(60, rows.map { $0[1].count }.max() ?? 0)
        var out = style.bold("verdicts") + "\n"
        for (row, status) in zip(rows, statuses) {
            let label = row[0] + String(repeating: " ", count: width - row[0].count)
            let name = row[1].count > nameWidth ? row[1] : row[1] + String(repeating: " ", count: nameWidth - row[1].count)
            let tail = "  \(name)  \(row[2])".droppingTrailingWhitespace()
            out += "  " + style.status(status, label: tail.isEmpty ? row[0] : label) + tail + "\n"
        }
        if rows.isEmpty { out += "  (no checks)\n" }
        return out
    }

    /// The last line: PASS, FAIL, UNDECIDED or ABORTED, coloured on a terminal.
    public var outcome: TerminalText {
        style.status(report.status, label: report.statusLabel) + TerminalText(report.outcomeNote.map { " (\(TerminalStyle.sanitize($0)))" } ?? "")
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
