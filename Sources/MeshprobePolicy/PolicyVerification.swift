import Foundation
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeVerify
import NIOCore

/// Runs a policy's load and feeds each successful response to its split test, ending the load as soon as the
/// verdict is decided.
public enum PolicyVerification {
    public struct Outcome: Sendable {
        public var verdict: SplitTest.Verdict?
        public var result: LoadResult
        /// Responses with a non-2xx/3xx status: not part of the split (the resilience checks look at them).
        public var unsuccessful: Int
    }

    /// The split test, shared by the workers' event loops.
    // @unchecked: every access to `test` and `unsuccessful` holds `lock`.
    final class SharedTest: @unchecked Sendable {
        private let lock = NSLock()
        private var test: SplitTest
        private var unsuccessful = 0
        let expectation: SplitExpectation

        init(_ test: SplitTest, expectation: SplitExpectation) {
            self.test = test
            self.expectation = expectation
        }

        /// Records one response; true once the verdict is decided.
        func observe(_ identity: WorkloadIdentity, status: Int) -> Bool {
            let ok = (200..<400).contains(status)
            let read = ok ? expectation.recognizer.destination(of: identity) : nil
            return lock.withLock {
                guard ok else {
                    unsuccessful += 1
                    return false
                }
                let name = read.map { expectation.mapping[$0] ?? $0 } ?? "(unrecognised: no \(expectation.recognizer))"
                return test.record(name) != nil
            }
        }

        var snapshot: (SplitTest.Verdict?, Int) { lock.withLock { (test.currentVerdict, unsuccessful) } }
    }

    public static func run(_ policy: Policy, configuration: LoadConfiguration, group: any EventLoopGroup) async throws -> Outcome {
        let test: SplitTest
        do {
            test = try SplitTest(weights: policy.split.weights, configuration: policy.split.statistics)
        } catch {
            throw LoadConfigurationError(field: "expect", value: policy.file, reason: error.description)
        }
        let shared = SharedTest(test, expectation: policy.split)
        var configuration = configuration
        configuration.responseObserver = { identity, status in shared.observe(identity, status: status) }
        let result = try await LoadGenerator(configuration: configuration, group: group).run()
        let (verdict, unsuccessful) = shared.snapshot
        return Outcome(verdict: verdict, result: result, unsuccessful: unsuccessful)
    }
}
