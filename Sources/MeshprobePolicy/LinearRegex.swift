/// Whole-value regular expression matching in time linear in the input, as Envoy's RE2 promises: the pattern is
/// compiled to a Thompson NFA whose states are advanced in lockstep over the value (no backtracking, so
/// `(a|a)*b` against a long run of `a`s is as quick as any other pattern).
///
/// The syntax is RE2's common subset: literals and escapes (`\.`, `\t`, `\x41`), `.`, classes (`[a-z0-9_]`,
/// `[^/]`, `\d \w \s` and their negations, `[[:alpha:]]`), anchors (`^ $ \A \z`), word boundaries (`\b \B`),
/// groups (`(...)`, `(?:...)`, `(?P<name>...)`, `(?<name>...)`), alternation, and the quantifiers `* + ? {n} {n,}
/// {n,m}` (lazy forms too: for a whole-value match they decide the same), and a leading `(?i)` for case-insensitive
/// matching. Anything else is refused with the reason, rather than matched differently from Envoy.
struct LinearRegex: Sendable {
    struct SyntaxError: Error, CustomStringConvertible {
        var description: String
    }

    /// A set of scalars: ranges, optionally negated.
    struct CharSet: Sendable {
        var ranges: [ClosedRange<UInt32>] = []
        var negated = false

        func contains(_ c: UInt32, ignoringCase: Bool) -> Bool {
            var hit = ranges.contains { $0.contains(c) }
            if !hit, ignoringCase, let scalar = Unicode.Scalar(c) {
                for other in [scalar.properties.lowercaseMapping, scalar.properties.uppercaseMapping] {
                    if let o = other.unicodeScalars.first, other.unicodeScalars.count == 1, ranges.contains(where: { $0.contains(o.value) }) {
                        hit = true
                    }
                }
            }
            return hit != negated
        }
    }

    enum Assertion: Sendable { case begin, end, wordBoundary, notWordBoundary }

    enum Instruction: Sendable {
        case char(CharSet)
        case split(Int, Int)
        case jump(Int)
        case assert(Assertion)
        case match
    }

    private indirect enum Node {
        case set(CharSet)
        case assertion(Assertion)
        case sequence([Node])
        case alternation([Node])
        case repetition(Node, min: Int, max: Int?)
    }

    let program: [Instruction]
    let ignoringCase: Bool

    init(_ pattern: String) throws(SyntaxError) {
        var parser = Parser(Array(pattern.unicodeScalars))
        let node = try parser.parseWhole()
        ignoringCase = parser.ignoringCase
        var program: [Instruction] = []
        Self.emit(node, into: &program)
        program.append(.match)
        self.program = program
    }

    /// Whether the whole of `value` matches.
    func wholeMatch(_ value: String) -> Bool {
        let input = Array(value.unicodeScalars).map(\.value)
        var current: [Int] = []
        var marks = [Int](repeating: -1, count: program.count)
        add(0, at: 0, input: input, to: &current, marks: &marks, generation: 0)
        for (i, c) in input.enumerated() {
            var next: [Int] = []
            for pc in current {
                if case .char(let set) = program[pc], set.contains(c, ignoringCase: ignoringCase) {
                    add(pc + 1, at: i + 1, input: input, to: &next, marks: &marks, generation: i + 1)
                }
            }
            if next.isEmpty { return false }
            current = next
        }
        return current.contains { if case .match = program[$0] { return true } else { return false } }
    }

    /// Adds `pc` and every state reachable from it without reading (splits, jumps, assertions that hold at `position`).
    private func add(_ pc: Int, at position: Int, input: [UInt32], to list: inout [Int], marks: inout [Int], generation: Int) {
        var stack = [pc]
        while let pc = stack.popLast() {
            guard marks[pc] != generation else { continue }
            marks[pc] = generation
            switch program[pc] {
            case .jump(let target): stack.append(target)
            case .split(let a, let b):
                stack.append(b)
                stack.append(a)
            case .assert(let assertion):
                if Self.holds(assertion, at: position, in: input) { stack.append(pc + 1) }
            case .char, .match: list.append(pc)
            }
        }
    }

    private static func holds(_ assertion: Assertion, at position: Int, in input: [UInt32]) -> Bool {
        switch assertion {
        case .begin: return position == 0
        case .end: return position == input.count
        case .wordBoundary, .notWordBoundary:
            let before = position > 0 && isWord(input[position - 1])
            let after = position < input.count && isWord(input[position])
            return (before != after) == (assertion == .wordBoundary)
        }
    }

    static func isWord(_ c: UInt32) -> Bool {
        (0x30...0x39).contains(c) || (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) || c == 0x5F
    }

    private static func emit(_ node: Node, into p: inout [Instruction]) {
        switch node {
        case .set(let set): p.append(.char(set))
        case .assertion(let a): p.append(.assert(a))
        case .sequence(let nodes): for n in nodes { emit(n, into: &p) }
        case .alternation(let branches):
            // split L1, next; L1: a; jump end; next: split L2, ... ; last branch falls through.
            var jumps: [Int] = []
            for (i, branch) in branches.enumerated() {
                if i < branches.count - 1 {
                    let split = p.count
                    p.append(.split(split + 1, 0))
                    emit(branch, into: &p)
                    jumps.append(p.count)
                    p.append(.jump(0))
                    p[split] = .split(split + 1, p.count)
                } else {
                    emit(branch, into: &p)
                }
            }
            for j in jumps { p[j] = .jump(p.count) }
        case .repetition(let inner, let min, let max):
            for _ in 0..<min { emit(inner, into: &p) }
            if let max {
                // Optional copies, each skipping to the end when not taken.
                var skips: [Int] = []
                for _ in min..<max {
                    skips.append(p.count)
                    p.append(.split(p.count + 1, 0))
                    emit(inner, into: &p)
                }
                for s in skips { p[s] = .split(s + 1, p.count) }
            } else {
                let loop = p.count
                p.append(.split(loop + 1, 0))
                emit(inner, into: &p)
                p.append(.jump(loop))
                p[loop] = .split(loop + 1, p.count)
            }
        }
    }

    /// RE2's cap on a counted repetition.
    static let maximumRepeat = 1000

    private struct Parser {
        let s: [Unicode.Scalar]
        var i = 0
        var ignoringCase = false

        init(_ s: [Unicode.Scalar]) { self.s = s }

        func fail(_ message: String) -> SyntaxError { SyntaxError(description: "\(message) at offset \(i)") }
        var atEnd: Bool { i >= s.count }
        func peek(_ offset: Int = 0) -> Unicode.Scalar? { i + offset < s.count ? s[i + offset] : nil }

        mutating func parseWhole() throws(SyntaxError) -> Node {
            if s.starts(with: Array("(?i)".unicodeScalars)) {
                ignoringCase = true
                i = 4
            }
            let node = try parseAlternation()
            guard atEnd else { throw fail("unmatched )") }
            return node
        }

        mutating func parseAlternation() throws(SyntaxError) -> Node {
            var branches = [try parseSequence()]
            while peek() == "|" {
                i += 1
                branches.append(try parseSequence())
            }
            return branches.count == 1 ? branches[0] : .alternation(branches)
        }

        mutating func parseSequence() throws(SyntaxError) -> Node {
            var items: [Node] = []
            while let c = peek(), c != "|", c != ")" {
                var atom = try parseAtom()
                quantifiers: while let q = peek(), "*+?{".unicodeScalars.contains(q) {
                    let min: Int, max: Int?
                    switch q {
                    case "*": (min, max) = (0, nil); i += 1
                    case "+": (min, max) = (1, nil); i += 1
                    case "?": (min, max) = (0, 1); i += 1
                    default:
                        // A brace that does not start a count is a literal, as in RE2.
                        guard let counted = try parseCount() else { break quantifiers }
                        (min, max) = counted
                    }
                    if case .assertion = atom { throw fail("a quantifier after an anchor") }
                    atom = .repetition(atom, min: min, max: max)
                    if peek() == "?" { i += 1 }  // lazy: the same set of whole matches
                    if peek() == "+" { throw fail(Self.notRE2("a possessive quantifier (\(q)+)")) }
                    if let p = peek(), "*?".unicodeScalars.contains(p) { throw fail("a quantifier after a quantifier") }
                }
                items.append(atom)
            }
            return items.count == 1 ? items[0] : .sequence(items)
        }

        /// `{n}`, `{n,}`, `{n,m}`; nil (and nothing consumed) when the brace is a literal, as in RE2.
        mutating func parseCount() throws(SyntaxError) -> (Int, Int?)? {
            var j = i + 1
            func number() -> Int? {
                var digits = ""
                while j < s.count, ("0"..."9").contains(s[j]) { digits.unicodeScalars.append(s[j]); j += 1 }
                return digits.isEmpty ? nil : Int(digits.prefix(6))
            }
            guard let min = number() else { return nil }
            var max: Int? = min
            if j < s.count, s[j] == "," {
                j += 1
                max = number()
            }
            guard j < s.count, s[j] == "}" else { return nil }
            i = j + 1
            if min > LinearRegex.maximumRepeat || (max ?? 0) > LinearRegex.maximumRepeat { throw fail("a repeat count over \(LinearRegex.maximumRepeat)") }
            if let max, max < min { throw fail("a repeat range {\(min),\(max)} that runs backwards") }
            return (min, max)
        }

        mutating func parseAtom() throws(SyntaxError) -> Node {
            let c = s[i]
            i += 1
            switch c {
            case "(":
                if peek() == "?" {
                    if peek(1) == ":" {
                        i += 2
                    } else if peek(1) == "P" && peek(2) == "<" || peek(1) == "<" && peek(2) != "=" && peek(2) != "!" {
                        guard let close = s[i...].firstIndex(of: ">") else { throw fail("an unterminated group name") }
                        i = close + 1
                    } else {
                        switch (peek(1), peek(2)) {
                        case ("=", _), ("!", _): throw fail(Self.notRE2("a lookahead (?\(peek(1)!)"))
                        case ("<", "="?), ("<", "!"?): throw fail(Self.notRE2("a lookbehind (?<\(peek(2)!)"))
                        case (">", _): throw fail(Self.notRE2("an atomic group (?>"))
                        default: throw fail("a group flag RE2 does not take here (only (?: and named groups; (?i) at the start)")
                        }
                    }
                }
                let inner = try parseAlternation()
                guard peek() == ")" else { throw fail("a missing )") }
                i += 1
                return inner
            case ")": throw fail("unmatched )")
            case "*", "+", "?": throw fail("a quantifier with nothing to repeat")
            case ".": return .set(CharSet(ranges: [0x0A...0x0A], negated: true))
            case "^": return .assertion(.begin)
            case "$": return .assertion(.end)
            case "[": return .set(try parseClass())
            case "\\": return try parseEscape(inClass: false)
            default: return .set(CharSet(ranges: [c.value...c.value]))
            }
        }

        mutating func parseEscape(inClass: Bool) throws(SyntaxError) -> Node {
            guard let c = peek() else { throw fail("a trailing backslash") }
            i += 1
            switch c {
            case "d": return .set(CharSet(ranges: [0x30...0x39]))
            case "D": return .set(CharSet(ranges: [0x30...0x39], negated: true))
            case "w": return .set(CharSet(ranges: Self.word))
            case "W": return .set(CharSet(ranges: Self.word, negated: true))
            case "s": return .set(CharSet(ranges: Self.space))
            case "S": return .set(CharSet(ranges: Self.space, negated: true))
            case "A" where !inClass: return .assertion(.begin)
            case "z" where !inClass: return .assertion(.end)
            case "b" where !inClass: return .assertion(.wordBoundary)
            case "B" where !inClass: return .assertion(.notWordBoundary)
            case "t": return .set(CharSet(ranges: [0x09...0x09]))
            case "n": return .set(CharSet(ranges: [0x0A...0x0A]))
            case "r": return .set(CharSet(ranges: [0x0D...0x0D]))
            case "f": return .set(CharSet(ranges: [0x0C...0x0C]))
            case "v": return .set(CharSet(ranges: [0x0B...0x0B]))
            case "x":
                var hex = ""
                if peek() == "{" {
                    guard let close = s[i...].firstIndex(of: "}") else { throw fail("an unterminated \\x{...}") }
                    hex = String(String.UnicodeScalarView(s[(i + 1)..<close]))
                    i = close + 1
                } else {
                    for _ in 0..<2 { if let h = peek() { hex.unicodeScalars.append(h); i += 1 } }
                }
                guard let v = UInt32(hex, radix: 16), v <= 0x10FFFF else { throw fail("a bad \\x escape") }
                return .set(CharSet(ranges: [v...v]))
            case "1"..."9" where !inClass: throw fail(Self.notRE2("a backreference (\\\(c))"))
            case "k" where !inClass: throw fail(Self.notRE2("a named backreference (\\k)"))
            default:
                // Escaped punctuation is itself; a letter or digit escape RE2 has and this does not is refused.
                guard c.value < 0x80, !c.properties.isAlphabetic, !("0"..."9").contains(c) else {
                    throw fail("the escape \\\(c), which this matcher does not support")
                }
                return .set(CharSet(ranges: [c.value...c.value]))
            }
        }

        mutating func parseClass() throws(SyntaxError) -> CharSet {
            var set = CharSet()
            if peek() == "^" {
                set.negated = true
                i += 1
            }
            var first = true
            while true {
                guard let c = peek() else { throw fail("a missing ]") }
                if c == "]" && !first { i += 1; break }
                first = false
                if c == "[", peek(1) == ":" {
                    guard let close = (i..<s.count).first(where: { s[$0] == ":" && $0 + 1 < s.count && s[$0 + 1] == "]" && $0 > i + 1 }) else {
                        throw fail("an unterminated [:class:]")
                    }
                    let name = String(String.UnicodeScalarView(s[(i + 2)..<close]))
                    guard let ranges = Self.posix[name] else { throw fail("an unknown class [:\(name):]") }
                    set.ranges += ranges
                    i = close + 2
                    continue
                }
                var low: UInt32
                i += 1
                if c == "\\" {
                    guard case .set(let escaped) = try parseEscape(inClass: true) else { throw fail("an anchor inside a class") }
                    if escaped.negated || escaped.ranges.count != 1 || escaped.ranges[0].count != 1 {
                        // \d, \W and the like inside a class: add them whole (a negated one as its complement).
                        set.ranges += escaped.negated ? Self.complement(escaped.ranges) : escaped.ranges
                        continue
                    }
                    low = escaped.ranges[0].lowerBound
                } else {
                    low = c.value
                }
                if peek() == "-", let after = peek(1), after != "]" {
                    i += 1
                    var high: UInt32
                    i += 1
                    if after == "\\" {
                        guard case .set(let escaped) = try parseEscape(inClass: true), !escaped.negated, escaped.ranges.count == 1,
                              escaped.ranges[0].count == 1 else { throw fail("a class range ending in a class") }
                        high = escaped.ranges[0].lowerBound
                    } else {
                        high = after.value
                    }
                    guard low <= high else { throw fail("a class range that runs backwards") }
                    set.ranges.append(low...high)
                } else {
                    set.ranges.append(low...low)
                }
            }
            return set
        }

        /// Constructs of backtracking engines that RE2 (and so Envoy) does not have.
        static func notRE2(_ construct: String) -> String {
            "\(construct) is not RE2 syntax (Envoy matches with RE2, which has none): rewrite the regex without it;"
        }

        static let word: [ClosedRange<UInt32>] = [0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x5F...0x5F]
        static let space: [ClosedRange<UInt32>] = [0x09...0x0A, 0x0C...0x0D, 0x20...0x20]
        static let posix: [String: [ClosedRange<UInt32>]] = [
            "alnum": [0x30...0x39, 0x41...0x5A, 0x61...0x7A], "alpha": [0x41...0x5A, 0x61...0x7A], "ascii": [0x00...0x7F],
            "blank": [0x09...0x09, 0x20...0x20], "cntrl": [0x00...0x1F, 0x7F...0x7F], "digit": [0x30...0x39],
            "graph": [0x21...0x7E], "lower": [0x61...0x7A], "print": [0x20...0x7E],
            "punct": [0x21...0x2F, 0x3A...0x40, 0x5B...0x60, 0x7B...0x7E], "space": [0x09...0x0D, 0x20...0x20],
            "upper": [0x41...0x5A], "word": word, "xdigit": [0x30...0x39, 0x41...0x46, 0x61...0x66],
        ]

        static func complement(_ ranges: [ClosedRange<UInt32>]) -> [ClosedRange<UInt32>] {
            var out: [ClosedRange<UInt32>] = []
            var next: UInt32 = 0
            for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
                if r.lowerBound > next { out.append(next...(r.lowerBound - 1)) }
                next = max(next, r.upperBound + 1)
            }
            if next <= 0x10FFFF { out.append(next...0x10FFFF) }
            return out
        }
    }
}
