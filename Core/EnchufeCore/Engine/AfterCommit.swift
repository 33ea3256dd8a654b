import Synchronization

/// Work a node does once what it produced is committed: a pull connector records the periods it
/// fetched only when every reading of them is in the store. Each flow waits for its pending work
/// before it ends, so a graceful stop does not lose a checkpoint whose readings were committed.
public final class AfterCommitWork: Sendable {
    private struct State {
        var running: [Int: Task<Void, Never>] = [:]
        var next = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// Runs `work` once `delivery` settles as committed; nothing when it fails.
    public func run(after delivery: Delivery, _ work: @escaping @Sendable () async -> Void) {
        delivery.onSettled { outcome in
            guard outcome == .committed else { return }
            self.start(work)
        }
    }

    private func start(_ work: @escaping @Sendable () async -> Void) {
        state.withLock { s in
            let id = s.next
            s.next += 1
            s.running[id] = Task {
                await work()
                self.finished(id)
            }
        }
    }

    private func finished(_ id: Int) {
        _ = state.withLock { $0.running.removeValue(forKey: id) }
    }

    /// Waits for the work started so far (and any it starts meanwhile).
    public func wait() async {
        while let task = state.withLock({ $0.running.values.first }) {
            await task.value
        }
    }
}

extension Delivery {
    /// Gives `messages` one new delivery of their own, which settles when all of them (and what
    /// derives from them) are committed — for a node that makes messages from what it fetched rather
    /// than from its input. No messages: the delivery is settled at once.
    public static func tracking(_ messages: [Message]) -> (Delivery, [Message]) {
        let delivery = Delivery()
        let carried = messages.map { message -> Message in
            delivery.retain()
            return message.carrying(delivery)
        }
        delivery.seal()
        return (delivery, carried)
    }
}

extension Message {
    /// This message carrying `delivery` instead of its own: the engine then settles `delivery` when
    /// this message and its derivatives are committed, not the input it was made from.
    public func carrying(_ delivery: Delivery) -> Message {
        var m = self
        m.delivery = delivery
        return m
    }
}
