import Foundation

/// An API key as stored: only the hash of the key itself.
public struct APIKeyRecord: Sendable, Hashable {
    public var id: String
    public var tenant: String
    public var name: String
    public var scopes: [String]
    public var hash: String
    public var createdAt: Date
    public var revokedAt: Date?
    public var lastUsedAt: Date?

    public init(id: String, tenant: String, name: String, scopes: [String], hash: String, createdAt: Date, revokedAt: Date? = nil, lastUsedAt: Date? = nil) {
        self.id = id
        self.tenant = tenant
        self.name = name
        self.scopes = scopes
        self.hash = hash
        self.createdAt = createdAt
        self.revokedAt = revokedAt
        self.lastUsedAt = lastUsedAt
    }
}

public struct AuditEntry: Sendable, Hashable {
    public var id: Int64
    public var at: Date
    public var tenant: String
    /// An API key id, `cli`, or a flow/node.
    public var actor: String
    public var action: String
    public var detail: JSONValue

    public init(id: Int64, at: Date, tenant: String, actor: String, action: String, detail: JSONValue) {
        self.id = id
        self.at = at
        self.tenant = tenant
        self.actor = actor
        self.action = action
        self.detail = detail
    }
}
