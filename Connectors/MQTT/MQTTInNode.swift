import CoreMetrics
import EnchufeCore
import Foundation
import Logging
import Synchronization

/// `mqtt.in`: subscribes to topics and sends each message into the flow, at least once.
///
/// QoS 1/2 messages are written to the node's journal on the client's thread, a burst with one
/// `write(2)`, before their acknowledgements leave for the broker; a record leaves the journal once
/// everything derived from it is committed, and what is left is sent again when the node starts. At
/// most `max_pending` messages are in flight in the flow; beyond that the client's thread waits,
/// stops reading and the broker holds the rest (TCP backpressure). The client,
/// the journal and that bound are `MQTTSubscription`'s; the node converts and sends on.
struct MQTTInNode: TestInputSource {
    static let connection = RequiredOptionKey<String>("connection", .connection("mqtt.broker"), doc: "The broker (a `mqtt.broker` connection).")
    static let topics = RequiredOptionKey<[String]>("topics", doc: "Topic filters; `+` and `#` wildcards.", example: ["site/+/power"])
    static let qos = OptionKey<MQTTQoS>("qos", default: .atLeastOnce, doc: "Subscription QoS.")
    static let sharedGroup = OptionKey<String?>("shared_group", doc: "Subscribe as `$share/GROUP/TOPIC` (MQTT 5) so several hubs share the messages.")
    static let format = OptionKey<String>("format", .enumeration(["json", "number", "text", "raw"]), default: "json", doc: "How to read payloads.")
    static let journal = OptionKey<String>("journal", default: "var/journal", doc: "Folder of the journals (one subfolder per flow and node, and per `--instance` with a shared store).")
    static let journalSync = OptionKey<JournalSync>("journal_sync", default: .interval, doc: "When the journal is fsynced: at every write (a burst of messages, before their acknowledgements), at most every 100 ms, or never (the OS decides).")
    static let maxPending = OptionKey<Int>("max_pending", default: 10_000, doc: "Most messages in flight in the flow before the subscription waits.")

    static let spec = NodeSpec(
        type: "mqtt.in", kind: .source,
        summary: "Subscribes to MQTT topics (wildcards, QoS 0/1/2, shared subscriptions) and maps payloads to readings",
        doc: """
            Payload `format`: `json`, `number`, `text` (UTF-8) or `raw` (the bytes, base64). The message's
            topic is the MQTT topic (`{topic.2}` is its second level); `attributes` carry `qos`,
            `retain` and `received_at`. With `readings: {...}` (the options of the `readings` node)
            each message also carries readings; `ts` defaults to `{attributes.received_at}`.
            A payload that does not parse, or that the mapping cannot turn into readings, goes to the
            dead letters with the topic, the raw payload and the reason; the subscription goes on.
            Delivery: QoS 1/2 messages are journaled (`journal`, one folder per flow and node) before
            the hub acknowledges them to the broker, and acknowledged upstream of the journal only once the flow
            committed them; after a crash or `kill -9` the journal is replayed. `journal_sync:
            always` also survives a power loss, at the cost of one fsync per burst of messages; the default
            `interval` fsyncs at most every 100 ms, so a power loss can lose the last 100 ms.
            With `shared_group` (MQTT 5) the subscription is `$share/GROUP/TOPIC`: the broker spreads
            the messages over every hub subscribed with that group. With a shared (PostgreSQL) store
            and `--instance ID` the client id ends with the id and the journal has a folder per
            instance, so one flow file serves every instance.
            """,
        options: [
            connection.spec, topics.spec, qos.spec, sharedGroup.spec, format.spec,
            OptionSpec("readings", .object(ReadingsMapping.optionSpecs), doc: "Map each message to readings (the `readings` node's options)."),
            journal.spec, journalSync.spec, maxPending.spec,
        ] + LuaLimits.optionSpecs,
        example: """
            - id: telemetry
              type: mqtt.in
              connection: site-broker
              topics: [site/+/power]
              qos: 1
              readings:
                series: "device:{topic.2}"
                quantity: power
                value: "=msg.payload.w / 1000"
                unit: kW
              to: [store]
            """,
        external: true, everyInstance: true,
        check: { options in
            var problems: [OptionProblem] = []
            for (i, topic) in (options[Self.topics] ?? []).enumerated() {
                if let problem = MQTTInNode.filterProblem(topic) { problems.append(OptionProblem(option: "topics.\(i)", problem)) }
            }
            if let group = options[Self.sharedGroup], group.isEmpty || group.contains(where: { "/+#".contains($0) }) {
                problems.append(OptionProblem(option: "shared_group", "must be a name without '/', '+' or '#'"))
            }
            if options[Self.maxPending] < 1 { problems.append(OptionProblem(option: "max_pending", "must be at least 1")) }
            return problems
        },
        make: { context in
            guard let connection = context.connection("connection") else { throw PermanentError("mqtt.in needs a connection") }
            return .source(try MQTTInNode(context, connection: connection))
        })

    /// What is wrong with a topic filter, if anything (MQTT 3.1.1 §4.7).
    static func filterProblem(_ filter: String) -> String? {
        if filter.isEmpty { return "a topic filter cannot be empty" }
        let levels = filter.split(separator: "/", omittingEmptySubsequences: false)
        for (i, level) in levels.enumerated() {
            if level.contains("#") && (level != "#" || i != levels.count - 1) { return "'#' must be a whole level, and the last one" }
            if level.contains("+") && level != "+" { return "'+' must be a whole level" }
        }
        return nil
    }

    let settings: MQTTSettings
    let filters: [String]
    let qos: Int
    let format: String
    let mapping: ReadingsMapping?
    let journalDirectory: URL
    /// The folder of this node's journals, one per instance below it when `instance` is set.
    let journalBase: URL
    /// This process's `--instance` with a shared store (then clients and journals are per instance).
    let instance: String?
    let sync: MessageJournal.Sync
    let maxPending: Int
    let received: CoreMetrics.Counter
    let malformed: CoreMetrics.Counter
    let connected: CoreMetrics.Gauge

    init(_ context: NodeBuildContext, connection: NodeOptions) throws {
        let options = context.options
        settings = MQTTBroker.settings(connection, for: context)
        let group = options[Self.sharedGroup]
        filters = try options.required(Self.topics).map { topic in group.map { "$share/\($0)/\(topic)" } ?? topic }
        qos = options[Self.qos].level
        format = options[Self.format]
        mapping = try options.object("readings").map {
            try ReadingsMapping($0, expressions: NodeExpressions(limits: LuaLimits(options: options)), defaults: ["ts": "{attributes.received_at}"])
        }
        // Each instance journals what it received in a folder of its own.
        let journalFolder = URL(fileURLWithPath: options[Self.journal]).appendingPathComponent(context.flow).appendingPathComponent(context.node)
        journalDirectory = context.instance.map { journalFolder.appendingPathComponent($0) } ?? journalFolder
        journalBase = journalFolder
        instance = context.instance
        sync = options[Self.journalSync].sync
        maxPending = options[Self.maxPending]
        let labels = [("flow", context.flow), ("node", context.node)]
        received = CoreMetrics.Counter(label: "enchufe_mqtt_messages_received_total", dimensions: labels, factory: context.metrics.factory)
        malformed = CoreMetrics.Counter(label: "enchufe_mqtt_messages_malformed_total", dimensions: labels, factory: context.metrics.factory)
        connected = CoreMetrics.Gauge(label: "enchufe_mqtt_connected", dimensions: labels, factory: context.metrics.factory)
    }

    func run(_ context: SourceContext) async throws {
        let logger = context.logger
        let subscription = try MQTTSubscription(
            settings, journalDirectory: journalDirectory, sync: sync, capacity: maxPending,
            onConnect: .subscribe(filters, qos: qos), logger: logger)
        defer {
            subscription.stop()
            connected.record(0)
        }
        let replay = try subscription.recovered(logger: logger)
        if !replay.isEmpty { logger.notice("replaying \(replay.count) journaled message(s) not committed before the last stop") }
        await handle(replay, from: subscription, context)
        try subscription.start()
        var connection = ConnectionLog(broker: "\(settings.host):\(settings.port)", filters: filters, logger: logger)
        await withTaskCancellationHandler {
            for await burst in subscription {
                for event in burst.events {
                    if let up = connection.report(event) { connected.record(up ? 1 : 0) }
                }
                received.increment(by: Int64(burst.entries.count))
                await handle(burst.entries, from: subscription, context)
            }
        } onCancel: {
            subscription.finish()
        }
    }

    /// What `mqtt.in` logs of its connection: each failure once, not at every retry.
    struct ConnectionLog {
        let broker: String
        let filters: [String]
        let logger: Logger
        var everConnected = false
        var lastFailure: String?

        /// Logs the event; whether the connection is now up, if the event says.
        mutating func report(_ event: MessageInbox.Event) -> Bool? {
            switch event {
            case .connected:
                (everConnected, lastFailure) = (true, nil)
                logger.info("MQTT connected to \(broker); subscribing to \(filters.joined(separator: ", "))")
                return true
            case .disconnected(let reason):
                defer { lastFailure = reason }
                guard lastFailure != reason else { return false }
                if everConnected {
                    logger.warning("MQTT connection to \(broker) lost: \(reason); reconnecting")
                } else {
                    logger.warning("cannot reach the MQTT broker at \(broker): \(reason); retrying in the background (the other flows run)")
                }
                return false
            case .subscribed(let granted):
                if granted.contains(where: { $0 >= 128 }) { logger.error("the broker refused a subscription (granted QoS \(granted))") }
                return nil
            }
        }
    }

    /// Sends a burst of messages into the flow as one batch; each one is settled with the
    /// subscription when the flow committed it. A payload that cannot be read goes to the dead
    /// letters (and counts as committed). `settled` is called once for each message, whatever
    /// became of it.
    func handle(
        _ burst: [MessageInbox.Entry], from subscription: MQTTSubscription, _ context: SourceContext,
        settled: @escaping @Sendable () -> Void = {}
    ) async {
        guard !burst.isEmpty else { return }
        var messages: [Message] = []
        // The journal records of the messages sent: all a settlement needs (not the topic and payload).
        var sent: [UInt64] = []
        messages.reserveCapacity(burst.count)
        sent.reserveCapacity(burst.count)
        var receipt = Receipt(at: context.clock.now())
        for entry in burst {
            do {
                messages.append(try message(entry.message, receipt: &receipt))
                sent.append(entry.seq)
            } catch {
                let stored = await deadLetter(entry, reason: "\(error)", context)
                subscription.settle(entry.seq, committed: stored)
                settled()
            }
        }
        guard !messages.isEmpty else { return }
        do {
            let deliveries = try await context.emit(each: messages)
            for (seq, delivery) in zip(sent, deliveries) {
                delivery.onSettled { outcome in
                    subscription.settle(seq, committed: outcome == .committed)
                    settled()
                }
            }
        } catch {
            // The flow is stopping: the records stay in the journal for the next start.
            subscription.abandon(messages.count)
            for _ in messages { settled() }
        }
    }

    /// A message whose payload cannot be read, to the dead letters with why; whether it was stored
    /// (only then may its journal record go).
    private func deadLetter(_ entry: MessageInbox.Entry, reason: String, _ context: SourceContext) async -> Bool {
        malformed.increment()
        context.logger.warning("malformed message on \(entry.message.topic): \(reason)")
        do {
            try await context.node.deadLetter(JournaledMessage.deadLetter(entry.message), reason: reason)
            return true
        } catch {
            context.logger.error("the malformed message could not be dead-lettered (it stays in the journal): \(error)")
            return false
        }
    }

    /// A flow test's input as if it had arrived on its topic: the payload is sent as the broker would
    /// carry it (JSON text, a number's text, the text itself) and read back in `format`.
    func message(fromTestInput input: Message, at now: Date) throws -> Message {
        let bytes: [UInt8]
        switch input.payload {
        case .string(let text) where format != "json": bytes = Array(text.utf8)
        case let other: bytes = Array((format == "number" ? other.templateText : other.jsonText()).utf8)
        }
        var message = try self.message(MQTTMessage(topic: input.topic ?? "", payload: bytes, qos: qos), receivedAt: now)
        message.attributes.merge(input.attributes) { $1 }
        return message
    }

    /// An MQTT message as a flow message, in `format`, with its readings if mapped.
    func message(_ mqtt: MQTTMessage, receivedAt: Date) throws -> Message {
        var receipt = Receipt(at: receivedAt)
        return try message(mqtt, receipt: &receipt)
    }

    /// The attributes of the messages of a burst, taken at one instant: `qos`, `retain` and
    /// `received_at`, one dictionary for each QoS and retain flag, shared (copy-on-write) by the
    /// messages instead of three insertions and an ISO-8601 text for each.
    struct Receipt {
        let receivedAt: String
        private var made: [[String: String]?] = Array(repeating: nil, count: 6)

        init(at date: Date) { receivedAt = ISO8601.string(date) }

        mutating func attributes(qos: Int, retain: Bool) -> [String: String] {
            let i = (0...2).contains(qos) ? qos * 2 + (retain ? 1 : 0) : nil
            if let i, let known = made[i] { return known }
            let attributes = ["qos": String(qos), "retain": String(retain), "received_at": receivedAt]
            guard let i else { return attributes }
            made[i] = attributes
            return attributes
        }
    }

    func message(_ mqtt: MQTTMessage, receipt: inout Receipt) throws -> Message {
        let payload: JSONValue
        switch format {
        case "raw":
            payload = .string(Data(mqtt.payload).base64EncodedString())
        case "json":
            // Read from the bytes (the reader checks UTF-8 itself); the problem is told as before.
            do {
                payload = try JSONReader.parse(mqtt.payload)
            } catch {
                guard String(validating: mqtt.payload, as: UTF8.self) != nil else {
                    throw PermanentError("the payload is not UTF-8 text (\(mqtt.payload.count) bytes)")
                }
                throw PermanentError("the payload is not JSON: \(error)")
            }
        default:
            guard let text = String(validating: mqtt.payload, as: UTF8.self) else {
                throw PermanentError("the payload is not UTF-8 text (\(mqtt.payload.count) bytes)")
            }
            if format == "number" {
                guard let n = Double(text.trimmingCharacters(in: .whitespacesAndNewlines)), n.isFinite else {
                    throw PermanentError("the payload '\(text.prefix(80))' is not a number")
                }
                payload = .number(n)
            } else {
                payload = .string(text)
            }
        }
        var message = Message(payload: payload, topic: mqtt.topic, attributes: receipt.attributes(qos: mqtt.qos, retain: mqtt.retain))
        // Through the optional, not `if let`: that would copy (retain and release) every template.
        if let readings = try mapping?.readings(from: message) { message.readings = readings }
        return message
    }
}

/// How an MQTT message is kept in the journal: topic, QoS, retain flag and payload.
enum JournaledMessage {
    static func encode(_ m: MQTTMessage) -> [UInt8] {
        var bytes: [UInt8] = []
        encode(m, into: &bytes)
        return bytes
    }

    /// Appends the message's record to `bytes`.
    static func encode(_ m: MQTTMessage, into bytes: inout [UInt8]) {
        let topicLength = m.topic.utf8.count
        bytes.reserveCapacity(bytes.count + 4 + topicLength + m.payload.count)
        bytes.append(UInt8(truncatingIfNeeded: topicLength >> 8))
        bytes.append(UInt8(truncatingIfNeeded: topicLength))
        bytes += m.topic.utf8
        bytes.append(UInt8(m.qos))
        bytes.append(m.retain ? 1 : 0)
        bytes += m.payload
    }

    static func decode(_ bytes: [UInt8]) -> MQTTMessage? {
        guard bytes.count >= 4 else { return nil }
        let length = Int(bytes[0]) << 8 | Int(bytes[1])
        guard bytes.count >= 4 + length, let topic = String(validating: bytes[2..<(2 + length)], as: UTF8.self) else { return nil }
        return MQTTMessage(
            topic: topic, payload: Array(bytes[(4 + length)...]), qos: Int(bytes[2 + length]), retain: bytes[3 + length] != 0)
    }

    /// A dead letter's copy of the message: its topic and payload, as text when it is UTF-8.
    static func deadLetter(_ m: MQTTMessage) -> JSONValue {
        var fields: [String: JSONValue] = ["topic": .string(m.topic), "qos": .number(Double(m.qos))]
        if let text = String(validating: m.payload, as: UTF8.self) {
            fields["payload"] = .string(text)
        } else {
            fields["payload_base64"] = .string(Data(m.payload).base64EncodedString())
        }
        return .object(fields)
    }
}

/// The `journal_sync` option: `interval` fsyncs at most every 100 ms.
enum JournalSync: String, OptionEnumeration {
    case always, interval, never

    var sync: MessageJournal.Sync {
        switch self {
        case .always: .always
        case .interval: .interval(.milliseconds(100))
        case .never: .never
        }
    }
}
