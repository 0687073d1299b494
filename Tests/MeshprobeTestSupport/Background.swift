import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Runs `work` (CPU-bound: a simulation, thousands of random inputs) on the background threads, at the lowest
/// priority, and returns its result; `#expect` inside it is the calling test's.
///
/// A test that computes for seconds must not do it on Swift's cooperative pool: the pool has one thread per core (two
/// on the CI machine), every async test's continuations and `Task.sleep` deadlines run on it, and while computations
/// hold its threads every other test waits, then finds its deadlines past. On these threads at nice 19 the work uses
/// only the CPU the other tests leave, so it never makes a timing-sensitive test late.
public func inTheBackground<T>(_ work: () async throws -> T) async rethrows -> T {
    try await withTaskExecutorPreference(BackgroundExecutor.shared, operation: work)
}

/// One thread per core at nice 19, running the jobs of the tasks that prefer it (`inTheBackground`), first in first
/// out.
public final class BackgroundExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked: `jobs` is read and written only with `condition` locked; the threads are started once, in `init`.
    public static let shared = BackgroundExecutor(threads: ProcessInfo.processInfo.activeProcessorCount)

    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []

    private init(threads: Int) {
        for index in 0..<max(1, threads) {
            let thread = Thread { [self] in serve() }
            thread.name = "meshprobe-tests-background-\(index)"
            thread.start()
        }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func serve() -> Never {
        #if canImport(Glibc)
        // Linux keeps a nice value per thread: this lowers this thread only, never the test process's other threads.
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19)
        #endif
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}

/// A test (or every test of a suite) that runs on the background threads (`inTheBackground`): for tests that compute
/// for seconds or minutes, such as the statistics' simulations.
public struct InTheBackgroundTrait: TestTrait, SuiteTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(for test: Test, testCase: Test.Case?,
                             performing function: @Sendable () async throws -> Void) async throws {
        try await MeshprobeTestSupport.inTheBackground(function)
    }
}

extension Trait where Self == InTheBackgroundTrait {
    /// Runs the test on the background threads at the lowest priority: see `inTheBackground`.
    public static var inTheBackground: Self { Self() }
}
