import Testing

/// The tags of the test suites (listed in CONTRIBUTING.md): `swift test --filter` and `--skip` select by name only, so
/// the tags are for reading a test's kind and for tools that list tests by tag (`swift test list --json`... ).
extension Tag {
    /// Runs real peers or the binary (HAProxy, nginx, nghttpd, h2load, curl, openssl, Chromium, `meshprobe`
    /// processes) or the engine against a server on loopback.
    @Tag public static var endToEnd: Self
    /// Its verdict depends on time as the machine kept it (a deadline, a pace, a signal's moment, an ejection's
    /// length): on a starved machine such a check may be UNDECIDED, naming the lag, but never wrong.
    @Tag public static var timing: Self
    /// Computes for seconds to minutes (the statistics' simulations): runs on the background threads
    /// (`.inTheBackground`).
    @Tag public static var simulation: Self
}
