import Foundation

/// Runs `work` on a thread of its own rather than on one of the cooperative pool's threads.
///
/// The pool has as many threads as the machine has cores (two on CI). A test that computes for
/// half a minute without suspending holds one of them all that time; two such tests at once stall
/// every other test's tasks and the hub's own handlers, until a keepalive or a five-second wait in
/// an unrelated test runs out. Work given here still runs in the test's task, so `#expect` and
/// `Test.current` behave as in the test's body.
public func onOwnThread<T: Sendable>(_ work: () throws -> T) async rethrows -> T {
    let executor = OwnThreadExecutor()
    defer { executor.finish() }
    return try await withTaskExecutorPreference(executor) { try work() }
}

/// A task executor of one thread, which runs the jobs given to it in order until `finish`.
public final class OwnThreadExecutor: TaskExecutor, @unchecked Sendable {
    private static let marker = "enchufe.own-thread"

    /// Whether the caller runs on such an executor's thread.
    public static var isCurrent: Bool { Thread.current.threadDictionary[marker] != nil }
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var finished = false

    init() {
        Thread { [self] in
            Thread.current.threadDictionary[OwnThreadExecutor.marker] = true
            run()
        }.start()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// The thread ends once the jobs given so far have run.
    func finish() {
        condition.lock()
        finished = true
        condition.signal()
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while jobs.isEmpty && !finished { condition.wait() }
            if jobs.isEmpty {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
