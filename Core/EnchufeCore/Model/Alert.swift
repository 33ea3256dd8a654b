import Foundation

/// Which alert: the `alert` node that keeps it (flow, node) and the readings it watches (series and
/// quantity) — one alert per series the node sees.
public struct AlertKey: Sendable, Hashable {
    public var tenant: String
    public var flow: String
    public var node: String
    public var series: String
    public var quantity: String

    public init(tenant: String, flow: String, node: String, series: String, quantity: String) {
        self.tenant = tenant
        self.flow = flow
        self.node = node
        self.series = series
        self.quantity = quantity
    }
}

/// An alert's state as the store keeps it, so that a restart or a second instance carries on from
/// it rather than raising the alert again. Times other than `updatedAt` are the readings' (data)
/// times, not the wall clock's.
public struct AlertState: Sendable, Hashable {
    public var key: AlertKey
    /// The node's `name`.
    public var name: String
    public var message: String
    public var raised: Bool
    /// When the alert was last raised or cleared (the start of the reading that did it).
    public var since: Date?
    /// Since when the condition for the other state has held without a break (nil: it does not).
    public var pendingSince: Date?
    /// The start and end of the latest reading weighed: readings up to `lastTs` are not weighed again.
    public var lastTs: Date?
    public var lastEnd: Date?
    /// The value of the reading that raised or cleared it.
    public var value: Double?
    /// Bumped by every save: a save names the version it read (`AlertStore.saveAlert`).
    public var version: Int
    public var updatedAt: Date

    public init(
        key: AlertKey, name: String, message: String, raised: Bool = false, since: Date? = nil, pendingSince: Date? = nil,
        lastTs: Date? = nil, lastEnd: Date? = nil, value: Double? = nil, version: Int = 0, updatedAt: Date
    ) {
        self.key = key
        self.name = name
        self.message = message
        self.raised = raised
        self.since = since
        self.pendingSince = pendingSince
        self.lastTs = lastTs
        self.lastEnd = lastEnd
        self.value = value
        self.version = version
        self.updatedAt = updatedAt
    }
}

/// One change of an alert's state: raised or cleared.
public struct AlertEvent: Sendable, Hashable {
    public var id: Int64
    public var key: AlertKey
    public var name: String
    public var message: String
    public var raised: Bool
    /// The start of the reading that raised or cleared it.
    public var at: Date
    /// Since when the condition had held (the start of the first reading of the run).
    public var since: Date
    public var value: Double
    public var recordedAt: Date

    public init(
        id: Int64 = 0, key: AlertKey, name: String, message: String, raised: Bool, at: Date, since: Date, value: Double,
        recordedAt: Date
    ) {
        self.id = id
        self.key = key
        self.name = name
        self.message = message
        self.raised = raised
        self.at = at
        self.since = since
        self.value = value
        self.recordedAt = recordedAt
    }

    public var state: String { raised ? "raised" : "cleared" }

    public var json: JSONValue {
        [
            "alert": .string(name), "state": .string(state), "message": .string(message),
            "series": .string(key.series), "quantity": .string(key.quantity), "value": .number(value),
            "at": .string(ISO8601.string(at)), "since": .string(ISO8601.string(since)),
            "flow": .string(key.flow), "node": .string(key.node),
        ]
    }
}
