import Foundation
import Synchronization

/// What one running node is doing, for `/api/v1/flows` and the status page: its state, counters,
/// last error, next scheduled run and (sources) the newest data it sent.
public final class NodeStatus: Sendable {
    public enum State: String, Sendable {
        /// Taking messages (or, for a source, running).
        case running
        /// Waiting for a server that is unavailable, or (a source) for its next turn.
        case waiting
        /// Its last attempt failed and it is retrying (or, a source, restarting).
        case failing
        /// A source that ended, or stopped on an error it cannot retry.
        case stopped
    }

    public struct Snapshot: Sendable {
        public var state: State
        public var messagesIn = 0
        public var messagesOut = 0
        public var errors = 0
        public var retries = 0
        public var deadLetters = 0
        public var lastError: String?
        public var lastErrorAt: Date?
        public var nextRun: Date?
        /// Sources: the newest reading time they sent (source lag is now minus this).
        public var newestData: Date?
        /// Singleton sources under leases: the fence this instance holds, or nil while another has it.
        public var leaseFence: Int64?
        public var underLease = false
        /// What the node itself says about its work (`report`): a forecast's learned correction.
        public var details: JSONValue?
    }

    private let values: Mutex<Snapshot>

    init() {
        values = Mutex(Snapshot(state: .running))
    }

    public var snapshot: Snapshot { values.withLock { $0 } }

    func countIn(_ n: Int = 1) { values.withLock { $0.messagesIn += n } }
    func countOut(_ n: Int = 1) { values.withLock { $0.messagesOut += n } }

    /// An attempt failed and is retried; `waiting` when it is a server's outage, not the message's fault.
    func retrying(_ reason: String, waiting: Bool, at: Date) {
        values.withLock {
            $0.retries += 1
            $0.state = waiting ? .waiting : .failing
            $0.lastError = reason
            $0.lastErrorAt = at
        }
    }

    /// A message failed for good (to the errors wire or the dead letters), or a source failed.
    func failed(_ reason: String, at: Date, deadLetter: Bool = false, state: State? = nil) {
        values.withLock {
            $0.errors += 1
            if deadLetter { $0.deadLetters += 1 }
            $0.lastError = reason
            $0.lastErrorAt = at
            if let state { $0.state = state }
        }
    }

    func set(_ state: State) { values.withLock { $0.state = state } }

    /// A node's own account of its work, shown with its status (`details`).
    public func report(_ details: JSONValue) { values.withLock { $0.details = details } }

    /// A singleton source got its lease (or waits for another instance's).
    func leaseHeld(by lease: Lease?) {
        values.withLock {
            $0.underLease = true
            $0.leaseFence = lease?.fence
            if lease == nil { $0.state = .waiting }
        }
    }

    /// Back to work after a success: a node that was failing or waiting runs again.
    func succeeded() {
        values.withLock { if $0.state != .running { $0.state = .running } }
    }

    func waitingUntil(_ next: Date?) {
        values.withLock {
            $0.nextRun = next
            if $0.state != .stopped { $0.state = next == nil ? .running : .waiting }
        }
    }

    func sent(_ messages: [Message]) {
        var newest: Date?
        for m in messages { for r in m.readings where newest.map({ r.ts > $0 }) ?? true { newest = r.ts } }
        guard let newest else { return }
        values.withLock { if $0.newestData.map({ newest > $0 }) ?? true { $0.newestData = newest } }
    }
}

/// A source's clock that tells its status when the source waits for its next turn (a schedule's
/// next tick, a pull connector's next period) and when it wakes.
struct StatusClock: HubClock {
    let base: any HubClock
    let status: NodeStatus

    func now() -> Date { base.now() }

    func sleep(until deadline: Date) async throws {
        // Only a wait of the source's own task that is longer than a moment is a turn.
        let turn = SourceTask.node != nil && deadline.timeIntervalSince(base.now()) >= 1
        if turn { status.waitingUntil(deadline) }
        defer { if turn { status.waitingUntil(nil) } }
        try await base.sleep(until: deadline)
    }

    func waitUntilCancelled() async throws { try await base.waitUntilCancelled() }
}

/// Live copies of the messages going through one node, for `/api/v1/tap`: each subscriber gets at
/// most `rate` messages a second (the rest are counted as skipped), never blocks the flow, and sees
/// secrets redacted. Memory stays bounded whatever the watchers do: a message is shown up to
/// `maxEventBytes` (the rest cut, saying so), each watcher holds at most `2 × rate` events, and the
/// hub's taps have at most `TapWatchers.limit` watchers at a time (500 that never read and eight
/// 4 MB messages once reached 4.1 GB).
public final class Tap: Sendable {
    /// Bytes of one message shown in the tap.
    public static let maxEventBytes = 16 << 10
    private let watchers: TapWatchers

    public struct Event: Sendable {
        public var at: Date
        public var port: String
        /// The message as JSON text, secrets redacted.
        public var message: String
        /// Messages not shown since the previous event (sampling).
        public var skipped: Int
    }

    private struct Subscriber {
        var continuation: AsyncStream<Event>.Continuation
        var windowStart: Date
        var inWindow: Int
        var skipped: Int
    }

    public let rate: Int
    private let subscribers = Mutex<[UInt64: Subscriber]>([:])
    private let nextID = Atomic<UInt64>(0)
    private let count = Atomic<Int>(0)
    private let redactor: Redactor

    public init(redactor: Redactor, watchers: TapWatchers = TapWatchers()) {
        self.redactor = redactor
        self.rate = watchers.rate
        self.watchers = watchers
    }

    /// A stream of the node's messages from now on, until the consumer stops iterating. With
    /// `heartbeat`, an event with an empty port comes after each such quiet time (so a server
    /// notices a client that went away).
    public func subscribe(heartbeat: Duration? = nil) -> AsyncStream<Event>? {
        guard watchers.take() else { return nil }
        let watchers = self.watchers
        let id = nextID.add(1, ordering: .relaxed).newValue
        let (stream, continuation) = AsyncStream<Event>.makeStream(bufferingPolicy: .bufferingNewest(2 * rate))
        subscribers.withLock { $0[id] = Subscriber(continuation: continuation, windowStart: .distantPast, inWindow: 0, skipped: 0) }
        count.add(1, ordering: .relaxed)
        let beat = heartbeat.map { interval in
            Task {
                while !Task.isCancelled {
                    try await Task.sleep(for: interval)
                    continuation.yield(Event(at: Date(), port: "", message: "", skipped: 0))
                }
            }
        }
        continuation.onTermination = { [weak self] _ in
            beat?.cancel()
            watchers.give()
            guard let self else { return }
            if self.subscribers.withLock({ $0.removeValue(forKey: id) }) != nil { self.count.subtract(1, ordering: .relaxed) }
        }
        return stream
    }

    /// Ends every subscription (the node's flow has stopped).
    func finish() {
        let all = subscribers.withLock { $0.values.map(\.continuation) }
        for c in all { c.finish() }
    }

    public var isWatched: Bool { count.load(ordering: .relaxed) > 0 }

    public func publish(_ message: Message, port: String, at now: Date = Date()) {
        guard isWatched else { return }
        var text = redactor.redact(message.json.jsonText())
        if text.utf8.count > Self.maxEventBytes {
            // Cut on a character boundary, after redaction (a secret must not be cut in half first).
            let total = text.utf8.count
            text = String(decoding: text.utf8.prefix(Self.maxEventBytes), as: UTF8.self).trimmingCharacters(in: CharacterSet(charactersIn: "\u{FFFD}"))
                + " …(cut: \(total) bytes in all)"
        }
        subscribers.withLock { all in
            for (id, var s) in all {
                if now.timeIntervalSince(s.windowStart) >= 1 {
                    s.windowStart = now
                    s.inWindow = 0
                }
                if s.inWindow < rate {
                    s.inWindow += 1
                    s.continuation.yield(Event(at: now, port: port, message: text, skipped: s.skipped))
                    s.skipped = 0
                } else {
                    s.skipped += 1
                }
                all[id] = s
            }
        }
    }
}

/// How many watchers the taps of one hub may have at a time, together, how many messages a second
/// each is shown, and how long one may stop reading before its connection is closed.
public final class TapWatchers: Sendable {
    public let limit: Int
    public let rate: Int
    public let patience: Duration
    private let count = Atomic<Int>(0)

    public init(limit: Int = 64, rate: Int = 20, patience: Duration = .seconds(30)) {
        self.limit = limit
        self.rate = rate
        self.patience = patience
    }

    /// Takes a place; false when all are taken.
    func take() -> Bool {
        guard count.add(1, ordering: .relaxed).newValue <= limit else {
            count.subtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func give() { count.subtract(1, ordering: .relaxed) }
}
