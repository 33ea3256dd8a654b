import Synchronization

/// The edge between nodes: a FIFO of batches, bounded by the elements it holds, with any number of
/// producers and one consumer. A producer sends a batch whole; it is taken in while the queue holds
/// fewer than `capacity` elements (so it may hold up to `capacity - 1` plus one batch), and a
/// producer that finds it full waits (backpressure). The consumer takes up to as many elements as
/// it asks for at a time, and learns when every producer has finished and the queue is empty.
final class BoundedQueue<Element: Sendable>: Sendable {
    enum Next {
        /// At least one element, at most the number asked for, in the order sent.
        case batch([Element])
        /// Every producer finished and nothing is left.
        case finished
        /// The wait ended without an element (timeout or cancellation).
        case interrupted
    }

    private struct Waiter {
        var id: UInt64
        var batch: [Element]
        var continuation: CheckedContinuation<Void, Error>
    }

    /// Who a `take` made room for: senders whose batches it took in, and those waiting for room.
    struct Wakes {
        var senders: [CheckedContinuation<Void, Error>] = []
        var room: [CheckedContinuation<Void, Never>] = []

        func resume() {
            for s in senders { s.resume() }
            for r in room { r.resume() }
        }
    }

    private struct Consumer {
        var token: UInt64
        var limit: Int
        var continuation: CheckedContinuation<Next, Never>
    }

    /// What a send found, decided under the lock; the continuations are resumed after it.
    private enum Registration {
        /// Taken in; the consumer, if it was waiting, is to be handed what `offer` put in `handed`.
        case sent(consumer: CheckedContinuation<Next, Never>?)
        case cancelled
        case waiting
    }

    private struct State {
        /// Batches taken in, the first from `headStart` on.
        var chunks: [[Element]] = []
        var head = 0
        var headStart = 0
        /// Elements in `chunks` (not counting waiting senders').
        var count = 0
        var producers: Int
        var senders: [Waiter] = []
        /// Tasks waiting for room (`waitForRoom`), by id.
        var roomWaiters: [(id: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
        var consumer: Consumer?
        /// An interrupt that came before the consumer waited with its token (a timer already due).
        var earlyInterrupt: UInt64?
        var nextID: UInt64 = 0

        mutating func admit(_ batch: [Element]) {
            chunks.append(batch)
            count += batch.count
        }

        /// Up to `limit` elements, and who the room made is for: the senders whose batches it took
        /// in, then those waiting for room.
        mutating func take(_ limit: Int, capacity: Int) -> ([Element], Wakes)? {
            guard count > 0 else { return nil }
            var taken: [Element] = []
            while taken.count < limit, head < chunks.count {
                let chunk = chunks[head]
                let available = chunk.count - headStart
                if taken.isEmpty && headStart == 0 && available <= limit {
                    taken = chunk  // the common case: a whole batch, not copied
                } else {
                    let n = min(available, limit - taken.count)
                    taken.append(contentsOf: chunk[headStart..<(headStart + n)])
                    headStart += n
                    if headStart < chunk.count { break }
                }
                chunks[head] = []
                head += 1
                headStart = 0
            }
            count -= taken.count
            if head > 64, head * 2 > chunks.count {
                chunks.removeFirst(head)
                head = 0
            }
            var wakes = Wakes()
            while count < capacity, !senders.isEmpty {
                let w = senders.removeFirst()
                admit(w.batch)
                wakes.senders.append(w.continuation)
            }
            if hasRoom(capacity) {
                wakes.room = roomWaiters.map(\.continuation)
                roomWaiters = []
            }
            return (taken, wakes)
        }

        func hasRoom(_ capacity: Int) -> Bool { count < capacity && senders.isEmpty }

        /// Takes `batch` in (moving it out) if there is room; if the consumer waits, what it asked for
        /// is moved to `handed` (so that, handed on, the consumer holds the only reference to it).
        mutating func offer(_ batch: inout [Element], capacity: Int, handing handed: inout [Element], waking: inout Wakes) -> Registration? {
            guard count < capacity else { return nil }
            admit(BoundedQueue.take(&batch))
            guard let waiting = consumer, let (taken, wakes) = take(waiting.limit, capacity: capacity) else { return .sent(consumer: nil) }
            consumer = nil
            handed = taken
            waking = wakes
            return .sent(consumer: waiting.continuation)
        }
    }

    let capacity: Int
    private let state: Mutex<State>

    init(capacity: Int, producers: Int) {
        self.capacity = max(1, capacity)
        self.state = Mutex(State(producers: producers))
    }

    /// The elements queued, waiting senders' included.
    var count: Int { state.withLock { s in s.count + s.senders.reduce(0) { $0 + $1.batch.count } } }

    /// Adds an element, waiting while the queue is full.
    func send(_ element: Element) async throws {
        try await send([element])
    }

    /// Adds a batch whole, waiting while the queue is full. Throws `CancellationError` if the task
    /// is cancelled while waiting; the batch was then not added.
    func send(_ batch: [Element]) async throws {
        var batch = batch
        try await send(&batch)
    }

    /// Adds a batch whole, moving it out of `batch` (left empty), so the consumer gets the only
    /// reference to it and can change it where it lies. Waits while the queue is full. Throws
    /// `CancellationError` if the task is cancelled while waiting; `batch` is then as it was.
    func send(_ batch: inout [Element]) async throws {
        guard !batch.isEmpty else { return }
        let capacity = self.capacity
        var handed: [Element] = []
        var waking = Wakes()
        if case .sent(let consumer)? = state.withLock({ $0.offer(&batch, capacity: capacity, handing: &handed, waking: &waking) }) {
            consumer?.resume(returning: .batch(Self.take(&handed)))
            waking.resume()
            return
        }
        let id = state.withLock { s -> UInt64 in
            s.nextID += 1
            return s.nextID
        }
        do {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, Error>) in
                    let registration = state.withLock { s -> Registration in
                        if let sent = s.offer(&batch, capacity: capacity, handing: &handed, waking: &waking) { return sent }
                        // Checked under the lock: a cancellation after this point finds the waiter.
                        if Task.isCancelled { return .cancelled }
                        s.senders.append(Waiter(id: id, batch: Self.take(&batch), continuation: c))
                        return .waiting
                    }
                    switch registration {
                    case .sent(let consumer):
                        consumer?.resume(returning: .batch(Self.take(&handed)))
                        waking.resume()
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
                waiter?.continuation.resume(throwing: Withdrawn(batch: waiter!.batch))
            }
        } catch let withdrawn as Withdrawn {
            batch = withdrawn.batch
            throw CancellationError()
        }
    }

    /// A waiting sender's batch, given back when its task is cancelled.
    private struct Withdrawn: Error {
        var batch: [Element]
    }

    /// The elements of `batch`, leaving it empty: the only reference moves, none is added.
    static func take(_ batch: inout [Element]) -> [Element] {
        var moved: [Element] = []
        swap(&moved, &batch)
        return moved
    }

    /// Up to `limit` elements (at least one, waiting for it); `.finished` once every producer
    /// finished and the queue is empty; `.interrupted` if `interrupt(token)` was called for this
    /// wait or the task was cancelled.
    func next(upTo limit: Int, token: UInt64 = 0) async -> Next {
        let limit = max(1, limit), capacity = self.capacity
        if let (taken, wakes) = state.withLock({ $0.take(limit, capacity: capacity) }) {
            wakes.resume()
            return .batch(taken)
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Next, Never>) in
                let immediate = state.withLock { s -> (Next, Wakes)? in
                    if let (taken, wakes) = s.take(limit, capacity: capacity) { return (.batch(taken), wakes) }
                    if s.producers <= 0 { return (.finished, Wakes()) }
                    if Task.isCancelled { return (.interrupted, Wakes()) }
                    if token != 0, s.earlyInterrupt == token {
                        s.earlyInterrupt = nil
                        return (.interrupted, Wakes())
                    }
                    s.consumer = Consumer(token: token, limit: limit, continuation: c)
                    return nil
                }
                if let (result, wakes) = immediate {
                    wakes.resume()
                    c.resume(returning: result)
                }
            }
        } onCancel: {
            interrupt(token: token)
        }
    }

    /// Returns once the queue has room for a batch (it holds fewer than `capacity` elements and no
    /// sender waits), at once if it has, or when the task is cancelled. Woken by the consumer's
    /// take that makes the room, never by polling.
    func waitForRoom() async {
        let capacity = self.capacity
        let id = state.withLock { s -> UInt64? in
            guard !s.hasRoom(capacity) else { return nil }
            s.nextID += 1
            return s.nextID
        }
        guard let id else { return }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = state.withLock { s -> Bool in
                    // Checked under the lock: a cancellation after this point finds the waiter.
                    if s.hasRoom(capacity) || Task.isCancelled { return true }
                    s.roomWaiters.append((id, c))
                    return false
                }
                if now { c.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { s in s.roomWaiters.firstIndex { $0.id == id }.map { s.roomWaiters.remove(at: $0) } }
            waiter?.continuation.resume()
        }
    }

    /// How many tasks wait in `waitForRoom` (for tests).
    var roomWaiting: Int { state.withLock { $0.roomWaiters.count } }

    /// Ends a consumer's wait that used `token`, if it is still waiting.
    func interrupt(token: UInt64) {
        let c = state.withLock { s -> CheckedContinuation<Next, Never>? in
            guard let consumer = s.consumer, consumer.token == token else {
                s.earlyInterrupt = token
                return nil
            }
            s.consumer = nil
            return consumer.continuation
        }
        c?.resume(returning: .interrupted)
    }

    /// Up to `limit` elements if any are there now, without waiting.
    func poll(upTo limit: Int) -> [Element]? {
        let capacity = self.capacity
        guard let (taken, wakes) = state.withLock({ $0.take(max(1, limit), capacity: capacity) }) else { return nil }
        wakes.resume()
        return taken
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
            var rest: [Element] = []
            for (i, chunk) in s.chunks.enumerated().dropFirst(s.head) { rest.append(contentsOf: i == s.head ? chunk[s.headStart...] : chunk[...]) }
            rest.append(contentsOf: s.senders.flatMap(\.batch))
            s.chunks = []
            s.head = 0
            s.headStart = 0
            s.count = 0
            return rest
        }
    }
}
