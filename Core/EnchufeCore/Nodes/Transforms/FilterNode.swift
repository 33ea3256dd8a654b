import Foundation

/// `filter`: passes the messages for which a Lua expression is true.
struct FilterNode: InPlaceTransformNode {
    static let spec = NodeSpec(
        type: "filter", kind: .transform,
        summary: "Passes only the messages for which a Lua expression is true",
        doc: """
            `when` is a Lua expression over `msg`. A message passes when it is neither `false`, `nil`
            nor `null`; the others are dropped (and counted as done, not lost). An expression that
            fails sends the message to the `errors` port.
            """,
        options: [
            OptionSpec("when", .expression, required: true, doc: "Keep the message when this is true.", example: "msg.payload.w > 0")
        ] + LuaLimits.optionSpecs,
        example: """
            - id: producing
              type: filter
              when: msg.payload.w > 0
              to: [store]
            """,
        make: { context in
            let expressions = NodeExpressions(limits: LuaLimits(options: context.options))
            return .transform(FilterNode(condition: try expressions.condition(LuaSource.option("when", in: context.options)!)))
        })

    let condition: BoundTemplate

    func apply(_ message: inout Message, _ context: NodeContext) throws -> Bool {
        try condition.isTrue(for: message)
    }
}
