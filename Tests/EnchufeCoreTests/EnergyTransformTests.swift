import Foundation
import Logging
import Testing

@testable import EnchufeCore

@Suite struct EnergyTransformTests {
    func context(_ store: any Store) -> NodeContext {
        NodeContext(
            flow: "f", node: "n", tenant: "t1", store: store, clock: VirtualClock(start: ISO8601.date("2026-11-22T10:00:00Z")!),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), metrics: HubMetrics())
    }

    func memoryStore() async throws -> SQLiteStore {
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        return store
    }

    func r(_ series: String, _ quantity: String, _ ts: Date, _ resolution: String, _ value: Double, _ unit: String, _ quality: Quality = .measured) -> Reading {
        Reading(tenant: "t1", series: series, quantity: quantity, ts: ts, resolution: resolution, value: value, unit: unit, quality: quality)
    }

    // MARK: resample

    @Test func quarterHoursBecomeWholeHoursAndDaysPartialOnesPassAsTheyWere() async throws {
        let store = try await memoryStore()
        let t0 = ISO8601.date("2026-10-25T08:00:00Z")!
        var readings: [Reading] = []
        for q in 0..<4 {
            let ts = t0.addingTimeInterval(Double(q) * 900)
            readings.append(r("s", "consumption", ts, "PT15M", Double(q + 1) / 10, "kWh", q == 2 ? .estimated : .measured))
            readings.append(r("s", "power", ts, "PT15M", Double(q * 2), "kW"))
        }
        for q in 0..<2 { readings.append(r("s", "consumption", t0.addingTimeInterval(3600 + Double(q) * 900), "PT15M", 1, "kWh")) }  // half of the next hour
        let hourly = ResampleNode(NodeOptions(values: ["resolution": "PT1H"]))
        let out = try await hourly.process(Message(readings: readings), context(store)).first?.message.readings ?? []
        let energy = out.first { $0.quantity == "consumption" && $0.ts == t0 }
        #expect(energy?.resolution == "PT1H" && abs((energy?.value ?? 0) - 1.0) < 1e-12 && energy?.quality == .estimated)
        let power = out.first { $0.quantity == "power" }
        #expect(power?.value == 3 && power?.resolution == "PT1H")
        let later: [Reading] = out.filter { $0.ts >= t0.addingTimeInterval(3600) }
        #expect(later.map(\.resolution) == ["PT15M", "PT15M"], "a partial hour is not summed")

        // 25 October 2026 in Madrid has 100 quarter-hours: they make one day.
        let dayStart = LocalDay(year: 2026, month: 10, day: 25).start(in: LocalDay.madrid)
        let day = (0..<100).map { r("s", "consumption", dayStart.addingTimeInterval(Double($0) * 900), "PT15M", 0.25, "kWh") }
        let daily = ResampleNode(NodeOptions(values: ["resolution": "P1D"]))
        let one = try await daily.process(Message(readings: day), context(store)).first?.message.readings ?? []
        #expect(one.count == 1 && one.first?.value == 25 && one.first?.ts == dayStart && one.first?.resolution == "P1D")
        let short = try await daily.process(Message(readings: Array(day.prefix(96))), context(store)).first?.message.readings ?? []
        #expect(short.count == 96, "96 quarter-hours are not the whole 25-hour day")
    }

    @Test func hoursSplitIntoQuarterHoursEnergyEvenlyPricesRepeated() async throws {
        let store = try await memoryStore()
        let t0 = ISO8601.date("2026-06-01T10:00:00Z")!
        let node = ResampleNode(NodeOptions(values: ["resolution": "PT15M"]))
        let out = try await node.process(Message(readings: [
            r("s", "consumption", t0, "PT1H", 2, "kWh"), r("esios:600", "price", t0, "PT1H", 84.5, "EUR/MWh"),
            r("s", "consumption", t0, "P1D", 20, "kWh"), r("s", "soc", t0, "PT0S", 50, "%"),
        ]), context(store)).first?.message.readings ?? []
        let energy = out.filter { $0.quantity == "consumption" && $0.resolution == "PT15M" }
        #expect(energy.map(\.value) == [0.5, 0.5, 0.5, 0.5] && energy.allSatisfy { $0.quality == .estimated })
        #expect(energy.map(\.ts) == (0..<4).map { t0.addingTimeInterval(Double($0) * 900) })
        let prices = out.filter { $0.quantity == "price" }
        #expect(prices.count == 4 && prices.allSatisfy { $0.value == 84.5 && $0.quality == .measured })
        #expect(out.contains { $0.resolution == "P1D" } && out.contains { $0.resolution == "PT0S" })
        #expect(ResampleNode.spec.check!(NodeOptions(values: ["resolution": "PT10M"])).map(\.option) == ["resolution"])
    }

    // MARK: pseudonymize

    @Test func pseudonymsAreStablePerKeyWellFormedAndOfTheSameLength() async throws {
        let store = try await memoryStore()
        let key = "a-long-random-secret-key-0123456789"
        let node = try PseudonymizeNode(NodeOptions(values: ["key": .string(key), "fields": ["series", "payload.cups", "attributes.meter"]]))
        let message = Message(
            payload: ["cups": "ES0031000000000001BJ", "kwh": 1], attributes: ["meter": "meter-17"],
            readings: [r("ES0031000000000001BJ0F", "consumption", Date(), "PT1H", 1, "kWh"), r("device:inv-7", "power", Date(), "PT0S", 1, "kW")])
        let first = try #require(try await node.process(message, context(store)).first?.message)
        let again = try #require(try await node.process(message, context(store)).first?.message)
        let cups22 = first.readings[0].series, cups20 = first.payload["cups"]?.stringValue ?? ""
        #expect(cups22 != "ES0031000000000001BJ0F" && cups22.count == 22 && CUPS.isValid(cups22) && cups22.hasSuffix("0F"))
        #expect(cups20.count == 20 && CUPS.isValid(cups20) && cups20 == String(cups22.prefix(20)), "the same supply, with and without border point")
        #expect(first.readings[1].series.count == 32 && first.readings[1].series.allSatisfy(\.isHexDigit))
        #expect(first.attributes["meter"]?.count == 32 && first.attributes["meter"] != "meter-17")
        #expect(first.payload["kwh"]?.doubleValue == 1)
        #expect(again.readings.map(\.series) == first.readings.map(\.series) && again.payload == first.payload, "stable")
        let other = try PseudonymizeNode(NodeOptions(values: ["key": "another-long-random-secret-key-xyz"]))
        let otherOut = try await other.process(message, context(store)).first?.message
        #expect(otherOut?.readings[0].series != cups22, "another key, another pseudonym")
        #expect(otherOut?.payload["cups"]?.stringValue == "ES0031000000000001BJ", "only the fields named")
        #expect(PseudonymizeNode.spec.options.first { $0.name == "key" }?.secret == true)
        #expect(PseudonymizeNode.spec.check!(NodeOptions(values: ["key": "short", "fields": ["series", "body.x"]])).map(\.option) == ["fields.1", "key"])
    }

    // MARK: aggregate

    @Test func totalsPerIntervalAndGroupWithSmallGroupsSuppressed() async throws {
        let store = try await memoryStore()
        let members = (1...6).map { CUPS.make(distributor: "0031", number: UInt64($0)) }
        for (i, cups) in members.enumerated() { try await store.saveSupply(SupplyPoint(tenant: "t1", cups: cups, community: i < 5 ? "roof" : "school")) }
        let t0 = ISO8601.date("2026-06-01T10:00:00Z")!
        var readings: [Reading] = []
        for (i, cups) in members.enumerated() {
            for h in 0..<2 {
                readings.append(r(cups, "consumption", t0.addingTimeInterval(Double(h) * 3600), "PT1H", Double(i + 1), "kWh", i == 0 && h == 1 ? .estimated : .measured))
            }
            readings.append(r(cups, "price", t0, "PT1H", 80, "EUR/MWh"))
        }
        let all = AggregateNode(NodeOptions(values: ["min_group": 5, "quantity": ["consumption"]]))
        let totals = try #require(try await all.process(Message(readings: readings), context(store)).first?.message)
        #expect(totals.readings.map(\.series) == ["community:all", "community:all"])
        #expect(totals.readings.map(\.value) == [21, 21] && totals.readings.map(\.quality) == [.measured, .estimated])
        #expect(totals.readings.allSatisfy { $0.tags["members"] == "6" })

        let byCommunity = AggregateNode(NodeOptions(values: ["min_group": 5, "group_by": "community", "quantity": ["consumption"]]))
        let grouped = try #require(try await byCommunity.process(Message(readings: readings), context(store)).first?.message)
        #expect(grouped.readings.map(\.series) == ["community:roof", "community:roof"] && grouped.readings.map(\.value) == [15, 15])
        #expect(grouped.attributes["suppressed"] == "2", "the one-member school's two readings")

        let strict = AggregateNode(NodeOptions(values: ["min_group": 7]))
        let none = try #require(try await strict.process(Message(readings: readings), context(store)).first?.message)
        #expect(none.readings.isEmpty && none.attributes["suppressed"] == String(readings.count))
    }
}
