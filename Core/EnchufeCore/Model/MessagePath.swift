import Foundation

/// A field of a message named by a dotted path: `payload`, `payload.a.b`, `topic`, `attributes.k`.
/// What `map` sets, renames and deletes, and what `split` and `readings` read lists from.
public struct MessagePath: Sendable, Hashable, CustomStringConvertible {
    public enum Root: String, Sendable { case payload, topic, attributes }

    public let root: Root
    /// The keys below the root (`["a", "b"]` for `payload.a.b`).
    public let keys: [String]
    private let steps: [JSONValue.PathKey]

    public init(_ text: String) throws {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard let first = parts.first, let root = Root(rawValue: first), !parts.contains(where: \.isEmpty) else {
            throw TemplateError("'\(text)' is not a message field: write payload, payload.KEY..., topic or attributes.KEY")
        }
        let keys = Array(parts.dropFirst())
        switch root {
        case .topic where !keys.isEmpty:
            throw TemplateError("'\(text)': topic has no fields")
        case .attributes where keys.count != 1:
            throw TemplateError("'\(text)': name one attribute, as attributes.KEY")
        default: break
        }
        self.root = root
        self.keys = keys
        steps = keys.map(JSONValue.PathKey.init)
    }

    public var description: String { ([root.rawValue] + keys).joined(separator: ".") }

    public func value(in message: Message) -> JSONValue? {
        switch root {
        case .payload: return keys.isEmpty ? message.payload : message.payload.value(at: steps)
        case .topic: return message.topic.map(JSONValue.string)
        case .attributes: return message.attributes[keys[0]].map(JSONValue.string)
        }
    }

    /// Sets the field, creating objects on the way; `nil` removes it.
    public func set(_ value: JSONValue?, in message: inout Message) {
        switch root {
        case .payload:
            if keys.isEmpty {
                message.payload = value ?? .null
            } else {
                Self.set(value, at: keys[...], in: &message.payload)
            }
        case .topic:
            message.topic = value.flatMap { $0.isNull ? nil : $0.templateText }
        case .attributes:
            message.attributes[keys[0]] = value.flatMap { $0.isNull ? nil : $0.templateText }
        }
    }

    /// Sets `value` at `keys` inside `target`, changing its arrays and objects where they lie: each
    /// is taken out of `target` first (leaving `null` for a moment), so a payload not shared is not copied.
    private static func set(_ value: JSONValue?, at keys: ArraySlice<String>, in target: inout JSONValue) {
        guard let key = keys.first else { return }
        let rest = keys.dropFirst()
        if case .array(var items) = target, let i = Int(key), items.indices.contains(i) {
            target = .null
            if rest.isEmpty {
                items[i] = value ?? .null
            } else {
                set(value, at: rest, in: &items[i])
            }
            target = .array(items)
            return
        }
        var fields = target.objectValue ?? [:]
        if value == nil, fields[key] == nil { return }
        target = .null
        if rest.isEmpty {
            fields[key] = value
        } else {
            set(value, at: rest, in: &fields[key, default: .object([:])])
        }
        target = .object(fields)
    }
}
