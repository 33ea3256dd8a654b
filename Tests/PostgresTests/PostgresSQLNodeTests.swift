import EnchufeCore
import Foundation
import Postgres
import TestSupport
import Testing

/// A source that sends the given payloads, one message each.
struct PayloadsSource: SourceNode {
    let payloads: [JSONValue]
    func run(_ context: SourceContext) async throws {
        for payload in payloads { try await context.emit(Message(payload: payload, topic: "site/inv-07/power")) }
    }

    static func spec(_ payloads: [JSONValue]) -> NodeSpec {
        NodeSpec(type: "test.payloads", kind: .source, summary: "sends payloads", options: [], example: "", make: { _ in .source(PayloadsSource(payloads: payloads)) })
    }
}

@Suite struct PostgresSQLNodeTests {
    func loadProblems(_ node: String) -> [String] {
        let registry = NodeRegistry(CoreNodes.specs + PostgresModule.specs)
        let yaml = """
            flow: archive
            nodes:
              - { id: tick, type: schedule, every: 1h, to: [archive] }
              - id: archive
                type: postgres.sql
            \(node.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
            """
        return FlowLoader(registry: registry, environment: [:]).load(text: yaml, file: "archive.yaml").1.map(\.description)
    }

    @Test func identifiersAreCheckedWhenTheFlowLoadsWithTheirPlace() {
        let problems = loadProblems("""
            table: "power; DROP TABLE readings"
            columns:
              device: "{topic.2}"
              "watts\\"": "=msg.payload.w"
            conflict: [device, at]
            update: [device]
            """)
        #expect(problems.contains { $0.hasPrefix("archive.yaml:6:") && $0.contains("'power; DROP TABLE readings' is not a table name") }, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("archive.yaml:9:") && $0.contains("is not a column name") }, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("archive.yaml:10:") && $0.contains("'at' is not one of the mapped columns") }, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("archive.yaml:11:") && $0.contains("'device' is part of the conflict key") }, "\(problems)")
        #expect(loadProblems("table: metering.device_power\ncolumns: {device: \"{topic.2}\"}").isEmpty)
    }

    @Test func messagesAreUpsertedIntoAUserTableAndARefusedRowGoesToTheDeadLetters() async throws {
        let server = try await PostgresServer.shared()
        let url = try server.createDatabase()
        let database = PostgresServer.database(in: url)
        try server.psql(
            """
            CREATE SCHEMA metering;
            CREATE TABLE metering.device_power (device text, at timestamptz, watts double precision NOT NULL, extra jsonb,
                                                PRIMARY KEY (device, at));
            """, database: database)
        let store = try PostgresStore(url: url)
        try await store.whileRunning {
            try await store.migrate()
            let payloads: [JSONValue] = [
                ["ts": "2026-03-29T00:00:00Z", "w": 100, "meta": ["fw": "1.2"]],
                ["ts": "2026-03-29T00:01:00Z", "w": 200],
                ["ts": "2026-03-29T00:00:00Z", "w": 150],  // same key: updated
                ["ts": "2026-03-29T00:02:00Z", "w": "lots"],  // not a number: refused
                ["ts": "2026-03-29T00:03:00Z", "w": 300],
            ]
            let hub = try Hubs.make(
                """
                flow: archive
                nodes:
                  - { id: feed, type: test.payloads, to: [archive] }
                  - id: archive
                    type: postgres.sql
                    table: metering.device_power
                    columns:
                      device: "{topic.2}"
                      at: "{payload.ts}"
                      watts: "=msg.payload.w"
                      extra: "{payload.meta}"
                    conflict: [device, at]
                    batch_size: 10
                """, store: store, extra: [PayloadsSource.spec(payloads)], clock: VirtualClock(start: Date()))
            await hub.runFlows()

            let rows = try server.psql(
                "SELECT device, to_char(at AT TIME ZONE 'UTC', 'HH24:MI'), watts, coalesce(extra->>'fw', '-') FROM metering.device_power ORDER BY at",
                database: database)
            #expect(rows == "inv-07|00:00|150|-\ninv-07|00:01|200|-\ninv-07|00:03|300|-")
            let letters = try await store.deadLetters(tenant: nil, limit: 10)
            #expect(letters.count == 1)
            #expect(letters.first?.message["payload"]?["w"] == "lots")
            #expect(letters.first?.error.contains("PostgreSQL refused the data") == true, "\(letters.first?.error ?? "")")
        }
    }

    @Test func onConflictNothingKeepsTheFirstRow() async throws {
        let server = try await PostgresServer.shared()
        let url = try server.createDatabase()
        let database = PostgresServer.database(in: url)
        try server.psql("CREATE TABLE events (id text PRIMARY KEY, body text NOT NULL)", database: database)
        let store = try PostgresStore(url: url)
        try await store.whileRunning {
            try await store.migrate()
            let hub = try Hubs.make(
                """
                flow: events
                nodes:
                  - { id: feed, type: test.payloads, to: [events] }
                  - { id: events, type: postgres.sql, url: "\(url)", table: events, columns: {id: "{payload.id}", body: "{payload.body}"}, conflict: [id], on_conflict: nothing }
                """, store: SQLiteStore(url: "sqlite::memory:"),
                extra: [PayloadsSource.spec([["id": "a", "body": "first"], ["id": "a", "body": "second"], ["id": "b", "body": "only"]])],
                clock: VirtualClock(start: Date()))
            await hub.runFlows()
            #expect(try server.psql("SELECT id, body FROM events ORDER BY id", database: database) == "a|first\nb|only")
        }
    }

    @Test func withoutAURLTheHubsStoreMustBePostgreSQL() async throws {
        let store = try SQLiteStore(url: "sqlite::memory:")
        try await store.migrate()
        let hub = try Hubs.make(
            """
            flow: events
            nodes:
              - { id: feed, type: test.payloads, to: [events] }
              - { id: events, type: postgres.sql, table: events, columns: {id: "{payload.id}"} }
            """, store: store, extra: [PayloadsSource.spec([["id": "a"]])], clock: VirtualClock(start: Date()))
        await hub.runFlows()
        let letters = try await store.deadLetters(tenant: nil, limit: 10)
        #expect(letters.first?.error == "postgres.sql needs 'url': the hub's store (sqlite::memory:) is not PostgreSQL")
    }
}
