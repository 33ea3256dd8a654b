import Foundation
import Logging

/// `log`: writes each message to the hub's log, as JSON.
struct LogNode: SinkNode {
    static let levels = ["trace", "debug", "info", "notice", "warning", "error"]

    static let spec = NodeSpec(
        type: "log", kind: .sink,
        summary: "Writes each message to the hub's log as JSON",
        options: [
            OptionSpec("level", .enumeration(levels), default: "info", doc: "Log level of the lines written."),
            OptionSpec("max_length", .integer, default: 2000, doc: "Longest message text logged; longer ones are cut."),
        ],
        example: """
            - id: debug
              type: log
              level: info
            """,
        make: { context in
            .sink(LogNode(
                level: Logger.Level(rawValue: context.options.string("level") ?? "info") ?? .info,
                maxLength: context.options.int("max_length") ?? 2000))
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
