import Foundation
import Synchronization

/// `dedupe`: drops messages whose key was seen recently.
final class DedupeNode: TransformNode {
    enum Key {
        static let key = OptionKey<JSONValue>("key", .template, default: "{payload}", doc: "What makes two messages the same.", example: "{payload.cups}/{payload.ts}")
        static let window = OptionKey<Int>("window", default: 10000, doc: "How many recent keys are remembered.")
        static let ttl = OptionKey<Duration?>("ttl", doc: "Forget a key after this long.", example: "1h")
    }

    static let spec = NodeSpec(
        type: "dedupe", kind: .transform,
        summary: "Drops messages whose key was already seen within a bounded window",
        doc: """
            The key is a template or `=lua expression` (default: the whole payload). The node remembers
            the last `window` keys (memory stays bounded) and, with `ttl`, forgets a key after that long.
            A dropped duplicate counts as done, not lost.
            """,
        options: [
            Key.key.spec,
            Key.window.spec,
            Key.ttl.spec,
        ] + LuaLimits.optionSpecs,
        example: """
            - id: once
              type: dedupe
              key: "{topic}/{payload.ts}"
              window: 50000
              to: [store]
            """,
        check: { options in
            options[Key.window] < 1 ? [OptionProblem(option: "window", "'window' must be at least 1")] : []
        },
        make: { context in
            let expressions = NodeExpressions(limits: LuaLimits(options: context.options))
            return .transform(DedupeNode(
                key: try expressions.bind(ValueTemplate.option("key", context.options[Key.key], in: context.options)),
                window: context.options[Key.window], ttl: context.options[Key.ttl]))
        })

    private struct Seen {
        var expiry: [String: Date] = [:]
        /// Keys in the order they were first seen, oldest first; `head` is the oldest still kept.
        var order: [String] = []
        var head = 0
    }

    let key: BoundTemplate
    let window: Int
    let ttl: Duration?
    private let seen = Mutex(Seen())

    init(key: BoundTemplate, window: Int, ttl: Duration?) {
        self.key = key
        self.window = window
        self.ttl = ttl
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        let k = try key.value(for: message).templateText
        let now = context.clock.now()
        let fresh = seen.withLock { s -> Bool in
            if let expiry = s.expiry[k], expiry > now { return false }
            if s.expiry[k] == nil { s.order.append(k) }
            s.expiry[k] = ttl.map { now.addingTimeInterval($0.seconds) } ?? .distantFuture
            while s.order.count - s.head > window {
                s.expiry[s.order[s.head]] = nil
                s.head += 1
            }
            if s.head > window {  // compact now and then, so `order` stays bounded too
                s.order.removeFirst(s.head)
                s.head = 0
            }
            return true
        }
        return fresh ? [.out(message)] : []
    }
}
