import Foundation

/// A message that failed with no `errors` wire, kept with the reason and the original message.
public struct DeadLetter: Sendable, Hashable {
    public var id: Int64
    public var tenant: String
    public var flow: String
    public var node: String
    public var error: String
    public var message: JSONValue
    public var attempts: Int
    public var createdAt: Date
    public var replayedAt: Date?

    public init(
        id: Int64, tenant: String, flow: String, node: String, error: String, message: JSONValue, attempts: Int,
        createdAt: Date, replayedAt: Date? = nil
    ) {
        self.id = id
        self.tenant = tenant
        self.flow = flow
        self.node = node
        self.error = error
        self.message = message
        self.attempts = attempts
        self.createdAt = createdAt
        self.replayedAt = replayedAt
    }
}

public struct NewDeadLetter: Sendable {
    public var tenant: String
    public var flow: String
    public var node: String
    public var error: String
    public var message: JSONValue
    public var attempts: Int

    public init(tenant: String, flow: String, node: String, error: String, message: JSONValue, attempts: Int) {
        self.tenant = tenant
        self.flow = flow
        self.node = node
        self.error = error
        self.message = message
        self.attempts = attempts
    }
}
