import Foundation

/// What travels along a wire: a plain object a person can read (Node-RED's `msg`), plus the
/// canonical readings it carries, if any.
public struct Message: Sendable {
    public var payload: JSONValue
    public var topic: String?
    public var attributes: [String: String]
    public var readings: [Reading]
    /// Tracks the source input this message derives from, so the source learns when it is committed.
    public internal(set) var delivery: Delivery?
    /// The lease of the singleton source it derives from: what nodes do with it (a pull's
    /// checkpoints) is fenced with it, so an instance that lost the lease commits none of it.
    public internal(set) var lease: Lease?

    public init(
        payload: JSONValue = .null, topic: String? = nil, attributes: [String: String] = [:],
        readings: [Reading] = []
    ) {
        self.payload = payload
        self.topic = topic
        self.attributes = attributes
        self.readings = readings
        self.delivery = nil
        self.lease = nil
    }

    /// A new message derived from this one: it keeps this one's delivery, so a source's
    /// acknowledgement waits for it too.
    public func derived(
        payload: JSONValue? = nil, topic: String? = nil, attributes: [String: String]? = nil,
        readings: [Reading]? = nil
    ) -> Message {
        var m = self
        if let payload { m.payload = payload }
        if let topic { m.topic = topic }
        if let attributes { m.attributes = attributes }
        if let readings { m.readings = readings }
        return m
    }

    /// The message as JSON: what `tap`, the log sink and the dead-letter store show.
    public var json: JSONValue {
        var o: [String: JSONValue] = ["payload": payload]
        if let topic { o["topic"] = .string(topic) }
        if !attributes.isEmpty { o["attributes"] = .object(attributes.mapValues(JSONValue.string)) }
        if !readings.isEmpty { o["readings"] = .array(readings.map(\.json)) }
        return .object(o)
    }

    public init(json: JSONValue) {
        self.init(
            payload: json["payload"] ?? .null,
            topic: json["topic"]?.stringValue,
            attributes: json["attributes"]?.objectValue?.compactMapValues(\.stringValue) ?? [:],
            readings: json["readings"]?.arrayValue?.compactMap(Reading.init(json:)) ?? [])
    }
}
