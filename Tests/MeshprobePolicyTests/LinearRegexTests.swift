import Foundation
import Testing
@testable import MeshprobePolicy

/// The route matcher's regular expressions: the same whole-value answers as a backtracking engine (Swift's Regex) on
/// ordinary patterns, linear time on the patterns that make a backtracking engine run for ever.
@Suite struct LinearRegexTests {
    static let patterns = [
        "^beta-[0-9]+$", "beta\\.users", "/api/v[12]/.*", "(a|b)*c", "a{2,3}", "a{2}", "a{2,}b", "x?y+z*", "[^/]+/[^/]+",
        "\\d{3}-\\d{4}", "\\w+@\\w+\\.com", "(?:ab|cd)+", "(?P<v>v[0-9])-canary", "[[:alpha:]]+[[:digit:]]*", "[a\\-z]+",
        "colou?r", "(foo|foobar)baz", "a.c", "\\bword\\b.*", "ab|", "(a*)*b", "[\\d.]+", "\\x41\\x{42}C",
        "^$", "\\s*x\\s*", "[^\\d]+", "(red|green|blue)(-light|-dark)?",
    ]
    static let inputs = ["", "beta-7", "beta-", "xbeta-12", "beta.users", "betausers", "/api/v1/x", "/api/v3/x", "abababc", "c",
                         "aa", "aaa", "aaaa", "aab", "yz", "xyyzz", "a/b", "a/b/c", "555-1234", "55-1234", "joe@mail.com",
                         "abcd", "abcdab", "v2-canary", "abc9", "a-z", "]a]", "color", "colour", "foobarbaz", "foobaz", "abc",
                         "a\nc", "word here", "words", "ab", "b", "aaab", "1.5", "ABC", "a{,2}", " x ", "abc", "red", "green-dark",
                         "blue-"]

    @Test func agreesWithSwiftRegexOnOrdinaryPatterns() throws {
        for pattern in Self.patterns {
            let linear = try LinearRegex(pattern)
            let swift = try Regex(pattern)
            for input in Self.inputs {
                let expected = (try swift.wholeMatch(in: input)) != nil
                #expect(linear.wholeMatch(input) == expected, "\(pattern) against \(input.debugDescription)")
            }
        }
    }

    /// Where RE2 and Swift differ, RE2 (Envoy) is what counts: POSIX classes and \\w are ASCII, and a ']' first in a
    /// class is a literal.
    @Test func asRE2WhereSwiftDiffers() throws {
        #expect(!(try LinearRegex("[[:alpha:]]+")).wholeMatch("ä"))
        #expect(!(try LinearRegex("\\w+")).wholeMatch("ä"))
        #expect((try LinearRegex("[]a]+")).wholeMatch("]a]"))
        // RE2 reads x{,n} as literal text, not as a repeat.
        let braces = try LinearRegex("a{,2}")
        #expect(braces.wholeMatch("a{,2}"))
        #expect(!braces.wholeMatch("aa"))
    }

    @Test func caseInsensitiveWithALeadingFlag() throws {
        let r = try LinearRegex("(?i)beta-[a-z]+")
        #expect(r.wholeMatch("BETA-Users") && r.wholeMatch("beta-users") && !r.wholeMatch("beta-123"))
    }

    @Test func patternsThatMakeBacktrackingExplodeAreLinear() throws {
        let long = String(repeating: "a", count: 5_000)
        let clock = ContinuousClock()
        let start = clock.now
        for pattern in ["(a|a)*b", "(a+)+$", "(a*)*b", "(a|aa)+c", "(.*a){20}"] {
            let r = try LinearRegex(pattern)
            #expect(!r.wholeMatch(long + "!"), "\(pattern)")
        }
        // Generous bound (a debug build on a shared machine): a backtracking engine would not finish at all.
        #expect(clock.now - start < .seconds(20))
    }

    @Test func constructsOutsideRE2AreRefused() {
        for pattern in ["(a)\\1", "(?=a)a", "(?<!x)y", "a++", "(?>a)", "a{1001}", "[z-a]", "(ab", "ab)", "*a", "\\pL", "\\"] {
            #expect(throws: LinearRegex.SyntaxError.self, "\(pattern)") { try LinearRegex(pattern) }
        }
    }
}
