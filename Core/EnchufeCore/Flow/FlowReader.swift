import Foundation
import Yams

/// One pass over one flow file's YAML tree: types every value against the node specs and collects
/// every problem found, with its position.
struct FlowReader {
    let file: String
    let registry: NodeRegistry
    let substitution: Substitution
    private(set) var diagnostics: [Diagnostic] = []
    private var secretValues: Set<String> = []
    private var substitutedValues: [String] = []
    /// Where each option value (nested ones by path: `cases.0.when`) starts, for the options being read.
    private var valueLocations: [String: SourceLocation] = [:]

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
    private mutating func checkedEntries(_ mapping: Yams.Node.Mapping, allowed: [String], what: String) -> [String: (Yams.Node, Yams.Node)] {
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

    private mutating func readRetry(_ value: Yams.Node, fallback: RetryPolicy) -> RetryPolicy {
        var wires: [String: [WireTarget]]? = nil
        guard case .object(let o)? = convert(value, as: .object(RetryPolicy.optionSpecs), path: "retry", secret: false, wires: &wires) else {
            return fallback
        }
        if let attempts = o["attempts"]?.intValue, attempts < 1 {
            error(location(value), "retry.attempts must be at least 1")
        }
        if let jitter = o["jitter"]?.doubleValue, !(0...1).contains(jitter) {
            error(location(value), "retry.jitter must be between 0 and 1")
        }
        return RetryPolicy(options: NodeOptions(values: o), fallback: fallback)
    }

    private mutating func readConnections(_ value: Yams.Node) -> [String: ConnectionDefinition] {
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

    private mutating func readNode(
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
    private mutating func readOptions(
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

    // MARK: Values

    /// The text of a scalar after substitution, or nil (with a problem reported) if it is not a scalar.
    private mutating func scalarText(_ node: Yams.Node, option: String, secret: Bool) -> String? {
        guard let scalar = node.scalar else {
            error(location(node), "'\(option)' must be a single value, not a \(node.mapping != nil ? "mapping" : "list")")
            return nil
        }
        do {
            let (text, substituted) = try substitution.apply(scalar.string)
            if substituted { substitutedValues.append(text) }
            if secret, !text.isEmpty { secretValues.insert(text) }
            return text
        } catch {
            self.error(location(node), "\(error) in '\(option)'")
            return nil
        }
    }

    private mutating func convert(_ node: Yams.Node, as type: OptionType, path: String, secret: Bool) -> JSONValue? {
        var noWires: [String: [WireTarget]]? = nil
        return convert(node, as: type, path: path, secret: secret, wires: &noWires)
    }

    /// Converts a YAML value to the option's type, reporting what is wrong; wires are collected by port.
    private mutating func convert(
        _ node: Yams.Node, as type: OptionType, path: String, secret: Bool, wires: inout [String: [WireTarget]]?
    ) -> JSONValue? {
        let at = location(node)
        valueLocations[path] = contentLocation(node)
        func describe(_ text: String) -> String { secret ? "the value" : "'\(text)'" }
        switch type {
        case .expression, .script:
            guard let text = scalarText(node, option: path, secret: secret) else { return nil }
            let source = LuaSource(text: text, file: file, firstLine: contentLocation(node).line)
            let isExpression: Bool = { if case .expression = type { return true } else { return false } }()
            checkLua(isExpression ? source.expressionChunk() : source, option: path, at: at)
            return .string(text)
        case .template:
            guard node.scalar != nil else { return anyValue(node, path: path, secret: secret) }
            guard let text = scalarText(node, option: path, secret: secret) else { return nil }
            let value = scalarValue(node, text: text)
            checkTemplate(value, option: path, at: contentLocation(node))
            return value
        case .templates:
            guard let mapping = node.mapping else {
                error(at, "'\(path)' must be a mapping of field to value")
                return nil
            }
            var o: [String: JSONValue] = [:]
            for (key, value) in mapping {
                guard let name = key.scalar?.string else { continue }
                if let v = convert(value, as: .template, path: "\(path).\(name)", secret: secret, wires: &wires) { o[name] = v }
            }
            return .object(o)
        case .string, .connection:
            if node.scalar?.style == .plain, node.scalar?.string == "~" || node.scalar?.string == "null" { return .null }
            return scalarText(node, option: path, secret: secret).map(JSONValue.string)
        case .integer:
            guard let text = scalarText(node, option: path, secret: secret) else { return nil }
            guard let n = Int(text.trimmingCharacters(in: .whitespaces)) else {
                error(at, "'\(path)' must be a whole number, not \(describe(text))")
                return nil
            }
            return .number(Double(n))
        case .number:
            guard let text = scalarText(node, option: path, secret: secret) else { return nil }
            guard let n = Double(text.trimmingCharacters(in: .whitespaces)), n.isFinite else {
                error(at, "'\(path)' must be a number, not \(describe(text))")
                return nil
            }
            return .number(n)
        case .boolean:
            guard let text = scalarText(node, option: path, secret: secret) else { return nil }
            switch text.lowercased() {
            case "true", "yes", "on": return .bool(true)
            case "false", "no", "off": return .bool(false)
            default:
                error(at, "'\(path)' must be true or false, not \(describe(text))")
                return nil
            }
        case .duration:
            guard let text = scalarText(node, option: path, secret: secret) else { return nil }
            do {
                _ = try DurationText.parse(text)
                return .string(text)
            } catch {
                self.error(at, "'\(path)': \(error)")
                return nil
            }
        case .cron:
            guard let text = scalarText(node, option: path, secret: secret) else { return nil }
            do {
                _ = try CronExpression(text)
                return .string(text)
            } catch {
                self.error(at, "'\(path)': \(error)")
                return nil
            }
        case .timezone:
            guard let text = scalarText(node, option: path, secret: secret) else { return nil }
            guard TimeZone(identifier: text) != nil, text.contains("/") || text == "UTC" else {
                let hint = Suggestion.hint(for: text, among: TimeZone.knownTimeZoneIdentifiers)
                error(at, "'\(path)': unknown time zone '\(text)'\(hint)")
                return nil
            }
            return .string(text)
        case .enumeration(let allowed):
            guard let text = scalarText(node, option: path, secret: secret) else { return nil }
            guard allowed.contains(text) else {
                error(at, "'\(path)' must be one of \(allowed.joined(separator: ", ")), not \(describe(text))\(Suggestion.hint(for: text, among: allowed))")
                return nil
            }
            return .string(text)
        case .list(let element):
            if node.scalar != nil, !isNull(node) {
                return convert(node, as: element, path: path, secret: secret, wires: &wires).map { .array([$0]) }
            }
            guard let sequence = node.sequence else {
                error(at, "'\(path)' must be a list (\(type.summary))")
                return nil
            }
            var items: [JSONValue] = []
            for (i, item) in sequence.enumerated() {
                if let v = convert(item, as: element, path: "\(path).\(i)", secret: secret, wires: &wires) { items.append(v) }
            }
            return .array(items)
        case .wires:
            let items: [Yams.Node]
            if let sequence = node.sequence { items = Array(sequence) } else if node.scalar != nil { items = [node] } else {
                error(at, "'\(path)' must be a list of node ids")
                return nil
            }
            var ids: [JSONValue] = []
            for item in items {
                guard let id = scalarText(item, option: path, secret: false) else { continue }
                wires?[path, default: []].append(WireTarget(node: id, location: location(item)))
                ids.append(.string(id))
            }
            return .array(ids)
        case .object(let specs):
            guard let mapping = node.mapping else {
                error(at, "'\(path)' must be a mapping with keys \(specs.map(\.name).joined(separator: ", "))")
                return nil
            }
            var o: [String: JSONValue] = [:]
            let names = specs.map(\.name)
            for (key, value) in mapping {
                guard let name = key.scalar?.string else { continue }
                guard let spec = specs.first(where: { $0.name == name }) else {
                    error(location(key), "unknown key '\(name)' in '\(path)'\(Suggestion.hint(for: name, among: names))")
                    continue
                }
                if let v = convert(value, as: spec.type, path: "\(path).\(name)", secret: secret || spec.secret, wires: &wires) {
                    o[name] = v
                }
            }
            for spec in specs where o[spec.name] == nil {
                if spec.required { error(at, "'\(path)' needs key '\(spec.name)'") } else if let d = spec.defaultValue { o[spec.name] = d }
            }
            return .object(o)
        case .map, .any:
            return anyValue(node, path: path, secret: secret, requireMapping: { if case .map = type { return true } else { return false } }())
        }
    }

    private func isNull(_ node: Yams.Node) -> Bool {
        guard let s = node.scalar, s.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(s.string)
    }

    private mutating func anyValue(_ node: Yams.Node, path: String, secret: Bool, requireMapping: Bool = false) -> JSONValue? {
        if requireMapping, node.mapping == nil {
            error(location(node), "'\(path)' must be a mapping")
            return nil
        }
        switch node {
        case .mapping(let mapping):
            var o: [String: JSONValue] = [:]
            for (key, value) in mapping {
                guard let name = key.scalar?.string else { continue }
                o[name] = anyValue(value, path: "\(path).\(name)", secret: secret) ?? .null
            }
            return .object(o)
        case .sequence(let sequence):
            return .array(sequence.enumerated().map { anyValue($1, path: "\(path).\($0)", secret: secret) ?? .null })
        case .scalar(let scalar):
            if isNull(node) { return .null }
            guard let text = scalarText(node, option: path, secret: secret) else { return nil }
            return scalarValue(node, text: text)
        case .alias:
            return nil
        }
    }

    /// A scalar as YAML types it: plain `true`, `12`, `1.5` are a boolean and numbers.
    private func scalarValue(_ node: Yams.Node, text: String) -> JSONValue {
        guard let scalar = node.scalar, text == scalar.string else { return .string(text) }
        return JSONValue(yamlScalar: text, plain: scalar.style == .plain)
    }

    // MARK: Lua

    /// Reports a Lua syntax error at the line of the flow file it is on.
    private mutating func checkLua(_ source: LuaSource, option: String, at: SourceLocation) {
        do {
            let lua = try LuaEngine()
            _ = try lua.compile(source)
        } catch let failure as LuaError {
            let line = failure.position?.line ?? at.line
            let text = failure.position?.text ?? failure.message
            error(SourceLocation(file: file, line: line, column: line == at.line ? at.column : 1), "Lua syntax error in '\(option)': \(text)")
        } catch {
            self.error(at, "'\(option)': \(error)")
        }
    }

    private mutating func checkTemplate(_ value: JSONValue, option: String, at: SourceLocation) {
        do {
            let template = try ValueTemplate(value, file: file, line: at.line)
            if let expression = template.expression { checkLua(expression.expressionChunk(), option: option, at: at) }
        } catch {
            self.error(at, "'\(option)': \(error)")
        }
    }

    // MARK: The graph

    private mutating func checkGraph(_ nodes: [NodeDefinition]) {
        var byID: [String: NodeDefinition] = [:]
        for node in nodes where !node.id.isEmpty {
            if let first = byID[node.id] {
                error(node.location, "duplicate node id '\(node.id)' (first used at line \(first.location.line))")
            } else {
                byID[node.id] = node
            }
        }
        var fed: Set<String> = []
        for node in nodes {
            for (port, targets) in node.wires.sorted(by: { $0.key < $1.key }) {
                for target in targets {
                    if byID[target.node] == nil {
                        let closest = Suggestion.closest(to: target.node, among: byID.keys.sorted())
                        let hint = closest.map { " (did you mean '\($0)'?)" } ?? ""
                        error(target.location, "'\(node.id)' is wired to '\(target.node)', which is not a node of this flow\(hint)")
                        // The node it was meant for is then not reported as unfed as well.
                        if let closest { fed.insert(closest) }
                    } else if let spec = registry.spec(byID[target.node]!.type), !spec.takesInput {
                        error(target.location, "'\(node.id)' is wired to '\(target.node)', a \(spec.type) node, which takes no input")
                    } else {
                        if port == NodeDefinition.outPort, byID[target.node]?.type == "store.readings", registry.spec(node.type)?.carriesReadings == false {
                            diagnostics.append(Diagnostic(
                                target.location,
                                "'\(node.id)' (\(node.type)) sends messages without readings, which '\(target.node)' (store.readings) cannot store: each would go to the dead letters (map them with a 'readings' node first)",
                                severity: .warning))
                        }
                        fed.insert(target.node)
                    }
                }
            }
        }
        for node in nodes where !node.id.isEmpty && !fed.contains(node.id) {
            if let spec = registry.spec(node.type), spec.takesInput {
                error(node.location, "node '\(node.id)' (\(node.type)) takes input, but no node is wired to it (add '\(node.id)' to another node's 'to')")
            }
        }
        checkCycles(nodes, byID: byID)
    }

    private mutating func checkCycles(_ nodes: [NodeDefinition], byID: [String: NodeDefinition]) {
        enum Mark { case visiting, done }
        var marks: [String: Mark] = [:]
        var stack: [String] = []
        var reported: Set<String> = []
        func visit(_ id: String, _ reader: inout FlowReader) {
            marks[id] = .visiting
            stack.append(id)
            let node = byID[id]!
            for (port, targets) in node.wires.sorted(by: { $0.key < $1.key }) {
                for target in targets where byID[target.node] != nil {
                    switch marks[target.node] {
                    case .visiting?:
                        let cycle = stack.drop(while: { $0 != target.node }) + [target.node]
                        let key = "\(id)>\(target.node)"
                        if reported.insert(key).inserted {
                            reader.error(target.location, "wiring '\(id)' to '\(target.node)' makes a cycle: \(cycle.joined(separator: " → "))")
                        }
                    case nil:
                        visit(target.node, &reader)
                    case .done?:
                        break
                    }
                }
            }
            stack.removeLast()
            marks[id] = .done
        }
        for node in nodes where byID[node.id] != nil && marks[node.id] == nil {
            visit(node.id, &self)
        }
    }
}

/// FNV-1a, 64 bits: a stable fingerprint of a flow's text (not for security).
struct StableHash {
    private var state: UInt64 = 0xcbf2_9ce4_8422_2325
    mutating func add(_ text: String) {
        for byte in text.utf8 {
            state ^= UInt64(byte)
            state = state &* 0x100_0000_01b3
        }
        state ^= 0xff
    }
    var hex: String { String(state, radix: 16) }
}
