import MeshprobeSpec
import NIOCore

/// Runs a list of steps once, in order, on one connection: the setup and teardown of a multi-step scenario.
public enum StepRunner {
    public struct Outcome: Sendable {
        /// Every step answered 2xx/3xx and every extraction found its value.
        public var completed: Bool
        /// What the steps extracted (setup values for the load's iterations).
        public var variables: [String: String]
        public var result: LoadResult
        /// Why it did not complete, in plain words.
        public var problem: String?
        /// The last response's status and body (any status), with `keepingLastResponse`; nil when none came.
        public var lastResponse: StepResponse? { result.lastStepResponse }
    }

    /// Sends `steps` once with the target, identity and headers of `base`, starting from `variables`.
    /// - Parameter keepingLastResponse: keep the last response's body, whatever its status (a one-shot request
    ///   reads it).
    /// - Parameter graceOnCancel: when the calling task is cancelled, how long a request in flight may still take.
    public static func run(_ steps: [FlowStep], base: LoadConfiguration, variables: [String: String] = [:],
                           keepingLastResponse: Bool = false, graceOnCancel: Double = 1.0,
                           group: any EventLoopGroup) async throws -> Outcome {
        guard let target = base.plan.targets.first else {
            throw LoadPlanError(field: "target", value: "", reason: "steps need a target URL")
        }
        var configuration = base
        configuration.plan.flow = steps
        configuration.plan.flowVariables = variables
        configuration.plan.targets = [target]
        configuration.plan.requests = 1
        configuration.plan.duration = nil
        configuration.plan.connections = 1
        configuration.plan.streamsPerConnection = 1
        configuration.plan.model = .closedAsFastAsPossible
        configuration.plan.warmup = 0
        configuration.plan.churn = .reuse
        configuration.plan.guards = []
        configuration.keepLastStepResponse = keepingLastResponse
        let generator = LoadGenerator(configuration: configuration, group: group)
        // The run is a task of its own, so that only this grace applies on cancellation.
        let run = Task { try await generator.run() }
        let result = try await withTaskCancellationHandler { try await run.value } onCancel: { generator.stop(grace: graceOnCancel) }
        let completed = result.iterationsCompleted == 1
        var problem: String?
        if !completed {
            let failing = steps.first { result.steps[$0.name].map { $0.failed > 0 || $0.extractionFailures > 0 } ?? true }
            var parts: [String] = []
            if let failing { parts.append("step '\(failing.name)'") }
            if !result.statuses.isEmpty {
                parts.append("statuses " + result.statuses.sorted { $0.key < $1.key }.map { "\($0.key)" }.joined(separator: ", "))
            }
            for (kind, why) in result.errorExplanations.sorted(by: { $0.key < $1.key }) { parts.append("\(kind.rawValue): \(why)") }
            problem = parts.isEmpty ? "the steps did not complete" : parts.joined(separator: "; ")
        }
        return Outcome(completed: completed, variables: completed ? result.lastIterationVariables : variables, result: result,
                       problem: problem)
    }
}
