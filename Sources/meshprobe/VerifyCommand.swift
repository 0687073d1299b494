import ArgumentParser
import Foundation
import MeshprobeChecks
import MeshprobeLoad
import MeshprobePolicy
import MeshprobeRunner

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a policy: weighted splits with stated error rates, mTLS, clusters, SLOs, circuit breakers, outlier detection, retries and timeouts.",
        discussion: """
            Sends the policy's load and feeds every successful response to a sequential test that stops as soon as \
            the verdict is decided (see docs/statistics.md). Exit 0 pass, 1 fail, 2 bad input, 3 undecided.
            With manifests (Istio VirtualService/DestinationRule, Gateway API or Linkerd HTTPRoute), the routes come \
            from them and the policy gives the target, identity, load and statistics; expect.access's cells that no rule \
            decides take their decisions from Istio's AuthorizationPolicy and PeerAuthentication or Linkerd's Server, \
            AuthorizationPolicy and ServerAuthorization (docs/verify.md). Circuit breakers and retries and \
            timeouts (expect.circuitBreaker, expect.retries, or from the manifests) run as procedures after the splits.
            --check reads and checks the policy and the manifests (with the overrides) without the identity's files or a \
            network and prints the plan; --target, --svid-dir and --set change the policy's fields before it is read.
            Example: meshprobe verify policies/reviews-canary.yaml --json verdict.json
            """
    )

    @Argument(help: "The policy file (meshprobe.policy/v1).", completion: .file(extensions: ["yaml", "yml"]))
    var file: String

    @Argument(help: "Mesh manifests (Istio VirtualService/DestinationRule, Gateway API or Linkerd HTTPRoute; multi-document YAML): the routes to check; with expect.access, the authorization manifests that decide its open cells.",
              completion: .file(extensions: ["yaml", "yml"]))
    var manifests: [String] = []

    @Option(name: .customLong("json"), help: "Write the verdict and its evidence as JSON.")
    var jsonFile: String?

    /// Where the JSON result goes: `--json`, or standard output with `-o json`.
    var json: String? { reports.json(jsonFile) }

    @OptionGroup var logs: ResultLogOptions

    @OptionGroup var reports: ReportOptions

    @Flag(help: "No live view.")
    var quiet = false

    @Flag(help: "Check the routes only (splits, mTLS, clusters, SLOs): the resilience procedures (circuit breakers, outlier detection, retries and timeouts, connection-pool limits) from the policy and the manifests are listed as not checked.")
    var routesOnly = false

    @Flag(help: "Only read and check the policy and the manifests, print the plan and exit (0 when valid, 2 naming FILE:LINE:COLUMN and the field): the identity's files are not read, nothing is sent.")
    var check = false

    @OptionGroup(title: "Overrides of the policy file")
    var overrides: FileOverrideOptions

    @OptionGroup(title: "Sidecar")
    var sidecar: SidecarOptions

    @OptionGroup(title: "Shards (Indexed Job)")
    var shard: ShardOptions

    func validate() throws {
        try reports.validate(json: jsonFile)
    }

    func run() async throws {
        try await sidecar.around("verify") { try await verify() }
    }

    func verify() async throws {
        try reports.check(singleLoad: false, json: json, logs: logs)
        var policy: Policy
        do {
            policy = try Policy.load(path: file, routesElsewhere: !manifests.isEmpty, overrides: overrides.overrides)
            if !manifests.isEmpty {
                try ManifestMerge.importManifests(manifests, into: &policy, policyFile: file) { note in
                    printError("meshprobe verify: note: \(note)")
                }
                try policy.access?.checkDecided()
            }
            if routesOnly {
                for note in ManifestMerge.skipProcedures(&policy) { printError("meshprobe verify: note: \(note)") }
                guard !policy.routes.isEmpty else {
                    throw CLIError.badInput("--routes-only: \(file)\(manifests.isEmpty ? "" : " and the manifests") declare no route to check")
                }
            }
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError.badInput("\(error)")
        }
        var configuration = LoadConfiguration(plan: policy.scenario.plan)
        // A gRPC run's procedures and routes, checked before anything is sent (and by --check).
        if let call = configuration.plan.grpc {
            let preflight = GRPCPreflight.check(policy, call: call)
            if !preflight.problems.isEmpty { throw CLIError.badInput(preflight.problems.joined(separator: "\n")) }
            for text in preflight.notes { printError("meshprobe verify: note: \(text)") }
        }
        try attachClientTLS(to: &configuration, scenarioIdentity: policy.scenario.identity, file: file, readFiles: !check,
                            controlAPIs: !policy.outlierDetections.isEmpty)
        var plan = try shard.plan()
        if check {
            if !policy.outlierDetections.isEmpty {
                _ = try controlTLS(scenarioIdentity: policy.scenario.identity, file: file, readFiles: false)
            }
            for line in CheckPlan.lines(policy: policy, manifests: manifests, configuration: configuration,
                                        outputs: reports.planned(json: json, logs: logs)) { printLine(line) }
            return
        }
        // The identity kept current for the whole verification (every split's and procedure's new connections, the
        // control APIs' client, the shards' channel): the Workload API's stream, or a watch of the SVID files.
        let rotation = try await IdentityRotation.start(scenarioIdentity: policy.scenario.identity, file: file, configuration: &configuration,
                                                       controlAPIs: !policy.outlierDetections.isEmpty)
        let outcome: VerifyRunOutcome
        do {
            try await resolveGRPCReflection(&configuration, field: "\(file): grpc.data", protoset: "grpc.protoset")
            if plan != nil {
                do { plan?.tls = try ShardTLS.make(identity: policy.scenario.identity.tls, source: configuration.tlsSource) } catch let error as CLIError {
                    throw CLIError.badInput("\(file): identity: \(error.message)")
                }
            }
            // Outlier detection makes workloads fail through their control APIs: its client identity is checked before
            // anything runs.
            let control = policy.outlierDetections.isEmpty ? nil
                : try controlTLS(scenarioIdentity: policy.scenario.identity, file: file, rotating: configuration.tlsSource)
            var options = VerifyRunOptions(file: file, manifests: manifests, json: json, quiet: quiet, reports: try reports.outputs(logs: logs),
                                           controlTLS: control, shard: plan)
            options.accessCallers = try accessCallers(policy.access.map { [$0] } ?? [], identities: policy.identities,
                                                      identity: policy.scenario.identity, configuration: configuration, file: file)
            outcome = try await executeVerify(policy, configuration: configuration, options: options)
            if let line = IdentityRotation.summary(configuration.tlsSource) { printError("meshprobe verify: \(line)") }
        } catch {
            await rotation?.stop()
            throw error
        }
        await rotation?.stop()
        if outcome != .passed { throw CLIError(message: outcome.message, exitCode: outcome.exitCode) }
    }
}
