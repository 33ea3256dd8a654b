import Foundation

/// `lua`: runs a script's `process(msg)` on each message, in the node's own sandboxed Lua state.
struct LuaNode: TransformNode {
    enum Key {
        static let script = OptionKey<String?>("script", .script, doc: "The Lua script.", example: "function process(msg) return msg end")
        static let file = OptionKey<String?>("file", doc: "A Lua file, relative to the flow file, instead of `script`.")
    }

    static let spec = NodeSpec(
        type: "lua", kind: .transform,
        summary: "Runs a Lua 5.4 function process(msg) returning nothing, a message or a list of messages",
        doc: """
            The script (inline `script`, or a `file` relative to the flow file) runs once when the
            flow starts and must define `function process(msg)`. Each message arrives as a table with
            `payload`, `topic`, `attributes` and `readings` (each reading a table with `series`,
            `quantity`, `ts` as ISO-8601 text, `resolution`, `value`, `unit`, `quality`); JSON null is
            `null`, and `array()` makes an empty list. `process` returns `nil` (drop the message), a
            message table, or a list of them. What is returned is read as the tables hold it: a
            metatable's `__index` or `__pairs` is not consulted. Locals of the script keep their
            values between calls, for this node only.

            The parts of the message and the fields of a reading whose names appear nowhere in the
            script are not copied into `msg`, and are taken back from the message when the result
            is read, also for a table the script kept from an earlier call: a script cannot tell,
            and one that rescales `value` does not pay for `series`, `ts` or the payload. A script
            that computes keys (an index other than a whole number, `pairs`, `next`, `rawget`,
            `rawset`, `load`, `getmetatable`, `_ENV`, `_G`) is given everything.

            Sandbox: `string`, `table`, `math`, `utf8`, `coroutine`, `os.time`, `os.date`, `os.clock`,
            `os.difftime`, `print` (to the hub log) and the safe base functions; no `io`, `require`,
            `debug`, `dofile`, `loadfile`, binary chunks or other `os` functions. A call that runs more
            than `max_instructions` or makes the state use more than `max_memory_mb` is stopped; like
            any Lua error, the message then goes to the `errors` port (or the dead letters) with the
            flow file and line of the error.
            """,
        options: [
            Key.script.spec,
            Key.file.spec,
        ] + LuaLimits.optionSpecs,
        example: """
            - id: split-phases
              type: lua
              script: |
                function process(msg)
                  local out = {}
                  for i, w in ipairs(msg.payload.phases) do
                    out[i] = { topic = msg.topic .. "/L" .. i, payload = { w = w } }
                  end
                  return out
                end
              to: [store]
            """,
        check: { options in
            switch (options.has(Key.script), options.has(Key.file)) {
            case (true, true): return [OptionProblem(option: "file", "give either 'script' or 'file', not both")]
            case (false, false): return [OptionProblem("needs 'script' or 'file'")]
            default: break
            }
            do {
                _ = try LuaNode(options)
                return []
            } catch {
                return [OptionProblem(option: options.has(Key.file) ? "file" : "script", "\(error)")]
            }
        },
        make: { context in .transform(try LuaNode(context.options)) })

    let engine: LuaEngine
    let process: LuaEngine.Function

    init(_ options: NodeOptions) throws {
        let source: LuaSource
        if let file = options[Key.file] {
            let flowFile = options.locations["file"]?.file ?? "flow"
            let path = file.hasPrefix("/") ? file : URL(fileURLWithPath: flowFile).deletingLastPathComponent().appendingPathComponent(file).path
            guard let text = FileManager.default.contents(atPath: path).map({ String(decoding: $0, as: UTF8.self) }) else {
                throw TemplateError("cannot read Lua file \(path)")
            }
            source = LuaSource(text: text, file: path)
        } else {
            source = LuaSource.option("script", in: options)!
        }
        engine = try LuaEngine(limits: LuaLimits(options: options))
        try engine.run(try engine.compile(source))
        guard var process = engine.globalFunction("process") else {
            throw TemplateError("the script does not define function process(msg)")
        }
        process.names = ScriptNames(script: source.text)
        self.process = process
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        do {
            return try engine.process(process, message).map(Output.out)
        } catch let error as LuaError {
            // Re-running a script's error would give the same error: no retries.
            throw PermanentError("\(error) (node '\(context.node)')")
        }
    }
}
