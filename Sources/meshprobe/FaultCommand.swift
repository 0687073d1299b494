import ArgumentParser
import Foundation
import MeshprobeEchoAPI
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeChecks
import MeshprobeRunner
import MeshprobeSpec
import MeshprobeTLS
import NIOPosix

/// `meshprobe fault`: the client of the echo's control API (`/.meshprobe/faults`), for game days.
struct FaultCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fault",
        abstract: "Set, list and clear faults on a running echo workload (its control API, for game days).",
        discussion: """
            The echo must list this client's SPIFFE ID with --control-allow; the request goes over mTLS with the \
            client SVID given by --cert/--key or --svid-dir. Exit codes: 0 done; 1 refused (403, 404 and other \
            refusals); 2 bad input (here or a 400 from the echo); 3 cannot reach the echo.
            Example: meshprobe fault set https://reviews:8443 --svid-dir ./svid-ops --status 503 --status-share 50 --for 5m
            """,
        subcommands: [SetCommand.self, ListCommand.self, ClearCommand.self]
    )

    struct SetCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set", abstract: "Set one fault for a while; prints it with its id.")

        @OptionGroup var client: FaultClientOptions

        @Option(help: "Answer with this HTTP status (200-599).")
        var status: Int?

        @Option(name: .customLong("grpc-status"), help: "Answer gRPC calls with this gRPC status (UNAVAILABLE, 14); HTTP requests get --status.")
        var grpcStatus: String?

        @Option(name: .customLong("status-share"), help: "Percent of matching requests that get --status or --grpc-status (default 100).")
        var statusShare: Double?

        @Option(help: "Delay responses by this long (200ms, 1s).", transform: InputArgument.duration)
        var delay: TimeSpan?

        @Option(name: .customLong("delay-share"), help: "Percent of matching requests delayed (default 100).")
        var delayShare: Double?

        @Option(name: .customLong("reset-share"), help: "Percent of matching requests whose stream is reset (HTTP/1.1: connection closed).")
        var resetShare: Double?

        @Option(help: "Only requests whose path starts with this (default: every path).")
        var path: String?

        @Option(name: .customLong("for"), help: "How long the fault lasts (30s, 5m; at most 1h); required.", transform: InputArgument.duration)
        var duration: TimeSpan

        @Option(help: "Set it with this label (letters, digits, '.', '_', '-'; at most 64), to list or clear it with others by it.")
        var label: String?

        func makeRequest() throws -> FaultControlJSON.NewFault {
            if statusShare != nil && status == nil && grpcStatus == nil { throw CLIError.badInput("--status-share needs --status or --grpc-status") }
            if delayShare != nil && delay == nil { throw CLIError.badInput("--delay-share needs --delay") }
            if status == nil && grpcStatus == nil && delay == nil && resetShare == nil {
                throw CLIError.badInput("the fault does nothing: give --status, --grpc-status, --delay or --reset-share")
            }
            let request = FaultControlJSON.NewFault(
                status: status, grpcStatus: grpcStatus, statusShare: statusShare, delayMs: delay.map { $0.seconds * 1000 },
                delayShare: delayShare, resetShare: resetShare, path: path, durationSeconds: duration.seconds,
                label: label)
            // The echo checks again, against its own --max-delay; here only what holds for every echo.
            var limits = FaultLimits()
            limits.maxDelayNanoseconds = .max
            do {
                _ = try FaultSettings(request, limits: limits)
            } catch {
                throw CLIError.badInput("\(FaultClientOptions.flag(for: error.field)): \(error.reason)")
            }
            return request
        }

        func run() async throws {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let body = String(decoding: try encoder.encode(try makeRequest()), as: UTF8.self)
            let response = try await client.send("POST", FaultClientOptions.apiPath, json: body)
            try client.report(response) { (fault: FaultControlJSON.Fault) in "fault \(fault.id) set: \(fault.summary)" }
        }
    }

    struct ListCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the active faults.")

        @OptionGroup var client: FaultClientOptions

        @Option(help: "Only the faults set with this label.")
        var label: String?

        func validate() throws { try FaultClientOptions.check(label: label) }

        func run() async throws {
            let response = try await client.send("GET", FaultClient.path(label: label))
            try client.report(response) { (list: FaultControlJSON.List) in
                list.faults.isEmpty ? "no active faults"
                    : list.faults.map { "\($0.id)  \($0.summary)  set by \($0.setBy)" }.joined(separator: "\n")
            }
        }
    }

    struct ClearCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "clear", abstract: "Clear every fault, one with --id, or those with --label.")

        @OptionGroup var client: FaultClientOptions

        @Option(help: "Clear only this fault (an id from `fault set` or `fault list`).")
        var id: String?

        @Option(help: "Clear only the faults set with this label.")
        var label: String?

        func validate() throws {
            if let id, id.isEmpty || !id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) {
                throw ValidationError("--id '\(id)': expected a fault id such as f1")
            }
            if id != nil && label != nil { throw ValidationError("--id and --label: give one (an id names one fault already)") }
            try FaultClientOptions.check(label: label)
        }

        func run() async throws {
            let response = try await client.send("DELETE", FaultClient.path(id: id, label: label))
            try client.report(response) { (cleared: FaultControlJSON.Cleared) in
                id.map { "cleared fault \($0)" } ?? "cleared \(cleared.cleared) fault(s)" + (label.map { " labelled \($0)" } ?? "")
            }
        }
    }
}

/// The echo to talk to, who we are, and how we check it: shared by `fault set`, `list` and `clear`.
struct FaultClientOptions: ParsableArguments {
    static let apiPath = FaultControlJSON.apiPath

    @Argument(help: "The echo's base URL, https://HOST:PORT.")
    var url: String

    @OptionGroup(title: "Identity")
    var identity: IdentityOptions

    @OptionGroup var serverCheck: ServerCheckOptions

    @Option(help: .defaulted("How long to wait for the answer.", Self.defaultTimeout), transform: InputArgument.duration)
    var timeout: TimeSpan = Self.defaultTimeout
    static let defaultTimeout = TimeSpan("10s")

    @Flag(help: "Print the echo's JSON answer instead of a summary.")
    var json = false

    /// The flag that sets a field of the control API's request body.
    static func flag(for field: String) -> String {
        let flags = ["status": "--status", "grpcStatus": "--grpc-status", "statusShare": "--status-share", "delayMs": "--delay", "delayShare": "--delay-share",
                     "resetShare": "--reset-share", "path": "--path", "durationSeconds": "--for", "label": "--label"]
        return flags[field] ?? field
    }

    /// A label the echo accepts, so that a bad one is refused here with the flag's name.
    static func check(label: String?) throws {
        if let label, !FaultSettings.isValidLabel(label) {
            throw ValidationError("--label '\(label)': 1 to \(FaultSettings.maxLabelLength) characters: letters, digits, '.', '_' and '-'")
        }
    }

    /// Sends one request to the control API and returns the response whatever its status; no response at all is
    /// exit 3.
    func send(_ method: String, _ path: String, json body: String? = nil) async throws -> FaultClient.Answer {
        do {
            // The URL's scheme decides whether TLS is needed; FaultClient reports a malformed URL.
            var configuration = LoadConfiguration(targets: (try? LoadTarget(parsing: url)).map { [$0] } ?? [])
            try serverCheck.attachClientTLS(to: &configuration, identity: identity)
            var client = try FaultClient(url: url, tls: configuration.tls)
            client.timeout = timeout.seconds
            return try await client.send(method, path, json: body, group: MultiThreadedEventLoopGroup.singleton)
        } catch let error as FaultClientError {
            switch error {
            case .unreachable(let message), .notConnected(let message): throw CLIError(message: message, exitCode: 3)
            default: throw CLIError.badInput(error.description)
            }
        }
    }

    /// Prints a 2xx answer (as `summary` says, or as JSON with --json); a refusal becomes the documented exit code.
    func report<Body: Decodable>(_ response: FaultClient.Answer, summary: (Body) -> String) throws {
        let body: Body
        do {
            body = try FaultClient.decode(response, from: url)
        } catch {
            if case .rejected = error { throw CLIError(message: error.description, exitCode: 2) }
            throw CLIError(message: error.description, exitCode: 1)
        }
        if json {
            printLine(String(decoding: Data(response.body), as: UTF8.self).trimmingCharacters(in: .newlines))
            return
        }
        printLine(summary(body))
    }
}
