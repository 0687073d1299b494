/// Polls `condition` every `interval` until it holds or `seconds` have passed; whether it held.
///
/// The one wait with a deadline of the tests, instead of sleep loops: the condition is checked once more at the
/// deadline, so one that comes true during the last interval counts; the caller states what a timeout means.
public func waitUntil(seconds: Double, every interval: Duration = .milliseconds(20),
                      _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: interval)
    }
    return try await condition()
}
