import Foundation
import MeshprobeRunner
import NIOConcurrencyHelpers
import Testing

/// The demo's steps in-process, without the steps behind HAProxy: the PKI, the mTLS workloads, the load, the access
/// step (an echo with an allow list, needing no proxy), the verdict.
@Suite struct DemoRunTests {
    @Test func theDemoWithoutCanaryPassesEveryCheckAndCountsEveryRequest() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-demo-run-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lines = NIOLockedValueBox<[String]>([])
        let outcome = try await executeDemo(DemoRunOptions(requests: 200, connections: 2, streams: 4, directory: dir, noCanary: true),
                                            print: { text in lines.withLockedValue { $0.append(text.description) } })
        #expect(outcome.checks.count == 5)
        for check in outcome.checks { #expect(check.passed, "\(check.text)") }
        #expect(outcome.passed)
        #expect(outcome.load.summary.requests == 200)
        #expect(outcome.sections.count == 2)
        #expect(outcome.checks.last?.text == "access as declared: productpage allowed, ratings denied at L7, plaintext refused")
        let printed = lines.withLockedValue { $0 }
        #expect(printed.contains("4. canary: skipped (--no-canary)"))
        #expect(printed.last == "PASS: the demo mesh behaves as declared")
    }
}
