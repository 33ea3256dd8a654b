import Foundation
import Synchronization
import TestSupport
import Testing

extension CLITests {
    /// `enchufe run` pulling prices for three days from a local server that fails the second day:
    /// stopped and started again, it asks only for what it did not store — no duplicate request, no gap.
    @Test func aPullResumesFromItsCheckpointAfterARestart() async throws {
        let failing = Mutex(true)
        let server = try await FixtureServer.start { request in
            if request.startDay == "2021-06-02", failing.withLock({ $0 }) { return .json("down for maintenance", status: 503) }
            return .json(SyntheticAnswers.redataPrices(day: request.startDay))
        }
        defer { server.stop() }
        let dir = try projectDirectory(flow: """
            flow: prices
            nodes:
              - id: start
                type: schedule
                every: 1d
                to: [prices]
              - id: prices
                type: redata.prices
                base_url: \(server.baseURL)
                from: 2021-06-01
                until: 2021-06-03
                request_attempts: 1
                to: [store]
              - { id: store, type: store.readings, flush_interval: 50ms }
            """, named: "prices")
        let db = dir.appendingPathComponent("var/enchufe.sqlite").path
        func days() -> [String] { server.requests.map(\.startDay) }
        func waitFor(_ condition: () throws -> Bool) rethrows {
            let deadline = ContinuousClock.now + .seconds(60)  // a bound for failure, not a pace
            while try !condition() && ContinuousClock.now < deadline { usleep(20_000) }
        }

        var hub = try RunningHub(["run", "--http", "127.0.0.1:0"], in: dir)
        defer { hub.terminate() }
        waitFor { days().contains("2021-06-02") }
        #expect(hub.stop() == 0, "SIGTERM: drained, checkpoints saved, exit 0")
        #expect(days() == ["2021-06-01", "2021-06-02"], "the failure stopped the pull; 06-03 waits for the next trigger")
        #expect(try sqlite(db, "SELECT count(*) FROM readings") == "48")

        failing.withLock { $0 = false }
        hub = try RunningHub(["run", "--http", "127.0.0.1:0"], in: dir)
        try waitFor { try sqlite(db, "SELECT count(*) FROM readings") == "144" }
        #expect(hub.stop() == 0)
        #expect(days() == ["2021-06-01", "2021-06-02", "2021-06-02", "2021-06-03"], "06-01 was not asked again")
        let summary = try sqlite(db, "SELECT count(*), count(DISTINCT ts), min(ts), max(ts), max(revision) FROM readings WHERE series = 'ree:1001:8741'")
        func ms(_ text: String) throws -> Int { Int(try Date(text, strategy: .iso8601).timeIntervalSince1970 * 1000) }
        let (first, last) = (try ms("2021-05-31T22:00:00Z"), try ms("2021-06-03T21:00:00Z"))  // 00:00 on 06-01 and 23:00 on 06-03 in Madrid
        #expect(summary == "72|72|\(first)|\(last)|1", "three whole days, each hour once (ts in epoch ms)")
    }
}
