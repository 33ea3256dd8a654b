import Foundation
import Synchronization

/// A value an option computes from each message: a constant, a text template with `{path}`
/// placeholders (`"device:{payload.device}"`, `"{topic.2}"`), or a Lua expression after `=`
/// (`"=msg.payload.w / 1000"`).
///
/// Paths start at `payload`, `topic` (`topic.2` is the topic's second level), `attributes`,
/// `readings` or `item` (the element being mapped, for per-item mappings). A template that is a
/// single placeholder keeps the value's type, so `"{payload.w}"` stays a number. `{{` and `}}` are
/// literal braces.
public struct ValueTemplate: Sendable {
    public enum Part: Sendable, Equatable {
        case literal(String)
        case path(TemplatePath)
    }

    public enum Form: Sendable {
        case constant(JSONValue)
        case text([Part])
        case expression(LuaSource)
    }

    public let form: Form

    public init(form: Form) { self.form = form }

    /// Reads an option value. Strings are parsed; other JSON values are constants.
    public init(_ value: JSONValue, file: String = "flow", line: Int = 1) throws {
        guard case .string(let text) = value else {
            form = .constant(value)
            return
        }
        if text.hasPrefix("=") {
            form = .expression(LuaSource(text: String(text.dropFirst()), file: file, firstLine: line))
            return
        }
        let parts = try Self.parts(text)
        if parts.allSatisfy({ if case .literal = $0 { true } else { false } }) {
            form = .constant(.string(parts.map { if case .literal(let s) = $0 { s } else { "" } }.joined()))
        } else {
            form = .text(parts)
        }
    }

    public var expression: LuaSource? {
        if case .expression(let source) = form { return source }
        return nil
    }

    static func parts(_ text: String) throws -> [Part] {
        var parts: [Part] = []
        var literal = ""
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            let next = text.index(after: i)
            if c == "{", next < text.endIndex, text[next] == "{" {
                literal.append("{")
                i = text.index(after: next)
            } else if c == "}", next < text.endIndex, text[next] == "}" {
                literal.append("}")
                i = text.index(after: next)
            } else if c == "{" {
                guard let close = text[next...].firstIndex(of: "}") else {
                    throw TemplateError("unclosed '{' in template \"\(text)\" (write {{ for a literal brace)")
                }
                let path = text[next..<close].trimmingCharacters(in: .whitespaces)
                guard let parsed = TemplatePath(path) else {
                    throw TemplateError("placeholder {\(path)} in \"\(text)\" must start with one of \(TemplatePath.Root.allCases.map(\.rawValue).sorted().joined(separator: ", "))")
                }
                if !literal.isEmpty { parts.append(.literal(literal)) }
                literal = ""
                parts.append(.path(parsed))
                i = text.index(after: close)
            } else if c == "}" {
                throw TemplateError("unmatched '}' in template \"\(text)\" (write }} for a literal brace)")
            } else {
                literal.append(c)
                i = next
            }
        }
        if !literal.isEmpty || parts.isEmpty { parts.append(.literal(literal)) }
        return parts
    }

    /// The value for one message; an expression runs as `function` in `lua`.
    public func value(for message: Message, item: JSONValue? = nil, lua: (LuaEngine, LuaEngine.Function)? = nil) throws -> JSONValue {
        switch form {
        case .constant(let value):
            return value
        case .text(let parts):
            if parts.count == 1, case .path(let path) = parts[0] {
                return path.value(in: message, item: item) ?? .null
            }
            var text = ""
            for part in parts {
                switch part {
                case .literal(let s): text += s
                case .path(let path): text += (path.value(in: message, item: item) ?? .null).templateText
                }
            }
            return .string(text)
        case .expression:
            guard let (engine, function) = lua else { throw TemplateError("expression was not compiled") }
            return try engine.evaluate(function, message: message, item: item)
        }
    }

}

/// A placeholder's path, read once when the flow loads: `payload.a.0`, `topic`, `topic.2` (the
/// topic's second level), `attributes.k`, `readings.0.value`, `item.x`.
public struct TemplatePath: Sendable, Equatable, CustomStringConvertible {
    public enum Root: String, Sendable, CaseIterable { case payload, topic, attributes, readings, item }

    public let root: Root
    /// What follows the root, as written.
    let rest: String
    let keys: [JSONValue.PathKey]
    /// For `topic.N`: N (nil when `rest` is not a level from 1).
    let topicLevel: Int?
    public var description: String { rest.isEmpty ? root.rawValue : root.rawValue + "." + rest }

    public init?(_ text: String) {
        let dot = text.firstIndex(of: ".")
        guard let root = Root(rawValue: String(text[..<(dot ?? text.endIndex)])) else { return nil }
        self.root = root
        rest = dot.map { String(text[text.index(after: $0)...]) } ?? ""
        keys = JSONValue.PathKey.keys(rest)
        topicLevel = Int(rest).flatMap { $0 >= 1 ? $0 : nil }
    }

    /// The topic's `n`-th level (from 1), found without splitting the whole topic.
    static func level(_ n: Int, of topic: String) -> String? {
        var topic = topic
        return topic.withUTF8 { bytes in
            var level = 1, start = 0
            for i in bytes.indices where bytes[i] == UInt8(ascii: "/") {
                if level == n { return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self) }
                level += 1
                start = i + 1
            }
            return level == n ? String(decoding: UnsafeBufferPointer(rebasing: bytes[start...]), as: UTF8.self) : nil
        }
    }

    /// The value in a message (and the element being mapped, for `item`).
    public func value(in message: Message, item: JSONValue? = nil) -> JSONValue? {
        switch root {
        case .payload:
            return message.payload.value(at: keys)
        case .topic:
            guard let topic = message.topic else { return nil }
            if rest.isEmpty { return .string(topic) }
            guard let n = topicLevel else { return nil }
            return Self.level(n, of: topic).map(JSONValue.string)
        case .attributes:
            return rest.isEmpty ? .object(message.attributes.mapValues(JSONValue.string)) : message.attributes[rest].map(JSONValue.string)
        case .readings:
            return JSONValue.array(message.readings.map(\.json)).value(at: keys)
        case .item:
            return item?.value(at: keys)
        }
    }
}

public struct TemplateError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The Lua expressions of one node, compiled once into the node's own Lua state — made only if
/// the node has an expression, so a node of plain templates costs no Lua state.
public final class NodeExpressions: Sendable {
    public let limits: LuaLimits
    private let engine = Mutex<LuaEngine?>(nil)

    public init(limits: LuaLimits) {
        self.limits = limits
    }

    /// A template bound to this node's state (expressions compiled).
    public func bind(_ template: ValueTemplate) throws -> BoundTemplate {
        guard let expression = template.expression else { return BoundTemplate(template: template, compiled: nil) }
        let lua = try engine.withLock { engine in
            if let engine { return engine }
            let made = try LuaEngine(limits: limits)
            engine = made
            return made
        }
        return BoundTemplate(template: template, compiled: (lua, try lua.compileExpression(expression)), native: NativeExpression(expression.text))
    }

    /// A bare Lua expression option (`when:`).
    public func condition(_ source: LuaSource) throws -> BoundTemplate {
        try bind(ValueTemplate(form: .expression(source)))
    }
}

/// A template ready to evaluate.
public struct BoundTemplate: Sendable {
    public let template: ValueTemplate
    let compiled: (engine: LuaEngine, function: LuaEngine.Function)?
    /// The expression evaluated without Lua, when it is simple enough (Lua is asked when it cannot answer).
    var native: NativeExpression? = nil

    /// The value for one message. A Lua error is permanent: the same message would fail again.
    public func value(for message: Message, item: JSONValue? = nil) throws -> JSONValue {
        // Constants and text templates without copying (and retaining) the compiled expression.
        switch template.form {
        case .constant(let value): return value
        case .text: return try template.value(for: message, item: item)
        case .expression: break
        }
        if let native, let value = native.evaluate(message) { return value }
        do {
            return try template.value(for: message, item: item, lua: compiled)
        } catch let error as LuaError {
            throw PermanentError("\(error)")
        }
    }

    /// The value as a condition: Lua truth (everything but nil, false and null is true).
    public func isTrue(for message: Message, item: JSONValue? = nil) throws -> Bool {
        switch try value(for: message, item: item) {
        case .null, .bool(false): return false
        default: return true
        }
    }
}

extension ValueTemplate {
    /// The template of an option (or nested option, `set.kwh`), located where the flow file has it.
    public static func option(_ path: String, _ value: JSONValue, in options: NodeOptions) throws -> ValueTemplate {
        let at = options.locations[path]
        return try ValueTemplate(value, file: at?.file ?? "flow", line: at?.line ?? 1)
    }
}

extension NodeOptions {
    /// Problems with the message paths named in an option (a list of paths, or a mapping's keys
    /// and, if `values`, its values too).
    func messagePathProblems(_ name: String, values: Bool = false) -> [OptionProblem] {
        var paths: [(String, String)] = []
        switch self[name] {
        case .array(let items)?:
            paths = items.enumerated().compactMap { i, v in v.stringValue.map { ("\(name).\(i)", $0) } }
        case .object(let fields)?:
            for (key, value) in fields {
                paths.append(("\(name).\(key)", key))
                if values, let target = value.stringValue { paths.append(("\(name).\(key)", target)) }
            }
        default: break
        }
        return paths.compactMap { option, path in
            do {
                _ = try MessagePath(path)
                return nil
            } catch {
                return OptionProblem(option: option, "\(error)")
            }
        }
    }
}
