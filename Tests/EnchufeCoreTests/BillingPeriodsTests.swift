import EnchufeCore
import Foundation
import Testing
import TestSupport

@Suite struct BillingPeriodsTests {
    static let a = "ES0031000000000001BJ0F", b = "ES0031000000000002BZ0F", c = "ES0031000000000003BS0F"

    /// Supply a (2.0TD, peninsula): hourly consumption of 1 kWh from Saturday 24 to Tuesday 27
    /// October 2026 (Sunday the 25th has 25 hours) with Monday 11:00 missing and Monday 08:00
    /// estimated; surplus in quarter-hours Monday 12:00–14:00; self-consumption in Wh at 13:00;
    /// generation at 12:00 and 15:00 (self-consumed: generation less surplus) and at 13:00 (where
    /// the measured self-consumption counts instead).
    func serve() async throws -> (APIServer, key: String, dir: URL) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("enchufe-billing-\(UUID().uuidString)")
        let store = try SQLiteStore(path: dir.appendingPathComponent("hub.sqlite").path)
        try await store.migrate()
        try await store.saveSupply(SupplyPoint(tenant: "t", cups: Self.a, tariff: "2.0TD", zone: "peninsula"))
        try await store.saveSupply(SupplyPoint(tenant: "t", cups: Self.b, tariff: "3.0TD", zone: "canarias"))
        try await store.saveSupply(SupplyPoint(tenant: "t", cups: Self.c))
        try await store.saveSupply(SupplyPoint(tenant: "other", cups: "ES0031000000000004BQ0F", tariff: "2.0TD"))
        let madrid = LocalDay.madrid
        let start = LocalDay(year: 2026, month: 10, day: 24).start(in: madrid)
        let monday = LocalDay(year: 2026, month: 10, day: 26).start(in: madrid)
        var readings: [Reading] = []
        for h in 0..<73 {
            let ts = start.addingTimeInterval(Double(h) * 3600)
            if ts == monday.addingTimeInterval(11 * 3600) { continue }
            let quality: Quality = ts == monday.addingTimeInterval(8 * 3600) ? .estimated : .measured
            readings.append(Reading(tenant: "t", series: Self.a, quantity: "consumption", ts: ts, resolution: "PT1H", value: 1, unit: "kWh", quality: quality))
            readings.append(Reading(tenant: "t", series: Self.a, quantity: "power", ts: ts, resolution: "PT1H", value: 3, unit: "kW"))
        }
        for q in 0..<8 {
            readings.append(Reading(tenant: "t", series: Self.a, quantity: "surplus", ts: monday.addingTimeInterval(12 * 3600 + Double(q) * 900), resolution: "PT15M", value: 0.25, unit: "kWh"))
        }
        readings.append(Reading(tenant: "t", series: Self.a, quantity: "self_consumption", ts: monday.addingTimeInterval(13 * 3600), resolution: "PT1H", value: 500, unit: "Wh"))
        for (hour, kWh) in [(12.0, 1.5), (13, 2), (15, 0.8)] {
            readings.append(Reading(tenant: "t", series: Self.a, quantity: "generation", ts: monday.addingTimeInterval(hour * 3600), resolution: "PT1H", value: kWh, unit: "kWh"))
        }
        readings.append(Reading(tenant: "other", series: Self.a, quantity: "consumption", ts: monday, resolution: "PT1H", value: 100, unit: "kWh"))
        _ = try await store.upsert(readings)
        let (_, key) = try await APIKeys.create(tenant: "t", scopes: ["read"], name: "billing", at: Date(), store: store)
        return (try await APIServer.start(store: store), key, dir)
    }

    func period(_ supply: JSONValue?, _ name: String) -> [Double] {
        guard let p = supply?["periods"]?[name] else { return [] }
        return ["consumption", "surplus", "self_consumption", "hours", "estimated_hours"].map { p[$0]?.doubleValue ?? -1 }
    }

    @Test func periodsAddUpTheCurveAndCountTheHoursOfDSTDays() async throws {
        let (server, key, dir) = try await serve()
        defer { server.stop(); try? FileManager.default.removeItem(at: dir) }
        let answer = try await server.get("/api/v1/billing/periods?from=2026-10-24&to=2026-10-27", key: key)
        #expect(answer.status == 200)
        let body = try JSONValue.parse(answer.body)
        #expect(body["from"]?.stringValue == "2026-10-24" && body["to"]?.stringValue == "2026-10-27")
        let supplies = body["supplies"]?.arrayValue ?? []
        #expect(supplies.map { $0["cups"]?.stringValue ?? "" } == [Self.a, Self.b, Self.c])
        let a = supplies.first
        #expect(a?["tariff"]?.stringValue == "2.0TD" && a?["zone"]?.stringValue == "peninsula")
        // 24 + 25 + 24 hours expected; one missing.
        #expect(a?["hours_present"]?.doubleValue == 72 && a?["hours_expected"]?.doubleValue == 73)
        // Monday: P1 10–14 and 18–22 (8 hours, 11:00 missing), P2 8–10, 14–18, 22–24; the weekend
        // (49 hours) and Monday 0–8 are P3.
        #expect(period(a, "P1") == [7, 2, 1, 7, 0])
        #expect(period(a, "P2") == [8, 0, 0.8, 8, 1])
        #expect(period(a, "P3") == [57, 0, 0, 57, 0])
        let b = supplies.dropFirst().first
        #expect(b?["zone"]?.stringValue == "canarias" && b?["hours_expected"]?.doubleValue == 73 && b?["hours_present"]?.doubleValue == 0)
        #expect(b?["periods"]?.objectValue?.keys.sorted() == ["P1", "P2", "P3", "P4", "P5", "P6"])
        #expect(supplies.last?["problem"]?.stringValue?.contains("no access tariff") == true)

        let one = try JSONValue.parse(try await server.get("/api/v1/billing/periods?from=2026-10-26&to=2026-10-27&cups=\(Self.a)", key: key).body)
        #expect(one["supplies"]?.arrayValue?.count == 1)
        #expect(one["supplies"]?.arrayValue?.first?["hours_expected"]?.doubleValue == 24)
        #expect(period(one["supplies"]?.arrayValue?.first, "P3") == [8, 0, 0, 8, 0])
    }

    @Test func badRangesAreRefused() async throws {
        let (server, key, dir) = try await serve()
        defer { server.stop(); try? FileManager.default.removeItem(at: dir) }
        #expect(try await server.get("/api/v1/billing/periods?from=2026-10-24", key: key).status == 400)
        #expect(try await server.get("/api/v1/billing/periods?from=2026-10-24&to=2026-10-24", key: key).status == 400)
        #expect(try await server.get("/api/v1/billing/periods?from=2025-01-01&to=2026-10-24", key: key).status == 400)
        #expect(try await server.get("/api/v1/billing/periods?from=2026-10-24&to=2026-10-25", key: nil).status == 401)
    }
}
