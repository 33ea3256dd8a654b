import Foundation

/// What travels along a wire: a plain object a person can read (Node-RED's `msg`), plus the
/// canonical readings it carries, if any.
///
/// Its fields live in one shared box, copied on the first change of a copy that is not alone
/// (copy on write): a message passed from node to node or held in a batch costs one reference,
/// not one for each of its fields, and a node that changes the only copy changes it where it lies.
public struct Message: Sendable {
    private var box: Box

    public var payload: JSONValue {
        get { box.payload }
        _modify {
            unshare()
            yield &box.payload
        }
    }

    public var topic: String? {
        get { box.topic }
        _modify {
            unshare()
            yield &box.topic
        }
    }

    public var attributes: [String: String] {
        get { box.attributes }
        _modify {
            unshare()
            yield &box.attributes
        }
    }

    public var readings: [Reading] {
        get { box.readings }
        _modify {
            unshare()
            yield &box.readings
        }
    }

    /// Tracks the source input this message derives from, so the source learns when it is committed.
    public internal(set) var delivery: Delivery? {
        get { box.delivery }
        set {
            unshare()
            box.delivery = newValue
        }
    }

    /// The lease of the singleton source it derives from: what nodes do with it (a pull's
    /// checkpoints) is fenced with it, so an instance that lost the lease commits none of it.
    public internal(set) var lease: Lease? {
        get { box.lease }
        set {
            unshare()
            box.lease = newValue
        }
    }

    public init(
        payload: JSONValue = .null, topic: String? = nil, attributes: [String: String] = [:],
        readings: [Reading] = []
    ) {
        box = Box(payload: payload, topic: topic, attributes: attributes, readings: readings, delivery: nil, lease: nil)
    }

    private mutating func unshare() {
        if !isKnownUniquelyReferenced(&box) { box = box.copy() }
    }

    /// The fields. Changed only through a `Message` that holds the only reference (`unshare`),
    /// so no two threads ever see a change to one box, and no two accesses to a field overlap: the
    /// runtime's exclusivity checks (a call into the runtime for every read and write of a class's
    /// field: about 0.6 % of the hub's samples on the MQTT path came from these fields, of 1.6 % for
    /// all such checks) are left out for them.
    private final class Box: @unchecked Sendable {
        @exclusivity(unchecked) var payload: JSONValue
        @exclusivity(unchecked) var topic: String?
        @exclusivity(unchecked) var attributes: [String: String]
        @exclusivity(unchecked) var readings: [Reading]
        @exclusivity(unchecked) var delivery: Delivery?
        @exclusivity(unchecked) var lease: Lease?

        init(
            payload: JSONValue, topic: String?, attributes: [String: String], readings: [Reading], delivery: Delivery?,
            lease: Lease?
        ) {
            self.payload = payload
            self.topic = topic
            self.attributes = attributes
            self.readings = readings
            self.delivery = delivery
            self.lease = lease
        }

        func copy() -> Box {
            Box(payload: payload, topic: topic, attributes: attributes, readings: readings, delivery: delivery, lease: lease)
        }
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
