import Foundation
import Logging
import TestSupport
import Testing

@testable import EnchufeCore

/// `community.market` (Energy/CommunityMarket.swift, Nodes/Transforms/CommunityMarketNode.swift)
/// and its monthly statement (`Settlement`, `GET /api/v1/communities/{id}/settlement`, the
/// `settlement` export format).
@Suite struct CommunityMarketTests {
    static let members = ["ES0021000000000001AB", "ES0021000000000002CD", "ES0021000000000003EF"]
    static let t0 = ISO8601.date("2026-05-04T10:00:00Z")!

    func context(_ store: any Store) -> NodeContext {
        NodeContext(
            flow: "community", node: "market", tenant: "t1", store: store, clock: VirtualClock(start: Self.t0),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), metrics: HubMetrics())
    }

    func store(orders: [MarketOrder?] = [nil, nil, nil]) async throws -> SQLiteStore {
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        for (cups, order) in zip(Self.members, orders) {
            try await store.saveSupply(SupplyPoint(tenant: "t1", cups: cups, community: "sol", market: order))
        }
        return store
    }

    static func position(_ cups: String, surplus: Double?, deficit: Double?, at ts: Date = t0, resolution: String = "PT15M") -> [Reading] {
        var out: [Reading] = []
        if let surplus { out.append(Reading(tenant: "t1", series: cups, quantity: "surplus", ts: ts, resolution: resolution, value: surplus, unit: "kWh")) }
        if let deficit { out.append(Reading(tenant: "t1", series: cups, quantity: "deficit", ts: ts, resolution: resolution, value: deficit, unit: "kWh")) }
        return out
    }

    static func value(_ readings: [Reading], _ series: String, _ quantity: String, at ts: Date = t0) -> Double? {
        readings.first { $0.series == series && $0.quantity == quantity && $0.ts == ts }?.value
    }

    /// The market's invariants in one interval: energy and money balance, nobody beyond its position.
    static func checkInvariants(_ members: [CommunityMarket.Member], _ clearing: CommunityMarket.Clearing, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
        let bought = clearing.members.reduce(0) { $0 + $1.bought }, sold = clearing.members.reduce(0) { $0 + $1.sold }
        #expect(abs(bought - sold) < 1e-9, "bought \(bought) sold \(sold)", sourceLocation: sourceLocation)
        #expect(abs(clearing.members.reduce(0) { $0 + $1.value }) < 1e-9, "money does not balance", sourceLocation: sourceLocation)
        for (m, r) in zip(members, clearing.members) {
            #expect(r.sold <= m.surplus + 1e-12 && r.bought <= m.deficit + 1e-12 && r.sold >= 0 && r.bought >= 0, "\(m) \(r)", sourceLocation: sourceLocation)
            #expect(abs(r.gridImport - (m.deficit - r.bought)) < 1e-9 && abs(r.gridExport - (m.surplus - r.sold)) < 1e-9, sourceLocation: sourceLocation)
        }
    }

    @Test func proRataSharesTheShortSideInProportionAndTheLongSideTradesAll() {
        let members = [
            CommunityMarket.Member(cups: "a", surplus: 3, deficit: 0), CommunityMarket.Member(cups: "b", surplus: 1, deficit: 0),
            CommunityMarket.Member(cups: "c", surplus: 0, deficit: 2),
        ]
        let clearing = CommunityMarket(rule: .proRata).clear(members, price: 0.1)
        Self.checkInvariants(members, clearing)
        // 4 kWh offered, 2 demanded: each seller sells half its surplus.
        #expect(clearing.members.map(\.sold) == [1.5, 0.5, 0])
        #expect(clearing.members.map(\.bought) == [0, 0, 2])
        #expect(zip(clearing.members.map(\.value), [0.15, 0.05, -0.2]).allSatisfy { abs($0 - $1) < 1e-12 })
        #expect(clearing.traded == 2)
    }

    @Test func priorityFillsTheCheapestAsksAndHighestBidsFirstAndLeavesOrdersBeyondThePriceOut() {
        let members = [
            CommunityMarket.Member(cups: "a", surplus: 2, deficit: 0, order: MarketOrder(ask: 0.08)),
            CommunityMarket.Member(cups: "b", surplus: 2, deficit: 0, order: MarketOrder(ask: 0.05)),
            CommunityMarket.Member(cups: "c", surplus: 5, deficit: 0, order: MarketOrder(ask: 0.2)),  // asks more than the price: out
            CommunityMarket.Member(cups: "d", surplus: 0, deficit: 1, order: MarketOrder(bid: 0.12)),
            CommunityMarket.Member(cups: "e", surplus: 0, deficit: 2.5, order: MarketOrder(bid: 0.15)),
            CommunityMarket.Member(cups: "f", surplus: 0, deficit: 4, order: MarketOrder(bid: 0.09)),  // bids less than the price: out
        ]
        let clearing = CommunityMarket(rule: .priority).clear(members, price: 0.1)
        Self.checkInvariants(members, clearing)
        // Eligible: 4 kWh offered (b first, then a), 3.5 demanded (e first, then d).
        #expect(clearing.members.map(\.sold) == [1.5, 2, 0, 0, 0, 0])
        #expect(clearing.members.map(\.bought) == [0, 0, 0, 1, 2.5, 0])
        #expect(clearing.members[5].gridImport == 4 && clearing.members[2].gridExport == 5)
    }

    @Test func edgeCasesNoSurplusAllSurplusOneMember() {
        for rule in CommunityMarket.Rule.allCases {
            let market = CommunityMarket(rule: rule)
            let noSurplus = [CommunityMarket.Member(cups: "a", surplus: 0, deficit: 1), CommunityMarket.Member(cups: "b", surplus: 0, deficit: 2)]
            let none = market.clear(noSurplus, price: 0.1)
            Self.checkInvariants(noSurplus, none)
            #expect(none.traded == 0 && none.members.map(\.gridImport) == [1, 2])
            let allSurplus = [CommunityMarket.Member(cups: "a", surplus: 1, deficit: 0), CommunityMarket.Member(cups: "b", surplus: 2, deficit: 0)]
            let exported = market.clear(allSurplus, price: 0.1)
            Self.checkInvariants(allSurplus, exported)
            #expect(exported.traded == 0 && exported.members.map(\.gridExport) == [1, 2])
            let alone = [CommunityMarket.Member(cups: "a", surplus: 0, deficit: 1.5)]
            let single = market.clear(alone, price: 0.1)
            Self.checkInvariants(alone, single)
            #expect(single.traded == 0 && single.members[0].gridImport == 1.5)
            #expect(market.clear([], price: 0.1).members.isEmpty)
        }
    }

    @Test func theNodeClearsEachIntervalAtTheMidpointOfStoredHourlyPricesAndSkipsAMemberWithoutData() async throws {
        let store = try await store()
        let hour = Self.t0
        // Hourly prices in EUR/MWh from the store: retail 200, compensation 60: midpoint 0.13 EUR/kWh.
        _ = try await store.upsert([
            Reading(tenant: "t1", series: "esios:1001:8741", quantity: "price", ts: hour, resolution: "PT1H", value: 200, unit: "EUR/MWh"),
            Reading(tenant: "t1", series: "esios:1739:3", quantity: "price", ts: hour, resolution: "PT1H", value: 60, unit: "EUR/MWh"),
        ])
        let q2 = hour.addingTimeInterval(900)
        let (a, b, c) = (Self.members[0], Self.members[1], Self.members[2])
        var input = Message()
        input.readings = Self.position(a, surplus: 2, deficit: 0) + Self.position(b, surplus: 0, deficit: 1) + Self.position(c, surplus: 0, deficit: 3)
            // The second quarter-hour: c sent nothing.
            + Self.position(a, surplus: 1, deficit: 0, at: q2) + Self.position(b, surplus: 0, deficit: 2, at: q2)
        let node = try CommunityMarketNode(NodeOptions(values: ["community": "sol"]))
        let out = try await node.process(input, context(store)).first?.message
        let readings = out?.readings ?? []
        #expect(readings.count > input.readings.count)
        #expect(Array(readings.prefix(input.readings.count)) == input.readings, "the inputs go on first, unchanged")
        // First quarter-hour: 2 offered, 4 demanded: a sells 2; b buys 0.5, c 1.5.
        #expect(Self.value(readings, a, "market_sold") == 2)
        #expect(Self.value(readings, b, "market_bought") == 0.5 && Self.value(readings, c, "market_bought") == 1.5)
        #expect(abs(Self.value(readings, "community:sol", "market_price")! - 0.13) < 1e-12)
        #expect(abs(Self.value(readings, a, "market_value")! - 0.26) < 1e-12)
        #expect(abs(Self.value(readings, c, "market_grid_import")! - 1.5) < 1e-12)
        // Savings: c bought 1.5 at 0.13 instead of 0.20; a sold 2 at 0.13 instead of 0.06.
        #expect(abs(Self.value(readings, c, "market_savings")! - 1.5 * 0.07) < 1e-12)
        #expect(abs(Self.value(readings, a, "market_savings")! - 2 * 0.07) < 1e-12)
        #expect(abs(Self.value(readings, "community:sol", "market_savings")! - 4 * 0.07) < 1e-12)
        // Second quarter-hour, the hour's prices: c has no data and does not trade.
        #expect(Self.value(readings, a, "market_sold", at: q2) == 1 && Self.value(readings, b, "market_bought", at: q2) == 1)
        #expect(Self.value(readings, c, "market_bought", at: q2) == nil)
        #expect(out?.attributes["market_missing"] == "1")
        #expect(readings.filter { $0.quantity.hasPrefix("market_") }.allSatisfy { $0.quality == .computed && $0.source == "community/market" })
    }

    @Test func withoutPricesNothingIsClearedAndAFixedOrLuaPriceNeedsNone() async throws {
        let store = try await store()
        let input = Message(readings: Self.position(Self.members[0], surplus: 1, deficit: 0) + Self.position(Self.members[1], surplus: 0, deficit: 1))
        let midpoint = try await CommunityMarketNode(NodeOptions(values: ["community": "sol"])).process(input, context(store)).first?.message
        #expect(midpoint?.readings == input.readings && midpoint?.attributes["market_unpriced"] == "1")

        let fixed = try await CommunityMarketNode(NodeOptions(values: ["community": "sol", "pricing": "fixed", "price": 0.09])).process(input, context(store))
            .first?.message.readings ?? []
        #expect(Self.value(fixed, "community:sol", "market_price") == 0.09 && Self.value(fixed, Self.members[1], "market_bought") == 1)
        #expect(Self.value(fixed, Self.members[1], "market_savings") == nil, "no retail price, no savings")

        let lua = try CommunityMarketNode(NodeOptions(values: [
            "community": "sol", "pricing": "expression", "price_expression": "0.05 + 0.01 * item.demanded",
        ]))
        let priced = try await lua.process(input, context(store)).first?.message.readings ?? []
        #expect(abs(Self.value(priced, "community:sol", "market_price")! - 0.06) < 1e-12)

        let check = CommunityMarketNode.spec.check!
        #expect(check(NodeOptions(values: ["community": "sol", "pricing": "fixed"])).compactMap(\.option) == ["price"])
        #expect(check(NodeOptions(values: ["community": "sol", "rule": "auction"])).compactMap(\.option) == ["rule"])
        await #expect(throws: PermanentError.self) {
            _ = try await CommunityMarketNode(NodeOptions(values: ["community": "nobody"])).process(input, context(store))
        }
    }

    @Test func priorityUsesTheOrdersOnTheSupplyRecords() async throws {
        let store = try await store(orders: [MarketOrder(ask: 0.2), nil, MarketOrder(bid: 0.15)])
        let (a, b, c) = (Self.members[0], Self.members[1], Self.members[2])
        let input = Message(readings: Self.position(a, surplus: 2, deficit: 0) + Self.position(b, surplus: 1, deficit: 0) + Self.position(c, surplus: 0, deficit: 3))
        let node = try CommunityMarketNode(NodeOptions(values: ["community": "sol", "rule": "priority", "pricing": "fixed", "price": 0.1]))
        let readings = try await node.process(input, context(store)).first?.message.readings ?? []
        // a asks 0.20 > 0.10: out; b (any price) sells its 1 kWh to c.
        #expect(Self.value(readings, a, "market_sold") == 0 && Self.value(readings, b, "market_sold") == 1)
        #expect(Self.value(readings, c, "market_bought") == 1 && Self.value(readings, c, "market_grid_import") == 2)
    }

    /// A member's standing order is set with its supply record, checked, and read back.
    @Test func theMarketOrderIsPutOnTheSupplyAndCheckedField() async throws {
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        let (_, admin) = try await APIKeys.create(tenant: "t1", scopes: ["admin", "read"], name: "ops", at: Date(), store: store)
        let server = try await APIServer.start(store: store)
        defer { server.stop() }
        let cups = "ES0031000000000001BJ0F"  // a CUPS whose control letters match (the route checks them)
        #expect(try await server.put("/api/v1/supplies/\(cups)", key: admin, json: #"{"community": "sol", "market": {"bid": 0.15}}"#).status == 200)
        #expect(try await store.supplies(tenant: "t1").first?.market == MarketOrder(bid: 0.15, ask: nil))
        let listed = try JSONValue.parse(try await server.get("/api/v1/supplies", key: admin).body)["supplies"]?.arrayValue?.first
        #expect(listed?["market"]?["bid"]?.doubleValue == 0.15 && listed?["market"]?["ask"]?.isNull == true)
        let bad = try await server.put("/api/v1/supplies/\(cups)", key: admin, json: #"{"market": {"ask": "cheap"}}"#)
        #expect(bad.status == 400 && bad.body.contains("market.ask must be a price in EUR/kWh"))
        let unknown = try await server.put("/api/v1/supplies/\(cups)", key: admin, json: #"{"market": {"price": 1}}"#)
        #expect(unknown.status == 400 && unknown.body.contains("unknown field 'price'"))
    }

    @Test func theMonthlySettlementSumsWhatTheMarketStoredForTheKeysTenantInJSONCSVAndAsAnExport() async throws {
        let store = try await store()
        let (a, b, c) = (Self.members[0], Self.members[1], Self.members[2])
        let node = try CommunityMarketNode(NodeOptions(values: ["community": "sol", "pricing": "fixed", "price": 0.1]))
        // Two quarter-hours in May and one in June (not in May's statement).
        for (ts, sa, dc) in [(Self.t0, 2.0, 1.0), (Self.t0.addingTimeInterval(900), 1.0, 3.0), (ISO8601.date("2026-06-01T10:00:00Z")!, 5.0, 5.0)] {
            let input = Message(readings: Self.position(a, surplus: sa, deficit: 0, at: ts) + Self.position(b, surplus: 0, deficit: 0, at: ts) + Self.position(c, surplus: 0, deficit: dc, at: ts))
            _ = try await store.upsert(try await node.process(input, context(store)).first!.message.readings)
        }
        try await store.saveSupply(SupplyPoint(tenant: "t2", cups: "ES0021000000000009XY", community: "other"))
        let (_, reader) = try await APIKeys.create(tenant: "t1", scopes: ["read"], name: "billing", at: Date(), store: store)
        let (_, other) = try await APIKeys.create(tenant: "t2", scopes: ["read"], name: "t2", at: Date(), store: store)
        let server = try await APIServer.start(store: store)
        defer { server.stop() }

        let answer = try await server.get("/api/v1/communities/sol/settlement?month=2026-05", key: reader)
        #expect(answer.status == 200)
        let body = try JSONValue.parse(answer.body)
        let rows = body["members"]?.arrayValue ?? []
        #expect(rows.map { $0["cups"]?.stringValue } == [a, b, c])
        // a sold 1 (of 2, c wanted 1) then 1 (c wanted 3): 2 kWh, 0.20 EUR; c bought 2, paid 0.20, imported 2.
        #expect(rows[0]["sold_kwh"]?.doubleValue == 2 && rows[0]["value_eur"]?.doubleValue == 0.2 && rows[0]["grid_export_kwh"]?.doubleValue == 1)
        #expect(rows[2]["bought_kwh"]?.doubleValue == 2 && rows[2]["value_eur"]?.doubleValue == -0.2 && rows[2]["grid_import_kwh"]?.doubleValue == 2)
        #expect(body["total"]?["bought_kwh"]?.doubleValue == body["total"]?["sold_kwh"]?.doubleValue)
        #expect(body["total"]?["value_eur"]?.doubleValue == 0)

        let csv = try await server.get("/api/v1/communities/sol/settlement?month=2026-05&format=csv", key: reader)
        #expect(csv.type.hasPrefix("text/csv"))
        let lines = csv.body.split(separator: "\n")
        #expect(lines.first == "cups;bought_kWh;sold_kWh;value_EUR;grid_import_kWh;grid_export_kWh;savings_EUR")
        #expect(lines[1] == "\(a);0.000000;2.000000;0.200000;0.000000;1.000000;")
        #expect(lines.last?.hasPrefix("total;2.000000;2.000000;0.000000;2.000000;1.000000;") == true)

        // The same statement as an export file (`export`, `file.out`): every stored reading of the members in May.
        var exported = ""
        let may = ReadingQuery(tenant: "t1", series: Self.members, from: Self.t0.addingTimeInterval(-86_400), to: ISO8601.date("2026-06-01T00:00:00Z")!)
        try await Exporter.write(.settlement, may, store: store) { chunk in exported += String(buffer: chunk) }
        #expect(exported == csv.body)

        #expect(try await server.get("/api/v1/communities/sol/settlement?month=2026-05", key: other).status == 404)
        #expect(try await server.get("/api/v1/communities/sol/settlement?month=May", key: reader).status == 400)
        #expect(try await server.get("/api/v1/communities/sol/settlement?month=2026-05&format=xml", key: reader).status == 400)
        #expect(try await server.get("/api/v1/communities/sol/settlement?month=2026-05", key: nil).status == 401)
        let audit = try await store.auditLog(tenant: "t1", limit: 10)
        #expect(audit.filter { $0.action == "settlement" }.count == 2)
    }
}
