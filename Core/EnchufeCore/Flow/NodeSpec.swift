import Foundation
import Logging

/// The type of an option value, checked at load time and described in the JSON Schema.
public indirect enum OptionType: Sendable {
    case string
    case integer
    case number
    case boolean
    /// `500ms`, `30s`, `15m`, `1h`, `1d`
    case duration
    /// A 5-field cron expression.
    case cron
    /// An IANA time zone name.
    case timezone
    case enumeration([String])
    case list(OptionType)
    /// A mapping with known keys.
    case object([OptionSpec])
    /// A free-form mapping.
    case map
    /// Ids of nodes in the same flow: a wire. The option's path names the output port.
    case wires
    /// The name of a connection (`connections:` in the flow file) of the given type.
    case connection(String)
    /// Anything.
    case any
    /// A Lua expression over `msg` (`msg.payload.w > 100`), syntax-checked at load time.
    case expression
    /// A Lua chunk, syntax-checked at load time.
    case script
    /// A constant, a `{path}` template or an `=expression` (see `ValueTemplate`).
    case template
    /// A mapping of names to templates.
    case templates

    public var summary: String {
        switch self {
        case .string: return "string"
        case .integer: return "integer"
        case .number: return "number"
        case .boolean: return "boolean"
        case .duration: return "duration (e.g. 30s, 15m, 1h)"
        case .cron: return "cron expression (5 fields)"
        case .timezone: return "time zone (e.g. Europe/Madrid)"
        case .enumeration(let values): return "one of " + values.joined(separator: ", ")
        case .list(let t): return "list of " + t.summary
        case .object: return "mapping"
        case .map: return "mapping"
        case .wires: return "list of node ids"
        case .connection(let type): return "name of a \(type) connection"
        case .any: return "any value"
        case .expression: return "Lua expression over msg"
        case .script: return "Lua script"
        case .template: return "value, \"{path}\" template or \"=lua expression\""
        case .templates: return "mapping of field to value, \"{path}\" template or \"=lua expression\""
        }
    }
}

/// One option of a node type: parsing, validation, the JSON Schema and the docs all read it.
public struct OptionSpec: Sendable {
    public var name: String
    public var type: OptionType
    public var required: Bool
    public var defaultValue: JSONValue?
    /// Never printed: not in logs, errors, tap, the UI or the API.
    public var secret: Bool
    public var doc: String
    public var example: JSONValue?

    public init(
        _ name: String, _ type: OptionType, required: Bool = false, default defaultValue: JSONValue? = nil,
        secret: Bool = false, doc: String, example: JSONValue? = nil
    ) {
        self.name = name
        self.type = type
        self.required = required
        self.defaultValue = defaultValue
        self.secret = secret
        self.doc = doc
        self.example = example
    }
}

public enum NodeKind: String, Sendable {
    case source, transform, sink, connection
}

/// What a node type's factory gets: its validated options and where it lives.
public struct NodeBuildContext: Sendable {
    public var flow: String
    public var node: String
    public var tenant: String
    public var options: NodeOptions
    public var connections: [String: NodeOptions]
    public var logger: Logger
    /// For node types that count more than the engine does; make their handles here, once.
    public var metrics: HubMetrics
    /// Built for a flow test (canned answers, no network): a connector need not refuse to start for
    /// want of credentials it will not use.
    public var testing = false
    /// This process's instance id when several instances may run the flow (a shared store and
    /// `--instance`); nil otherwise. A node that holds something per process outside the store
    /// (an MQTT client id, a journal folder) makes it its own with this.
    public var instance: String?

    public init(
        flow: String, node: String, tenant: String, options: NodeOptions, connections: [String: NodeOptions] = [:],
        logger: Logger, metrics: HubMetrics, testing: Bool = false
    ) {
        self.flow = flow
        self.node = node
        self.tenant = tenant
        self.options = options
        self.connections = connections
        self.logger = logger
        self.metrics = metrics
        self.testing = testing
    }

    /// The options of the connection named by option `name`.
    public func connection(_ name: String) -> NodeOptions? {
        options.string(name).flatMap { connections[$0] }
    }
}

/// A running node: one of three small protocols.
public enum NodeInstance: Sendable {
    case source(any SourceNode)
    case transform(any TransformNode)
    case sink(any SinkNode)
}

/// A node type: one declaration from which validation, `schema`, `docs`, `nodes` and the factory come.
public struct NodeSpec: Sendable {
    public var type: String
    public var kind: NodeKind
    public var summary: String
    public var doc: String
    public var options: [OptionSpec]
    /// Whether the node must be fed by a wire (an `export` node reads the store instead).
    public var takesInput: Bool
    /// A flow-file snippet showing the node in use.
    public var example: String
    /// Checks that involve several options (e.g. exactly one of `cron` and `every`).
    public var check: (@Sendable (NodeOptions) -> [OptionProblem])?
    public var make: (@Sendable (NodeBuildContext) throws -> NodeInstance)?
    /// Talks to a server outside the hub (a broker, a database): flow tests, which run without
    /// servers, record what reaches such a sink (as port `in`) instead of running it, and do not run
    /// such a source unless a case's input stands in for it.
    public var external: Bool
    /// A source that runs on every instance of a deployment (requests and deliveries spread over
    /// them: a webhook, an MQTT shared subscription, an export). Every other source is a singleton:
    /// with several instances it runs on the one holding its lease.
    public var everyInstance: Bool
    /// Whether the node's messages can carry readings; false for node types whose output never does
    /// (`schedule`, `datadis.supplies`), so that `validate` warns when one is wired into `store.readings`.
    public var carriesReadings: Bool
    /// What a node of this type holds alone among every loaded flow (a webhook path): the loader
    /// refuses a second node claiming the same.
    public var claims: (@Sendable (NodeOptions) -> [ResourceClaim])?

    public init(
        type: String, kind: NodeKind, summary: String, doc: String = "", options: [OptionSpec],
        takesInput: Bool? = nil, example: String, external: Bool = false, everyInstance: Bool = false, carriesReadings: Bool = true,
        claims: (@Sendable (NodeOptions) -> [ResourceClaim])? = nil,
        check: (@Sendable (NodeOptions) -> [OptionProblem])? = nil,
        make: (@Sendable (NodeBuildContext) throws -> NodeInstance)?
    ) {
        self.claims = claims
        self.external = external
        self.everyInstance = everyInstance
        self.carriesReadings = carriesReadings
        self.type = type
        self.kind = kind
        self.summary = summary
        self.doc = doc
        self.options = options
        self.takesInput = takesInput ?? (kind == .transform || kind == .sink)
        self.example = example
        self.check = check
        self.make = make
    }

    public var secretOptions: Set<String> { Set(options.filter(\.secret).map(\.name)) }
}

/// A resource one node holds alone: `what` names it in errors ("webhook path"), `value` is the
/// resource, `option` the option that gives it (for the error's position).
public struct ResourceClaim: Sendable, Hashable {
    public var what: String
    public var value: String
    public var option: String

    public init(_ what: String, _ value: String, option: String) {
        self.what = what
        self.value = value
        self.option = option
    }
}

/// A problem a node spec's `check` finds, pointing at the option it concerns (nil: the node itself).
public struct OptionProblem: Sendable {
    public var option: String?
    public var message: String

    public init(option: String? = nil, _ message: String) {
        self.option = option
        self.message = message
    }
}

/// Validated option values of one node, with their positions in the flow file.
public struct NodeOptions: Sendable {
    public var values: [String: JSONValue]
    public var locations: [String: SourceLocation]
    public var secrets: Set<String>

    public init(values: [String: JSONValue] = [:], locations: [String: SourceLocation] = [:], secrets: Set<String> = []) {
        self.values = values
        self.locations = locations
        self.secrets = secrets
    }

    public subscript(name: String) -> JSONValue? { values[name].flatMap { $0.isNull ? nil : $0 } }

    public func has(_ name: String) -> Bool { self[name] != nil }
    public func string(_ name: String) -> String? { self[name]?.stringValue }
    public func int(_ name: String) -> Int? { self[name]?.intValue }
    public func double(_ name: String) -> Double? { self[name]?.doubleValue }
    public func bool(_ name: String) -> Bool? { self[name]?.boolValue }
    public func strings(_ name: String) -> [String]? { self[name]?.arrayValue?.compactMap(\.stringValue) }

    public func duration(_ name: String) -> Duration? {
        string(name).flatMap { try? DurationText.parse($0) }
    }

    public func secret(_ name: String) -> Secret? { string(name).map(Secret.init) }

    /// The options of a nested mapping option.
    /// A nested mapping option as options of its own, with its locations and secret markers.
    public func object(_ name: String) -> NodeOptions? {
        guard let o = self[name]?.objectValue else { return nil }
        let prefix = name + "."
        var nested: [String: SourceLocation] = [:]
        for (path, location) in locations where path.hasPrefix(prefix) { nested[String(path.dropFirst(prefix.count))] = location }
        return NodeOptions(
            values: o, locations: nested,
            secrets: Set(secrets.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }))
    }
}

/// A secret option value: prints as `***` so it cannot leak through interpolation or logging.
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    private let value: String
    public init(_ value: String) { self.value = value }
    /// The value itself, for the one place that must send it (an auth header, a login form).
    public func reveal() -> String { value }
    public var description: String { "***" }
    public var debugDescription: String { "***" }
}
