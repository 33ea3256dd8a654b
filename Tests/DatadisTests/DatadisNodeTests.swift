@testable import Datadis
import EnchufeCore
import Foundation
import HTTPPull
import Synchronization
import TestSupport
import Testing

extension FakeDatadis {
    /// The fake with the recorded supplies and contract of Fixtures/.
    convenience init(password: String = "secreto", tokenLife: TimeInterval = 86_400, answers: @escaping @Sendable (String, FixtureServer.Request) -> FixtureServer.Answer? = { _, _ in nil }) {
        self.init(
            password: password, tokenLife: tokenLife, supplies: (try? Fixtures.text("supplies_v1_eddie_ide_pointtype4")) ?? "[]",
            contract: (try? Fixtures.text("contract_detail_v1_lenorix_authorized_verified_shape")) ?? "[]", answers: answers)
    }
}

@Suite struct DatadisNodeTests {
    static func store() async throws -> SQLiteStore { try await PullFlows.memoryStore() }

    static func stored(_ store: any Store) async throws -> [Reading] {
        try await store.changes(tenant: "default", after: 0, limit: 100_000).map(\.reading)
    }

    /// trigger → supplies → consumption (or the node given) → store.
    static func flow(_ server: FixtureServer, password: String = "secreto", curve: String = "type: datadis.consumption\nfrom: 2023-10", timeout: String = "5s") -> String {
        let common = """
                base_url: \(server.baseURL)
                username: 12345678Z
                password: \(password)
                requests_per_minute: 60000
                timeout: \(timeout)
                request_backoff: 1s
            """
        return """
            flow: datadis
            nodes:
              - id: tick
                type: test.trigger
                to: [supplies]
              - id: supplies
                type: datadis.supplies
            \(common)
                to: [curve]
              - id: curve
            \(common)
            \(curve.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
                to: [store]
              - id: store
                type: store.readings
            """
    }

    static func run(_ yaml: String, store: any Store, at now: String, metrics: HubMetrics = HubMetrics(), fake: FakeDatadis? = nil) async throws {
        fake?.state.withLock { $0.now = ISO8601.date(now)! }
        try await PullFlows.run(yaml, specs: DatadisModule.specs, store: store, clock: VirtualClock(start: ISO8601.date(now)!), metrics: metrics)
    }

    /// The consumption months a server was asked for, in order.
    static func months(_ server: FixtureServer) -> [String] {
        server.requests.filter { $0.path.hasSuffix("get-consumption-data-v2") }.map { $0.parameter("startDate") ?? "" }
    }

    static let autumnDay: @Sendable (String, FixtureServer.Request) -> FixtureServer.Answer? = { endpoint, request in
        guard endpoint == "get-consumption-data-v2", request.parameter("startDate") == "2023/10" else { return nil }
        return .json(#"{"timeCurve": \#((try? Fixtures.text("consumption_v1_eddie_dst_autumn_2023-10-29_24rows_merged")) ?? "[]"), "distributorError": []}"#)
    }

    @Test func suppliesThenConsumptionIntoTheStoreWithOneLogin() async throws {
        let fake = FakeDatadis(answers: Self.autumnDay)
        let server = try await FixtureServer.start(fake.handle)
        defer { server.stop() }
        let store = try await Self.store()
        try await Self.run(Self.flow(server), store: store, at: "2023-11-05T10:00:00Z")

        #expect(fake.logins == 1, "one login, the token reused")
        #expect(server.requests.first?.body.hasPrefix("username=12345678Z&password=") == true && server.requests.first?.method == "POST")
        let supplies = try await store.supplies(tenant: "default")
        #expect(supplies.count == 1 && supplies[0].distributorCode == "8" && supplies[0].pointType == 4 && supplies[0].zone == "peninsula")
        // The current month first, then the previous one.
        #expect(Self.months(server) == ["2023/11", "2023/10"])
        let query = try #require(server.requests.last { $0.path.hasSuffix("get-consumption-data-v2") })
        #expect(query.query == "cups=ES00XXXXXXXXXXXXXXXX&distributorCode=8&startDate=2023/10&endDate=2023/10&measurementType=0&pointType=4")
        #expect(query.headers["accept-encoding"] == "identity" && query.headers["user-agent"]?.hasPrefix("Enchufe/") == true)
        let readings = try await Self.stored(store)
        #expect(readings.filter { $0.quantity == "consumption" }.count == 25 && readings.filter { $0.quantity == "surplus" }.count == 25)
        #expect(readings.allSatisfy { $0.series == "ES00XXXXXXXXXXXXXXXX" && $0.source == "datadis/curve" })
        #expect(fake.served429 == 0)
        #expect(try await store.deadLetters(tenant: nil, limit: 10).isEmpty, "an empty month is not a failure")
    }

    @Test func theLedgerPreventsAnyRepeatedQueryWithin24HoursAcrossARestart() async throws {
        let fake = FakeDatadis(answers: Self.autumnDay)
        let server = try await FixtureServer.start(fake.handle)
        defer { server.stop() }
        let store = try await Self.store()
        let yaml = Self.flow(server, curve: "type: datadis.consumption\nfrom: 2023-08")
        try await Self.run(yaml, store: store, at: "2023-11-05T10:00:00Z", fake: fake)
        #expect(Self.months(server) == ["2023/11", "2023/10", "2023/08", "2023/09"], "recent months first, then the back-fill")

        // A new hub on the same store (a restart), two hours later: nothing is asked again.
        try await Self.run(yaml, store: store, at: "2023-11-05T12:00:00Z", fake: fake)
        #expect(Self.months(server).count == 4)
        #expect(fake.served429 == 0)
        let due = try await store.checkpoint(CheckpointKey(tenant: "default", flow: "datadis", node: "curve", key: "next_due:ES00XXXXXXXXXXXXXXXX"))
        #expect(due?.value == "2023-11-06T10:00:00Z", "the node records when its next request is due")

        // A day later the current and previous month are asked again; the older ones wait a week.
        try await Self.run(yaml, store: store, at: "2023-11-06T10:30:00Z", fake: fake)
        #expect(Array(Self.months(server).dropFirst(4)) == ["2023/11", "2023/10"])
        try await Self.run(yaml, store: store, at: "2023-11-12T11:00:00Z", fake: fake)
        #expect(Array(Self.months(server).dropFirst(6)) == ["2023/11", "2023/10", "2023/08", "2023/09"])
        #expect(fake.served429 == 0, "Datadis never had to refuse a repeated query")
    }

    /// At most `max_requests` a trigger: the first months of the plan go, the rest wait for the next
    /// trigger (and are not counted against this one's budget before it is spent).
    @Test func maxRequestsSendsTheFirstMonthsAndLeavesTheRestForTheNextTrigger() async throws {
        let fake = FakeDatadis(answers: Self.autumnDay)
        let server = try await FixtureServer.start(fake.handle)
        defer { server.stop() }
        let store = try await Self.store()
        let yaml = Self.flow(server, curve: "type: datadis.consumption\nfrom: 2023-08\nmax_requests: 2")
        try await Self.run(yaml, store: store, at: "2023-11-05T10:00:00Z", fake: fake)
        #expect(Self.months(server) == ["2023/11", "2023/10"])
        try await Self.run(yaml, store: store, at: "2023-11-05T10:05:00Z", fake: fake)
        #expect(Self.months(server) == ["2023/11", "2023/10", "2023/08", "2023/09"])
        #expect(fake.served429 == 0)
    }

    @Test func badCredentialsAreAnAuthFailureThatNamesNoSecret() async throws {
        let fake = FakeDatadis()
        let server = try await FixtureServer.start(fake.handle)
        defer { server.stop() }
        let store = try await Self.store()
        let metrics = HubMetrics()
        try await Self.run(Self.flow(server, password: "wrong-pass"), store: store, at: "2023-11-05T10:00:00Z", metrics: metrics)
        #expect(server.requests.count == 1, "refused credentials are not retried")
        let dead = try await store.deadLetters(tenant: nil, limit: 10)
        #expect(dead.count == 1 && dead[0].node == "supplies" && dead[0].error.contains("Bad credentials"), "\(dead.map(\.error))")
        #expect(!dead[0].error.contains("wrong-pass") && !dead[0].error.contains("12345678Z"))
        #expect(PullFlows.requests(metrics, node: "supplies/login", result: "auth") == 1)
    }

    @Test func anExpiredTokenMeansOneNewLoginAndTheCallAgain() async throws {
        let fake = FakeDatadis(tokenLife: 86_400)
        let server = try await FixtureServer.start { request in
            // The first token stops working after the supplies call (Datadis revoked or expired it).
            if request.path.hasSuffix("get-consumption-data-v2") {
                fake.state.withLock { s in
                    if s.tokenNumber == 1 { s.tokens = [:] }
                }
            }
            return fake.handle(request)
        }
        defer { server.stop() }
        let store = try await Self.store()
        try await Self.run(Self.flow(server, curve: "type: datadis.consumption\nfrom: 2023-11"), store: store, at: "2023-11-05T10:00:00Z")
        #expect(fake.logins == 2)
        let calls: [String] = server.requests.map { request in String(request.path.split(separator: "/").last ?? "") }
        let expected = ["login", "get-supplies-v2", "get-consumption-data-v2", "login", "get-consumption-data-v2"]
        #expect(calls == expected)
        #expect(fake.served429 == 0, "the refused call was not counted by Datadis (401), so asking again is safe")
        #expect(try await store.deadLetters(tenant: nil, limit: 10).isEmpty)
    }

    @Test func a429IsNeverRetriedAndOtherMonthsGoOn() async throws {
        let fake = FakeDatadis(answers: Self.autumnDay)
        // Someone else (the Datadis website, another tool) asked for November already today.
        fake.state.withLock { $0.asked["/api-private/api/get-consumption-data-v2?cups=ES00XXXXXXXXXXXXXXXX&distributorCode=8&startDate=2023/11&endDate=2023/11&measurementType=0&pointType=4"] = [ISO8601.date("2023-11-05T08:00:00Z")!] }
        let server = try await FixtureServer.start(fake.handle)
        defer { server.stop() }
        let store = try await Self.store()
        let metrics = HubMetrics()
        let yaml = Self.flow(server)
        try await Self.run(yaml, store: store, at: "2023-11-05T10:00:00Z", metrics: metrics, fake: fake)
        #expect(Self.months(server) == ["2023/11", "2023/10"], "the 429 is not retried; October is still fetched")
        #expect(PullFlows.requests(metrics, node: "curve", result: "rate_limit") == 1)
        #expect(try await Self.stored(store).count == 50)
        #expect(try await store.deadLetters(tenant: nil, limit: 10).isEmpty)
        try await Self.run(yaml, store: store, at: "2023-11-05T11:00:00Z", fake: fake)
        #expect(Self.months(server).count == 2, "not asked again within 24 hours")
    }

    @Test(arguments: ["distributor error", "empty", "slow", "malformed", "HTML"])
    func failedOrEmptyAnswersStoreNothingAndAreNotResent(mode: String) async throws {
        let fake = FakeDatadis { endpoint, request in
            guard endpoint == "get-consumption-data-v2" else { return nil }
            switch mode {
            case "distributor error": return .json((try? Fixtures.text("consumption_v2_lenorix_distributor_error_only")) ?? "")
            case "empty": return .json("[]")
            case "slow": return .init(body: Array("[]".utf8), delay: .seconds(3))
            case "malformed": return .json(#"{"timeCurve": [{"date": "2023/11/01", "ti"#)
            default: return .init(headers: ["Content-Type": "text/html"], body: Array("<html><body>Mantenimiento</body></html>".utf8))
            }
        }
        let server = try await FixtureServer.start(fake.handle)
        defer { server.stop() }
        let store = try await Self.store()
        let metrics = HubMetrics()
        let yaml = Self.flow(server, curve: "type: datadis.consumption\nfrom: 2023-11", timeout: "1s")
        try await Self.run(yaml, store: store, at: "2023-11-05T10:00:00Z", metrics: metrics)
        #expect(Self.months(server) == ["2023/11"], "sent once, never retried")
        #expect(try await Self.stored(store).isEmpty, "no zero readings for missing data")
        let dead = try await store.deadLetters(tenant: nil, limit: 10)
        switch mode {
        case "distributor error", "empty":
            #expect(dead.isEmpty, "not a failure")
            #expect(PullFlows.requests(metrics, node: "curve", result: "ok") == 1)
        case "slow":
            #expect(dead.count == 1 && dead[0].error.contains("upstream"))
        default:
            #expect(dead.count == 1 && dead[0].error.contains("malformed"), "\(dead.map(\.error))")
        }
        // Within 24 hours the query is not sent again, whatever became of it (a timeout may have counted).
        try await Self.run(yaml, store: store, at: "2023-11-05T20:00:00Z")
        #expect(Self.months(server) == ["2023/11"])
        #expect(fake.served429 == 0)
    }

    @Test func aMonthRefusedWith500DoesNotStopTheOtherMonths() async throws {
        let fake = FakeDatadis { endpoint, request in
            if endpoint == "get-consumption-data-v2", request.parameter("startDate") == "2023/11" {
                return .json((try? Fixtures.text("error_500_internal_edata_issue169")) ?? "", status: 500)
            }
            return Self.autumnDay(endpoint, request)
        }
        let server = try await FixtureServer.start(fake.handle)
        defer { server.stop() }
        let store = try await Self.store()
        let metrics = HubMetrics()
        try await Self.run(Self.flow(server), store: store, at: "2023-11-05T10:00:00Z", metrics: metrics, fake: fake)
        #expect(Self.months(server) == ["2023/11", "2023/10"], "the 500 is not retried, and October is still asked for")
        #expect(PullFlows.requests(metrics, node: "curve", result: "upstream") == 1)
        #expect(try await Self.stored(store).count == 50)
        #expect(try await store.deadLetters(tenant: nil, limit: 10).isEmpty, "the pull fetched something: a warning, not a failure")
    }

    @Test func maxPowerIsStoredInKW() async throws {
        let fake = FakeDatadis { endpoint, request in
            guard endpoint == "get-max-power-v2", request.parameter("startDate") == "2022/03" else { return nil }
            return .json((try? Fixtures.text("max_power_v2_edata_test")) ?? "")
        }
        let server = try await FixtureServer.start(fake.handle)
        defer { server.stop() }
        let store = try await Self.store()
        try await Self.run(Self.flow(server, curve: "type: datadis.max_power\nfrom: 2022-03"), store: store, at: "2022-05-10T10:00:00Z")
        let request = try #require(server.requests.first { $0.parameter("startDate") == "2022/03" })
        #expect(request.path == "/api-private/api/get-max-power-v2" && request.query == "cups=ES00XXXXXXXXXXXXXXXX&distributorCode=8&startDate=2022/03&endDate=2022/03")
        let readings = try await Self.stored(store)
        #expect(readings.count == 3 && readings.allSatisfy { $0.quantity == "max_power" && $0.unit == "kW" })
        // March is before the previous month and has its values: recorded, never asked again.
        try await Self.run(Self.flow(server, curve: "type: datadis.max_power\nfrom: 2022-03"), store: store, at: "2022-05-20T10:00:00Z")
        #expect(server.requests.filter { $0.parameter("startDate") == "2022/03" }.count == 1)
    }

    @Test func contractsGiveEachSupplyItsTariffAndPowers() async throws {
        let fake = FakeDatadis()
        let server = try await FixtureServer.start(fake.handle)
        defer { server.stop() }
        let store = try await Self.store()
        try await Self.run(Self.flow(server, curve: "type: datadis.contracts"), store: store, at: "2023-11-05T10:00:00Z")
        let supply = try #require(try await store.supplies(tenant: "default").first)
        #expect(supply.tariff == "2.0TD" && supply.contractedPowerKW == [3.45, 3.45] && supply.distributorCode == "8")
        let contract = try #require(server.requests.first { $0.path.hasSuffix("get-contract-detail-v2") })
        #expect(contract.query == "cups=ES00XXXXXXXXXXXXXXXX&distributorCode=8")
        // Supplies asked again later keep the tariff the contract gave.
        try await Self.run(Self.flow(server, curve: "type: datadis.consumption\nfrom: 2023-11"), store: store, at: "2023-11-06T10:00:00Z")
        #expect(try await store.supplies(tenant: "default").first?.tariff == "2.0TD")
    }

    @Test func v1EndpointsAndAThirdPartysSupplies() async throws {
        let fake = FakeDatadis { endpoint, request in
            switch endpoint {
            case "get-supplies": return .json((try? Fixtures.text("supplies_v1_lenorix_authorized_verified_shape")) ?? "")
            case "get-consumption-data": return .json((try? Fixtures.text("consumption_v1_eddie_dst_spring_2024-03-31_23rows")) ?? "")
            default: return nil
            }
        }
        let server = try await FixtureServer.start(fake.handle)
        defer { server.stop() }
        let store = try await Self.store()
        let yaml = Self.flow(server, curve: "type: datadis.consumption\nfrom: 2024-04\napi: v1\nauthorized_nif: 87654321X")
            .replacingOccurrences(of: "    type: datadis.supplies\n", with: "    type: datadis.supplies\n    api: v1\n    authorized_nif: 87654321X\n")
        try await Self.run(yaml, store: store, at: "2024-04-05T10:00:00Z")
        let paths = server.requests.map(\.path)
        #expect(paths.contains("/api-private/api/get-supplies") && paths.contains("/api-private/api/get-consumption-data"))
        #expect(server.requests.dropFirst().allSatisfy { $0.parameter("authorizedNif") == "87654321X" })
        let consumption = try await Self.stored(store).filter { $0.quantity == "consumption" }
        #expect(consumption.count == 23, "the spring day: 23 hours")
    }

    @Test func everyExampleLoads() {
        #expect(PullFlows.exampleProblems(DatadisModule.specs, environment: ["DATADIS_USER": "u", "DATADIS_PASSWORD": "p"]) == [])
    }
}
