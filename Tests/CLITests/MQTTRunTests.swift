import Foundation
import MQTT
import TestSupport
import Testing

extension CLITests {
    /// Publishes `count` QoS 1 messages, `window` at a time, each confirmed by the broker.
    static func publish(_ count: Int, to broker: MosquittoServer, topic: @escaping @Sendable (Int) -> String, payload: @escaping @Sendable (Int) -> String) async throws {
        var settings = MQTTSettings(port: broker.port, clientID: "load-\(UUID().uuidString.prefix(8))")
        settings.cleanSession = true
        settings.inflight = 500
        var handlers = MosquittoClient.Handlers()
        let up = AsyncStream<Void>.makeStream()
        handlers.connection = { _, connected, _ in if connected { up.continuation.yield() } }
        let client = try MosquittoClient(settings, handlers: handlers)
        try client.start()
        for await _ in up.stream { break }
        defer { client.stop() }
        let window = 500
        var next = 0
        while next < count {
            let end = min(count, next + window)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in next..<end {
                    group.addTask { try await client.publish(topic: topic(i), payload: Array(payload(i).utf8), qos: 1, retain: false) }
                }
                try await group.waitForAll()
            }
            next = end
        }
    }

    @Test func aHubKilledWithSIGKILLWhileIngestingMQTTStoresEveryMessageExactlyOnceAfterARestart() async throws {
        let broker = try MosquittoServer.start()
        defer { broker.destroy() }
        let dir = try projectDirectory(flow: """
            flow: devices
            tenant: demo
            connections:
              broker: { type: mqtt.broker, port: \(broker.port), client_id: hub }
            nodes:
              - id: telemetry
                type: mqtt.in
                connection: broker
                topics: [kill/+/power]
                qos: 1
                readings: { series: "device:{topic.2}", quantity: power, ts: "{payload.ts}", ts_format: epoch_s, value: "{payload.w}", unit: W }
                to: [store]
              # Big batches: whenever the count of stored readings moves, thousands more are journaled
              # and acknowledged but not committed yet, so the kill always leaves some for the journal.
              - { id: store, type: store.readings, batch_size: 20000, flush_interval: 1s }
            """, named: "devices")
        let db = dir.appendingPathComponent("var/enchufe.sqlite").path
        func stored() throws -> Int { Int(try sqlite(db, "SELECT count(*) FROM readings WHERE series <> 'device:probe'")) ?? 0 }

        var hub = try RunningHub(["run", "--http", "127.0.0.1:0"], in: dir)
        defer { hub.terminate() }
        // The session exists once a probe comes through; from then on the broker keeps what the hub misses.
        var probe = 0
        repeat {
            probe += 1
            let ts = probe
            try await Self.publish(1, to: broker, topic: { _ in "kill/probe/power" }, payload: { _ in #"{"ts": \#(ts), "w": 0}"# })
        } while (Int(try sqlite(db, "SELECT count(*) FROM readings WHERE series = 'device:probe'")) ?? 0) == 0 && probe < 2000

        let total = 100_000
        let base = 1_774_742_400
        let publisher = Task {
            try await Self.publish(total, to: broker, topic: { "kill/inv-\($0 % 100)/power" }, payload: { #"{"ts": \#(base + $0), "w": \#($0)}"# })
        }
        // Kill the hub once a fifth is stored (each poll is a real query; the bound is for failure).
        let deadline = ContinuousClock.now + .seconds(120)
        while (try? stored()) ?? 0 < total / 5 && ContinuousClock.now < deadline {}
        kill(hub.process.processIdentifier, SIGKILL)
        hub.process.waitUntilExit()
        let atKill = try stored()
        #expect(atKill < total, "the kill must fall in the middle of the ingestion")

        hub = try RunningHub(["run", "--http", "127.0.0.1:0"], in: dir)
        try await publisher.value
        while (try? stored()) ?? 0 < total && ContinuousClock.now < deadline + .seconds(120) {}
        #expect(hub.stop() == 0)

        let summary = try sqlite(db, "SELECT count(*), count(DISTINCT series || ts), max(revision), CAST(sum(value) AS INTEGER) FROM readings WHERE series <> 'device:probe'")
        #expect(summary == "\(total)|\(total)|1|\(total * (total - 1) / 2)", "rows | distinct keys | max revision | sum of values (at the kill: \(atKill))")
        // Messages acknowledged to the broker but not committed when the hub died come back from the journal.
        #expect(hub.output.contains("replaying"), "no journal replay after the kill: \(hub.output)")
    }
}
