import Foundation
import TestSupport
import Testing

@testable import EnchufeCore

/// The community dashboard's numbers (`CommunityDashboard`, `GET /api/v1/communities/{id}/dashboard`)
/// on 2021-10-31, the 25-hour day that ended summer time in Madrid, against sums taken here from the
/// readings written; and who may see them.
@Suite struct CommunityDashboardTests {
    static let members = ["ES0021000000000001AB", "ES0021000000000002CD", "ES0021000000000003EF"]
    static let dayStart = ISO8601.date("2021-10-30T22:00:00Z")!  // 00:00 CEST
    static let dayEnd = ISO8601.date("2021-10-31T23:00:00Z")!  // 00:00 CET the next day: 25 hours later
    static let quantities = ["consumption", "generation", "surplus"]

    /// A member's quarter-hour value of a quantity: uneven, so a misplaced interval changes a sum.
    static func value(member m: Int, quantity q: Int, quarter k: Int) -> Double {
        let step: Int = (k * 7 + m * 13 + q * 5) % 17
        return Double(step) / 10 + 0.05
    }

    struct Setup {
        var store: SQLiteStore
        var readings: [Reading]
        var server: APIServer
        var read: String, totals: String, other: String
    }

    func setUp() async throws -> Setup {
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        for cups in Self.members { try await store.saveSupply(SupplyPoint(tenant: "t1", cups: cups, zone: "peninsula", community: "sol")) }
        try await store.saveSupply(SupplyPoint(tenant: "t2", cups: "ES0021000000000009XY", zone: "peninsula", community: "other"))
        var readings: [Reading] = []
        // From an hour before the day to an hour after it, quarter-hourly.
        for k in -4..<(25 * 4 + 4) {
            let ts = Self.dayStart.addingTimeInterval(Double(k) * 900)
            for (m, cups) in Self.members.enumerated() {
                // The surplus is part of the generation.
                let generation = Self.value(member: m, quantity: 1, quarter: k)
                let values = [Self.value(member: m, quantity: 0, quarter: k), generation, generation * Self.value(member: m, quantity: 2, quarter: k) / 2]
                for (quantity, value) in zip(Self.quantities, values) {
                    readings.append(Reading(tenant: "t1", series: cups, quantity: quantity, ts: ts, resolution: "PT15M", value: value, unit: "kWh"))
                }
                if k % 8 == 0 {
                    readings.append(Reading(tenant: "t1", series: cups, quantity: m == 0 ? "market_sold" : "market_bought", ts: ts, resolution: "PT15M", value: 0.25, unit: "kWh"))
                }
            }
        }
        // The other tenant's member, at the same instants: never in t1's sums.
        readings.append(Reading(tenant: "t2", series: "ES0021000000000009XY", quantity: "consumption", ts: Self.dayStart, resolution: "PT15M", value: 1000, unit: "kWh"))
        _ = try await store.upsert(readings)
        let (_, read) = try await APIKeys.create(tenant: "t1", scopes: ["read"], name: "manager", at: Date(), store: store)
        let (_, totals) = try await APIKeys.create(tenant: "t1", scopes: ["totals"], name: "member", at: Date(), store: store)
        let (_, other) = try await APIKeys.create(tenant: "t2", scopes: ["read"], name: "other", at: Date(), store: store)
        let server = try await APIServer.start(store: store, requireKeys: true)
        return Setup(store: store, readings: readings, server: server, read: read, totals: totals, other: other)
    }

    func dashboard(_ setup: Setup, _ query: String, key: String?) async throws -> (status: Int, body: JSONValue) {
        let answer = try await setup.server.get("/api/v1/communities/sol/dashboard?\(query)", key: key)
        return (answer.status, try JSONValue.parse(answer.body))
    }

    static func numbers(_ value: JSONValue?) -> [Double?] {
        (value?.arrayValue ?? []).map(\.doubleValue)
    }

    static func close(_ a: [Double?], _ b: [Double?]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { x, y in
            switch (x, y) {
            case (nil, nil): true
            case (let x?, let y?): abs(x - y) < 1e-9
            default: false
            }
        }
    }

    @Test func aTwentyFiveHourDayHasTwentyFiveHoursEachTheSumOfItsMembersReadings() async throws {
        let setup = try await setUp()
        defer { setup.server.stop() }
        let (status, body) = try await dashboard(setup, "date=2021-10-31", key: setup.read)
        #expect(status == 200)
        let intervals = body["intervals"]?.arrayValue ?? []
        #expect(intervals.count == 25)
        #expect(body["from"]?.stringValue == "2021-10-30T22:00:00Z" && body["to"]?.stringValue == "2021-10-31T23:00:00Z")
        #expect(intervals.map { $0["label"]?.stringValue ?? "" }[1...4] == [
            "2021-10-31 01:00 +02:00", "2021-10-31 02:00 +02:00", "2021-10-31 02:00 +01:00", "2021-10-31 03:00 +01:00",
        ])
        #expect(body["resolution"]?.stringValue == "PT1H" && body["time_zone"]?.stringValue == "Europe/Madrid")
        for quantity in Self.quantities {
            var expected = [Double?](repeating: nil, count: 25)
            for r in setup.readings where r.tenant == "t1" && r.quantity == quantity && r.ts >= Self.dayStart && r.ts < Self.dayEnd {
                let hour = Int(r.ts.timeIntervalSince(Self.dayStart)) / 3600
                expected[hour] = (expected[hour] ?? 0) + r.value
            }
            let shown = Self.numbers(body["energy"]?["measured"]?[quantity])
            #expect(Self.close(shown, expected), "\(quantity): \(shown) against \(expected)")
        }
        // Bought and sold: every second hour, one seller and two buyers.
        let sold = Self.numbers(body["for_sale"]?["sold"]), bought = Self.numbers(body["for_sale"]?["bought"])
        #expect(Self.close(sold, (0..<25).map { $0 % 2 == 0 ? 0.25 : nil }))
        #expect(Self.close(bought, (0..<25).map { $0 % 2 == 0 ? 0.5 : nil }))
    }

    @Test func ratiosAreThoseOfTheDaysTotalsForTheCommunityAndEachMember() async throws {
        let setup = try await setUp()
        defer { setup.server.stop() }
        let (_, body) = try await dashboard(setup, "date=2021-10-31", key: setup.read)
        func sums(_ cups: Set<String>) -> (consumption: Double, generation: Double, surplus: Double) {
            var s: [String: Double] = [:]
            for r in setup.readings where cups.contains(r.series) && r.ts >= Self.dayStart && r.ts < Self.dayEnd { s[r.quantity, default: 0] += r.value }
            return (s["consumption"] ?? 0, s["generation"] ?? 0, s["surplus"] ?? 0)
        }
        func check(_ row: JSONValue?, _ cups: Set<String>) {
            let s = sums(cups)
            let used = s.generation - s.surplus
            #expect(abs((row?["consumption"]?.doubleValue ?? 0) - s.consumption) < 1e-9)
            #expect(abs((row?["self_consumed"]?.doubleValue ?? 0) - used) < 1e-9)
            #expect(abs((row?["self_consumption"]?.doubleValue ?? 0) - used / s.generation) < 1e-12)
            #expect(abs((row?["self_sufficiency"]?.doubleValue ?? 0) - used / (s.consumption + used)) < 1e-12)
        }
        check(body["ratios"]?["community"], Set(Self.members))
        let detail = body["members_detail"]?.arrayValue ?? []
        #expect(detail.compactMap { $0["cups"]?.stringValue } == Self.members)
        for row in detail { check(row, [row["cups"]?.stringValue ?? ""]) }
        #expect(detail.first?["market_sold"]?.doubleValue == 0.25 * 13)
    }

    @Test func aMonthHasOnePointPerLocalDay() async throws {
        let setup = try await setUp()
        defer { setup.server.stop() }
        let (status, body) = try await dashboard(setup, "date=2021-10-12&range=month", key: setup.read)
        #expect(status == 200)
        let labels = (body["intervals"]?.arrayValue ?? []).compactMap { $0["label"]?.stringValue }
        #expect(labels.count == 31 && labels.first == "2021-10-01" && labels.last == "2021-10-31")
        #expect(body["resolution"]?.stringValue == "P1D")
        // The readings of 2021-10-30 from 23:00 and those of 2021-10-31 fall on their local days.
        let consumption = Self.numbers(body["energy"]?["measured"]?["consumption"])
        var expected = [Double?](repeating: nil, count: 31)
        let zone = TimeZone(identifier: "Europe/Madrid")!
        for r in setup.readings where r.tenant == "t1" && r.quantity == "consumption" {
            let day = LocalDay(containing: r.ts, in: zone)
            guard day.month == 10 else { continue }
            expected[day.day - 1] = (expected[day.day - 1] ?? 0) + r.value
        }
        #expect(Self.close(consumption, expected), "\(consumption) against \(expected)")
    }

    @Test func predictedIsTheCommunitysLatestOrDayAheadIssueElseTheSumOfItsMembers() async throws {
        let setup = try await setUp()
        defer { setup.server.stop() }
        let dayAhead = ISO8601.date("2021-10-30T12:00:00Z")!, morning = ISO8601.date("2021-10-31T06:00:00Z")!
        var forecasts: [Forecast] = []
        for h in 0..<25 {
            let ts = Self.dayStart.addingTimeInterval(Double(h) * 3600)
            func reading(_ series: String, _ quantity: String, _ value: Double) -> Reading {
                Reading(tenant: "t1", series: series, quantity: quantity, ts: ts, resolution: "PT1H", value: value, unit: "kWh", quality: .forecast)
            }
            forecasts.append(Forecast(reading("community:sol", "consumption", Double(h)), issuedAt: dayAhead, model: "profile"))
            if ts > morning { forecasts.append(Forecast(reading("community:sol", "consumption", 100 + Double(h)), issuedAt: morning, model: "profile")) }
            // Generation is forecast per member only, quarter-hourly: the dashboard sums them per hour.
            for (m, cups) in Self.members.enumerated() {
                for q in 0..<4 {
                    var r = reading(cups, "generation", Double(m + 1))
                    r.ts = ts.addingTimeInterval(Double(q) * 900)
                    r.resolution = "PT15M"
                    forecasts.append(Forecast(r, issuedAt: dayAhead, model: "pv"))
                }
            }
        }
        // A community forecast of the members' generation's quantity under another tenant changes nothing.
        forecasts.append(Forecast(
            Reading(tenant: "t2", series: "community:sol", quantity: "generation", ts: Self.dayStart, resolution: "PT1H", value: 1e6, unit: "kWh", quality: .forecast),
            issuedAt: dayAhead, model: "pv"))
        try await setup.store.saveForecasts(forecasts)

        let latest = try await dashboard(setup, "date=2021-10-31", key: setup.totals).body
        let hours = (0..<25).map { Self.dayStart.addingTimeInterval(Double($0) * 3600) }
        let consumptionLatest: [Double?] = hours.indices.map { hours[$0] > morning ? 100 + Double($0) : Double($0) }
        let generation: [Double?] = hours.map { _ in 4.0 * (1 + 2 + 3) }
        #expect(Self.close(Self.numbers(latest["energy"]?["predicted"]?["consumption"]), consumptionLatest))
        #expect(Self.close(Self.numbers(latest["energy"]?["predicted"]?["generation"]), generation))
        #expect(Self.numbers(latest["energy"]?["predicted"]?["surplus"]).allSatisfy { $0 == nil })
        #expect(Self.numbers(latest["for_sale"]?["predicted_surplus"]).count == 25)

        let early = try await dashboard(setup, "date=2021-10-31&vintage=day-ahead", key: setup.totals).body
        #expect(early["vintage"]?.stringValue == "day-ahead")
        let consumptionEarly: [Double?] = hours.indices.map { Double($0) }
        #expect(Self.close(Self.numbers(early["energy"]?["predicted"]?["consumption"]), consumptionEarly))

        // The accuracy shown is the accuracy route's for the community's series and the same period.
        _ = try await setup.store.upsert(hours.indices.map {
            Reading(tenant: "t1", series: "community:sol", quantity: "consumption", ts: hours[$0], resolution: "PT1H", value: Double($0) + 1, unit: "kWh")
        })
        let shown = try await dashboard(setup, "date=2021-10-31", key: setup.read).body["accuracy"]
        let route = try JSONValue.parse(try await setup.server.get(
            "/api/v1/forecasts/accuracy?series=community:sol&quantity=consumption&from=2021-10-30T22:00:00Z&to=2021-10-31T23:00:00Z", key: setup.read).body)
        let consumption = (shown?.arrayValue ?? []).filter { $0["quantity"]?.stringValue == "consumption" }
        #expect(!consumption.isEmpty)
        #expect(JSONValue.array(consumption) == route["accuracy"])
    }

    @Test func pricesMarkNegativeAndTheCheapestThreeHoursAndFillTomorrowWithForecasts() async throws {
        let setup = try await setUp()
        defer { setup.server.stop() }
        let values = (0..<25).map { Double(($0 * 37) % 25) * 4 - 10 }  // -10…86 EUR/MWh, each once
        _ = try await setup.store.upsert(values.indices.map {
            Reading(tenant: "t1", series: "ree:1001:8741", quantity: "price", ts: Self.dayStart.addingTimeInterval(Double($0) * 3600), resolution: "PT1H",
                value: values[$0], unit: "EUR/MWh")
        })
        // Tomorrow: only a forecast, in EUR/kWh.
        try await setup.store.saveForecasts((0..<24).map {
            Forecast(Reading(tenant: "t1", series: "ree:1001:8741", quantity: "price", ts: Self.dayEnd.addingTimeInterval(Double($0) * 3600), resolution: "PT1H",
                value: 0.05, unit: "EUR/kWh", quality: .forecast), issuedAt: Self.dayStart, model: "price")
        })
        let body = try await dashboard(setup, "date=2021-10-31", key: setup.totals).body
        let days = body["prices"]?.arrayValue ?? []
        #expect(days.compactMap { $0["day"]?.stringValue } == ["2021-10-31", "2021-11-01"])
        let today = days.first?["rows"]?.arrayValue?.first { $0["name"]?.stringValue == "PVPC" }
        let points = today?["points"]?.arrayValue ?? []
        #expect(points.count == 25)
        #expect(points.compactMap { $0["value"]?.doubleValue } == values)
        #expect(points.map { $0["negative"]?.boolValue == true } == values.map { $0 < 0 })
        let cheapest = Set(values.sorted().prefix(3))
        #expect(points.map { $0["cheapest"]?.boolValue == true } == values.map { cheapest.contains($0) })
        #expect(points.allSatisfy { $0["predicted"]?.boolValue == false })
        #expect(points.compactMap { $0["label"]?.stringValue }[2...3] == ["02:00", "02:00"])
        let tomorrow = days.last?["rows"]?.arrayValue?.first { $0["name"]?.stringValue == "PVPC" }?["points"]?.arrayValue ?? []
        #expect(tomorrow.count == 24 && tomorrow.allSatisfy { $0["predicted"]?.boolValue == true && $0["value"]?.doubleValue == 50 })
        // No spot or OMIE price stored: no row for them.
        #expect(days.first?["rows"]?.arrayValue?.count == 1)
    }

    @Test func aTotalsKeySeesNoMemberAnotherTenantNothingAndBadQueriesAreRefused() async throws {
        let setup = try await setUp()
        defer { setup.server.stop() }
        let (status, member) = try await dashboard(setup, "date=2021-10-31", key: setup.totals)
        #expect(status == 200)
        #expect(member["members_detail"] == nil && member["member_detail"]?.boolValue == false)
        #expect(member["ratios"]?["community"]?["consumption"]?.doubleValue ?? 0 > 0)

        let stranger = try await setup.server.get("/api/v1/communities/sol/dashboard?date=2021-10-31", key: setup.other)
        #expect(stranger.status == 404)
        #expect(!stranger.body.contains("ES00210000000000"))
        let tryTenant = try await setup.server.get("/api/v1/communities/sol/dashboard?date=2021-10-31&tenant=t1", key: setup.other)
        #expect(tryTenant.status == 404)
        let list = try JSONValue.parse(try await setup.server.get("/api/v1/communities", key: setup.other).body)
        #expect(list["communities"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == ["other"])
        let mine = try JSONValue.parse(try await setup.server.get("/api/v1/communities", key: setup.totals).body)
        #expect(mine["communities"]?.arrayValue?.first?["members"]?.doubleValue == 3)

        #expect(try await setup.server.get("/api/v1/communities/sol/dashboard", key: nil).status == 401)
        for (query, says) in [("range=year", "range must be"), ("vintage=old", "vintage must be"), ("date=2021-02-30", "date must be"), ("date=1900-01-01", "date must be")] {
            let answer = try await setup.server.get("/api/v1/communities/sol/dashboard?\(query)", key: setup.read)
            #expect(answer.status == 400 && answer.body.contains(says), "\(query): \(answer.status) \(answer.body)")
        }
        // A key that may only write is refused.
        let (_, writer) = try await APIKeys.create(tenant: "t1", scopes: ["ingest"], name: "ingest", at: Date(), store: setup.store)
        #expect(try await setup.server.get("/api/v1/communities/sol/dashboard", key: writer).status == 403)
    }

    @Test func theOperatorOnThisMachineSeesEveryTenantsCommunitiesWithoutAKey() async throws {
        let setup = try await setUp()
        setup.server.stop()
        let server = try await APIServer.start(store: setup.store)
        defer { server.stop() }
        let list = try JSONValue.parse(try await server.get("/api/v1/communities", key: nil).body)
        #expect(list["communities"]?.arrayValue?.compactMap { "\($0["tenant"]?.stringValue ?? "")/\($0["id"]?.stringValue ?? "")" } == ["t1/sol", "t2/other"])
        let body = try JSONValue.parse(try await server.get("/api/v1/communities/sol/dashboard?date=2021-10-31", key: nil).body)
        #expect(body["tenant"]?.stringValue == "t1" && body["members_detail"]?.arrayValue?.count == 3)
        let page = try await server.get("/ui/communities/sol", key: nil)
        #expect(page.status == 200 && page.type.hasPrefix("text/html") && !page.body.contains("src=\"http") && !page.body.contains("href=\"http"))
    }
}
