import Foundation
import Synchronization

/// `batch`: groups messages by count and/or time into one message.
final class BatchNode: TransformNode {
    enum Key {
        static let count = OptionKey<Int?>("count", doc: "Send a batch once it holds this many messages.", example: 100)
        static let interval = OptionKey<Duration?>("interval", doc: "Send a batch this long after its first message.", example: "5s")
    }

    static let spec = NodeSpec(
        type: "batch", kind: .transform,
        summary: "Groups messages into one, by count and/or time",
        doc: """
            A batch is sent when it holds `count` messages, or `interval` after its first message
            arrived, whichever comes first (give one or both); what is left is sent when the flow
            stops. The batch's payload is the list of the payloads, its readings all their readings,
            its topic the first message's, and attribute `batch_size` the number of messages. The
            messages of a batch count as delivered only once the batch is.
            """,
        options: [
            Key.count.spec,
            Key.interval.spec,
        ],
        example: """
            - id: group
              type: batch
              count: 500
              interval: 2s
              to: [upload]
            """,
        check: { options in
            if !options.has(Key.count), !options.has(Key.interval) { return [OptionProblem("needs 'count', 'interval' or both")] }
            if let count = options[Key.count], count < 1 { return [OptionProblem(option: "count", "'count' must be at least 1")] }
            if let interval = options[Key.interval], interval <= .zero {
                return [OptionProblem(option: "interval", "'interval' must be longer than 0s")]
            }
            return []
        },
        make: { context in .transform(BatchNode(count: context.options[Key.count], interval: context.options[Key.interval])) })

    private struct Pending {
        var held: [Message] = []
        var deadline: Date?
    }

    let count: Int?
    let interval: Duration?
    private let pending = Mutex(Pending())

    init(count: Int?, interval: Duration?) {
        self.count = count
        self.interval = interval
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        message.hold()
        let full = pending.withLock { p -> [Message]? in
            p.held.append(message)
            if let count, p.held.count >= count { return take(&p) }
            if p.deadline == nil, let interval { p.deadline = context.clock.now().addingTimeInterval(interval.seconds) }
            return nil
        }
        return full.map { [Self.batch($0)] } ?? []
    }

    func flushDeadline() -> Date? { pending.withLock { $0.deadline } }

    func flush(_ context: NodeContext, final: Bool) async throws -> [Output] {
        let held = pending.withLock { p -> [Message] in
            guard final || (p.deadline.map { $0 <= context.clock.now() } ?? false) else { return [] }
            return take(&p)
        }
        return held.isEmpty ? [] : [Self.batch(held)]
    }

    private func take(_ p: inout Pending) -> [Message] {
        defer { p = Pending() }
        return p.held
    }

    static func batch(_ held: [Message]) -> Output {
        .out(
            Message(
                payload: .array(held.map(\.payload)), topic: held.first?.topic,
                attributes: ["batch_size": String(held.count)], readings: held.flatMap(\.readings)
            ).carrying(held))
    }
}
