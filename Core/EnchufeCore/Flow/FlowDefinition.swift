import Foundation

/// A wire's end: the id of the node it feeds, and where the flow file names it.
public struct WireTarget: Sendable, Hashable {
    public var node: String
    public var location: SourceLocation
}

/// One node of a loaded, validated flow.
public struct NodeDefinition: Sendable {
    public var id: String
    public var type: String
    public var location: SourceLocation
    public var options: NodeOptions
    /// Output port → the nodes it feeds. `out` is `to:`, `errors` is `errors:`; ports of nodes with
    /// several outputs are named by their option's path (`otherwise`, `cases.0.to`).
    public var wires: [String: [WireTarget]]
    public var retry: RetryPolicy
    public var queueSize: Int

    public static let outPort = "out"
    public static let errorsPort = "errors"
}

/// A connection shared by several nodes (Node-RED's config nodes): `connections: {broker: {...}}`.
public struct ConnectionDefinition: Sendable {
    public var name: String
    public var type: String
    public var location: SourceLocation
    public var options: NodeOptions
}

/// A loaded, validated flow file.
public struct FlowDefinition: Sendable {
    public var id: String
    public var file: String
    public var description: String?
    public var tenant: String
    public var queueSize: Int
    public var nodes: [NodeDefinition]
    public var connections: [String: ConnectionDefinition]
    public var location: SourceLocation
    /// Every secret value of the file after substitution, for redaction.
    public var secretValues: Set<String>
    /// Hash of the file's text and the values substituted into it: a changed fingerprint means a changed flow.
    public var fingerprint: String

    public func node(_ id: String) -> NodeDefinition? { nodes.first { $0.id == id } }
}
