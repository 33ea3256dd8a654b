import EnchufeCLI
import EnchufeCore
import Foundation
import Logging
import Testing
import Yams

/// A node type's defaults are its spec's and nothing else: every built-in node type builds from the
/// options its example sets minus every option that has a default (which the node then reads from
/// its spec, through its option keys), its checks find the same with and without the defaults
/// filled in, and `docs` and `schema` state each default.
@Suite struct NodeDefaultsTests {
    static let specs = EnchufeCLI.builtInNodeTypes
    static let reserved: Set<String> = ["id", "type", "to", "errors", "retry", "queue_size", "description"]

    /// The options the spec's example gives the node type, as the loader would convert them.
    static func exampleOptions(_ spec: NodeSpec) throws -> [String: JSONValue] {
        let loaded = try Yams.load(yaml: spec.example)
        let nodes: [[String: Any]]
        if let list = loaded as? [[String: Any]] {
            nodes = list
        } else if let top = loaded as? [String: Any], let connections = top["connections"] as? [String: [String: Any]] {
            nodes = Array(connections.values)
        } else {
            nodes = []
        }
        guard let node = nodes.first(where: { $0["type"] as? String == spec.type }) else { return [:] }
        var options: [String: JSONValue] = [:]
        for (name, value) in node where !reserved.contains(name) {
            var json = jsonValue(value)
            if case .list = spec.options.first(where: { $0.name == name })?.type, json.arrayValue == nil { json = .array([json]) }
            options[name] = json
        }
        return options
    }

    static func jsonValue(_ value: Any) -> JSONValue {
        switch value {
        case let b as Bool: return .bool(b)
        case let i as Int: return .number(Double(i))
        case let d as Double: return .number(d)
        // The loader puts the environment's value in place of `${env:NAME}`.
        case let s as String: return .string(s.replacing(#/\$\{[^}]*\}/#, with: "from-the-environment"))
        case let list as [Any]: return .array(list.map(jsonValue))
        case let map as [String: Any]: return .object(map.mapValues(jsonValue))
        default: return .null
        }
    }

    /// The example's options without any that has a default, and with every default filled in.
    static func minimalAndFilled(_ spec: NodeSpec) throws -> (minimal: [String: JSONValue], filled: [String: JSONValue]) {
        var minimal = try exampleOptions(spec)
        var filled = minimal
        for option in spec.options {
            guard let value = option.defaultValue else { continue }
            minimal[option.name] = nil
            if filled[option.name] == nil { filled[option.name] = value }
        }
        return (minimal, filled)
    }

    func context(_ spec: NodeSpec, _ values: [String: JSONValue]) -> NodeBuildContext {
        let options = NodeOptions(values: values)
        // A connection the node names is built from its spec's defaults alone too.
        var connections: [String: NodeOptions] = [:]
        for option in spec.options {
            if case .connection = option.type, let name = options[option.name]?.stringValue { connections[name] = NodeOptions() }
        }
        return NodeBuildContext(
            flow: "defaults", node: "node", tenant: "default", options: options, connections: connections,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), metrics: HubMetrics(), testing: true)
    }

    @Test(arguments: specs.filter { $0.make != nil }.map(\.type))
    func everyNodeTypeBuildsFromItsSpecsDefaultsAlone(type: String) throws {
        let spec = try #require(Self.specs.first { $0.type == type })
        let (minimal, filled) = try Self.minimalAndFilled(spec)
        let make = try #require(spec.make)
        #expect(throws: Never.self, "\(type) with only the options its example sets that have no default") {
            _ = try make(context(spec, minimal))
        }
        #expect(throws: Never.self, "\(type) with its defaults filled in, as the loader does") {
            _ = try make(context(spec, filled))
        }
        let withoutDefaults = spec.check?(NodeOptions(values: minimal)).map(\.message) ?? []
        let withDefaults = spec.check?(NodeOptions(values: filled)).map(\.message) ?? []
        #expect(withoutDefaults == withDefaults, "\(type)'s checks read its options' defaults from its spec")
        #expect(withDefaults.isEmpty, "\(type)'s example passes its checks")
    }

    @Test func noRequiredOptionHasADefault() {
        for spec in Self.specs {
            for option in spec.options where option.required {
                #expect(option.defaultValue == nil, "\(spec.type).\(option.name) is required and has a default")
            }
        }
    }

    @Test func docsAndSchemaStateEveryDefault() throws {
        let schema = NodeReference.jsonSchema(NodeRegistry(Self.specs))
        let nodeSchemas = schema["properties"]?["nodes"]?["items"]?["oneOf"]?.arrayValue ?? []
        let connectionSchemas = schema["properties"]?["connections"]?["additionalProperties"]?["oneOf"]?.arrayValue ?? []
        var checked = 0
        for spec in Self.specs {
            let page = NodeReference.markdown(spec)
            let typeSchema = (nodeSchemas + connectionSchemas).first { $0["title"]?.stringValue == spec.type }
            #expect(typeSchema != nil, "schema has \(spec.type)")
            for option in spec.options {
                guard let value = option.defaultValue else { continue }
                checked += 1
                #expect(
                    page.contains("| `\(option.name)` | \(option.type.summary) | `\(value.templateText)` |"),
                    "docs of \(spec.type) state \(option.name)'s default \(value.templateText)")
                #expect(typeSchema?["properties"]?[option.name]?["default"] == value, "schema of \(spec.type) states \(option.name)'s default")
            }
        }
        #expect(checked > 100)
    }

    /// Options are read through their keys, so a default is written once: no option of a node in
    /// Core/ or Connectors/ is read by name with a fallback of its own (`options.int("port") ?? 1883`).
    @Test func noOptionIsReadByNameWithAFallbackOfItsOwn() throws {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let pattern = try Regex(#"\.(int|string|double|bool|duration|strings|secret)\("[a-z_]+"\)\s*\?\?"#)
        var offenders: [String] = []
        for folder in ["Core", "Connectors"] {
            let root = repository.appendingPathComponent(folder)
            let files = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)?.compactMap { $0 as? URL } ?? []
            for file in files where file.pathExtension == "swift" {
                let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
                for (i, line) in lines.enumerated() where line.contains(pattern) {
                    offenders.append("\(file.path.dropFirst(repository.path.count + 1)):\(i + 1): \(line.trimmingCharacters(in: .whitespaces))")
                }
            }
        }
        #expect(offenders == [], "read these options through an OptionKey, whose default the spec states")
    }
}
