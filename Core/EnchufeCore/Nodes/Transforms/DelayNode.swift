import Foundation
import Synchronization

/// `delay`: sends each message on a fixed time after it arrived, in order.
final class DelayNode: TransformNode {
    enum Key {
        static let delay = RequiredOptionKey<Duration>("delay", doc: "How long each message waits.", example: "30s")
        static let maxPending = OptionKey<Int>("max_pending", default: 10000, doc: "Messages that may wait at once.")
    }

    static let spec = NodeSpec(
        type: "delay", kind: .transform,
        summary: "Sends each message on a fixed time after it arrived",
        doc: """
            Messages keep their order and are delayed independently, so throughput is not limited by
            the delay. At most `max_pending` messages wait at once; beyond that the node stops taking
            input (backpressure). When the flow stops, waiting messages are sent at once.
            """,
        options: [
            Key.delay.spec,
            Key.maxPending.spec,
        ],
        example: """
            - id: settle
              type: delay
              delay: 2m
              to: [store]
            """,
        check: { options in
            var problems: [OptionProblem] = []
            if let d = options[Key.delay], d <= .zero { problems.append(OptionProblem(option: "delay", "'delay' must be longer than 0s")) }
            if options[Key.maxPending] < 1 { problems.append(OptionProblem(option: "max_pending", "'max_pending' must be at least 1")) }
            return problems
        },
        make: { context in
            .transform(DelayNode(delay: try context.options.required(Key.delay), maxPending: context.options[Key.maxPending]))
        })

    let delay: TimeInterval
    let maxPending: Int
    private let waiting = Mutex<[(due: Date, message: Message)]>([])

    init(delay: Duration, maxPending: Int) {
        self.delay = delay.seconds
        self.maxPending = maxPending
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        message.hold()
        let now = context.clock.now()
        let oldest = waiting.withLock { w -> Date? in
            w.append((now.addingTimeInterval(delay), message))
            return w.count > maxPending ? w[0].due : nil
        }
        if let oldest { try? await context.clock.sleep(until: oldest) }
        return due(at: context.clock.now(), all: false)
    }

    func flushDeadline() -> Date? { waiting.withLock { $0.first?.due } }

    func flush(_ context: NodeContext, final: Bool) async throws -> [Output] {
        due(at: context.clock.now(), all: final)
    }

    private func due(at now: Date, all: Bool) -> [Output] {
        waiting.withLock { w in
            let count = all ? w.count : (w.firstIndex { $0.due > now } ?? w.count)
            defer { w.removeFirst(count) }
            return w.prefix(count).map { .out($0.message.carrying([$0.message])) }
        }
    }
}
