import EnchufeCore
import Foundation
import Postgres
import TestSupport
import Synchronization
import Testing

/// What happens to ingestion when PostgreSQL fails: each test has a server of its own to break.
@Suite struct PostgresFaultTests {
    @Test func aRestartOfPostgreSQLInTheMiddleOfIngestionLosesAndDuplicatesNothing() async throws {
        let server = try PostgresServer.start()
        defer { server.destroy() }
        let url = try server.createDatabase()
        // A busy test machine (suites run in parallel) may take more than the default 5 s to give
        // a first connection; the outage below is a refused connection, found at once either way.
        let store = try PostgresStore(url: url + "&connect_timeout=20")
        try await store.whileRunning {
            try await store.migrate()
            let feed = ReadingsFeed(messages: 10_000, readingsPerMessage: 20)
            let hub = try Hubs.make(
                """
                flow: ingest
                nodes:
                  - { id: feed, type: test.feed, to: [store] }
                  - { id: store, type: store.readings, batch_size: 50, flush_interval: 20ms }
                """, store: store, extra: [feed.spec])
            let running = Task { await hub.runFlows() }

            await feed.acknowledged(atLeast: feed.total / 3)
            try server.stop(mode: "fast")
            let acknowledgedAtStop = feed.acknowledged
            await #expect(throws: UnavailableError.self) { try await store.ping() }
            try server.start()
            await running.value

            #expect(acknowledgedAtStop < feed.total, "the restart must fall in the middle of the ingestion")
            #expect(feed.acknowledged == feed.total)
            let database = PostgresServer.database(in: url)
            let counts = try server.psql(
                "SELECT count(*), count(DISTINCT (series, ts)), max(revision), count(DISTINCT seq), sum(value)::bigint FROM readings", database: database)
            let n = feed.total
            #expect(counts == "\(n)|\(n)|1|\(n)|\(n * (n - 1) / 2)", "rows | distinct keys | max revision | distinct seq | sum of values")
        }
    }

    /// A deferred trigger refuses the first COMMIT that touches `readings` (the sequence it uses is not
    /// transactional, so the refusal is counted even though the transaction rolls back).
    static let refuseFirstCommit = """
        CREATE SEQUENCE commit_attempts;
        CREATE FUNCTION refuse_first_commit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF nextval('commit_attempts') = 1 THEN RAISE EXCEPTION 'commit refused by the test'; END IF;
            RETURN NULL;
        END $$;
        CREATE CONSTRAINT TRIGGER refuse_first_commit AFTER INSERT OR UPDATE ON readings
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_first_commit();
        """

    @Test func aBatchWhoseCommitFailsStoresNothingIsNotAcknowledgedAndIsRetried() async throws {
        let server = try await PostgresServer.shared()
        let url = try server.createDatabase()
        let database = PostgresServer.database(in: url)
        let store = try PostgresStore(url: url)
        try await store.whileRunning {
            try await store.migrate()
            try server.psql(Self.refuseFirstCommit, database: database)

            let feed = ReadingsFeed(messages: 3, readingsPerMessage: 4)
            let metrics = HubMetrics()
            let hub = try Hubs.make(
                """
                flow: ingest
                nodes:
                  - { id: feed, type: test.feed, to: [store] }
                  - { id: store, type: store.readings, batch_size: 3, flush_interval: 1s }
                """, store: store, extra: [feed.spec], clock: VirtualClock(start: feed.start), metrics: metrics)
            let retriesAtAcknowledgement = RecordedValue()
            // Acknowledgement of the batch (all three messages) happens after exactly one retry.
            let watcher = Task {
                await feed.acknowledged(atLeast: feed.total)
                retriesAtAcknowledgement.set(Hubs.metric(metrics, "enchufe_retries_total", node: "store"))
            }
            await hub.runFlows()
            await watcher.value

            #expect(retriesAtAcknowledgement.value == 1, "the batch was acknowledged after \(retriesAtAcknowledgement.value ?? -1) retries")
            #expect(feed.acknowledged == feed.total)
            #expect(feed.redelivered == 0)
            #expect(try server.psql("SELECT last_value FROM commit_attempts", database: database) != "1", "the trigger ran again on the retry")
            #expect(try server.psql("SELECT count(*), max(revision) FROM readings", database: database) == "12|1")
            #expect(try await store.deadLetters(tenant: nil, limit: 10).isEmpty)
        }
    }

    @Test func aFailedCommitLeavesNothingBehindAndTheStoreSaysWhy() async throws {
        let server = try await PostgresServer.shared()
        let url = try server.createDatabase()
        let store = try PostgresStore(url: url)
        try await store.whileRunning {
            try await store.migrate()
            try server.psql(Self.refuseFirstCommit, database: PostgresServer.database(in: url))
            let reading = Reading(tenant: "t", series: "s", quantity: "q", ts: Date(timeIntervalSince1970: 0), resolution: "PT1H", value: 1, unit: "kWh", source: "f/n")

            let error = await #expect(throws: PostgresServerError.self) { try await store.upsert([reading]) }
            #expect(error?.description.contains("commit refused by the test") == true)
            #expect(try await store.readings(ReadingQuery(tenant: "t")).isEmpty)
            #expect(try await store.upsert([reading]) == UpsertSummary(inserted: 1))
        }
    }

    @Test func aStoreNobodyRunsSaysSoInsteadOfPassingForAServerThatIsDown() async throws {
        let server = try await PostgresServer.shared()
        let url = try server.createDatabase()
        let idle = try PostgresStore(url: url + "&connect_timeout=1")
        let error = await #expect(throws: PermanentError.self) { try await idle.ping() }
        #expect(error?.description.contains("not running") == true, "\(error.map { "\($0)" } ?? "")")
        // The same server answers a store that runs; a loaded machine may take more than a second to connect.
        let store = try PostgresStore(url: url + "&connect_timeout=15")
        try await store.whileRunning { try await store.ping() }
    }

    @Test func anUnreachableServerIsUnavailableNotAnError() async throws {
        let port = try Commands.freeLoopbackPort()
        let store = try PostgresStore(url: "postgres://hub:s3cret@127.0.0.1:\(port)/nothing?connect_timeout=1")
        try await store.whileRunning {
            let error = await #expect(throws: UnavailableError.self) { try await store.ping() }
            #expect(error?.description.contains("127.0.0.1:\(port)") == true)
            #expect(error?.description.contains("s3cret") == false)
            #expect(store.displayName == "postgres://hub:***@127.0.0.1:\(port)/nothing?connect_timeout=1")
        }
    }
}

final class RecordedValue: Sendable {
    private let box = Mutex<Double?>(nil)
    func set(_ v: Double) { box.withLock { $0 = v } }
    var value: Double? { box.withLock { $0 } }
}
