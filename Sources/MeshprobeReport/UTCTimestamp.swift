import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Timestamps in the results: `Date.formatted(.iso8601)`'s text ("2026-11-29T07:38:00Z": UTC, whole seconds).
///
/// Written from the C library's `gmtime_r`: Foundation's ISO 8601 format style builds a Gregorian calendar and
/// loads ICU's time zone data on first use, about 1.5 ms of CPU, which every `meshprobe load` paid for one timestamp.
enum UTCTimestamp {
    static func iso8601(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        guard gmtime_r(&seconds, &parts) != nil else { return date.formatted(.iso8601) }
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let year = Int(parts.tm_year) + 1900
        guard (0...9999).contains(year) else { return date.formatted(.iso8601) }
        let yearText = String(repeating: "0", count: 4 - String(year).count) + String(year)
        return "\(yearText)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }
}
