import Foundation
import MeshprobeSpec
import MeshprobeTLS
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A run's identity from the SPIFFE Workload API: waits for the first X.509-SVID, then keeps the stream open and
/// swaps the run's TLS context (`source`) on every update, on a thread of its own.
///
/// `build` turns an update into a TLS context (the chosen SVID, its bundle, the federated bundles); an update it
/// refuses keeps the context in use (and is counted as rejected); before the first SVID its error ends the wait.
public final class WorkloadAPISVIDSource: Sendable {
    public let source: TLSContextSource
    private let client: WorkloadAPIClient
    private let group: MultiThreadedEventLoopGroup

    private enum Phase {
        case waiting(CheckedContinuation<TLSContextSource, any Error>, last: WorkloadAPIError?)
        case running(TLSContextSource)
        case finished
    }

    private init(source: TLSContextSource, client: WorkloadAPIClient, group: MultiThreadedEventLoopGroup) {
        self.source = source
        self.client = client
        self.group = group
    }

    /// Connects, and returns once the first SVID made a TLS context; throws a `WorkloadAPIError` when none came
    /// within `timeout` seconds (naming the last failure), at once on a final one (InvalidArgument, an SVID
    /// `build` refuses).
    public static func start(endpoint: WorkloadAPIEndpoint, timeout: Double, backoff: (initial: Double, maximum: Double) = (0.2, 10),
                             build: @escaping @Sendable (X509SVIDUpdate) throws -> TLSContext,
                             onEvent: @escaping @Sendable (String) -> Void) async throws -> WorkloadAPISVIDSource {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let eventLoop = group.next()
        let phase = NIOLockedValueBox<Phase>(.finished)
        // Whether the stream has delivered since it last broke: an outage counts once, not once per reconnect attempt.
        let live = NIOLockedValueBox(true)

        /// Ends the wait, once.
        @Sendable func finishWait(_ result: Result<TLSContextSource, WorkloadAPIError>) {
            let continuation: CheckedContinuation<TLSContextSource, any Error>? = phase.withLockedValue {
                guard case .waiting(let continuation, _) = $0 else { return nil }
                switch result {
                case .success(let source): $0 = .running(source)
                case .failure: $0 = .finished
                }
                return continuation
            }
            continuation?.resume(with: result.mapError { $0 as any Error })
        }

        let client = WorkloadAPIClient(endpoint: endpoint, eventLoop: eventLoop, backoff: backoff, onUpdate: { update in
            let running: TLSContextSource? = phase.withLockedValue {
                if case .running(let source) = $0 { return source }
                return nil
            }
            live.withLockedValue { $0 = true }
            do {
                let context = try build(update)
                if let running {
                    running.rotate(to: context)
                } else {
                    finishWait(.success(TLSContextSource(initial: context, source: "workload-api")))
                }
            } catch {
                let reason = (error as? WorkloadAPIError) ?? .unusableSVID("\(error)")
                if let running {
                    running.rejected(reason.description)
                    onEvent("Workload API: an update does not load (the identity in use stays): \(reason)")
                } else {
                    finishWait(.failure(reason))
                }
            }
        }, onError: { error, final in
            let running: TLSContextSource? = phase.withLockedValue {
                switch $0 {
                case .waiting(let continuation, _):
                    $0 = .waiting(continuation, last: error)
                    return nil
                case .running(let source): return source
                case .finished: return nil
                }
            }
            if final {
                finishWait(.failure(error))
            } else if let running {
                if live.withLockedValue({ let was = $0; $0 = false; return was }) { running.interrupted(error.description) }
                onEvent("Workload API: \(error); reconnecting")
            }
        })

        do {
            let source = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<TLSContextSource, any Error>) in
                phase.withLockedValue { $0 = .waiting(continuation, last: nil) }
                // A wait longer than a second is said once (the agent missing, not ready, or refusing): a run that
                // seems to hang names what it waits for.
                eventLoop.scheduleTask(in: .seconds(1)) {
                    let last: WorkloadAPIError?? = phase.withLockedValue {
                        if case .waiting(_, let last) = $0 { return .some(last) }
                        return nil
                    }
                    if let last {
                        onEvent("waiting up to \(String(format: "%gs", timeout)) for the first X.509-SVID from the Workload API at \(endpoint)"
                                + (last.map { " (so far: \($0))" } ?? ""))
                    }
                }
                eventLoop.scheduleTask(in: .nanoseconds(Int64(timeout * 1e9))) {
                    let last: WorkloadAPIError?? = phase.withLockedValue {
                        if case .waiting(_, let last) = $0 { return .some(last) }
                        return nil
                    }
                    if let last { finishWait(.failure(.timedOut(seconds: timeout, last: last))) }
                }
                client.start()
            }
            source.setRefresh { client.retryNow() }
            return WorkloadAPISVIDSource(source: source, client: client, group: group)
        } catch {
            client.stop()
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// Closes the stream and its thread.
    public func stop() async {
        client.stop()
        try? await group.shutdownGracefully()
    }
}
