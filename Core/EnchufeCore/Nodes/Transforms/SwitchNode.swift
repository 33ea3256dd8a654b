import Foundation

/// `switch`: routes each message to the wires of the first case (or every case) whose condition holds.
struct SwitchNode: TransformNode {
    enum Key {
        static let cases = RequiredOptionKey<JSONValue>(
            "cases", .list(.object([when.spec, to.spec])), doc: "Conditions and where they send messages.")
        static let when = RequiredOptionKey<String>("when", .expression, doc: "Lua expression over msg.", example: "msg.payload.price < 0")
        static let to = RequiredOptionKey<JSONValue>("to", .wires, doc: "Nodes fed when the condition holds.")
        static let otherwise = OptionKey<JSONValue?>("otherwise", .wires, doc: "Nodes fed with messages no case took.")
        static let mode = OptionKey<String>("mode", .enumeration(["first", "all"]), default: "first", doc: "Stop at the first matching case, or try all.")
    }

    static let spec = NodeSpec(
        type: "switch", kind: .transform,
        summary: "Routes each message by Lua conditions to different nodes",
        doc: """
            Cases are tried in order; with `mode: first` (the default) a message goes to the first case
            whose `when` holds, with `mode: all` to every such case. A message no case takes goes to
            `otherwise`, or is dropped when there is none.
            """,
        options: [
            Key.cases.spec,
            Key.otherwise.spec,
            Key.mode.spec,
        ] + LuaLimits.optionSpecs,
        example: """
            - id: by-price
              type: switch
              cases:
                - when: msg.payload.price < 0
                  to: [charge]
                - when: msg.payload.price > 0.2
                  to: [discharge]
              otherwise: [log]
            """,
        check: { options in
            (options[Key.cases]?.arrayValue ?? []).isEmpty ? [OptionProblem(option: "cases", "needs at least one case")] : []
        },
        make: { context in .transform(try SwitchNode(context.options)) })

    let cases: [(port: String, condition: BoundTemplate)]
    let firstOnly: Bool

    init(_ options: NodeOptions) throws {
        let expressions = NodeExpressions(limits: LuaLimits(options: options))
        let list = try options.required(Key.cases).arrayValue ?? []
        cases = try list.indices.map { i in
            let path = "cases.\(i).\(Key.when.name)"
            guard let text = list[i][Key.when.name]?.stringValue else { throw PermanentError("case \(i) needs '\(Key.when.name)'") }
            let at = options.locations[path]
            return ("cases.\(i).to", try expressions.condition(LuaSource(text: text, file: at?.file ?? "flow", firstLine: at?.line ?? 1)))
        }
        firstOnly = options[Key.mode] != "all"
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        var outputs: [Output] = []
        for (port, condition) in cases where try condition.isTrue(for: message) {
            outputs.append(Output(message, port: port))
            if firstOnly { break }
        }
        return outputs.isEmpty ? [Output(message, port: "otherwise")] : outputs
    }
}
