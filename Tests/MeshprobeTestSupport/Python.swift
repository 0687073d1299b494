import Foundation

/// Runs `python3 -c script arguments...` reading `stdin` (see `run`; stopped after 120 s).
public func python(_ script: String, _ arguments: [String] = [], stdin: String? = nil) async throws -> ProcessOutput {
    try await run("/usr/bin/env", ["python3", "-c", script] + arguments, timeout: 120, stdin: stdin)
}

/// Deterministic latency samples (microseconds): a body around 2 ms, a tail to 2 s, a few sub-millisecond.
public func samples(_ n: Int, seed: UInt64) -> [UInt64] {
    var state = seed
    return (0..<n).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        let r = Double(state >> 11) / Double(1 << 53)
        if r < 0.01 { return UInt64(50_000 + r * 200_000_000) }
        if r < 0.05 { return UInt64(100 + r * 8000) }
        return UInt64(1500 + r * 1500)
    }
}
