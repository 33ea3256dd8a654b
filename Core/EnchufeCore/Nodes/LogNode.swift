import Foundation
import Logging

/// `log`: writes each message to the hub's log, as JSON.
struct LogNode: SinkNode {
    static let levels = ["trace", "debug", "info", "notice", "warning", "error"]

    enum Key {
        static let level = OptionKey<String>("level", .enumeration(levels), default: "info", doc: "Log level of the lines written.")
        static let maxLength = OptionKey<Int>("max_length", default: 2000, doc: "Longest message text logged; longer ones are cut.")
    }

    static let spec = NodeSpec(
        type: "log", kind: .sink,
        summary: "Writes each message to the hub's log as JSON",
        options: [
            Key.level.spec,
            Key.maxLength.spec,
        ],
        example: """
            - id: debug
              type: log
              level: info
            """,
        make: { context in
            .sink(LogNode(
                level: Logger.Level(rawValue: context.options[Key.level]) ?? .info,
                maxLength: context.options[Key.maxLength]))
        })

    let level: Logger.Level
    let maxLength: Int
    let batching = Batching.single

    func write(_ batch: [Message], _ context: NodeContext) async throws {
        for message in batch {
            var text = message.json.jsonText()
            if text.count > maxLength { text = String(text.prefix(maxLength)) + "…" }
            context.logger.log(level: level, "\(text)")
        }
    }
}
