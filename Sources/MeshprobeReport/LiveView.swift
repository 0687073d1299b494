import Foundation
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeSpec

/// What a running load shows every second: elapsed/remaining, achieved vs target rate, in flight, the last
/// second's p50/p99, errors by kind, and the split by workload identity.
public struct LiveView {
    public var configuration: LoadConfiguration

    public init(configuration: LoadConfiguration) {
        self.configuration = configuration
    }

    /// The status block (several lines) for a terminal.
    public func block(_ p: LoadGenerator.Progress, elapsed: Double) -> [String] {
        var lines: [String] = []
        var first = String(format: "%7.1fs", elapsed)
        if let planned = configuration.plan.plannedDuration { first += String(format: " / %.1fs", planned) }
        let window = p.window
        let achieved = Double(window?.responses ?? 0)
        first += String(format: "   rate %.0f/s", achieved)
        if let target = targetRate(at: elapsed) { first += String(format: " (target %.0f/s)", target) }
        first += "   in flight \(p.inFlight)   sent \(p.sent)"
        if configuration.plan.model.isOpen { first += "   late \(p.late)" }
        lines.append(first)
        if let window, window.responses > 0 {
            lines.append(String(format: "  last second: p50 %.3f ms  p99 %.3f ms   ok %d  failed %d",
                                Double(window.p50) / 1000, Double(window.p99) / 1000, window.succeeded, window.failed))
        } else {
            lines.append("  last second: no responses")
        }
        lines.append("  totals: \(p.responses) responses, \(p.succeeded) ok, \(p.failed) failed")
        if !p.errors.isEmpty {
            lines.append("  errors: " + p.errors.sorted { $0.value > $1.value }.map { "\($0.key.rawValue) \($0.value)" }.joined(separator: ", "))
        }
        if let split = split(p) { lines.append("  split: " + split) }
        return lines
    }

    /// One line for logs (not a TTY).
    public func line(_ p: LoadGenerator.Progress, elapsed: Double) -> String {
        var text = String(format: "%.1fs", elapsed)
        let window = p.window
        text += window.map { " rate=\($0.responses)/s" } ?? " rate=-"
        if let target = targetRate(at: elapsed) { text += String(format: " target=%.0f/s", target) }
        text += " inflight=\(p.inFlight) ok=\(p.succeeded) failed=\(p.failed)"
        if let window, window.responses > 0 {
            text += String(format: " p50=%.3fms p99=%.3fms", Double(window.p50) / 1000, Double(window.p99) / 1000)
        }
        if configuration.plan.model.isOpen { text += " late=\(p.late)" }
        if !p.errors.isEmpty {
            text += " errors=" + p.errors.sorted { $0.key < $1.key }.map { "\($0.key.rawValue):\($0.value)" }.joined(separator: ",")
        }
        if let split = split(p, separator: ",", format: "%@:%.1f%%") { text += " split=" + split }
        return text
    }

    func targetRate(at elapsed: Double) -> Double? {
        if case .open(let rate, _) = configuration.plan.model { return rate.value(at: elapsed) }
        return nil
    }

    func split(_ p: LoadGenerator.Progress, separator: String = "  ", format: String = "%@ %.1f%%") -> String? {
        let total = p.identities.values.reduce(0, +)
        guard total > 0, p.identities.count > 0 else { return nil }
        return p.identities.sorted { $0.key.label < $1.key.label }
            .map { String(format: format, TerminalStyle.sanitize($0.key.label), Double($0.value) / Double(total) * 100) }
            .joined(separator: separator)
    }
}
