import ArgumentParser
import EnchufeCore
import Foundation

struct NodesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "nodes", abstract: "List node types with a one-line summary.")

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var pluginOptions: PluginOptions

    func run() {
        let specs = pluginOptions.registryReportingProblems().sorted
        if json {
            let list = JSONValue.array(specs.map { spec in
                [
                    "type": .string(spec.type), "kind": .string(spec.kind.rawValue), "summary": .string(spec.summary),
                    "options": .array(spec.options.map { o in
                        [
                            "name": .string(o.name), "type": .string(o.type.summary), "required": .bool(o.required),
                            "secret": .bool(o.secret), "default": o.defaultValue ?? .null, "doc": .string(o.doc),
                        ]
                    }),
                ]
            })
            print(list.prettyText())
            return
        }
        let width = specs.map(\.type.count).max() ?? 0
        for spec in specs {
            let pad = String(repeating: " ", count: width - spec.type.count)
            let kind = spec.kind.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)
            print("\(spec.type)\(pad)  \(kind)  \(spec.summary)")
        }
    }
}

struct SchemaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "schema", abstract: "Print the JSON Schema of flow files (for editor completion).")

    @OptionGroup var pluginOptions: PluginOptions

    func run() {
        print(NodeReference.jsonSchema(pluginOptions.registryReportingProblems()).prettyText())
    }
}

struct DocsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "docs", abstract: "Write the node reference in Markdown.")

    @Option(help: "Folder to write one page per node type and an index into (default: print one document).")
    var out: String?

    @OptionGroup var pluginOptions: PluginOptions

    func run() throws {
        let registry = pluginOptions.registryReportingProblems()
        guard let out else {
            print(NodeReference.index(registry))
            for spec in registry.sorted { print(NodeReference.markdown(spec)) }
            return
        }
        let folder = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try NodeReference.index(registry).write(to: folder.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)
        for spec in registry.sorted {
            try NodeReference.markdown(spec).write(to: folder.appendingPathComponent("\(spec.type).md"), atomically: true, encoding: .utf8)
        }
        print("wrote \(registry.specs.count + 1) pages to \(out)")
    }
}

extension JSONValue {
    func prettyText() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? jsonText()
    }
}
