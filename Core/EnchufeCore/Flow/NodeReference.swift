import Foundation

/// What `enchufe schema`, `enchufe docs` and `enchufe nodes` print, all read from the registry.
public enum NodeReference {
    // MARK: JSON Schema

    /// The JSON Schema (2020-12) of flow files, for editor completion.
    public static func jsonSchema(_ registry: NodeRegistry) -> JSONValue {
        let nodeTypes = registry.sorted.filter { $0.kind != .connection }
        let connectionTypes = registry.sorted.filter { $0.kind == .connection }
        let retry = schema(.object(RetryPolicy.optionSpecs))
        let wires = schema(.wires)
        func nodeSchema(_ spec: NodeSpec) -> JSONValue {
            var properties: [String: JSONValue] = [
                "id": ["type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]*$"],
                "type": ["const": .string(spec.type)],
                "errors": wires, "retry": retry, "queue_size": ["type": "integer", "minimum": 1],
                "description": ["type": "string"],
            ]
            if spec.kind != .sink { properties["to"] = wires }
            for option in spec.options { properties[option.name] = optionSchema(option) }
            let required = ["id", "type"] + spec.options.filter(\.required).map(\.name)
            return [
                "title": .string(spec.type), "description": .string(spec.summary), "type": "object",
                "properties": .object(properties), "required": .array(required.map(JSONValue.string)),
                "additionalProperties": false,
            ]
        }
        func connectionSchema(_ spec: NodeSpec) -> JSONValue {
            var properties: [String: JSONValue] = ["type": ["const": .string(spec.type)]]
            for option in spec.options { properties[option.name] = optionSchema(option) }
            return [
                "title": .string(spec.type), "description": .string(spec.summary), "type": "object",
                "properties": .object(properties),
                "required": .array((["type"] + spec.options.filter(\.required).map(\.name)).map(JSONValue.string)),
                "additionalProperties": false,
            ]
        }
        return [
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://enchufe.dev/schema/flow.json",
            "title": "Enchufe flow file",
            "type": "object",
            "required": ["flow", "nodes"],
            "additionalProperties": false,
            "properties": [
                "flow": ["type": "string", "pattern": "^[a-z0-9][a-z0-9-]*$", "description": "Unique id of the flow."],
                "description": ["type": "string"],
                "tenant": ["type": "string", "default": "default", "description": "The community or customer that owns the flow's data."],
                "queue_size": ["type": "integer", "minimum": 1, "default": 1024, "description": "Capacity of each node's input queue."],
                "retry": retry,
                "connections": [
                    "type": "object",
                    "additionalProperties": ["oneOf": .array(connectionTypes.map(connectionSchema))],
                ],
                "nodes": ["type": "array", "minItems": 1, "items": ["oneOf": .array(nodeTypes.map(nodeSchema))]],
            ],
        ]
    }

    static func optionSchema(_ option: OptionSpec) -> JSONValue {
        guard case .object(var o) = schema(option.type) else { return schema(option.type) }
        o["description"] = .string(option.doc)
        if let d = option.defaultValue { o["default"] = d }
        if let e = option.example { o["examples"] = [e] }
        if option.secret { o["writeOnly"] = true }
        return .object(o)
    }

    static func schema(_ type: OptionType) -> JSONValue {
        switch type {
        case .string, .connection: return ["type": "string"]
        case .integer: return ["type": "integer"]
        case .number: return ["type": "number"]
        case .boolean: return ["type": "boolean"]
        case .duration: return ["type": "string", "pattern": "^([0-9]+(ms|s|m|h|d))+$"]
        case .cron: return ["type": "string", "description": "5-field cron expression"]
        case .timezone: return ["type": "string", "examples": ["Europe/Madrid", "Atlantic/Canary", "Africa/Ceuta"]]
        case .enumeration(let values): return ["enum": .array(values.map(JSONValue.string))]
        case .list(let element): return ["anyOf": [schema(element), ["type": "array", "items": schema(element)]]]
        case .wires: return ["anyOf": [["type": "string"], ["type": "array", "items": ["type": "string"]]]]
        case .object(let specs):
            return [
                "type": "object", "additionalProperties": false,
                "properties": .object(Dictionary(uniqueKeysWithValues: specs.map { ($0.name, optionSchema($0)) })),
            ]
        case .map: return ["type": "object"]
        case .any, .template: return [:]
        case .expression, .script: return ["type": "string"]
        case .templates: return ["type": "object"]
        }
    }

    // MARK: Markdown

    /// The reference page of one node type.
    public static func markdown(_ spec: NodeSpec) -> String {
        var out = "# `\(spec.type)`\n\n\(spec.summary).\n\n*Kind:* \(spec.kind.rawValue)"
        if spec.kind == .transform || spec.kind == .sink { out += spec.takesInput ? "; fed by wires" : "; needs no input wire" }
        out += "\n\n"
        if !spec.doc.isEmpty { out += spec.doc.trimmingCharacters(in: .whitespacesAndNewlines) + "\n\n" }
        if !spec.options.isEmpty {
            out += "| option | type | default | required | doc |\n|---|---|---|---|---|\n"
            for o in spec.options {
                let def = o.defaultValue.map { "`\($0.templateText)`" } ?? ""
                let req = o.required ? "yes" : ""
                let secret = o.secret ? " **Secret**: never printed." : ""
                out += "| `\(o.name)` | \(o.type.summary) | \(def) | \(req) | \(o.doc)\(secret) |\n"
            }
            out += "\n"
        }
        if spec.kind != .connection {
            out += "Every node also takes `id`, `type`, \(spec.kind == .sink ? "" : "`to`, ")`errors`, `retry` and `queue_size`.\n\n"
        }
        out += "## Example\n\n```yaml\n\(spec.example.trimmingCharacters(in: .newlines))\n```\n"
        return out
    }

    /// The index: one line per node type.
    public static func index(_ registry: NodeRegistry) -> String {
        var out = "# Node reference\n\nGenerated by `enchufe docs` from the node specs.\n\n"
        for kind in [NodeKind.source, .transform, .sink, .connection] {
            let specs = registry.sorted.filter { $0.kind == kind }
            guard !specs.isEmpty else { continue }
            out += "## \(kind.rawValue.capitalized)s\n\n"
            for spec in specs { out += "- [`\(spec.type)`](\(spec.type).md): \(spec.summary)\n" }
            out += "\n"
        }
        return out
    }
}
