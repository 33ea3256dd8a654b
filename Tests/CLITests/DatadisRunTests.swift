import Foundation
import TestSupport
import Testing

extension CLITests {
    /// `enchufe run` pulling Datadis consumption, stopped and started again within the hour: the
    /// request ledger in the store keeps the restarted hub from sending any query again (a fake
    /// Datadis answers a repeated query 429, as Datadis does).
    @Test func theDatadisLedgerHoldsAcrossARestartOfTheHub() async throws {
        let supplies = #"[{"cups": "ES0021000000000001AB", "postalCode": "28001", "province": "Madrid", "validDateFrom": "", "validDateTo": "", "pointType": 5, "distributorCode": "2"}]"#
        let fake = FakeDatadis(supplies: supplies)
        let server = try await FixtureServer.start(fake.handle)
        defer { server.stop() }
        let dir = try projectDirectory(flow: """
            flow: consumption
            nodes:
              - id: daily
                type: schedule
                every: 1d
                to: [supplies]
              - id: supplies
                type: datadis.supplies
                base_url: \(server.baseURL)
                username: 12345678Z
                password: secreto
                requests_per_minute: 6000
                to: [consumption]
              - id: consumption
                type: datadis.consumption
                base_url: \(server.baseURL)
                username: 12345678Z
                password: secreto
                requests_per_minute: 6000
                max_requests: 24
                to: [store]
              - { id: store, type: store.readings, flush_interval: 50ms }
            """, named: "consumption")
        func consumptionQueries() -> [String] { server.requests.filter { $0.path.hasSuffix("get-consumption-data-v2") }.map { $0.query ?? "" } }
        func waitFor(_ condition: () -> Bool) {
            let deadline = ContinuousClock.now + .seconds(60)  // a bound for failure, not a pace
            while !condition() && ContinuousClock.now < deadline { usleep(20_000) }
        }

        var hub = try RunningHub(["run", "--http", "127.0.0.1:0"], in: dir)
        defer { hub.terminate() }
        waitFor { hub.output.contains("next request for") }
        #expect(hub.stop() == 0)
        let first = consumptionQueries()
        #expect(first.count == 13, "the current month, the previous one and 11 older ones: \(first)")

        hub = try RunningHub(["run", "--http", "127.0.0.1:0"], in: dir)
        waitFor { hub.output.contains("next request for") }
        #expect(hub.stop() == 0)
        #expect(consumptionQueries() == first, "no query sent again after the restart")
        #expect(fake.served429 == 0)
        #expect(server.requests.filter { $0.path.hasSuffix("get-supplies-v2") }.count == 2, "supplies are not rate limited: asked at each start")
    }
}
