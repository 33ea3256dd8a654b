import Foundation
import TestSupport
import Testing

extension CLITests {
    @Test func runOnPostgreSQLStoresReadingsAndIsNotReadyWhileTheDatabaseIsAway() async throws {
        let server = try PostgresServer.start()
        defer { server.destroy() }
        let url = try server.createDatabase()
        let database = PostgresServer.database(in: url)
        let dir = try projectDirectory(flow: Self.simFlow, named: "sim")

        let hub = try RunningHub(["run", "--http", "127.0.0.1:0"], in: dir, environment: ["ENCHUFE_STORE": url])
        defer { hub.terminate() }
        #expect(try await hub.poll("/readyz") { $0.status == 200 }.status == 200)
        let before = try await hub.metrics(until: { Self.inserted($0) > 0 })
        #expect(Self.inserted(before) > 0, "no readings stored: \(before)")
        #expect(hub.output.contains("applied migrations 001-initial, 002-instances"))
        #expect(hub.output.contains("TimescaleDB is not available on this server: readings is a plain table"))

        // The database goes away: not ready, and the hub waits instead of failing messages.
        try server.stop(mode: "fast")
        let away = try await hub.poll("/readyz") { $0.status == 503 }
        #expect(away.status == 503)
        #expect(away.body.contains("unavailable"))
        try server.start()
        #expect(try await hub.poll("/readyz") { $0.status == 200 }.status == 200)
        let insertedBeforeRestart = Self.inserted(try await get("\(hub.base)/metrics").body)
        let after = try await hub.metrics(until: { Self.inserted($0) > insertedBeforeRestart })
        #expect(Self.inserted(after) > insertedBeforeRestart, "the hub did not resume storing after the restart")
        #expect(hub.stop() == 0)

        let stored = Int(try server.psql("SELECT count(*) FROM readings WHERE tenant = 'demo'", database: database)) ?? 0
        #expect(stored > 0)
        #expect(try server.psql("SELECT count(*) FROM dead_letters", database: database) == "0", "nothing dead-lettered during the outage")
        #expect(!hub.output.contains("dead letter"), "\(hub.output)")
    }
}
