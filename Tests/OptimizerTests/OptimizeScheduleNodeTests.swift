import EnchufeCore
import Foundation
import Logging
import Testing

@testable import Optimizer

/// `optimize.schedule` on a store: inputs found as forecasts, readings or the day before; the plan
/// out as forecast readings and setpoint messages; no plan again for the same inputs.
@Suite struct OptimizeScheduleNodeTests {
    static let now = ISO8601.date("2026-06-10T22:05:00Z")!  // 00:05 in Madrid
    static let start = ISO8601.date("2026-06-10T22:00:00Z")!

    func context(_ store: any Store, now: Date = now) -> NodeContext {
        NodeContext(
            flow: "home", node: "plan", tenant: "t1", store: store, clock: VirtualClock(start: now),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), metrics: HubMetrics())
    }

    static func hourly(_ series: String, _ quantity: String, from: Date, _ values: [Double], unit: String) -> [Reading] {
        values.enumerated().map { h, v in
            Reading(tenant: "t1", series: series, quantity: quantity, ts: from.addingTimeInterval(Double(h) * 3600), resolution: "PT1H", value: v, unit: unit)
        }
    }

    /// A day's PVPC in EUR/MWh: cheap at night and midday, dear in the evening.
    static let pvpc: [Double] = [90, 85, 80, 78, 80, 95, 120, 150, 140, 110, 80, 60, 50, 55, 70, 100, 140, 190, 230, 250, 220, 170, 130, 100]
    static let solar: [Double] = [0, 0, 0, 0, 0, 0, 0.1, 0.5, 1.2, 2, 2.8, 3.3, 3.5, 3.3, 2.8, 2, 1.2, 0.5, 0.1, 0, 0, 0, 0, 0]

    func store() async throws -> SQLiteStore {
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        _ = try await store.upsert(Self.hourly("esios:1001:8741", "price", from: Self.start, Self.pvpc, unit: "EUR/MWh"))
        // Consumption: only yesterday's readings (the day before stands in for a forecast).
        _ = try await store.upsert(Self.hourly("home", "consumption", from: Self.start.addingTimeInterval(-86_400), Array(repeating: 0.4, count: 24), unit: "kWh"))
        // PV: a forecast issued yesterday evening.
        let issued = Self.start.addingTimeInterval(-3 * 3600)
        try await store.saveForecasts(Self.hourly("home:pv", "generation", from: Self.start, Self.solar, unit: "kWh").map {
            var r = $0
            r.quality = .forecast
            return Forecast(r, issuedAt: issued, model: "forecast.solar")
        })
        _ = try await store.upsert([Reading(tenant: "t1", series: "home:battery", quantity: "soc", ts: Self.now.addingTimeInterval(-300), resolution: "PT0S", value: 30, unit: "%")])
        return store
    }

    static let options: [String: JSONValue] = [
        "site": "home", "consumption": "home", "pv": "home:pv", "export_price_value": 0.05,
        "batteries": [["id": "battery", "capacity_kwh": 10, "charge_kw": 3, "discharge_kw": 3, "soc_series": "home:battery"]],
        "chargers": [["id": "car", "energy_kwh": 12, "max_kw": 7.4, "min_kw": 1.4, "deadline": "07:30"]],
        "loads": [["id": "washer", "kw": 2, "duration": "2h", "window": "09:00-18:00"]],
        "import_kw": [6.9, 6.9],
    ]

    @Test func aDayIsPlannedFromTheStoresPricesAndForecastsAndBeatsTheRule() async throws {
        let store = try await store()
        let node = try OptimizeScheduleNode(NodeOptions(values: Self.options))
        let outputs = try await node.process(Message(), context(store))
        let plan = outputs.first { $0.port == "out" }?.message
        let readings = plan?.readings ?? []
        #expect(readings.allSatisfy { $0.quality == .forecast && $0.tags["model"] == "optimize.schedule" && $0.tags["issued_at"] == "2026-06-10T22:05:00Z" })
        #expect(readings.filter { $0.series == "home:battery" && $0.quantity == "setpoint" }.count == 24)
        #expect(readings.first { $0.series == "home:battery" && $0.quantity == "soc" }.map { $0.ts } == Self.start)
        // The car's 12 kWh arrive before 07:30 (the first seven hours), at 1.4–7.4 kW when charging.
        let car = readings.filter { $0.series == "home:car" && $0.quantity == "setpoint" }.sorted { $0.ts < $1.ts }.map(\.value)
        #expect(abs(car.prefix(8).reduce(0, +) - 12) < 1e-6 && car.dropFirst(8).allSatisfy { $0 == 0 })
        #expect(car.allSatisfy { $0 == 0 || (1.4 - 1e-9...7.4 + 1e-9).contains($0) })
        // The washer runs two hours inside 09:00–18:00 local (07:00–16:00 UTC).
        let washer = readings.filter { $0.series == "home:washer" && $0.quantity == "setpoint" && $0.value > 0 }.map(\.ts)
        #expect(washer.count == 2 && washer.allSatisfy { $0 >= ISO8601.date("2026-06-11T07:00:00Z")! && $0 < ISO8601.date("2026-06-11T16:00:00Z")! })
        // The battery starts from the stored 30 %: its first interval ends at 30 % plus what it charged.
        let firstSoc = readings.first { $0.series == "home:battery" && $0.quantity == "soc" && $0.ts == Self.start }?.value ?? 0
        let firstKW = readings.first { $0.series == "home:battery" && $0.quantity == "setpoint" && $0.ts == Self.start }?.value ?? 0
        #expect(abs(firstSoc - (30 + (firstKW > 0 ? firstKW * 0.9.squareRoot() : firstKW / 0.9.squareRoot()) * 10)) < 1e-3)
        let expected = Double(plan?.attributes["expected_cost"] ?? "") ?? .nan, baseline = Double(plan?.attributes["baseline_cost"] ?? "") ?? .nan
        #expect(expected < baseline, "plan \(expected) EUR against the rule's \(baseline) EUR")
        #expect(plan?.attributes["violations"] == "[]")
        let costs = readings.filter { $0.series == "home" && $0.quantity == "cost" }.map(\.value).reduce(0, +)
        #expect(abs(costs - expected) < 1e-3)

        // One setpoint message per asset and interval on the setpoints port.
        let setpoints = outputs.filter { $0.port == "setpoints" }.map(\.message.payload)
        #expect(setpoints.count == 3 * 24)
        #expect(setpoints.first { $0["asset"]?.stringValue == "battery" }?["soc"] != nil)
        #expect(setpoints.first { $0["asset"]?.stringValue == "car" }?["site"]?.stringValue == "home")

        // The same inputs a minute later: nothing new to plan. A new price: planned again.
        #expect(try await node.process(Message(), context(store, now: Self.now.addingTimeInterval(60))).isEmpty)
        let dearer = Self.hourly("esios:1001:8741", "price", from: Self.start, Self.pvpc.map { $0 * 2 }, unit: "EUR/MWh")
        #expect(try await node.process(Message(readings: dearer), context(store, now: Self.now.addingTimeInterval(60))).isEmpty == false)
    }

    /// Local times become interval indices: a car plugged in since 19:00 at 20:00 charges now; at
    /// 10:00 it waits for 19:00; the deadline's interval is the last whole one before it.
    @Test func pluggingInAndDeadlinesAreTheirLastAndNextLocalTimes() throws {
        let options = NodeOptions(values: ["site": "home", "chargers": [["id": "car", "energy_kwh": 10, "max_kw": 7, "from": "19:00", "deadline": "07:30"]]])
        let evening = try OptimizeScheduleNode.Assets(options, start: ISO8601.date("2026-06-10T18:00:00Z")!, seconds: 3600, count: 24)  // 20:00 in Madrid
        #expect(evening.chargers.first?.from == 0 && evening.chargers.first?.deadline == 11)
        let morning = try OptimizeScheduleNode.Assets(options, start: ISO8601.date("2026-06-10T08:00:00Z")!, seconds: 3600, count: 24)  // 10:00
        #expect(morning.chargers.first?.from == 9 && morning.chargers.first?.deadline == 21)
        let quarters = try OptimizeScheduleNode.Assets(options, start: ISO8601.date("2026-06-10T18:00:00Z")!, seconds: 900, count: 96)
        #expect(quarters.chargers.first?.deadline == 46)
    }

    @Test func withoutAnyPriceTheMessageFailsSayingSoAndBadAssetsAreReportedByOption() async throws {
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        let node = try OptimizeScheduleNode(NodeOptions(values: ["site": "home"]))
        let error = await #expect(throws: PermanentError.self) { _ = try await node.process(Message(), context(store)) }
        #expect(error?.description.contains("no esios:1001:8741 price") == true)

        let check = OptimizeScheduleNode.spec.check!
        #expect(check(NodeOptions(values: ["site": "home", "batteries": [["id": "b", "capacity_kwh": 10, "charge_kw": 3]]])).map(\.option) == ["batteries.0.discharge_kw"])
        #expect(check(NodeOptions(values: ["site": "home", "chargers": [["id": "car", "energy_kwh": 10, "max_kw": 7, "deadline": "7h"]]])).map(\.option) == ["chargers.0.deadline"])
        #expect(check(NodeOptions(values: ["site": "home", "loads": [["id": "a", "kw": 1], ["id": "a", "kw": 2]]])).map(\.option) == ["loads.1.id"])
        #expect(check(NodeOptions(values: ["site": "home", "hours": 72])).map(\.option) == ["hours"])
    }
}
