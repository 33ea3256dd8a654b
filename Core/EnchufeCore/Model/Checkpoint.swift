import Foundation

/// Where a node keeps its progress: one value per (tenant, flow, node, key).
public struct CheckpointKey: Sendable, Hashable {
    public var tenant: String
    public var flow: String
    public var node: String
    public var key: String

    public init(tenant: String, flow: String, node: String, key: String) {
        self.tenant = tenant
        self.flow = flow
        self.node = node
        self.key = key
    }
}

public struct Checkpoint: Sendable, Hashable {
    public var key: CheckpointKey
    public var value: String
    public var updatedAt: Date

    public init(key: CheckpointKey, value: String, updatedAt: Date) {
        self.key = key
        self.value = value
        self.updatedAt = updatedAt
    }
}

/// A value the store keeps under a name of its own, apart from the flows' checkpoints
/// (`NamedValueStore`): `namespace` says whose it is (`webhook/FLOW/NODE` for a webhook's used
/// signatures and idempotency keys, `datadis-ledger/ACCOUNT` for the queries an account sent),
/// `name` which value.
public struct NamedKey: Sendable, Hashable {
    public var tenant: String
    public var namespace: String
    public var name: String

    public init(tenant: String, namespace: String, name: String) {
        self.tenant = tenant
        self.namespace = namespace
        self.name = name
    }
}
