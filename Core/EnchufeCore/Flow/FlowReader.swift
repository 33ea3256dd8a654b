import Foundation
import Yams

/// One pass over one flow file's YAML tree: types every value against the node specs and collects
/// every problem found, with its position.
struct FlowReader {
    let file: String
    let registry: NodeRegistry
    let substitution: Substitution
    private(set) var diagnostics: [Diagnostic] = []
    var secretValues: Set<String> = []
    var substitutedValues: [String] = []
    /// Where each option value (nested ones by path: `cases.0.when`) starts, for the options being read.
    var valueLocations: [String: SourceLocation] = [:]

    init(file: String, registry: NodeRegistry, substitution: Substitution) {
        self.file = file
        self.registry = registry
        self.substitution = substitution
    }

    // MARK: Positions and problems

    func location(_ node: Yams.Node?) -> SourceLocation {
        location(node?.mark)
    }

    func location(_ mark: Mark?) -> SourceLocation {
        SourceLocation(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1)
    }

    /// Where a value's text starts: a block scalar (`|`, `>`) starts on the line after its indicator.
    func contentLocation(_ node: Yams.Node) -> SourceLocation {
        var at = location(node)
        if let style = node.scalar?.style, style == .literal || style == .folded {
            at.line += 1
            at.column = 1
        }
        return at
    }

    mutating func error(_ at: SourceLocation, _ message: String) {
        diagnostics.append(Diagnostic(at, message))
    }

    mutating func warning(_ at: SourceLocation, _ message: String) {
        diagnostics.append(Diagnostic(at, message, severity: .warning))
    }

    func diagnostic(for error: YamlError) -> Diagnostic {
        switch error {
        case .scanner(let context, let problem, let mark, _),
            .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let detail = context.map { " (\($0.text) at line \($0.mark.line), column \($0.mark.column))" } ?? ""
            return Diagnostic(location(mark), "invalid YAML: \(problem)\(detail)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            return Diagnostic(location(context.mark), "duplicate key \(keys) in one mapping")
        case .reader(let problem, _, _, _):
            return Diagnostic(location(nil as Mark?), "the file cannot be read as YAML: \(problem)")
        default:
            return Diagnostic(location(nil as Mark?), "invalid YAML: \(error)")
        }
    }

    // MARK: The flow

    mutating func readFlow(_ root: Yams.Node, text: String) -> FlowDefinition? {
        guard let mapping = root.mapping else {
            error(location(root), "a flow file is a mapping with at least 'flow' and 'nodes'")
            return nil
        }
        let entries = checkedEntries(mapping, allowed: FlowLoader.flowKeys, what: "flow file")

        var flowID = ""
        if let (keyNode, value) = entries["flow"] {
            if let id = scalarText(value, option: "flow", secret: false) {
                if id.range(of: #"^[a-z0-9][a-z0-9-]*$"#, options: .regularExpression) == nil {
                    error(location(value), "flow id '\(id)' must be lower-case letters, digits and '-', starting with a letter or digit")
                }
                flowID = id
            }
            _ = keyNode
        } else {
            error(location(root), "the file has no 'flow' key: every flow needs an id (flow: my-flow)")
        }
        let description = entries["description"].flatMap { scalarText($0.1, option: "description", secret: false) }
        let tenant = entries["tenant"].flatMap { scalarText($0.1, option: "tenant", secret: false) } ?? "default"
        var queueSize = FlowLoader.defaultQueueSize
        if let (_, value) = entries["queue_size"], case .number(let n)? = convert(value, as: .integer, path: "queue_size", secret: false) {
            if n < 1 { error(location(value), "queue_size must be at least 1") } else { queueSize = Int(n) }
        }
        var retry = RetryPolicy.default
        if let (_, value) = entries["retry"] {
            retry = readRetry(value, fallback: retry)
        }

        var connections: [String: ConnectionDefinition] = [:]
        if let (_, value) = entries["connections"] {
            connections = readConnections(value)
        }

        var nodes: [NodeDefinition] = []
        if let (_, value) = entries["nodes"] {
            if let sequence = value.sequence {
                if sequence.isEmpty { error(location(value), "'nodes' is empty: a flow needs at least one node") }
                for item in sequence {
                    if let node = readNode(item, retry: retry, queueSize: queueSize, connections: connections) {
                        nodes.append(node)
                    }
                }
            } else {
                error(location(value), "'nodes' must be a list of nodes (each starting with '- id: ...')")
            }
        } else {
            error(location(root), "the flow has no 'nodes' list")
        }
        checkGraph(nodes)

        var hasher = StableHash()
        hasher.add(text)
        for v in substitutedValues { hasher.add(v) }
        return FlowDefinition(
            id: flowID, file: file, description: description, tenant: tenant, queueSize: queueSize,
            nodes: nodes, connections: connections, location: location(root), secretValues: secretValues,
            fingerprint: hasher.hex)
    }

    /// The entries of a mapping by key, reporting keys that are not allowed and keys that are not strings.
    mutating func checkedEntries(_ mapping: Yams.Node.Mapping, allowed: [String], what: String) -> [String: (Yams.Node, Yams.Node)] {
        var entries: [String: (Yams.Node, Yams.Node)] = [:]
        for (key, value) in mapping {
            guard let name = key.scalar?.string else {
                error(location(key), "keys of a \(what) must be plain names")
                continue
            }
            if allowed.contains(name) {
                entries[name] = (key, value)
            } else {
                error(location(key), "unknown key '\(name)' in \(what)\(Suggestion.hint(for: name, among: allowed))")
            }
        }
        return entries
    }

    mutating func readRetry(_ value: Yams.Node, fallback: RetryPolicy) -> RetryPolicy {
        var wires: [String: [WireTarget]]? = nil
        guard case .object(let o)? = convert(value, as: .object(RetryPolicy.optionSpecs), path: "retry", secret: false, wires: &wires) else {
            return fallback
        }
        let options = NodeOptions(values: o)
        if let attempts = options[RetryPolicy.Key.attempts.name]?.intValue, attempts < 1 {
            error(location(value), "retry.attempts must be at least 1")
        }
        if let jitter = options[RetryPolicy.Key.jitter.name]?.doubleValue, !(0...1).contains(jitter) {
            error(location(value), "retry.jitter must be between 0 and 1")
        }
        return RetryPolicy(options: options, fallback: fallback)
    }

    mutating func readConnections(_ value: Yams.Node) -> [String: ConnectionDefinition] {
        guard let mapping = value.mapping else {
            error(location(value), "'connections' must be a mapping of names to connection settings")
            return [:]
        }
        var result: [String: ConnectionDefinition] = [:]
        let connectionTypes = registry.specs.filter { $0.kind == .connection }.map(\.type)
        for (key, body) in mapping {
            guard let name = key.scalar?.string else { continue }
            guard let bodyMapping = body.mapping else {
                error(location(body), "connection '\(name)' must be a mapping with a 'type'")
                continue
            }
            guard let typeNode = bodyMapping["type"], let type = scalarText(typeNode, option: "type", secret: false) else {
                error(location(body), "connection '\(name)' has no 'type' (one of \(connectionTypes.joined(separator: ", ")))")
                continue
            }
            guard let spec = registry.spec(type), spec.kind == .connection else {
                error(location(typeNode), "unknown connection type '\(type)'\(Suggestion.hint(for: type, among: connectionTypes))")
                continue
            }
            var wires: [String: [WireTarget]]? = nil
            let options = readOptions(bodyMapping, spec: spec, ownKeys: ["type"], owner: "connection '\(name)'", at: location(body), wires: &wires)
            result[name] = ConnectionDefinition(name: name, type: type, location: location(key), options: options)
        }
        return result
    }

    // MARK: Nodes

    mutating func readNode(
        _ item: Yams.Node, retry flowRetry: RetryPolicy, queueSize flowQueueSize: Int,
        connections: [String: ConnectionDefinition]
    ) -> NodeDefinition? {
        guard let mapping = item.mapping else {
            error(location(item), "a node must be a mapping with 'id' and 'type'")
            return nil
        }
        let nodeLocation = location(item)
        var id = ""
        if let idNode = mapping["id"] {
            if let text = scalarText(idNode, option: "id", secret: false) {
                if text.range(of: #"^[A-Za-z0-9][A-Za-z0-9_-]*$"#, options: .regularExpression) == nil {
                    error(location(idNode), "node id '\(text)' must be letters, digits, '-' and '_'")
                }
                id = text
            }
        } else {
            error(nodeLocation, "node has no 'id'")
        }
        let name = id.isEmpty ? "node" : "node '\(id)'"
        guard let typeNode = mapping["type"] else {
            error(nodeLocation, "\(name) has no 'type' (see 'enchufe nodes')")
            return nil
        }
        guard let type = scalarText(typeNode, option: "type", secret: false) else { return nil }
        let nodeTypes = registry.specs.filter { $0.kind != .connection }.map(\.type)
        guard let spec = registry.spec(type), spec.kind != .connection else {
            error(location(typeNode), "unknown node type '\(type)'\(Suggestion.hint(for: type, among: nodeTypes))")
            // Kept in the graph with its wires, so the wires to and from it are not reported as well.
            var wires: [String: [WireTarget]]? = [:]
            for (key, value) in mapping where key.scalar?.string == "to" || key.scalar?.string == "errors" {
                let port = key.scalar?.string == "to" ? NodeDefinition.outPort : NodeDefinition.errorsPort
                _ = convert(value, as: .wires, path: port, secret: false, wires: &wires)
            }
            return NodeDefinition(
                id: id, type: type, location: location(mapping["id"] ?? item), options: NodeOptions(), wires: wires ?? [:],
                retry: flowRetry, queueSize: flowQueueSize)
        }

        var wires: [String: [WireTarget]]? = [:]
        var retry = flowRetry
        var queueSize = flowQueueSize
        for (key, value) in mapping {
            switch key.scalar?.string {
            case "to":
                if spec.kind == .sink {
                    error(location(key), "\(name) is a sink (\(type)): it has no output to wire with 'to'")
                } else {
                    _ = convert(value, as: .wires, path: NodeDefinition.outPort, secret: false, wires: &wires)
                }
            case "errors":
                _ = convert(value, as: .wires, path: NodeDefinition.errorsPort, secret: false, wires: &wires)
            case "retry":
                retry = readRetry(value, fallback: flowRetry)
            case "queue_size":
                if case .number(let n)? = convert(value, as: .integer, path: "queue_size", secret: false) {
                    if n < 1 { error(location(value), "queue_size must be at least 1") } else { queueSize = Int(n) }
                }
            default: break
            }
        }
        let options = readOptions(mapping, spec: spec, ownKeys: FlowLoader.nodeKeys, owner: "\(name) (\(type))", at: nodeLocation, wires: &wires)
        for option in spec.options {
            guard case .connection(let connectionType) = option.type, let ref = options.string(option.name) else { continue }
            let at = options.locations[option.name] ?? nodeLocation
            if let connection = connections[ref] {
                if connection.type != connectionType {
                    error(at, "connection '\(ref)' is a \(connection.type), but '\(option.name)' needs a \(connectionType)")
                }
            } else {
                let hint = Suggestion.hint(for: ref, among: connections.keys)
                error(at, "no connection named '\(ref)' in this flow's 'connections'\(hint)")
            }
        }
        return NodeDefinition(
            id: id, type: type, location: location(mapping["id"] ?? item), options: options, wires: wires ?? [:],
            retry: retry, queueSize: queueSize)
    }

    /// The spec's options from a node or connection mapping, with defaults, required and cross-option checks.
    mutating func readOptions(
        _ mapping: Yams.Node.Mapping, spec: NodeSpec, ownKeys: [String], owner: String, at: SourceLocation,
        wires: inout [String: [WireTarget]]?
    ) -> NodeOptions {
        var options = NodeOptions(secrets: spec.secretOptions)
        let problemsBefore = diagnostics.count
        valueLocations = [:]
        let known = Dictionary(spec.options.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for (key, value) in mapping {
            guard let name = key.scalar?.string else {
                error(location(key), "keys of \(owner) must be plain names")
                continue
            }
            if ownKeys.contains(name) { continue }
            guard let option = known[name] else {
                let hint = Suggestion.hint(for: name, among: ownKeys + spec.options.map(\.name))
                error(location(key), "unknown option '\(name)' for \(owner)\(hint)")
                continue
            }
            if let converted = convert(value, as: option.type, path: name, secret: option.secret, wires: &wires) {
                options.values[name] = converted
            }
        }
        options.locations = valueLocations
        for option in spec.options where options.values[option.name] == nil {
            if option.required {
                error(at, "\(owner) needs option '\(option.name)' (\(option.type.summary))")
            } else if let d = option.defaultValue {
                options.values[option.name] = d
            }
        }
        // Cross-option checks only make sense once every option read cleanly.
        if let check = spec.check, diagnostics.count == problemsBefore {
            for problem in check(options) {
                let where_ = problem.option.flatMap { options.locations[$0] } ?? at
                error(where_, "\(owner): \(problem.message)")
            }
        }
        return options
    }
}
