import Synchronization

/// What became of everything derived from one source input.
public enum DeliveryOutcome: Sendable, Equatable {
    /// Every derived message was committed by a sink, dropped on purpose, or made durable in the
    /// dead-letter store: the source may record its progress.
    case committed
    /// Something derived from it was not made durable (a dead letter could not be written, or the
    /// flow stopped before the message was committed): the source must not record its progress.
    case failed(String)
}

/// Counts the messages in flight that derive from one source input. The engine retains it once for
/// every copy of a message it puts on a wire and releases it when a node is done with that copy;
/// at zero the source is told the outcome.
public final class Delivery: Sendable {
    private struct State {
        var pending = 1  // the source's own hold, released by `seal()`
        var failure: String?
        var outcome: DeliveryOutcome?
        var waiters: [CheckedContinuation<DeliveryOutcome, Never>] = []
        /// The first callback (a source usually gives one), then the others: no array for one.
        var callback: (@Sendable (DeliveryOutcome) -> Void)?
        var callbacks: [@Sendable (DeliveryOutcome) -> Void] = []
    }

    private let state = Mutex(State())

    public init() {}

    func retain(_ count: Int = 1) {
        state.withLock { $0.pending += count }
    }

    /// One copy is done; `failure` marks the whole delivery failed.
    func release(failure: String? = nil) {
        let fired = state.withLock { s -> (DeliveryOutcome, [CheckedContinuation<DeliveryOutcome, Never>], (@Sendable (DeliveryOutcome) -> Void)?, [@Sendable (DeliveryOutcome) -> Void])? in
            if let failure, s.failure == nil { s.failure = failure }
            s.pending -= 1
            guard s.pending == 0, s.outcome == nil else { return nil }
            let outcome: DeliveryOutcome = s.failure.map { .failed($0) } ?? .committed
            s.outcome = outcome
            defer { (s.waiters, s.callback, s.callbacks) = ([], nil, []) }
            return (outcome, s.waiters, s.callback, s.callbacks)
        }
        guard let (outcome, waiters, first, callbacks) = fired else { return }
        for w in waiters { w.resume(returning: outcome) }
        first?(outcome)
        for c in callbacks { c(outcome) }
    }

    /// The source has emitted everything derived from this input.
    public func seal() { release() }

    /// Waits for the outcome; returns at once if it is known.
    public func outcome() async -> DeliveryOutcome {
        await withCheckedContinuation { c in
            let known = state.withLock { s -> DeliveryOutcome? in
                if let o = s.outcome { return o }
                s.waiters.append(c)
                return nil
            }
            if let known { c.resume(returning: known) }
        }
    }

    /// Calls `callback` once with the outcome (at once if it is known).
    public func onSettled(_ callback: @escaping @Sendable (DeliveryOutcome) -> Void) {
        let known = state.withLock { s -> DeliveryOutcome? in
            if let o = s.outcome { return o }
            if s.callback == nil { s.callback = callback } else { s.callbacks.append(callback) }
            return nil
        }
        if let known { callback(known) }
    }

    public var settledOutcome: DeliveryOutcome? { state.withLock { $0.outcome } }
}

extension Delivery {
    /// The delivery of a message made from several held messages (a batch): when it settles, each
    /// of theirs is released with its outcome. The held messages' claims pass to it.
    static func combining(_ held: [Message]) -> Delivery {
        let combined = Delivery()
        let parents = held.compactMap(\.delivery)
        combined.onSettled { outcome in
            let failure: String? = if case .failed(let reason) = outcome { reason } else { nil }
            for parent in parents { parent.release(failure: failure) }
        }
        return combined
    }
}

extension Message {
    /// Keeps this message's delivery open while a node holds the message back (a batch filling
    /// up); the claim passes on with `carrying`.
    func hold() { delivery?.retain() }

    /// This message, carrying the combined delivery of `held` instead of its own.
    func carrying(_ held: [Message]) -> Message {
        var m = self
        m.delivery = Delivery.combining(held)
        return m
    }
}
