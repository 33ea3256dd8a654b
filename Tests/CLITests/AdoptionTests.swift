import Foundation
@testable import MQTT
import TestSupport
import Testing

extension CLITests {
    /// Device telemetry over a shared subscription (group `hubs`, QoS 1, persistent sessions) into the store.
    static func sharedTelemetry(broker: MosquittoServer, topic: String) -> String {
        """
        flow: site
        tenant: demo
        connections:
          broker: { type: mqtt.broker, port: \(broker.port), client_id: hub }
        nodes:
          - id: telemetry
            type: mqtt.in
            connection: broker
            topics: [\(topic)]
            shared_group: hubs
            qos: 1
            readings: { series: "device:{topic.2}", quantity: power, ts: "{payload.ts}", ts_format: epoch_s, value: "{payload.w}", unit: W }
            to: [store]
          - { id: store, type: store.readings, flush_interval: 50ms }
        """
    }

    /// Three instances share an MQTT subscription with persistent sessions. One is killed for good;
    /// the broker goes on queueing its share of the group's messages for its session. A live
    /// instance takes the session over (under a lease), so every message published after the kill
    /// is stored once within 60 s, without the dead instance coming back.
    @Test func aDeadInstancesShareOfASharedSubscriptionIsTakenOverByALiveOne() async throws {
        let pg = try PostgresServer.start()
        defer { pg.destroy() }
        let url = try pg.createDatabase()
        let database = PostgresServer.database(in: url)
        let broker = try MosquittoServer.start()
        defer { broker.destroy() }
        let flow = Self.sharedTelemetry(broker: broker, topic: "burst/+/power")
        func instance(_ name: String) throws -> RunningHub {
            let dir = try projectDirectory(flow: flow, named: "site")
            return try RunningHub(["run", "--http", "127.0.0.1:0", "--instance", name], in: dir, environment: ["ENCHUFE_STORE": url])
        }
        func count(_ sql: String) throws -> Int { Int(try pg.psql(sql, database: database)) ?? -1 }
        let a = try instance("a"), b = try instance("b"), c = try instance("c")
        defer { a.terminate(); b.terminate(); c.terminate() }
        for hub in [a, b, c] { _ = try await hub.poll("/healthz") { _ in hub.output.contains("subscribing to $share/hubs/burst/+/power") } }

        kill(c.process.processIdentifier, SIGKILL)
        c.process.waitUntilExit()
        let killed = ContinuousClock.now
        let burst = 3000
        try await Self.publish(burst, to: broker, topic: { "burst/dev\($0 % 10)/power" }, payload: { #"{"ts": \#(1_780_000_000 + $0), "w": \#($0)}"# })
        _ = try await a.poll("/healthz") { _ in (try? count("SELECT count(*) FROM readings")) == burst || ContinuousClock.now - killed > .seconds(60) }
        let took = ContinuousClock.now - killed
        print("every message stored \(took) after the kill")
        let stored = try count("SELECT count(*) FROM readings")
        #expect(stored == burst, "stored: \(stored) of \(burst)")
        #expect(took < .seconds(60))
        _ = try await a.poll("/healthz") { _ in (a.output + b.output).contains("took over instance c's") }
        let logs = a.output + b.output
        #expect(logs.contains("took over instance c's MQTT session hub-telemetry-c"), "\(logs.suffix(3000))")
        #expect(!(a.output.contains("took over instance c's") && b.output.contains("took over instance c's")), "one instance adopted it")
        // Each message once: no instance stored a reading that was already there.
        var unchanged = 0
        for hub in [a, b] {
            let metrics = try await hub.metrics { $0.contains("enchufe_readings_stored_total") }
            for line in metrics.split(separator: "\n") where line.hasPrefix("enchufe_readings_stored_total") && line.contains("result=\"unchanged\"") {
                unchanged += Int(Double(line.split(separator: " ").last ?? "0") ?? 0)
            }
        }
        #expect(unchanged == 0, "no message stored twice")
        _ = try await a.poll("/healthz") { _ in (try? pg.psql("SELECT count(*) FROM instances WHERE id = 'c'", database: database)) == "0" }
        #expect(try pg.psql("SELECT count(*) FROM instances WHERE id = 'c'", database: database) == "0", "the dead instance is retired")
    }

    /// Instances in one folder (one machine): a dead instance's journal holds messages acknowledged
    /// to the broker but not committed. The instance that takes over sends them on as well.
    @Test func aDeadInstancesJournalInAReachableFolderIsSentOnByTheOneThatTakesOver() async throws {
        let pg = try PostgresServer.start()
        defer { pg.destroy() }
        let url = try pg.createDatabase()
        let database = PostgresServer.database(in: url)
        let broker = try MosquittoServer.start()
        defer { broker.destroy() }
        let dir = try projectDirectory(flow: Self.sharedTelemetry(broker: broker, topic: "left/+/power"), named: "site")
        // Instance z died with two messages journaled and not committed.
        let journal = try MessageJournal(directory: dir.appendingPathComponent("var/journal/site/telemetry/z"))
        for i in 0..<2 {
            _ = try journal.append(JournaledMessage.encode(MQTTMessage(topic: "left/dev\(i)/power", payload: Array(#"{"ts": \#(1_780_000_000 + i), "w": 5}"#.utf8), qos: 1)))
        }
        journal.close()
        let a = try RunningHub(["run", "--http", "127.0.0.1:0", "--instance", "a"], in: dir, environment: ["ENCHUFE_STORE": url])
        defer { a.terminate() }
        _ = try pg.psql("INSERT INTO instances VALUES ('z', 'gone', 1, '', now() - interval '1 hour', now() - interval '1 hour')", database: database)
        _ = try await a.poll("/healthz") { _ in a.output.contains("took over instance z's") }
        #expect(a.output.contains("instance z left 2 journaled message(s)"), "\(a.output.suffix(2000))")
        #expect(try pg.psql("SELECT count(*) FROM readings WHERE series IN ('device:dev0', 'device:dev1')", database: database) == "2")
        #expect(try MessageJournal(directory: dir.appendingPathComponent("var/journal/site/telemetry/z")).recover().isEmpty, "its journal is empty now")
    }
}
