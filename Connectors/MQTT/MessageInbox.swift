import Foundation

/// What the MQTT client's thread hands to `mqtt.in`'s task: messages already journaled, a burst at a
/// time, waiting to be sent into the flow, and the connection's ups and downs. The task takes everything that has
/// arrived at once (a burst), so a busy flow gets batches and there is no task switch per message;
/// an idle one is woken by the first message or event.
///
/// Bounded by the messages in flight, from `put` until `release` (settled in the flow): at
/// `capacity`, `put` blocks libmosquitto's thread on a condition variable (no polling), so it stops
/// reading and the broker holds the rest. It is woken once a quarter of `capacity` has settled, not
/// at every settled message: draining a backlog at capacity, a wake-up per message cost two thread
/// switches a message.
final class MessageInbox: @unchecked Sendable {
    struct Entry: Sendable {
        /// The message's journal record (0: not journaled, QoS 0).
        var seq: UInt64
        var message: MQTTMessage
    }

    /// What happened to the connection, in the order it happened.
    enum Event: Sendable, Equatable {
        case connected
        case disconnected(reason: String)
        /// The broker answered a subscription with these granted QoS (128 or more: refused).
        case subscribed(granted: [Int])
    }

    /// What has arrived since the last take: connection events first, then messages.
    struct Burst: Sendable {
        var events: [Event] = []
        var entries: [Entry] = []

        var isEmpty: Bool { events.isEmpty && entries.isEmpty }
    }

    let capacity: Int
    /// A `put` waiting at `capacity` goes on once the messages in flight are down to this.
    let resumeAt: Int
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var pending = Burst()
    private var inFlight = 0
    private var closed = false
    private var producerWaiting = false
    /// How many times `put` has waited for room, and `release` has woken it (for tests).
    private var waits = 0
    private var wakeUps = 0
    private var consumer: CheckedContinuation<Burst?, Never>?

    init(capacity: Int) {
        self.capacity = max(1, capacity)
        resumeAt = self.capacity - max(1, self.capacity / 4)
    }

    /// Adds a message, waiting while `capacity` are in flight (until `resumeAt`); false once the inbox
    /// is closed. Called from one thread (the client's).
    @discardableResult
    func put(_ entry: Entry) -> Bool { put(contentsOf: [entry]) }

    /// Adds a burst of messages, waiting first while `capacity` are in flight (until `resumeAt`; a
    /// burst may then take the count past `capacity` by its size, which the client bounds); false
    /// once the inbox is closed. Called from one thread (the client's).
    @discardableResult
    func put(contentsOf entries: [Entry]) -> Bool {
        guard !entries.isEmpty else { return true }
        condition.lock()
        if inFlight >= capacity && !closed {
            producerWaiting = true
            waits += 1
            repeat { condition.wait() } while inFlight > resumeAt && !closed
            producerWaiting = false
        }
        guard !closed else {
            condition.unlock()
            return false
        }
        inFlight += entries.count
        if let waiting = consumer {
            consumer = nil
            condition.unlock()
            waiting.resume(returning: Burst(entries: entries))
            return true
        }
        pending.entries.append(contentsOf: entries)
        condition.unlock()
        return true
    }

    /// Adds a connection event, without waiting (events are few and not counted in flight).
    func post(_ event: Event) {
        condition.lock()
        guard !closed else {
            condition.unlock()
            return
        }
        if let waiting = consumer {
            consumer = nil
            condition.unlock()
            waiting.resume(returning: Burst(events: [event]))
            return
        }
        pending.events.append(event)
        condition.unlock()
    }

    /// Counts `count` messages in flight that did not come through `put` (replayed from the journal),
    /// without waiting: the next `put`s wait until they settle.
    func admit(_ count: Int) {
        condition.lock()
        inFlight += count
        condition.unlock()
    }

    /// Everything that has arrived (at least one message or event, waiting for it); nil once closed
    /// and taken.
    func take() async -> Burst? {
        await withCheckedContinuation { (c: CheckedContinuation<Burst?, Never>) in
            condition.lock()
            if !pending.isEmpty {
                let burst = pending
                pending = Burst()
                condition.unlock()
                c.resume(returning: burst)
            } else if closed {
                condition.unlock()
                c.resume(returning: nil)
            } else {
                consumer = c
                condition.unlock()
            }
        }
    }

    /// `count` messages settled (committed, dead-lettered, or given up as the flow stops).
    func release(_ count: Int = 1) {
        condition.lock()
        inFlight = max(0, inFlight - count)
        if producerWaiting && inFlight <= resumeAt {
            wakeUps += 1
            condition.signal()
        }
        condition.unlock()
    }

    /// Whether a `put` is waiting for room, how many times one has, and how many times `release`
    /// woke one (for tests).
    var waiting: (now: Bool, times: Int, wokenUp: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (producerWaiting, waits, wakeUps)
    }

    /// Lets every waiter go: `put` refuses, `take` answers nil once what is pending has been taken.
    func close() {
        condition.lock()
        closed = true
        let waiting = consumer
        consumer = nil
        condition.broadcast()
        condition.unlock()
        waiting?.resume(returning: nil)
    }
}
