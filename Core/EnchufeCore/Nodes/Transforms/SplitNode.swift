import Foundation

/// `split`: one message per element of a list in the message.
struct SplitNode: TransformNode {
    static let field = OptionKey<String>("field", default: "payload", doc: "The list to split: a message path or `readings`.", example: "payload.items")

    static let spec = NodeSpec(
        type: "split", kind: .transform,
        summary: "Sends one message per element of a list (the payload, a field of it, or the readings)",
        doc: """
            With `field: payload` (the default) or a path such as `payload.items`, each element of that
            list becomes the payload of one message (the readings stay behind). With `field: readings`,
            each reading becomes one message carrying that reading, its payload the reading as JSON.
            Every message keeps the topic and attributes and gets `split_index` (from 0) and
            `split_count`. A message whose field is not a list goes to the `errors` port.
            """,
        options: [field.spec],
        example: """
            - id: each-meter
              type: split
              field: payload.meters
              to: [to-readings]
            """,
        check: { options in
            options[field] == "readings" ? [] : options.messagePathProblems(field.name)
        },
        make: { context in
            let list = context.options[field]
            return .transform(SplitNode(path: list == "readings" ? nil : try MessagePath(list)))
        })

    /// The list to split; nil: the readings.
    let path: MessagePath?

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        guard let path else {
            return message.readings.enumerated().map { i, reading in
                piece(of: message, payload: reading.json, readings: [reading], index: i, count: message.readings.count)
            }
        }
        guard case .array(let items)? = path.value(in: message) else {
            throw PermanentError("split: \(path) is not a list")
        }
        return items.enumerated().map { i, item in piece(of: message, payload: item, readings: [], index: i, count: items.count) }
    }

    private func piece(of message: Message, payload: JSONValue, readings: [Reading], index: Int, count: Int) -> Output {
        var m = message.derived(payload: payload, readings: readings)
        m.attributes["split_index"] = String(index)
        m.attributes["split_count"] = String(count)
        return .out(m)
    }
}
