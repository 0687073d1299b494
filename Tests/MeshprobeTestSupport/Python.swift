import Foundation

/// Runs `python3 -c script args...` off the cooperative pool; stdout, stderr and the exit status.
public func python(_ script: String, _ arguments: [String] = [], stdin: String? = nil) async throws -> (status: Int32, out: String, err: String) {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            continuation.resume(with: Result {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                process.arguments = ["python3", "-c", script] + arguments
                let out = Pipe(), err = Pipe(), input = Pipe()
                process.standardOutput = out
                process.standardError = err
                process.standardInput = input
                try process.run()
                input.fileHandleForWriting.write(Data((stdin ?? "").utf8))
                try input.fileHandleForWriting.close()
                let o = out.fileHandleForReading.readDataToEndOfFile()
                let e = err.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                return (process.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
            })
        }
    }
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
