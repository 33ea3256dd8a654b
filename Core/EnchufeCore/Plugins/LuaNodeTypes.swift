import Foundation

/// Node types written in Lua: each `*.lua` file of a plugins folder declares one transform node
/// type in a global `node` table and defines `function process(msg, options)`; it runs in the same
/// sandbox, under the same limits, as the `lua` node.
///
/// ```lua
/// node = {
///   type = "flag.high",
///   summary = "Tags readings above a threshold",
///   doc = "Readings whose value is above `threshold` get the tag `high`.",
///   options = {
///     { name = "threshold", type = "number", default = 3, doc = "The limit, in the readings' unit." },
///     { name = "token", type = "string", secret = true, doc = "Never printed." },
///   },
/// }
///
/// function process(msg, options)
///   for _, r in ipairs(msg.readings) do
///     if r.value > options.threshold then r.tags = { high = "yes" } end
///   end
///   return msg
/// end
/// ```
public enum LuaNodeTypes {
    /// The option types a Lua node type may declare.
    static let optionTypes: [String: OptionType] = [
        "string": .string, "number": .number, "integer": .integer, "boolean": .boolean,
        "duration": .duration, "timezone": .timezone, "strings": .list(.string), "object": .map,
    ]

    /// The node types of every `*.lua` file in `folder` (a missing folder has none), and the
    /// problems of the files that do not declare one properly, each with its file and line.
    /// A type may not take the name of one in `taken` (the built-in ones).
    public static func load(folder: String, taken: Set<String>) -> (specs: [NodeSpec], problems: [Diagnostic]) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else { return ([], []) }
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".lua") }.sorted()
        var specs: [NodeSpec] = []
        var problems: [Diagnostic] = []
        var names = taken
        for name in files {
            let path = folder.hasSuffix("/") ? folder + name : folder + "/" + name
            switch spec(file: path) {
            case .success(let spec):
                if names.contains(spec.type) {
                    problems.append(Diagnostic(SourceLocation(file: path, line: line(in: path, matching: "type"), column: 1), "node type '\(spec.type)' exists already: give the plugin another name"))
                    continue
                }
                names.insert(spec.type)
                specs.append(spec)
            case .failure(let problem):
                problems.append(problem)
            }
        }
        return (specs, problems)
    }

    /// The line of `path` where `key = ` (or the quoted value `"key"`) first appears, for problems
    /// Lua cannot place (it keeps no lines for table fields); 1 if none.
    static func line(in path: String, matching key: String, value: String? = nil) -> Int {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if let value, line.contains("\"\(value)\"") || line.contains("'\(value)'") { return i + 1 }
            if value == nil, line.range(of: "\\b\(key)\\s*=", options: .regularExpression) != nil { return i + 1 }
        }
        return 1
    }

    /// Reads the declaration of one file.
    static func spec(file path: String) -> Result<NodeSpec, Diagnostic> {
        func problem(_ message: String, key: String = "node", value: String? = nil) -> Result<NodeSpec, Diagnostic> {
            .failure(Diagnostic(SourceLocation(file: path, line: line(in: path, matching: key, value: value), column: 1), message))
        }
        guard let text = FileManager.default.contents(atPath: path).map({ String(decoding: $0, as: UTF8.self) }) else {
            return problem("cannot read the file")
        }
        let declaration: JSONValue
        do {
            let engine = try LuaEngine()
            try engine.run(try engine.compile(LuaSource(text: text, file: path)))
            guard engine.globalFunction("process") != nil else { return problem("the file does not define function process(msg, options)", key: "function") }
            declaration = try engine.evaluate(try engine.compileExpression(LuaSource(text: "node", file: path)), message: Message())
        } catch let error as LuaError {
            // Lua's own errors carry FILE:LINE.
            let (line, message) = error.position ?? (1, error.message)
            return .failure(Diagnostic(SourceLocation(file: path, line: line, column: 1), "lua: " + message))
        } catch {
            return problem("\(error)")
        }
        guard case .object(let node) = declaration else { return problem("the file must set a global table `node = { type = ..., summary = ..., doc = ..., options = {...} }`") }
        guard let type = node["type"]?.stringValue, type.range(of: #"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$"#, options: .regularExpression) != nil else {
            return problem("node.type must be a name like `flag.high` (lower case, digits, `_`, dots)", key: "type")
        }
        guard let summary = node["summary"]?.stringValue, !summary.isEmpty else { return problem("node.summary must say in one line what the node does", key: "summary") }
        var options: [OptionSpec] = []
        for (i, entry) in (node["options"]?.arrayValue ?? []).enumerated() {
            guard let name = entry["name"]?.stringValue, !name.isEmpty else { return problem("node.options[\(i + 1)] needs a name", key: "options") }
            guard NodeDefinitionKeys.reserved.contains(name) == false else { return problem("option '\(name)' is a key every node has: name it otherwise", value: name) }
            let typeName = entry["type"]?.stringValue ?? "string"
            guard let optionType = optionTypes[typeName] else {
                return problem("option '\(name)': type '\(typeName)' is not one of \(optionTypes.keys.sorted().joined(separator: ", "))", value: name)
            }
            guard let doc = entry["doc"]?.stringValue, !doc.isEmpty else { return problem("option '\(name)' needs a doc", value: name) }
            let fallback = entry["default"].flatMap { $0.isNull ? nil : $0 }
            options.append(OptionSpec(name, optionType, required: entry["required"]?.boolValue ?? false, default: fallback, secret: entry["secret"]?.boolValue ?? false, doc: doc))
        }
        if let extra = node.keys.first(where: { !["type", "summary", "doc", "options", "example"].contains($0) }) {
            return problem("node.\(extra) is not a field of a node declaration (type, summary, doc, options, example)", key: extra)
        }
        let declared = options
        return .success(NodeSpec(
            type: type, kind: .transform, summary: summary,
            doc: (node["doc"]?.stringValue ?? summary) + "\n\nA Lua node type from `\(URL(fileURLWithPath: path).lastPathComponent)` (plugins folder).",
            options: declared + LuaLimits.optionSpecs,
            example: node["example"]?.stringValue ?? "- id: \(type.replacingOccurrences(of: ".", with: "-"))\n  type: \(type)\n  to: [store]",
            make: { context in .transform(try LuaPluginNode(file: path, text: text, options: context.options, declared: declared)) }))
    }
}

/// Keys of a node in a flow file that an option may not take.
enum NodeDefinitionKeys {
    static let reserved: Set<String> = ["id", "type", "to", "errors", "retry", "queue_size", "description"]
}

/// A node of a Lua node type: its own sandboxed state running the file; `process(msg, options)`
/// gets the node's options (defaults filled in).
struct LuaPluginNode: TransformNode {
    let engine: LuaEngine
    let process: LuaEngine.Function
    let options: JSONValue

    init(file: String, text: String, options: NodeOptions, declared: [OptionSpec]) throws {
        engine = try LuaEngine(limits: LuaLimits(options: options))
        try engine.run(try engine.compile(LuaSource(text: text, file: file)))
        guard let process = engine.globalFunction("process") else { throw TemplateError("\(file) does not define function process(msg, options)") }
        self.process = process
        var values: [String: JSONValue] = [:]
        for option in declared {
            if let value = options[option.name] ?? option.defaultValue { values[option.name] = value }
        }
        self.options = .object(values)
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        do {
            return try engine.call(process, message: message, item: options) { try engine.messages(at: -1) }.map(Output.out)
        } catch let error as LuaError {
            throw PermanentError("\(error) (node '\(context.node)')")
        }
    }
}
