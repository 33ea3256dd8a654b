import Foundation
import Synchronization

/// Virtual time for flow tests. Every sleep returns at once with `now` moved to its deadline,
/// except a source's sleep past `end`: that source parks until the flow stops. The flow has gone
/// quiet once every source has parked or ended; what they sent is then drained through the flow.
///
/// Each source keeps its own time, which only its own sleeps move on, so a sink's batch timer or a
/// retry's backoff jumping ahead does not make a schedule skip turns. The other nodes share one
/// time, never behind any source's.
public final class FlowTestClock: SourceWatchingClock {
    private struct State {
        var now: Date
        var sourceTimes: [String: Date] = [:]
        var parked = 0
        var ended = 0
        var parkedSleepers: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextID: UInt64 = 0
        var quietWaiter: (sources: Int, continuation: CheckedContinuation<Void, Never>)?
    }

    public let start: Date
    public let end: Date
    private let state: Mutex<State>

    public init(start: Date, end: Date) {
        self.end = max(start, end)
        state = Mutex(State(now: start))
        self.start = start
    }

    public func now() -> Date {
        guard let source = SourceTask.node else { return state.withLock { $0.now } }
        return state.withLock { $0.sourceTimes[source] } ?? start
    }

    public func sleep(until deadline: Date) async throws {
        try Task.checkCancellation()
        let source = SourceTask.node
        if deadline > end, source != nil {
            await park()
            throw CancellationError()
        }
        state.withLock { s in
            if let source { s.sourceTimes[source] = max(s.sourceTimes[source] ?? start, deadline) }
            if deadline > s.now { s.now = deadline }
        }
        await Task.yield()
        try Task.checkCancellation()
    }

    /// A source serving requests (a webhook, an export) parks, so the flow can go quiet.
    public func waitUntilCancelled() async throws {
        try await sleep(until: .distantFuture)
        throw CancellationError()
    }

    public func sourceEnded() {
        let waiter = state.withLock { s in
            s.ended += 1
            return takeQuietWaiter(&s)
        }
        waiter?.resume()
    }

    /// Returns once `sources` sources have each parked or ended (or the task is cancelled).
    public func waitUntilQuiet(sources: Int) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { c in
                let quiet = state.withLock { s -> Bool in
                    if s.parked + s.ended >= sources || Task.isCancelled { return true }
                    s.quietWaiter = (sources, c)
                    return false
                }
                if quiet { c.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
                defer { s.quietWaiter = nil }
                return s.quietWaiter?.continuation
            }
            waiter?.resume()
        }
    }

    private func park() async {
        let id = state.withLock { s -> UInt64 in
            s.nextID += 1
            return s.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let (resumeNow, waiter) = state.withLock { s -> (Bool, CheckedContinuation<Void, Never>?) in
                    if Task.isCancelled { return (true, nil) }
                    s.parkedSleepers[id] = c
                    s.parked += 1
                    return (false, takeQuietWaiter(&s))
                }
                waiter?.resume()
                if resumeNow { c.resume() }
            }
        } onCancel: {
            let c = state.withLock { s -> CheckedContinuation<Void, Never>? in
                guard let c = s.parkedSleepers.removeValue(forKey: id) else { return nil }
                s.parked -= 1
                return c
            }
            c?.resume()
        }
    }

    private func takeQuietWaiter(_ s: inout State) -> CheckedContinuation<Void, Never>? {
        guard let waiter = s.quietWaiter, s.parked + s.ended >= waiter.sources else { return nil }
        s.quietWaiter = nil
        return waiter.continuation
    }
}
