import Foundation

/// A value an option can hold, read from the JSON the flow reader produced.
public protocol OptionValue: Sendable {
    /// How the option is described when its key does not say more (`.enumeration`, `.timezone`).
    static var optionType: OptionType { get }
    init?(optionValue: JSONValue)
    /// The value as the flow file would write it (a default shown by `docs` and `schema`); nil for none.
    var optionJSON: JSONValue? { get }
}

/// An option with a default: declared once, its spec listed in the node type's `options`, and read
/// with `options[key]`, which gives the default when the flow leaves the option out. The default is
/// written nowhere else, so `docs` and `schema` show the one the node uses (as Benthos'
/// `conf.FieldInt` returns its spec's default). An option without a default is an `OptionKey<T?>`.
public struct OptionKey<Value: OptionValue>: Sendable {
    public let spec: OptionSpec
    public let fallback: Value
    public var name: String { spec.name }

    public init(
        _ name: String, _ type: OptionType? = nil, default fallback: Value, secret: Bool = false, doc: String,
        example: JSONValue? = nil
    ) {
        self.fallback = fallback
        spec = OptionSpec(name, type ?? Value.optionType, default: fallback.optionJSON, secret: secret, doc: doc, example: example)
    }

    public init<Wrapped>(_ name: String, _ type: OptionType? = nil, secret: Bool = false, doc: String, example: JSONValue? = nil)
    where Value == Wrapped? {
        self.init(name, type, default: nil, secret: secret, doc: doc, example: example)
    }
}

/// An option the flow must give; the loader reports its absence, so `options.required(key)` finds it
/// in any node the loader built (and throws, saying which, in one built by hand).
public struct RequiredOptionKey<Value: OptionValue>: Sendable {
    public let spec: OptionSpec
    public var name: String { spec.name }

    public init(_ name: String, _ type: OptionType? = nil, secret: Bool = false, doc: String, example: JSONValue? = nil) {
        spec = OptionSpec(name, type ?? Value.optionType, required: true, secret: secret, doc: doc, example: example)
    }
}

extension NodeOptions {
    public subscript<Value>(key: OptionKey<Value>) -> Value {
        self[key.name].flatMap(Value.init(optionValue:)) ?? key.fallback
    }

    /// The value of a required option, or a `PermanentError` naming it.
    public func required<Value>(_ key: RequiredOptionKey<Value>) throws -> Value {
        guard let value = self[key.name].flatMap(Value.init(optionValue:)) else {
            throw PermanentError("option '\(key.name)' is required")
        }
        return value
    }

    /// A required option's value where the loader has checked it; nil in a node built by hand without it.
    public subscript<Value>(key: RequiredOptionKey<Value>) -> Value? {
        self[key.name].flatMap(Value.init(optionValue:))
    }

    /// The nested options of a mapping option.
    public func object(_ key: OptionKey<JSONValue?>) -> NodeOptions? { object(key.name) }

    public func has<Value>(_ key: OptionKey<Value>) -> Bool { has(key.name) }
}

extension String: OptionValue {
    public static var optionType: OptionType { .string }
    /// A flow file's scalar is text to a string option (`geo_ids: 8741`), as the loader reads it.
    public init?(optionValue: JSONValue) {
        switch optionValue {
        case .string(let s): self = s
        case .number, .bool: self = optionValue.templateText
        default: return nil
        }
    }
    public var optionJSON: JSONValue? { .string(self) }
}

extension Int: OptionValue {
    public static var optionType: OptionType { .integer }
    public init?(optionValue: JSONValue) {
        guard let i = optionValue.intValue else { return nil }
        self = i
    }
    public var optionJSON: JSONValue? { .number(Double(self)) }
}

extension Double: OptionValue {
    public static var optionType: OptionType { .number }
    public init?(optionValue: JSONValue) {
        guard let d = optionValue.doubleValue else { return nil }
        self = d
    }
    public var optionJSON: JSONValue? { .number(self) }
}

extension Bool: OptionValue {
    public static var optionType: OptionType { .boolean }
    public init?(optionValue: JSONValue) {
        guard let b = optionValue.boolValue else { return nil }
        self = b
    }
    public var optionJSON: JSONValue? { .bool(self) }
}

extension Duration: OptionValue {
    public static var optionType: OptionType { .duration }
    public init?(optionValue: JSONValue) {
        guard let text = optionValue.stringValue, let d = try? DurationText.parse(text) else { return nil }
        self = d
    }
    public var optionJSON: JSONValue? { .string(DurationText.format(self)) }
}

extension Array: OptionValue where Element == String {
    public static var optionType: OptionType { .list(.string) }
    public init?(optionValue: JSONValue) {
        guard let values = optionValue.arrayValue else { return nil }
        self = values.compactMap(String.init(optionValue:))
    }
    public var optionJSON: JSONValue? { .array(map(JSONValue.string)) }
}

extension JSONValue: OptionValue {
    public static var optionType: OptionType { .any }
    public init?(optionValue: JSONValue) {
        if optionValue.isNull { return nil }
        self = optionValue
    }
    public var optionJSON: JSONValue? { isNull ? nil : self }
}

extension Optional: OptionValue where Wrapped: OptionValue {
    public static var optionType: OptionType { Wrapped.optionType }
    public init?(optionValue: JSONValue) {
        guard let value = Wrapped(optionValue: optionValue) else { return nil }
        self = .some(value)
    }
    public var optionJSON: JSONValue? { self?.optionJSON }
}

/// An option whose values are an enumeration's raw values (`format: csv`): declared as
/// `OptionKey<ExportFormat>`, listed as `one of …` in the docs, and read as the case.
public protocol OptionEnumeration: OptionValue, RawRepresentable, CaseIterable where RawValue == String {}

extension OptionEnumeration {
    public static var optionType: OptionType { .enumeration(allCases.map(\.rawValue)) }
    public init?(optionValue: JSONValue) {
        guard let text = optionValue.stringValue else { return nil }
        self.init(rawValue: text)
    }
    public var optionJSON: JSONValue? { .string(rawValue) }
}

extension Secret: OptionValue {
    public static var optionType: OptionType { .string }
    public init?(optionValue: JSONValue) {
        guard let text = optionValue.stringValue else { return nil }
        self.init(text)
    }
    /// A secret is never shown, not even as a default.
    public var optionJSON: JSONValue? { nil }
}

extension NodeBuildContext {
    /// A credential the node cannot work without: an empty one counts as missing, and a missing one
    /// stops the node from starting with `missing` (which says how to get one) — except in a flow
    /// test, which answers from canned responses and gets nil.
    public func credential(_ key: OptionKey<Secret?>, missing: String) throws -> Secret? {
        if let value = options[key], !value.reveal().isEmpty { return value }
        if testing { return nil }
        throw PermanentError(missing)
    }
}
