import Foundation

/// A JSON document: what a message's payload is, and what option values and dead letters are stored as.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])
}

extension JSONValue {
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var doubleValue: Double? {
        if case .number(let n) = self { return n }
        return nil
    }

    public var intValue: Int? {
        if case .number(let n) = self, n.rounded() == n, abs(n) < 9.0e15 { return Int(n) }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var objectValue: [String: JSONValue]? {
        if case .object(let o) = self { return o }
        return nil
    }

    public var isNull: Bool { self == .null }

    public subscript(key: String) -> JSONValue? {
        objectValue?[key]
    }

    /// Follows a dotted path (`payload.device`, `values.0`) through objects and arrays.
    public func value(atPath path: some StringProtocol) -> JSONValue? {
        value(at: PathKey.keys(path))
    }

    /// One step of a path: an object's key, or an array's index when it reads as one.
    public struct PathKey: Sendable, Hashable {
        public let name: String
        public let index: Int?

        public init(_ name: some StringProtocol) {
            self.name = String(name)
            index = Int(name)
        }

        /// The steps of a dotted path, read once so that following it costs no parsing.
        public static func keys(_ path: some StringProtocol) -> [PathKey] {
            path.split(separator: ".").map(PathKey.init)
        }
    }

    /// Follows a path read beforehand (`PathKey.keys`) through objects and arrays.
    public func value(at keys: [PathKey]) -> JSONValue? {
        var current = self
        for key in keys {
            switch current {
            case .object(let o):
                guard let next = o[key.name] else { return nil }
                current = next
            case .array(let a):
                guard let i = key.index, a.indices.contains(i) else { return nil }
                current = a[i]
            default: return nil
            }
        }
        return current
    }

    /// The value as a person reads it in a template: strings bare, numbers without a needless `.0`.
    public var templateText: String {
        switch self {
        case .null: return ""
        case .bool(let b): return b ? "true" : "false"
        case .number(let n): return n.rounded() == n && abs(n) < 1e15 ? String(Int(n)) : String(n)
        case .string(let s): return s
        case .array, .object: return jsonText()
        }
    }
}

extension JSONValue: Codable {
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let n) where !n.isFinite:
            // JSON has no infinities or NaN; written as text ("nan", "inf", "-inf") so nothing is lost.
            try c.encode(n.description)
        case .number(let n):
            if n.rounded() == n && abs(n) < 9.0e15 { try c.encode(Int64(n)) } else { try c.encode(n) }
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// Compact JSON with sorted keys, so the same value always reads the same.
    public func jsonText() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(self) else { return "null" }
        return String(decoding: data, as: UTF8.self)
    }

    /// The value of a JSON document (`JSONReader`: linear time, nesting at most 64 deep).
    public static func parse(_ text: String) throws -> JSONValue {
        try JSONReader.parse(text)
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
    public init(nilLiteral: ()) { self = .null }
}

extension JSONValue {
    /// A YAML scalar as JSON: plain `true`, `12`, `1.5`, `null`/`~` are typed; anything quoted is text.
    init(yamlScalar text: String, plain: Bool) {
        guard plain else {
            self = .string(text)
            return
        }
        switch text {
        case "", "~", "null", "Null", "NULL": self = .null
        case "true": self = .bool(true)
        case "false": self = .bool(false)
        default:
            if let i = Int(text) {
                self = .number(Double(i))
            } else if let d = Double(text), d.isFinite, text.contains(where: \.isNumber) {
                self = .number(d)
            } else {
                self = .string(text)
            }
        }
    }
}
