import Foundation
import Synchronization

/// `rate_limit`: at most `rate` messages per `per`, holding the rest back (or dropping them).
final class RateLimitNode: TransformNode {
    enum Key {
        static let rate = RequiredOptionKey<Int>("rate", doc: "Messages allowed per `per`.", example: 10)
        static let per = OptionKey<Duration>("per", default: .seconds(1), doc: "The interval the rate is counted over.")
        static let mode = OptionKey<String>("mode", .enumeration(["wait", "drop"]), default: "wait", doc: "What to do with a message over the limit.")
    }

    static let spec = NodeSpec(
        type: "rate_limit", kind: .transform,
        summary: "Lets at most N messages through per interval, waiting (backpressure) or dropping the rest",
        doc: """
            Messages are spaced evenly, with bursts of up to `rate` messages allowed. With `mode: wait`
            (the default) a message over the limit waits for its turn, which slows everything
            upstream down to the rate and loses nothing. With `mode: drop` it is dropped (and counted
            as done).
            """,
        options: [
            Key.rate.spec,
            Key.per.spec,
            Key.mode.spec,
        ],
        example: """
            - id: gentle
              type: rate_limit
              rate: 5
              per: 1s
              to: [api]
            """,
        check: { options in
            var problems: [OptionProblem] = []
            if let rate = options[Key.rate], rate < 1 { problems.append(OptionProblem(option: "rate", "'rate' must be at least 1")) }
            if options[Key.per] <= .zero { problems.append(OptionProblem(option: "per", "'per' must be longer than 0s")) }
            return problems
        },
        make: { context in
            .transform(RateLimitNode(
                rate: try context.options.required(Key.rate), per: context.options[Key.per],
                drop: context.options[Key.mode] == "drop"))
        })

    /// Generic cell rate algorithm: each message moves the theoretical arrival time on by
    /// `per / rate`; a message may pass while that time is at most `per` minus one step ahead.
    let step: TimeInterval
    let burst: TimeInterval
    let drop: Bool
    private let arrival = Mutex<Date?>(nil)

    init(rate: Int, per: Duration, drop: Bool) {
        step = per.seconds / Double(rate)
        burst = per.seconds - step
        self.drop = drop
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        let now = context.clock.now()
        let wait = arrival.withLock { tat -> TimeInterval? in
            let theoretical = max(tat ?? now, now)
            let early = theoretical.timeIntervalSince(now) - burst
            if early > 0, drop { return nil }
            tat = theoretical.addingTimeInterval(step)
            return max(0, early)
        }
        guard let wait else { return [] }
        if wait > 0 { try await context.clock.sleep(until: now.addingTimeInterval(wait)) }
        return [.out(message)]
    }
}
