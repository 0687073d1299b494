import Foundation
import MeshprobeHTTP2
import NIOCore
import NIOPosix

// Every file of this target sees the shared test support (processes, ports, waiting).
@_exported import MeshprobeTestSupport

struct TestTimeout: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(what)" }
}

/// Waits for `future`, failing after `seconds` so no test can hang.
func wait<T: Sendable>(_ future: EventLoopFuture<T>, seconds: Int64 = 15, for what: String) async throws -> T {
    let promise = future.eventLoop.makePromise(of: T.self)
    future.cascade(to: promise)
    let timer = future.eventLoop.scheduleTask(in: .seconds(seconds)) { promise.fail(TestTimeout(what: what)) }
    future.whenComplete { _ in timer.cancel() }
    return try await promise.futureResult.get()
}

// MARK: External peers

/// `nghttpd --no-tls` serving `directory` on a free loopback port until `stop()`.
final class NghttpdProcess: Sendable {
    let port: Int
    private let process: BackgroundProcess

    private init(port: Int, process: BackgroundProcess) {
        self.port = port
        self.process = process
    }

    static func start(serving directory: String, extraArguments: [String] = []) async throws -> NghttpdProcess {
        let (process, port) = try await BackgroundProcess.onFreePort { port in
            try await BackgroundProcess("/usr/sbin/nghttpd", ["--no-tls", "-a", "127.0.0.1", "-d", directory] + extraArguments + [String(port)],
                                        waitForPort: port)
        }
        return NghttpdProcess(port: port, process: process)
    }

    func stop() { process.stop() }
}

/// A fresh temporary directory holding `files`.
func makeDocumentRoot(_ files: [String: [UInt8]]) throws -> String {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("meshprobe-h2-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    for (name, bytes) in files {
        try Data(bytes).write(to: directory.appendingPathComponent(name))
    }
    return directory.path
}

// MARK: Our client

enum Outcome: Sendable, Equatable {
    case response(HTTP2Response)
    case failure(HTTP2StreamFailure)

    var status: Int? {
        if case .response(let response) = self { return response.status }
        return nil
    }

    var failure: HTTP2StreamFailure? {
        if case .failure(let failure) = self { return failure }
        return nil
    }
}

struct ClientReport: Sendable {
    var outcomes: [UInt64: Outcome] = [:]
    var duplicateOutcomes = 0
    var readyCount = 0
    var availableAtFirstReady = -1
    var maxInFlight = 0
    var goAwayCodes: [UInt32] = []
    var closedCount = 0
    var closedError: String?
    var outcomesAfterClose = 0
    var usableAfterGoAway: Bool?
}

/// Sends a fixed list of requests (token = index) as fast as `availableStreams` allows and records everything.
final class RecordingDelegate: HTTP2ClientDelegate {
    private let requests: [HTTP2Request]
    /// The requests (by index) sent with `streamingData: true`.
    private let streaming: Set<Int>
    /// Their DATA chunks, as `http2Data` handed them over.
    var chunks: [UInt64: [ByteBuffer]] = [:]
    private var nextIndex = 0
    private var inFlight = 0
    var report = ClientReport()
    let allOutcomes: EventLoopPromise<Void>
    let closed: EventLoopPromise<Void>

    init(requests: [HTTP2Request], streaming: Set<Int> = [], eventLoop: any EventLoop) {
        self.requests = requests
        self.streaming = streaming
        self.allOutcomes = eventLoop.makePromise()
        self.closed = eventLoop.makePromise()
        if requests.isEmpty { allOutcomes.succeed() }
    }

    private func pump(_ connection: HTTP2ClientConnectionHandler) {
        while nextIndex < requests.count, connection.availableStreams > 0 {
            let sent = streaming.contains(nextIndex)
                ? connection.send(requests[nextIndex], token: UInt64(nextIndex), streamingData: true)
                : connection.send(requests[nextIndex], token: UInt64(nextIndex))
            guard sent else { break }
            nextIndex += 1
            inFlight += 1
            report.maxInFlight = max(report.maxInFlight, inFlight)
        }
        connection.flush()
    }

    private func record(_ token: UInt64, _ outcome: Outcome, _ connection: HTTP2ClientConnectionHandler) {
        if report.closedCount > 0 { report.outcomesAfterClose += 1 }
        if report.outcomes[token] != nil {
            report.duplicateOutcomes += 1
        } else {
            report.outcomes[token] = outcome
        }
        inFlight -= 1
        if report.outcomes.count == requests.count { allOutcomes.succeed() }
        pump(connection)
    }

    func http2ConnectionReady(_ connection: HTTP2ClientConnectionHandler) {
        report.readyCount += 1
        if report.readyCount == 1 { report.availableAtFirstReady = connection.availableStreams }
        pump(connection)
    }

    func http2Response(_ connection: HTTP2ClientConnectionHandler, token: UInt64, response: HTTP2Response) {
        record(token, .response(response), connection)
    }

    func http2Data(_ connection: HTTP2ClientConnectionHandler, token: UInt64, data: ByteBuffer) {
        chunks[token, default: []].append(data)
    }

    func http2StreamFailed(_ connection: HTTP2ClientConnectionHandler, token: UInt64, failure: HTTP2StreamFailure) {
        record(token, .failure(failure), connection)
    }

    func http2GoAwayReceived(_ connection: HTTP2ClientConnectionHandler, errorCode: UInt32) {
        report.goAwayCodes.append(errorCode)
        report.usableAfterGoAway = connection.isUsable || connection.availableStreams > 0
    }

    func http2ConnectionClosed(_ connection: HTTP2ClientConnectionHandler, error: (any Error)?) {
        report.closedCount += 1
        report.closedError = error.map { "\($0)" }
        closed.succeed()
        // Let a waiter for outcomes fail fast instead of timing out when the connection died early.
        allOutcomes.succeed()
    }
}

/// One client connection driven by a `RecordingDelegate`.
struct ClientRun: Sendable {
    let channel: any Channel
    let delegate: NIOLoopBound<RecordingDelegate>
    let handler: NIOLoopBound<HTTP2ClientConnectionHandler>

    static func connect(
        port: Int, requests: [HTTP2Request], settings: HTTP2Settings = .init(), collectBodies: Bool = false, streaming: Set<Int> = []
    ) async throws -> ClientRun {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let setUp = loop.makePromise(of: (NIOLoopBound<RecordingDelegate>, NIOLoopBound<HTTP2ClientConnectionHandler>).self)
        let channel = try await ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let delegate = RecordingDelegate(requests: requests, streaming: streaming, eventLoop: channel.eventLoop)
                    let handler = HTTP2ClientConnectionHandler(
                        settings: settings, collectBodies: collectBodies, delegate: delegate)
                    try channel.pipeline.syncOperations.addHandler(handler)
                    setUp.succeed((
                        NIOLoopBound(delegate, eventLoop: channel.eventLoop),
                        NIOLoopBound(handler, eventLoop: channel.eventLoop)
                    ))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        let (delegate, handler) = try await setUp.futureResult.get()
        return ClientRun(channel: channel, delegate: delegate, handler: handler)
    }

    /// Waits until every request has an outcome (or the connection closed), then returns the report.
    func outcomes(seconds: Int64 = 20) async throws -> ClientReport {
        let delegate = self.delegate
        let done = try await channel.eventLoop.submit { delegate.value.allOutcomes.futureResult }.get()
        try await wait(done, seconds: seconds, for: "all outcomes")
        return try await report()
    }

    /// Waits for http2ConnectionClosed, then a little more to catch a second call, and returns the report.
    func closed(seconds: Int64 = 10) async throws -> ClientReport {
        let delegate = self.delegate
        let done = try await channel.eventLoop.submit { delegate.value.closed.futureResult }.get()
        try await wait(done, seconds: seconds, for: "http2ConnectionClosed")
        try await Task.sleep(for: .milliseconds(100))
        return try await report()
    }

    /// The DATA chunks of the streamed requests, by token.
    func chunks() async throws -> [UInt64: [ByteBuffer]] {
        let delegate = self.delegate
        return try await channel.eventLoop.submit { delegate.value.chunks }.get()
    }

    func report() async throws -> ClientReport {
        let delegate = self.delegate
        return try await channel.eventLoop.submit { delegate.value.report }.get()
    }

    func onLoop<T: Sendable>(_ body: @escaping @Sendable (HTTP2ClientConnectionHandler) -> T) async throws -> T {
        let handler = self.handler
        return try await channel.eventLoop.submit { body(handler.value) }.get()
    }
}

// MARK: Our server

/// A responder built from a closure, so each test states its server behaviour inline.
final class ClosureResponder: HTTP2Responder {
    private let handle: @Sendable (HTTP2ServerRequest, HTTP2ResponseWriter) -> Void
    init(_ handle: @escaping @Sendable (HTTP2ServerRequest, HTTP2ResponseWriter) -> Void) { self.handle = handle }
    func respond(to request: HTTP2ServerRequest, writer: HTTP2ResponseWriter) { handle(request, writer) }
}

/// Echoes the request: 200, x-echo-method / x-echo-path headers, the request body (or "hello" when empty).
@Sendable func echo(_ request: HTTP2ServerRequest, _ writer: HTTP2ResponseWriter) {
    var body = request.body
    if body.readableBytes == 0 { body = ByteBuffer(string: "hello") }
    writer.respond(
        status: 200,
        headers: [
            HTTP2Header("x-echo-method", request.method), HTTP2Header("x-echo-path", request.path),
            HTTP2Header("x-echo-authority", request.authority),
        ],
        body: body)
}

/// Our HTTP/2 server on a free loopback port.
struct TestServer: Sendable {
    let channel: any Channel
    var port: Int { channel.localAddress?.port ?? 0 }

    static func start(
        settings: HTTP2Settings = .init(),
        _ handle: @escaping @Sendable (HTTP2ServerRequest, HTTP2ResponseWriter) -> Void = echo
    ) async throws -> TestServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        HTTP2ServerConnectionHandler(settings: settings, responder: ClosureResponder(handle)))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return TestServer(channel: channel)
    }

    func stop() async {
        try? await channel.close()
    }
}

func getRequest(_ path: String, port: Int) -> HTTP2Request {
    HTTP2Request(scheme: "http", authority: "127.0.0.1:\(port)", path: path)
}
