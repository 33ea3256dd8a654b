// mqtt-to-postgres: QoS 1 JSON telemetry from a real Mosquitto into PostgreSQL. In the same run:
// (a) the broker's own delivery rate to a do-nothing subscriber (`mosquitto_sub -q 1 > /dev/null`),
// (b) a Python peer written the way an integrator would (paho-mqtt + psycopg, batched COPY),
// (c) Enchufe: `mqtt.in → store.readings` on PostgreSQL. Each is timed from the first publish until
// it has consumed (a) or stored (b, c) every message.
import EnchufeCore
import Foundation
import Logging
import MQTT
import Postgres
import TestSupport

func mqttToPostgresBenchmark(messages total: Int, python: String, peerScript: String) async throws {
    let pg = try PostgresServer.start(durable: true)
    defer { pg.destroy() }
    let broker = try MosquittoServer.start()
    defer { broker.destroy() }
    let url = try pg.createDatabase(prefix: "bench")
    let database = PostgresServer.database(in: url)
    let quiet = Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() }
    let store = try PostgresStore(url: url, logger: quiet)
    try await store.migrate()
    try pg.psql("CREATE TABLE python_readings (LIKE readings INCLUDING ALL)", database: database)
    print("mqtt-to-postgres: \(total) QoS 1 JSON messages, one reading each; Mosquitto and PostgreSQL (fsync on) on loopback")

    var settings = MQTTSettings(port: broker.port, clientID: "bench-publisher")
    settings.cleanSession = true
    settings.inflight = 1000
    let publisher = try MosquittoClient(settings)
    let up = AsyncStream<Void>.makeStream()
    publisher.onConnection = { connected, _ in if connected { up.continuation.yield() } }
    try publisher.start()
    for await _ in up.stream { break }
    defer { publisher.stop() }

    func payload(_ i: Int) -> [UInt8] { Array(#"{"ts": \#(1_774_742_400 + i), "w": \#(i % 5000)}"#.utf8) }
    /// Publishes every message, 1,000 confirmations in flight at a time.
    func publishAll(_ root: String) async throws {
        var next = 0
        while next < total {
            let end = min(total, next + 1000)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in next..<end {
                    group.addTask { try await publisher.publish(topic: "\(root)/dev-\(i % 500)/telemetry", payload: payload(i), qos: 1, retain: false) }
                }
                try await group.waitForAll()
            }
            next = end
        }
    }
    func rows(_ table: String) -> Int { Int((try? pg.psql("SELECT count(*) FROM \(table)", database: database)) ?? "") ?? 0 }
    /// Publishes probes (negative timestamps) until the consumer wrote one: its subscription is in place.
    func probe(_ root: String, table: String) async throws -> Int {
        var probes = 0
        while rows(table) == 0 {
            probes += 1
            try await publisher.publish(topic: "\(root)/probe/telemetry", payload: Array(#"{"ts": \#(-probes), "w": 0}"#.utf8), qos: 1, retain: false)
            try await Task.sleep(for: .milliseconds(100))
        }
        return rows(table)
    }
    func waitForRows(_ table: String, _ expected: Int) async throws {
        while rows(table) < expected { try await Task.sleep(for: .milliseconds(50)) }
    }

    // (a) The broker alone: a persistent session made first, so nothing published is missed.
    try Commands.run("/usr/bin/mosquitto_sub", ["-h", "127.0.0.1", "-p", "\(broker.port)", "-c", "-i", "bench-sub", "-q", "1", "-t", "a/#", "-E"])
    let subscriber = Process()
    subscriber.executableURL = URL(fileURLWithPath: "/usr/bin/mosquitto_sub")
    subscriber.arguments = ["-h", "127.0.0.1", "-p", "\(broker.port)", "-c", "-i", "bench-sub", "-q", "1", "-t", "a/#", "-C", "\(total)"]
    subscriber.standardOutput = FileHandle.nullDevice
    try subscriber.run()
    var started = ContinuousClock.now
    try await publishAll("a")
    await Task.detached { subscriber.waitUntilExit() }.value
    let brokerRate = Double(total) / (ContinuousClock.now - started).seconds
    print(String(format: "  (a) mosquitto_sub -q 1 > /dev/null: %.0f messages/s", brokerRate))

    // (b) The Python peer.
    let peer = Process()
    peer.executableURL = URL(fileURLWithPath: python)
    let dsn = "host=127.0.0.1 port=\(pg.port) user=postgres dbname=\(database)"
    peer.arguments = [peerScript, "127.0.0.1", "\(broker.port)", "b/+/telemetry", "bench-python", dsn, "python_readings", "\(total)"]
    peer.standardOutput = FileHandle.nullDevice
    try peer.run()
    let seenB = try await probe("b", table: "python_readings")
    started = ContinuousClock.now
    try await publishAll("b")
    try await waitForRows("python_readings", total + seenB)
    let pythonRate = Double(total) / (ContinuousClock.now - started).seconds
    peer.terminate()
    print(String(format: "  (b) Python peer (paho-mqtt + psycopg COPY): %.0f messages/s", pythonRate))

    // (c) Enchufe.
    let journal = pg.directory.appendingPathComponent("journal")
    let registry = NodeRegistry(CoreNodes.specs + MQTTModule.specs)
    let yaml = """
        flow: telemetry
        tenant: demo
        connections:
          broker: { type: mqtt.broker, port: \(broker.port), client_id: bench }
        nodes:
          - id: devices
            type: mqtt.in
            connection: broker
            topics: [c/+/telemetry]
            qos: 1
            journal: \(journal.path)
            readings: { series: "device:{topic.2}", quantity: power, ts: "{payload.ts}", ts_format: epoch_s, value: "{payload.w}", unit: W }
            to: [store]
          - { id: store, type: store.readings, batch_size: 2000, flush_interval: 100ms }
        """
    let (definition, problems) = FlowLoader(registry: registry, environment: [:]).load(text: yaml, file: "bench.yaml")
    guard let definition, problems.isEmpty else { throw CocoaError(.featureUnsupported, userInfo: ["problems": "\(problems)"]) }
    let hub = Hub(flows: [definition], registry: registry, environment: EngineEnvironment(store: store, logger: quiet))
    let running = Task { await hub.runFlows() }
    let seenC = try await probe("c", table: "readings")
    started = ContinuousClock.now
    try await publishAll("c")
    try await waitForRows("readings", total + seenC)
    let hubRate = Double(total) / (ContinuousClock.now - started).seconds
    hub.stop()
    await running.value
    try await store.close()
    print(String(format: "  (c) Enchufe mqtt.in → store.readings: %.0f messages/s", hubRate))

    print(String(format: "Enchufe / Python peer: %.2f", hubRate / pythonRate))
    print(String(format: "Enchufe / broker's own delivery: %.2f", hubRate / brokerRate))
}
