import Foundation

/// `switch`: routes each message to the wires of the first case (or every case) whose condition holds.
struct SwitchNode: TransformNode {
    static let caseOptions = [
        OptionSpec("when", .expression, required: true, doc: "Lua expression over msg.", example: "msg.payload.price < 0"),
        OptionSpec("to", .wires, required: true, doc: "Nodes fed when the condition holds."),
    ]

    static let spec = NodeSpec(
        type: "switch", kind: .transform,
        summary: "Routes each message by Lua conditions to different nodes",
        doc: """
            Cases are tried in order; with `mode: first` (the default) a message goes to the first case
            whose `when` holds, with `mode: all` to every such case. A message no case takes goes to
            `otherwise`, or is dropped when there is none.
            """,
        options: [
            OptionSpec("cases", .list(.object(caseOptions)), required: true, doc: "Conditions and where they send messages."),
            OptionSpec("otherwise", .wires, doc: "Nodes fed with messages no case took."),
            OptionSpec("mode", .enumeration(["first", "all"]), default: "first", doc: "Stop at the first matching case, or try all."),
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
            (options["cases"]?.arrayValue ?? []).isEmpty ? [OptionProblem(option: "cases", "needs at least one case")] : []
        },
        make: { context in .transform(try SwitchNode(context.options)) })

    let cases: [(port: String, condition: BoundTemplate)]
    let firstOnly: Bool

    init(_ options: NodeOptions) throws {
        let expressions = NodeExpressions(limits: LuaLimits(options: options))
        let count = options["cases"]?.arrayValue?.count ?? 0
        cases = try (0..<count).map { i in
            let path = "cases.\(i).when"
            let text = options["cases"]?.arrayValue?[i]["when"]?.stringValue ?? "false"
            let at = options.locations[path]
            return ("cases.\(i).to", try expressions.condition(LuaSource(text: text, file: at?.file ?? "flow", firstLine: at?.line ?? 1)))
        }
        firstOnly = options.string("mode") != "all"
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
