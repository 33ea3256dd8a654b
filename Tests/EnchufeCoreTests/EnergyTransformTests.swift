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
        let hourly = try ResampleNode(NodeOptions(values: ["resolution": "PT1H"]))
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
        let daily = try ResampleNode(NodeOptions(values: ["resolution": "P1D"]))
        let one = try await daily.process(Message(readings: day), context(store)).first?.message.readings ?? []
        #expect(one.count == 1 && one.first?.value == 25 && one.first?.ts == dayStart && one.first?.resolution == "P1D")
        let short = try await daily.process(Message(readings: Array(day.prefix(96))), context(store)).first?.message.readings ?? []
        #expect(short.count == 96, "96 quarter-hours are not the whole 25-hour day")
    }

    @Test func hoursSplitIntoQuarterHoursEnergyEvenlyPricesRepeated() async throws {
        let store = try await memoryStore()
        let t0 = ISO8601.date("2026-06-01T10:00:00Z")!
        let node = try ResampleNode(NodeOptions(values: ["resolution": "PT15M"]))
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

    // MARK: community.balance

    @Test func eachMemberGetsItsShareAndTheCommunityItsTotals() async throws {
        let store = try await memoryStore()
        let members = (1...3).map { CUPS.make(distributor: "0031", number: UInt64($0)) }
        for cups in members { try await store.saveSupply(SupplyPoint(tenant: "t1", cups: cups, coefficient: 1.0 / 3, community: "roof")) }
        let t0 = ISO8601.date("2026-06-01T10:00:00Z")!
        // Static coefficients stored for 2026 (0.5, 0.3, 0.2) win over the supplies' thirds; hour 2 has its own.
        let yearStart = LocalDay(year: 2026, month: 1, day: 1).start(in: LocalDay.madrid)
        _ = try await store.upsert(zip(members, [0.5, 0.3, 0.2]).map { Reading(tenant: "t1", series: $0, quantity: "coefficient", ts: yearStart, resolution: "P1Y", value: $1, unit: "1") })
        _ = try await store.upsert(zip(members, [0.0, 0.0, 1.0]).map { Reading(tenant: "t1", series: $0, quantity: "coefficient", ts: t0.addingTimeInterval(3600), resolution: "PT1H", value: $1, unit: "1") })
        var readings: [Reading] = []
        for h in 0..<3 {
            let ts = t0.addingTimeInterval(Double(h) * 3600)
            readings.append(r("device:pv", "generation", ts, "PT1H", 10, "kWh", h == 0 ? .measured : .estimated))
            for (cups, c) in zip(members, [2.0, 4.0, 1.0]) where !(h == 2 && cups == members[2]) { readings.append(r(cups, "consumption", ts, "PT1H", c, "kWh")) }
        }
        let node = try CommunityBalanceNode(NodeOptions(values: ["community": "roof", "generation": "device:pv"]))
        let out = try #require(try await node.process(Message(readings: readings), context(store)).first?.message)
        func value(_ series: String, _ quantity: String, _ h: Int) -> Double? {
            out.readings.first { $0.series == series && $0.quantity == quantity && $0.ts == t0.addingTimeInterval(Double(h) * 3600) }?.value
        }
        // Hour 0: shares 5, 3, 2 of 10 against consumption 2, 4, 1.
        #expect(members.map { value($0, "generation_share", 0) } == [5, 3, 2])
        #expect(members.map { value($0, "self_consumption", 0) } == [2, 3, 1])
        #expect(members.map { value($0, "surplus", 0) } == [3, 0, 1])
        #expect(members.map { value($0, "deficit", 0) } == [0, 1, 0])
        #expect(["consumption", "generation", "self_consumption", "surplus", "deficit"].map { value("community:roof", $0, 0) } == [7, 10, 6, 4, 1])
        #expect(out.readings.first { $0.series == "community:roof" && $0.ts == t0 }?.quality == .computed)
        // Hour 1: its own hourly coefficients give everything to the third member; estimated generation.
        #expect(members.map { value($0, "generation_share", 1) } == [0, 0, 10])
        #expect(out.readings.first { $0.series == "community:roof" && $0.ts == t0.addingTimeInterval(3600) }?.quality == .estimated)
        // Hour 2 lacks a member's consumption: not balanced.
        #expect(value("community:roof", "surplus", 2) == nil && out.attributes["unbalanced"] == "1")
        #expect(out.readings.prefix(readings.count).map(\.series) == readings.map(\.series), "the inputs go out too")
    }

    // MARK: price.cheapest_hours

    @Test func theCheapestOrNegativeHoursOfTheWindowBecomeSetpoints() async throws {
        let store = try await memoryStore()
        // 2026-06-01, Madrid (CEST): quarter-hourly prices; hour h costs 50 - 10·h for h < 6, then 20 + h.
        let day = LocalDay(year: 2026, month: 6, day: 1).start(in: LocalDay.madrid)
        var prices: [Reading] = []
        for q in 0..<96 {
            let h = q / 4
            let price = h < 6 ? 50 - 10 * Double(h) : 20 + Double(h)
            prices.append(r("esios:600:3", "price", day.addingTimeInterval(Double(q) * 900), "PT15M", price + Double(q % 4) - 1.5, "EUR/MWh"))
        }
        let cheapest = CheapestHoursNode(NodeOptions(values: ["count": 2, "from_hour": 0, "to_hour": 8, "topic": "site/battery/set"]))
        let out = try await cheapest.process(Message(readings: prices), context(store)).map(\.message)
        // In 00–08 local: hours 4 (10) and 5 (0) are cheapest; in time order, rank 2 then 1.
        #expect(out.map { $0.payload["start"]?.stringValue } == [ISO8601.string(day.addingTimeInterval(4 * 3600)), ISO8601.string(day.addingTimeInterval(5 * 3600))])
        #expect(out.map { $0.payload["rank"]?.doubleValue } == [2, 1] && out.map { $0.payload["price"]?.doubleValue } == [10, 0])
        #expect(out.allSatisfy { $0.topic == "site/battery/set" && $0.payload["action"]?.stringValue == "charge" })
        let negative = CheapestHoursNode(NodeOptions(values: ["negative": true, "resolution": "PT15M"]))
        let below = try await negative.process(Message(readings: prices), context(store)).map(\.message)
        // Hour 5's quarters are -1.5 and -0.5 below zero; nothing else is.
        #expect(below.map { $0.payload["price"]?.doubleValue } == [-1.5, -0.5])
        let overnight = CheapestHoursNode(NodeOptions(values: ["count": 1, "from_hour": 22, "to_hour": 2]))
        let night = try await overnight.process(Message(readings: prices), context(store)).map(\.message)
        #expect(night.map { $0.payload["price"]?.doubleValue } == [40], "hours 22, 23, 0, 1 → hour 1 (40)")
        #expect(try await cheapest.process(Message(readings: Array(prices.prefix(3))), context(store)).isEmpty, "an hour needs all its quarters")
    }
}
