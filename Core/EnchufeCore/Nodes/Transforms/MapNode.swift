import Foundation

/// `map`: sets, renames and deletes message fields (Node-RED's change node).
struct MapNode: InPlaceTransformNode {
    enum Key {
        static let set = OptionKey<JSONValue?>(
            "set", .templates, doc: "Field → new value.", example: ["payload.kwh": "=msg.payload.wh / 1000", "topic": "meter/{payload.cups}"])
        static let rename = OptionKey<JSONValue?>("rename", .map, doc: "Field → new name (a path).", example: ["payload.w": "payload.power_w"])
        static let delete = OptionKey<[String]>("delete", default: [], doc: "Fields to remove.", example: ["payload.debug"])
    }

    static let spec = NodeSpec(
        type: "map", kind: .transform,
        summary: "Sets, renames and deletes message fields; values may be templates or Lua expressions",
        doc: """
            Fields are named by paths: `payload`, `payload.a.b`, `topic`, `attributes.KEY`. Every `set`
            value is computed from the incoming message first, then the values are set, then `rename`
            and `delete` apply, in that order. A value is a constant, a template
            (`"meter/{payload.cups}"`, `"{topic.2}"` for the topic's second level) or a Lua expression
            after `=` (`"=msg.payload.wh / 1000"`). A template that is one placeholder keeps the
            value's type. Setting a field to `null` removes it.
            """,
        options: [
            Key.set.spec,
            Key.rename.spec,
            Key.delete.spec,
        ] + LuaLimits.optionSpecs,
        example: """
            - id: to-kwh
              type: map
              set:
                payload.kwh: "=msg.payload.wh / 1000"
                topic: "meter/{payload.cups}"
              delete: [payload.wh]
              to: [store]
            """,
        check: { options in
            guard options.has(Key.set) || options.has(Key.rename) || !options[Key.delete].isEmpty else {
                return [OptionProblem("needs at least one of 'set', 'rename' and 'delete'")]
            }
            return options.messagePathProblems("set") + options.messagePathProblems("rename", values: true)
                + options.messagePathProblems("delete")
        },
        make: { context in .transform(try MapNode(context.options)) })

    let assignments: [(MessagePath, BoundTemplate)]
    let renames: [(MessagePath, MessagePath)]
    let deletions: [MessagePath]

    init(_ options: NodeOptions) throws {
        let expressions = NodeExpressions(limits: LuaLimits(options: options))
        assignments = try (options[Key.set]?.objectValue ?? [:]).sorted { $0.key < $1.key }.map { key, value in
            (try MessagePath(key), try expressions.bind(ValueTemplate.option("set.\(key)", value, in: options)))
        }
        renames = try (options[Key.rename]?.objectValue ?? [:]).sorted { $0.key < $1.key }.map { from, to in
            (try MessagePath(from), try MessagePath(to.stringValue ?? ""))
        }
        deletions = try options[Key.delete].map(MessagePath.init)
    }

    func apply(_ message: inout Message, _ context: NodeContext) throws -> Bool {
        // Every value is computed from the incoming message before anything is changed (and a
        // failure leaves the message as it was).
        let values = try assignments.map { path, template in (path, try template.value(for: message)) }
        for (path, value) in values { path.set(value.isNull ? nil : value, in: &message) }
        for (from, to) in renames {
            guard let value = from.value(in: message) else { continue }
            from.set(nil, in: &message)
            to.set(value, in: &message)
        }
        for path in deletions { path.set(nil, in: &message) }
        return true
    }
}
