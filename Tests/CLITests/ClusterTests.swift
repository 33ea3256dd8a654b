import Foundation
import Synchronization
import TestSupport
import Testing

extension CLITests {
    /// Two `enchufe run` on one PostgreSQL: the pull runs on one of them (its lease); paused, its
    /// lease passes to the other, and on waking it stops running the pull; killed, the pull moves
    /// back — and each day is answered once, whoever asked.
    @Test func aSingletonSourceRunsOnOneInstanceAndMovesWhenItsHolderStopsAnswering() async throws {
        let pg = try PostgresServer.start()
        defer { pg.destroy() }
        let url = try pg.createDatabase()
        let database = PostgresServer.database(in: url)
        let failing = Mutex(true)
        let answeredDays = Mutex<[String]>([])
        let server = try await FixtureServer.start { request in
            if request.startDay == "2021-06-03", failing.withLock({ $0 }) { return .json("down for maintenance", status: 503) }
            answeredDays.withLock { $0.append(request.startDay) }
            return .json(SyntheticAnswers.redataPrices(day: request.startDay))
        }
        defer { server.stop() }
        let dir = try projectDirectory(flow: """
            flow: prices
            nodes:
              - { id: start, type: schedule, every: 1d, to: [prices] }
              - id: prices
                type: redata.prices
                base_url: \(server.baseURL)
                from: 2021-06-01
                until: 2021-06-03
                request_attempts: 1
                to: [store]
              - { id: store, type: store.readings, flush_interval: 50ms }
            """, named: "prices")
        let environment = ["ENCHUFE_STORE": url]
        func holder() throws -> String { try pg.psql("SELECT holder || ':' || fence FROM leases WHERE name = 'default/prices/start' AND expires_at > now()", database: database) }
        func answered() -> [String] { answeredDays.withLock { $0 } }

        let a = try RunningHub(["run", "--http", "127.0.0.1:0", "--instance", "a"], in: dir, environment: environment)
        defer { a.terminate() }
        _ = try await a.poll("/api/v1/cluster") { _ in (try? holder()) == "a:1" && server.requests.count >= 3 }
        let leases = try pg.psql("SELECT name || ' ' || holder || ' ' || fence FROM leases", database: database)
        #expect(try holder() == "a:1", "\(leases) \(a.output.suffix(1500))")
        let b = try RunningHub(["run", "--http", "127.0.0.1:0", "--instance", "b"], in: dir, environment: environment)
        defer { b.terminate() }
        let standby = try await b.poll("/api/v1/flows/prices") { $0.body.contains(#""held_here":false"#) }
        #expect(standby.body.contains(#""held_here":false"#), "b waits: \(standby.body.prefix(600))")
        // An instance started beside them without --instance is told that its MQTT clients and
        // journals would not be its own.
        let unnamed = try RunningHub(["run", "--http", "127.0.0.1:0"], in: dir, environment: environment)
        #expect(unnamed.output.contains("share this store (") && unnamed.output.contains("this one has no --instance"), "\(unnamed.output.suffix(1500))")
        #expect(unnamed.stop() == 0)
        #expect(server.requests.map(\.startDay) == ["2021-06-01", "2021-06-02", "2021-06-03"], "only a asked, 06-03 failed")

        // a is paused: its lease expires and b takes the pull over (and asks 06-03, still failing).
        kill(a.process.processIdentifier, SIGSTOP)
        let paused = ContinuousClock.now
        let cluster = try await b.poll("/api/v1/cluster") { _ in (try? holder()) == "b:2" }
        print("lease moved to b \(ContinuousClock.now - paused) after a was paused")
        #expect(try holder() == "b:2" && cluster.status == 200)
        // a wakes up: it finds its lease gone and stops running the pull.
        kill(a.process.processIdentifier, SIGCONT)
        _ = try await a.poll("/healthz") { _ in a.output.contains("lost the lease of this source (fence 1) to another instance") }
        #expect(a.output.contains("[prices/start] lost the lease of this source (fence 1) to another instance: stopped here"), "\(a.output.suffix(1500))")

        // b is killed: a takes the pull back, and now 06-03 answers.
        failing.withLock { $0 = false }
        kill(b.process.processIdentifier, SIGKILL)
        let killed = ContinuousClock.now
        _ = try await a.poll("/api/v1/cluster") { _ in (try? holder()) == "a:3" }
        print("lease back to a \(ContinuousClock.now - killed) after b was killed")
        #expect(try holder() == "a:3")
        // Three days of two price series, 24 hours each.
        let stored = try await a.poll("/readyz") { _ in (try? pg.psql("SELECT count(*) FROM readings", database: database)) == "144" }
        let count = try pg.psql("SELECT count(*) FROM readings", database: database)
        #expect(stored.status == 200 && count == "144", "\(count) \(a.output.suffix(2500))")
        #expect(answered().sorted() == ["2021-06-01", "2021-06-02", "2021-06-03"], "each day answered once, whoever asked: \(server.requests.map(\.startDay))")
        #expect(a.stop() == 0)
        #expect(try pg.psql("SELECT count(*) FROM leases WHERE expires_at > now()", database: database) == "0", "a clean stop gives the lease up")
    }
}
