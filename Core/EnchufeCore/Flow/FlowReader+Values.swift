import Foundation
import Yams

// Option values read against their types, and the Lua and templates in them checked.
extension FlowReader {
    /// The text of a scalar after substitution, or nil (with a problem reported) if it is not a scalar.
    mutating func scalarText(_ node: Yams.Node, option: String, secret: Bool) -> String? {
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

    mutating func convert(_ node: Yams.Node, as type: OptionType, path: String, secret: Bool) -> JSONValue? {
        var noWires: [String: [WireTarget]]? = nil
        return convert(node, as: type, path: path, secret: secret, wires: &noWires)
    }

    /// Converts a YAML value to the option's type, reporting what is wrong; wires are collected by port.
    mutating func convert(
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

    func isNull(_ node: Yams.Node) -> Bool {
        guard let s = node.scalar, s.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(s.string)
    }

    mutating func anyValue(_ node: Yams.Node, path: String, secret: Bool, requireMapping: Bool = false) -> JSONValue? {
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
    func scalarValue(_ node: Yams.Node, text: String) -> JSONValue {
        guard let scalar = node.scalar, text == scalar.string else { return .string(text) }
        return JSONValue(yamlScalar: text, plain: scalar.style == .plain)
    }

    // MARK: Lua

    /// Reports a Lua syntax error at the line of the flow file it is on.
    mutating func checkLua(_ source: LuaSource, option: String, at: SourceLocation) {
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

    mutating func checkTemplate(_ value: JSONValue, option: String, at: SourceLocation) {
        do {
            let template = try ValueTemplate(value, file: file, line: at.line)
            if let expression = template.expression { checkLua(expression.expressionChunk(), option: option, at: at) }
        } catch {
            self.error(at, "'\(option)': \(error)")
        }
    }
}
