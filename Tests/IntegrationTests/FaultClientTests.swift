import MeshprobeChecks
import NIOPosix
import Testing

extension EndToEnd {
    /// The control-API client's one exchange against peers that do not answer.
    @Suite(.timeLimit(.minutes(1))) struct FaultClientTests {
        /// An echo that accepted the call and never answers: cancelling the caller (an aborted step) ends the call after
        /// its grace, with a message naming the echo, instead of waiting out a timeout longer than the suite's limit.
        @Test func aCancelledCallEndsAfterItsGraceNotItsTimeout() async throws {
            let echo = try await SilentListener.start()
            defer { Task { await echo.stop() } }
            var client = try FaultClient(url: "http://127.0.0.1:\(echo.port)", tls: nil)
            client.timeout = 600
            let call = Task { [client] () async -> String in
                do {
                    _ = try await client.list(group: MultiThreadedEventLoopGroup.singleton)
                    return "answered"
                } catch {
                    return "\(error)"
                }
            }
            #expect(try await waitUntil(seconds: 20) { echo.acceptedCount == 1 }, "the call reached the echo")
            call.cancel()
            let outcome = await call.value
            #expect(outcome.hasPrefix("cannot reach the echo at http://127.0.0.1:\(echo.port): cancelled"), "\(outcome)")
        }

        /// Without a cancellation the call ends at its own timeout, as a request timeout.
        @Test func aCallNobodyAnswersEndsAtItsTimeout() async throws {
            let echo = try await SilentListener.start()
            defer { Task { await echo.stop() } }
            var client = try FaultClient(url: "http://127.0.0.1:\(echo.port)", tls: nil)
            client.timeout = 1
            do {
                _ = try await client.list(group: MultiThreadedEventLoopGroup.singleton)
                Issue.record("a silent echo answered")
            } catch {
                #expect("\(error)" == "cannot reach the echo at http://127.0.0.1:\(echo.port): request_timeout: no answer within 1000 ms",
                        "\(error)")
            }
        }
    }
}
