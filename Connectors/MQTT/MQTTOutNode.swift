import EnchufeCore
import Foundation
import Logging
import Synchronization

/// `mqtt.out`: publishes each message (setpoints to batteries and EV chargers), and acknowledges it
/// upstream only once the broker confirmed it (QoS 1: PUBACK; QoS 2: PUBCOMP).
struct MQTTOutNode: RecordingSink {
    static let connection = RequiredOptionKey<String>("connection", .connection("mqtt.broker"), doc: "The broker (a `mqtt.broker` connection).")
    static let topic = RequiredOptionKey<JSONValue>("topic", .template, doc: "Topic to publish to.", example: "site/{payload.device}/setpoint")
    static let payload = OptionKey<JSONValue>("payload", .template, default: "{payload}", doc: "What to send.", example: "=msg.payload.kw * 1000")
    static let qos = OptionKey<MQTTQoS>("qos", default: .atLeastOnce, doc: "Publish QoS.")
    static let retain = OptionKey<Bool>("retain", default: false, doc: "Ask the broker to keep the last message of the topic for new subscribers.")
    static let batchSize = OptionKey<Int>("batch_size", default: 100, doc: "Most messages published before waiting for their confirmations.")
    static let connectTimeout = OptionKey<Duration>("connect_timeout", default: .seconds(10), doc: "How long to wait for the broker before counting it unavailable.")

    static let spec = NodeSpec(
        type: "mqtt.out", kind: .sink,
        summary: "Publishes messages to MQTT (topic templates, QoS, retain), confirmed before they are acknowledged",
        doc: """
            `topic` and `payload` are templates or Lua expressions over the message; a payload that is
            text is sent as it is, anything else as JSON (the default is the message's payload). The
            messages of a batch are published together and the batch is done when the broker has
            confirmed every one (for QoS 0: when they were sent). While the broker is unreachable the
            node waits and holds back its sources.
            """,
        options: [connection.spec, topic.spec, payload.spec, qos.spec, retain.spec, batchSize.spec, connectTimeout.spec] + LuaLimits.optionSpecs,
        example: """
            - id: setpoint
              type: mqtt.out
              connection: site-broker
              topic: "site/{payload.device}/setpoint"
              payload: "=msg.payload.kw"
              qos: 1
            """,
        external: true,
        check: { options in
            if let topic = options[Self.topic]?.stringValue, !topic.hasPrefix("="), topic.contains(where: { $0 == "+" || $0 == "#" }) {
                return [OptionProblem(option: "topic", "a topic to publish to cannot contain '+' or '#'")]
            }
            return []
        },
        make: { context in
            guard let connection = context.connection("connection") else { throw PermanentError("mqtt.out needs a connection") }
            return .sink(try MQTTOutNode(context, connection: connection))
        })

    let batching: Batching
    let topic: BoundTemplate
    let payload: BoundTemplate
    let qos: Int
    let retain: Bool
    let connectTimeout: Duration
    private let link: Link

    init(_ context: NodeBuildContext, connection: NodeOptions) throws {
        let options = context.options
        let expressions = NodeExpressions(limits: LuaLimits(options: options))
        topic = try expressions.bind(ValueTemplate.option(Self.topic.name, try options.required(Self.topic), in: options))
        payload = try expressions.bind(ValueTemplate.option(Self.payload.name, options[Self.payload], in: options))
        qos = options[Self.qos].level
        retain = options[Self.retain]
        batching = Batching(size: options[Self.batchSize], flushInterval: .zero)
        connectTimeout = options[Self.connectTimeout]
        link = Link(settings: MQTTBroker.settings(connection, for: context), logger: context.logger)
    }

    /// The topic and payload a message is published with.
    func publication(_ message: Message) throws -> (topic: String, payload: JSONValue) {
        let topicValue = try topic.value(for: message)
        guard case .string(let topicText) = topicValue, !topicText.isEmpty, !topicText.contains(where: { $0 == "+" || $0 == "#" }) else {
            throw PermanentError("mqtt.out: \(topicValue.jsonText()) is not a topic to publish to")
        }
        return (topicText, try payload.value(for: message))
    }

    func testRecord(_ message: Message) throws -> JSONValue {
        let (topic, payload) = try publication(message)
        return ["topic": .string(topic), "payload": payload, "qos": .number(Double(qos)), "retain": .bool(retain)]
    }

    /// The client is let go here, when the flow stops, after the last write (it is started on first
    /// use, so a flow starts whether or not the broker is up).
    func close(_ context: NodeContext) async throws {
        link.stop()
    }

    func write(_ batch: [Message], _ context: NodeContext) async throws {
        let publishes = try batch.map { message -> (String, [UInt8]) in
            let (topic, body) = try publication(message)
            if case .string(let text) = body { return (topic, Array(text.utf8)) }
            return (topic, Array(body.jsonText().utf8))
        }
        let client = try await link.connected(within: connectTimeout)
        let qos = self.qos, retain = self.retain
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (topic, bytes) in publishes {
                group.addTask { try await client.publish(topic: topic, payload: bytes, qos: qos, retain: retain) }
            }
            try await group.waitForAll()
        }
    }
}

/// The node's client, started on first use, and whether it is connected.
private final class Link: Sendable {
    let settings: MQTTSettings
    let logger: Logger
    private struct State {
        var client: MosquittoClient?
        var up = false
        var waiters: [UUID: CheckedContinuation<Bool, Never>] = [:]
    }
    private let state = Mutex(State())

    init(settings: MQTTSettings, logger: Logger) {
        self.settings = settings
        self.logger = logger
    }

    /// Disconnects and lets the client go (the node's `close`); a later write would start another.
    func stop() {
        let client = state.withLock { s -> MosquittoClient? in
            defer {
                s.client = nil
                s.up = false
            }
            return s.client
        }
        client?.stop()
    }

    /// The client once it is connected; `UnavailableError` if that takes longer than `timeout`.
    func connected(within timeout: Duration) async throws -> MosquittoClient {
        let client = try state.withLock { s -> MosquittoClient in
            if let c = s.client { return c }
            var handlers = MosquittoClient.Handlers()
            let logger = self.logger, settings = self.settings
            handlers.connection = { [weak self] _, up, reason in
                if !up { logger.warning("MQTT connection to \(settings.host):\(settings.port) lost: \(reason); reconnecting") }
                self?.set(up: up)
            }
            let c = try MosquittoClient(settings, handlers: handlers)
            try c.start()
            s.client = c
            return c
        }
        let id = UUID()
        let up = await withTaskGroup(of: Void.self) { group -> Bool in
            group.addTask {
                try? await Task.sleep(for: timeout)
                self.resume(id, with: false)
            }
            let up = await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
                let now = state.withLock { s -> Bool in
                    if s.up { return true }
                    s.waiters[id] = c
                    return false
                }
                if now { c.resume(returning: true) }
            }
            group.cancelAll()
            return up
        }
        guard up else {
            throw UnavailableError(service: "MQTT broker at \(settings.host):\(settings.port)", reason: "not connected within \(DurationText.format(timeout))")
        }
        return client
    }

    private func resume(_ id: UUID, with value: Bool) {
        state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(returning: value)
    }

    private func set(up: Bool) {
        let waiters = state.withLock { s -> [CheckedContinuation<Bool, Never>] in
            s.up = up
            guard up else { return [] }
            defer { s.waiters = [:] }
            return Array(s.waiters.values)
        }
        for w in waiters { w.resume(returning: true) }
    }
}
