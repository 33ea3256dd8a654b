import Foundation
import Synchronization

/// Wall-clock time for schedules, retries and batching, injectable so tests never sleep.
public protocol HubClock: Sendable {
    func now() -> Date
    /// Returns at `deadline`, or throws `CancellationError` if the task is cancelled first.
    func sleep(until deadline: Date) async throws
    /// Waits until the task is cancelled: a source that serves requests instead of pulling.
    func waitUntilCancelled() async throws
}

extension HubClock {
    public func sleep(for duration: Duration) async throws {
        try await sleep(until: now().addingTimeInterval(duration.seconds))
    }

    public func waitUntilCancelled() async throws {
        while !Task.isCancelled { try await Task.sleep(for: .seconds(3600)) }
        throw CancellationError()
    }
}

/// The real clock.
public struct SystemClock: HubClock {
    public init() {}
    public func now() -> Date { Date() }
    public func sleep(until deadline: Date) async throws {
        let wait = deadline.timeIntervalSinceNow
        if wait > 0 {
            try await Task.sleep(for: .milliseconds(Int64((wait * 1000).rounded(.up))))
        } else {
            try Task.checkCancellation()
        }
    }
}

/// Virtual time that jumps: every sleep returns at once, having moved `now` to its deadline. Flow
/// tests and engine tests use it to run schedules, retries and backoff without waiting.
public final class VirtualClock: HubClock {
    private let current: Mutex<Date>

    public init(start: Date) {
        current = Mutex(start)
    }

    public func now() -> Date { current.withLock { $0 } }

    public func sleep(until deadline: Date) async throws {
        try Task.checkCancellation()
        current.withLock { if deadline > $0 { $0 = deadline } }
        await Task.yield()
        try Task.checkCancellation()
    }

    public func advance(to date: Date) {
        current.withLock { if date > $0 { $0 = date } }
    }
}

/// The source node whose task is running, if the current task runs one: lets a clock tell a source
/// waiting for its next turn from other waits.
public enum SourceTask {
    @TaskLocal public static var node: String?
}

/// A clock told when a source has ended (the flow-test clock, to know when a flow has gone quiet).
public protocol SourceWatchingClock: HubClock {
    func sourceEnded()
}
