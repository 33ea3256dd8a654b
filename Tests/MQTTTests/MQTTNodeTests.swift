import EnchufeCore
import Foundation
import Logging
import MQTT
import Synchronization
import TestSupport
import Testing

@Suite struct MQTTNodeTests {
    static let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// A hub running `yaml`; with `instance`, as one of several instances sharing a store.
    func hub(_ yaml: String, store: any Store, instance: String? = nil) throws -> Hub {
        let registry = NodeRegistry(CoreNodes.specs + MQTTModule.specs)
        let (flow, diagnostics) = FlowLoader(registry: registry, environment: [:]).load(text: yaml, file: "mqtt.yaml")
        guard let flow, diagnostics.isEmpty else { throw MQTTTestFailure(description: "\(diagnostics)") }
        var environment = EngineEnvironment(store: store, logger: Self.quiet)
        if let instance {
            environment.instance = instance
            environment.nodeInstance = instance
            environment.leases = true
        }
        return Hub(flows: [flow], registry: registry, environment: environment)
    }

    func publisher(_ broker: MosquittoServer) async throws -> MosquittoClient {
        var settings = MQTTSettings(port: broker.port, clientID: "publisher-\(UUID().uuidString.prefix(8))")
        settings.cleanSession = true
        var handlers = MosquittoClient.Handlers()
        let inbox = Inbox()
        handlers.connection = { _, up, _ in if up { inbox.connected() } }
        let client = try MosquittoClient(settings, handlers: handlers)
        try client.start()
        await inbox.waitFor(connections: 1)
        return client
    }

    /// Polls the store until `condition` holds (bounded: a failing hub fails the test, it does not hang it).
    func until(_ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            await Task.yield()
        }
        return try await condition()
    }

    @Test func telemetryBecomesReadingsAndAMalformedPayloadIsDeadLetteredWithoutStoppingTheSubscription() async throws {
        let broker = try await MosquittoServer.shared()
        let store = try SQLiteStore(url: "sqlite::memory:")
        try await store.migrate()
        let journal = FileManager.default.temporaryDirectory.appendingPathComponent("enchufe-journal-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: journal) }
        let root = "t\(UUID().uuidString.prefix(8))"  // the broker is shared: topics of this test only
        let hub = try hub("""
            flow: telemetry
            tenant: demo
            connections:
              broker: { type: mqtt.broker, port: \(broker.port), client_id: "t-\(UUID().uuidString.prefix(8))" }
            nodes:
              - id: devices
                type: mqtt.in
                connection: broker
                topics: [\(root)/site/+/power]
                journal: \(journal.path)
                readings:
                  series: "device:{topic.3}"
                  quantity: power
                  ts: "{payload.ts}"
                  value: "=msg.payload.w / 1000"
                  unit: kW
                to: [store]
              - { id: store, type: store.readings, flush_interval: 10ms }
            """, store: store)
        let running = Task { await hub.runFlows() }
        defer { hub.stop() }
        let publisher = try await publisher(broker)
        defer { publisher.stop() }

        // Publish until the subscription is in place (the first message proves it), then the rest.
        let ts = "2026-03-29T10:00:00Z"
        let subscribed = try await until {
            try await publisher.publish(topic: "\(root)/site/probe/power", payload: Array(#"{"ts":"\#(ts)","w":1}"#.utf8), qos: 1, retain: false)
            return try await !store.readings(ReadingQuery(tenant: "demo", series: ["device:probe"])).isEmpty
        }
        #expect(subscribed)
        try await publisher.publish(topic: "\(root)/site/inv-07/power", payload: Array(#"{"ts":"\#(ts)","w":1250}"#.utf8), qos: 1, retain: false)
        try await publisher.publish(topic: "\(root)/site/inv-08/power", payload: Array("not json".utf8), qos: 1, retain: false)
        try await publisher.publish(topic: "\(root)/site/inv-09/power", payload: Array(#"{"ts":"\#(ts)","w":-300}"#.utf8), qos: 1, retain: false)

        #expect(try await until { try await store.readings(ReadingQuery(tenant: "demo", series: ["device:inv-09"])).count == 1 })
        let stored = try await store.readings(ReadingQuery(tenant: "demo", series: ["device:inv-07", "device:inv-09"]))
        #expect(stored.map(\.reading.value) == [1.25, -0.3])
        #expect(stored.first?.reading.unit == "kW")
        #expect(stored.first?.reading.source == "telemetry/devices")
        let letters = try await store.deadLetters(tenant: "demo", limit: 10)
        #expect(letters.count == 1)
        #expect(letters.first?.message["topic"] == .string("\(root)/site/inv-08/power"))
        #expect(letters.first?.message["payload"] == "not json")
        #expect(letters.first?.error.contains("not JSON") == true)
        hub.stop()
        await running.value
    }

    @Test func mqttOutPublishesTemplatedTopicsAndPayloads() async throws {
        let broker = try await MosquittoServer.shared()
        let store = try SQLiteStore(url: "sqlite::memory:")
        try await store.migrate()
        let inbox = Inbox()
        let root = "t\(UUID().uuidString.prefix(8))"
        var settings = MQTTSettings(port: broker.port, clientID: "watcher-\(UUID().uuidString.prefix(8))")
        settings.cleanSession = true
        var watcherHandlers = MosquittoClient.Handlers()
        watcherHandlers.message = { inbox.add($0) }
        watcherHandlers.subscribed = { _ in inbox.subscribed() }
        watcherHandlers.connection = { watcher, up, _ in if up { try? watcher.subscribe("\(root)/chargers/+/setpoint", qos: 1) } }
        let watcher = try MosquittoClient(settings, handlers: watcherHandlers)
        try watcher.start()
        defer { watcher.stop() }
        await inbox.waitFor(subscriptions: 1)

        let hub = try hub("""
            flow: setpoints
            connections:
              broker: { type: mqtt.broker, port: \(broker.port), client_id: "s-\(UUID().uuidString.prefix(8))" }
            nodes:
              - { id: tick, type: schedule, every: 1h, payload: { charger: ev-3, kw: 7.4 }, to: [setpoint] }
              - id: setpoint
                type: mqtt.out
                connection: broker
                topic: "\(root)/chargers/{payload.charger}/setpoint"
                payload: "=msg.payload.kw * 1000"
                qos: 1
            """, store: store)
        let running = Task { await hub.runFlows() }
        await inbox.waitFor(messages: 1)
        hub.stop()
        await running.value
        #expect(inbox.messages.first?.topic == "\(root)/chargers/ev-3/setpoint")
        #expect(inbox.messages.first.map { String(decoding: $0.payload, as: UTF8.self) } == "7400")
        #expect(inbox.messages.first?.qos == 1)
    }
}

extension MQTTNodeTests {
    /// A telemetry flow: every message on ROOT/+/power becomes one reading (ts and value from the payload).
    func telemetryFlow(_ broker: MosquittoServer, root: String, clientID: String, journal: URL, group: String? = nil) -> String {
        """
        flow: telemetry
        tenant: demo
        connections:
          broker: { type: mqtt.broker, port: \(broker.port), client_id: \(clientID) }
        nodes:
          - id: devices
            type: mqtt.in
            connection: broker
            topics: [\(root)/+/power]
            \(group.map { "shared_group: \($0)" } ?? "")
            journal: \(journal.path)
            readings: { series: "device:{topic.2}", quantity: power, ts: "{payload.ts}", ts_format: epoch_s, value: "{payload.w}", unit: W }
            to: [store]
          - { id: store, type: store.readings, flush_interval: 10ms }
        """
    }

    func payload(_ i: Int) -> [UInt8] { Array(#"{"ts": \#(1_774_742_400 + i), "w": \#(i)}"#.utf8) }

    func count(_ store: any Store) async throws -> Int {
        try await store.readings(ReadingQuery(tenant: "demo")).filter { $0.reading.series != "device:probe" }.count
    }

    /// Publishes probes on ROOT/probe/power until `stores` all saw one (the subscriptions are in place).
    func probeUntilSubscribed(_ publisher: MosquittoClient, root: String, stores: [any Store]) async throws -> Bool {
        var i = 0
        return try await until {
            i += 1
            try await publisher.publish(topic: "\(root)/probe/power", payload: payload(-i), qos: 1, retain: false)
            for store in stores where try await store.readings(ReadingQuery(tenant: "demo", series: ["device:probe"])).isEmpty { return false }
            return true
        }
    }

    /// Two instances of one flow file — the same client id and journal folder written in it — each
    /// connect with a client id of their own and journal in a folder of their own.
    @Test func aSharedGroupSplitsTheMessagesBetweenTwoInstancesOfOneFlowFile() async throws {
        let broker = try await MosquittoServer.shared()
        let root = "t\(UUID().uuidString.prefix(8))"
        let journal = FileManager.default.temporaryDirectory.appendingPathComponent("enchufe-journal-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: journal) }
        var stores: [SQLiteStore] = []
        var hubs: [Hub] = []
        let flow = telemetryFlow(broker, root: root, clientID: "\(root)-hub", journal: journal, group: "hubs")
        for n in 0..<2 {
            let store = try SQLiteStore(url: "sqlite::memory:")
            try await store.migrate()
            stores.append(store)
            hubs.append(try hub(flow, store: store, instance: "i\(n)"))
        }
        let running = hubs.map { hub in Task { await hub.runFlows() } }
        let publisher = try await publisher(broker)
        defer { publisher.stop() }
        #expect(try await probeUntilSubscribed(publisher, root: root, stores: stores))

        let total = 1_000
        for i in 0..<total { try await publisher.publish(topic: "\(root)/inv-\(i % 10)/power", payload: payload(i), qos: 1, retain: false) }
        #expect(try await until { try await count(stores[0]) + count(stores[1]) >= total })
        let (a, b) = (try await count(stores[0]), try await count(stores[1]))
        #expect(a + b == total, "each message went to exactly one hub")
        #expect(a > 0 && b > 0, "both hubs got messages: \(a) and \(b)")
        for hub in hubs { hub.stop() }
        for task in running { await task.value }
        let folders = try FileManager.default.contentsOfDirectory(atPath: journal.appendingPathComponent("telemetry/devices").path).sorted()
        #expect(folders == ["i0", "i1"], "a journal folder per instance")
    }

    @Test func aBrokerRestartLosesNothingOfAPersistentSession() async throws {
        let broker = try MosquittoServer.start()
        defer { broker.destroy() }
        let root = "t\(UUID().uuidString.prefix(8))"
        let journal = FileManager.default.temporaryDirectory.appendingPathComponent("enchufe-journal-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: journal) }
        let store = try SQLiteStore(url: "sqlite::memory:")
        try await store.migrate()
        let hub = try hub(telemetryFlow(broker, root: root, clientID: "\(root)-hub", journal: journal), store: store)
        let running = Task { await hub.runFlows() }
        var publisher = try await publisher(broker)
        #expect(try await probeUntilSubscribed(publisher, root: root, stores: [store]))

        for i in 0..<500 { try await publisher.publish(topic: "\(root)/inv-\(i % 10)/power", payload: payload(i), qos: 1, retain: false) }
        publisher.stop()
        try broker.stop()
        try broker.start()
        // Published before the hub is back: the broker keeps them for the hub's session.
        publisher = try await self.publisher(broker)
        for i in 500..<1_000 { try await publisher.publish(topic: "\(root)/inv-\(i % 10)/power", payload: payload(i), qos: 1, retain: false) }
        publisher.stop()
        #expect(try await until { try await count(store) >= 1_000 })
        let stored = try await store.readings(ReadingQuery(tenant: "demo")).filter { $0.reading.series != "device:probe" }
        #expect(stored.count == 1_000)
        #expect(Set(stored.map(\.reading.value)).count == 1_000)
        #expect(stored.allSatisfy { $0.revision == 1 })
        hub.stop()
        await running.value
    }
}

struct MQTTTestFailure: Error, CustomStringConvertible { var description: String }
