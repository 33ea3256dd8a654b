import Synchronization

/// The edge between nodes: a FIFO of bounded capacity with any number of producers and one consumer.
/// A producer that finds it full waits (backpressure); the consumer learns when every producer has
/// finished and the queue is empty.
final class BoundedQueue<Element: Sendable>: Sendable {
    enum Next {
        case element(Element)
        /// Every producer finished and nothing is left.
        case finished
        /// The wait ended without an element (timeout or cancellation).
        case interrupted
    }

    private struct Waiter {
        var id: UInt64
        var element: Element
        var continuation: CheckedContinuation<Void, Error>
    }

    private enum Registration {
        case sent(CheckedContinuation<Next, Never>?)
        case cancelled
        case waiting
    }

    private struct State {
        var buffer: [Element] = []
        var head = 0
        var producers: Int
        var senders: [Waiter] = []
        var consumer: (id: UInt64, continuation: CheckedContinuation<Next, Never>)?
        /// An interrupt that came before the consumer waited with its token (a timer already due).
        var earlyInterrupt: UInt64?
        var nextID: UInt64 = 0

        var count: Int { buffer.count - head }

        mutating func take() -> (Element, CheckedContinuation<Void, Error>?)? {
            guard head < buffer.count else { return nil }
            let e = buffer[head]
            head += 1
            if head > 64, head * 2 > buffer.count {
                buffer.removeFirst(head)
                head = 0
            }
            var resumed: CheckedContinuation<Void, Error>?
            if !senders.isEmpty {
                let w = senders.removeFirst()
                buffer.append(w.element)
                resumed = w.continuation
            }
            return (e, resumed)
        }
    }

    let capacity: Int
    private let state: Mutex<State>

    init(capacity: Int, producers: Int) {
        self.capacity = max(1, capacity)
        self.state = Mutex(State(producers: producers))
    }

    var count: Int { state.withLock { $0.count + $0.senders.count } }

    /// Adds an element, waiting while the queue is full. Throws `CancellationError` if the task is
    /// cancelled while waiting; the element was then not added.
    func send(_ element: Element) async throws {
        let fast = state.withLock { s -> Registration in
            if let consumer = s.consumer {
                s.consumer = nil
                return .sent(consumer.continuation)
            }
            if s.count < capacity {
                s.buffer.append(element)
                return .sent(nil)
            }
            return .waiting
        }
        if case .sent(let consumer) = fast {
            consumer?.resume(returning: .element(element))
            return
        }
        let id = state.withLock { s -> UInt64 in
            s.nextID += 1
            return s.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, Error>) in
                let registration = state.withLock { s -> Registration in
                    if let consumer = s.consumer {
                        s.consumer = nil
                        return .sent(consumer.continuation)
                    }
                    if s.count < capacity {
                        s.buffer.append(element)
                        return .sent(nil)
                    }
                    // Checked under the lock: a cancellation after this point finds the waiter.
                    if Task.isCancelled { return .cancelled }
                    s.senders.append(Waiter(id: id, element: element, continuation: c))
                    return .waiting
                }
                switch registration {
                case .sent(let consumer):
                    consumer?.resume(returning: .element(element))
                    c.resume()
                case .cancelled:
                    c.resume(throwing: CancellationError())
                case .waiting:
                    break
                }
            }
        } onCancel: {
            let waiter = state.withLock { s -> Waiter? in
                guard let i = s.senders.firstIndex(where: { $0.id == id }) else { return nil }
                return s.senders.remove(at: i)
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    /// The next element; `.finished` once every producer finished and the queue is empty;
    /// `.interrupted` if `interrupt(token)` was called for this wait or the task was cancelled.
    func next(token: UInt64 = 0) async -> Next {
        if let taken = state.withLock({ $0.take() }) {
            taken.1?.resume()
            return .element(taken.0)
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Next, Never>) in
                let immediate = state.withLock { s -> (Next, CheckedContinuation<Void, Error>?)? in
                    if let taken = s.take() { return (.element(taken.0), taken.1) }
                    if s.producers <= 0 { return (.finished, nil) }
                    if Task.isCancelled { return (.interrupted, nil) }
                    if token != 0, s.earlyInterrupt == token {
                        s.earlyInterrupt = nil
                        return (.interrupted, nil)
                    }
                    s.consumer = (token, c)
                    return nil
                }
                if let (result, sender) = immediate {
                    sender?.resume()
                    c.resume(returning: result)
                }
            }
        } onCancel: {
            interrupt(token: token)
        }
    }

    /// Ends a consumer's wait that used `token`, if it is still waiting.
    func interrupt(token: UInt64) {
        let c = state.withLock { s -> CheckedContinuation<Next, Never>? in
            guard let consumer = s.consumer, consumer.id == token else {
                s.earlyInterrupt = token
                return nil
            }
            s.consumer = nil
            return consumer.continuation
        }
        c?.resume(returning: .interrupted)
    }

    /// An element if one is there now, without waiting.
    func poll() -> Element? {
        guard let taken = state.withLock({ $0.take() }) else { return nil }
        taken.1?.resume()
        return taken.0
    }

    /// One producer has finished; when all have, a waiting consumer learns the queue is finished.
    func finishProducer() {
        let c = state.withLock { s -> CheckedContinuation<Next, Never>? in
            s.producers -= 1
            guard s.producers <= 0, s.count == 0, let consumer = s.consumer else { return nil }
            s.consumer = nil
            return consumer.continuation
        }
        c?.resume(returning: .finished)
    }

    /// Everything still queued, for accounting when a flow is abandoned.
    func drainRemaining() -> [Element] {
        state.withLock { s in
            let rest = Array(s.buffer[s.head...]) + s.senders.map(\.element)
            s.buffer = []
            s.head = 0
            return rest
        }
    }
}
