import Foundation
import Testing

@testable import MeshprobeReport

/// The results' timestamps are Foundation's ISO 8601 text, written without Foundation's calendar machinery.
@Suite struct UTCTimestampTests {
    @Test(arguments: [0, 1, 59.999, 951_782_400 /* 2000-02-29 */, 1_000_000_000.5, 1_796_000_000, 4_102_444_799 /* 2099-12-31T23:59:59 */,
                      -1, -86_400.25 /* before 1970 */])
    func matchesFoundation(_ seconds: Double) {
        let date = Date(timeIntervalSince1970: seconds)
        #expect(UTCTimestamp.iso8601(date) == date.formatted(.iso8601))
    }

    @Test func now() {
        let date = Date()
        #expect(UTCTimestamp.iso8601(date) == date.formatted(.iso8601))
    }
}
