import ArgumentParser
import Foundation
import MeshprobeReport
import MeshprobeRunner
import NIOConcurrencyHelpers

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Runs the main job on an embedded default: a throwaway CA, two echo workloads, an mTLS load, a verdict.",
        discussion: """
            Everything runs in this process on 127.0.0.1: a CA for trust domain demo.meshprobe.local, SVIDs for \
            reviews v1 and v2 and for the prober (productpage), two mTLS echo workloads, then a load over HTTP/2 \
            that verifies every server's SPIFFE ID. Exit 0 when every check holds.
            """
    )

    @Option(name: [.customShort("n"), .customLong("requests")], help: "Requests to send.")
    var requests: Int = 4000

    @Option(name: [.short, .customLong("connections")], help: "Connections (spread over both workloads).")
    var connections: Int = 4

    @Option(name: [.customShort("m"), .customLong("streams")], help: "Streams per connection.")
    var streams: Int = 10

    @Option(name: .customLong("json"), help: "Write the JSON result to this file.")
    var jsonFile: String?

    /// Where the JSON result goes: `--json`, or standard output with `-o json`.
    var json: String? { reports.json(jsonFile) }

    @Option(help: "Keep the demo's certificates in this directory (default: a temporary directory, removed).", completion: .directory)
    var keep: String?

    @Flag(name: .customLong("no-canary"), help: "Skip the canary split behind HAProxy.")
    var noCanary = false

    @OptionGroup var reports: ReportOptions

    func validate() throws {
        try reports.validate(json: jsonFile)
    }

    func run() async throws {
        for (flag, value) in [("--requests", requests), ("--connections", connections), ("--streams", streams)] where value < 1 {
            throw CLIError.badInput("\(FlagSpelling.typed(flag)) \(value): must be at least 1")
        }
        try reports.check(json: json)
        let demoStarted = Date()
        let dir = keep ?? (NSTemporaryDirectory() + "meshprobe-demo-\(ProcessInfo.processInfo.processIdentifier)")
        defer { if keep == nil { try? FileManager.default.removeItem(atPath: dir) } }
        // A signal leaves nothing behind: the proxies the demo started and its throwaway keys go with it.
        let temporary = keep == nil ? dir : nil
        let signals = SignalStopper {
            for pid in Demo.children.withLockedValue({ $0 }) { kill(pid, SIGKILL) }
            if let temporary { try? FileManager.default.removeItem(atPath: temporary) }
            printError("meshprobe demo: aborted by a signal")
            // `_exit`: the demo's work goes on on other threads; exit's handlers would tear down what it is using.
            fflush(nil)
            _exit(3)
        }
        defer { signals.cancel() }

        let outcome = try await executeDemo(DemoRunOptions(requests: requests, connections: connections, streams: streams,
                                                           directory: dir, json: json, noCanary: noCanary))
        try reports.write(RunReport(command: "demo", title: "an mTLS mesh on 127.0.0.1", inputs: [],
                                    version: Meshprobe.version, commandLine: CommandLine.arguments, startedAt: demoStarted,
                                    seconds: Date().timeIntervalSince(demoStarted), sections: outcome.sections))
        if outcome.failed { throw CLIError(message: "demo verdict: FAIL", exitCode: 1) }
        if !outcome.passed { throw CLIError(message: "demo verdict: UNDECIDED (a check could not decide on this machine)", exitCode: 3) }
    }
}
