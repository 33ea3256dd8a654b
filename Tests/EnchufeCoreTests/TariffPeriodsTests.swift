import Foundation
import Logging
import Testing

@testable import EnchufeCore

/// The reference matrices (`Tariffs/`, copied from the research fixtures): what each hour of a
/// working day is, by tariff, zone and month, and which 2024–2026 dates are all-valley.
private struct ReferenceMatrices {
    /// "2.0TD/energia/PENINSULA_BALEARES_CANARIAS/laborable" → 24 periods.
    var two: [String: [String]] = [:]
    /// "PENINSULA/7" → 24 periods of a working day in July.
    var six: [String: [String]] = [:]
    var holidays: [String: Bool] = [:]

    init() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Tariffs")
        func rows(_ name: String) throws -> [[String]] {
            try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
                .split(whereSeparator: \.isNewline).map { $0.split(separator: ";", omittingEmptySubsequences: false).map(String.init) }
        }
        for r in try rows("periods_2.0TD_matrix.csv").dropFirst() {
            two["\(r[0])/\(r[2])/\(r[1])/\(r[3])"] = Array(r[4...])
        }
        for r in try rows("periods_6p_3.0TD_6.xTD_workday_matrix.csv").dropFirst() where r[1] != "FESTIVO_O_FINDE" {
            for month in r[2].split(separator: ",") { six["\(r[0])/\(month)"] = Array(r[3...]) }
        }
        for r in try rows("holidays_valle_2024_2026.csv") where r[0].first?.isNumber == true {
            holidays[r[0]] = r[2] == "SI"
        }
    }

    /// The periods the reference gives the hour starting at `start`.
    func expected(twoPeriods: Bool, zone: TariffZone, at start: Date) -> (energy: String, power: String) {
        let c = LocalDay.calendar(zone.timeZone).dateComponents([.year, .month, .day, .hour, .weekday], from: start)
        let day = LocalDay(year: c.year!, month: c.month!, day: c.day!).description
        let valley = c.weekday == 1 || c.weekday == 7 || holidays[day] == true
        if twoPeriods {
            let group = zone == .ceuta || zone == .melilla ? "CEUTA_MELILLA" : "PENINSULA_BALEARES_CANARIAS"
            let kind = valley ? "sabado_domingo_festivo" : "laborable"
            return (two["2.0TD/energia/\(group)/\(kind)"]![c.hour!], two["2.0TD/potencia/\(group)/\(kind)"]![c.hour!])
        }
        let p = valley ? "P6" : six["\(zone.rawValue.uppercased())/\(c.month!)"]![c.hour!]
        return (p, p)
    }
}

@Suite struct TariffPeriodsTests {
    static let days: [(String, String)] = [
        ("2026-01-07", "a working day (Wednesday, high season)"),
        ("2026-06-10", "a working day (Wednesday, June)"),
        ("2026-01-10", "a Saturday"),
        ("2026-01-06", "6 January"),
        ("2026-04-03", "Good Friday, a working day for tariffs"),
        ("2026-03-29", "the spring DST day (23 hours)"),
        ("2026-10-25", "the autumn DST day (25 hours)"),
    ]

    @Test(arguments: days, [TariffZone.peninsula, .canarias])
    func everyHourOfTheDayHasTheReferencePeriod(_ day: (String, String), _ zone: TariffZone) throws {
        let reference = try ReferenceMatrices()
        let calendar = TariffCalendar()
        let local = LocalDay(day.0)!
        var hour = local.start(in: zone.timeZone)
        var hours = 0
        while hour < local.end(in: zone.timeZone) {
            for (tariff, name) in [(TariffCalendar.Tariff.twoPeriods, "2.0TD"), (.sixPeriods, "3.0TD")] {
                let got = calendar.periods(tariff, zone: zone, at: hour)
                let want = reference.expected(twoPeriods: tariff == .twoPeriods, zone: zone, at: hour)
                #expect(got.energy == want.energy && got.power == want.power,
                        "\(name) \(zone) \(day.1) \(LocalDay.wall(hour, zone.timeZone)): \(got) instead of \(want)")
            }
            hour = hour.addingTimeInterval(3600)
            hours += 1
        }
        #expect(hours == (day.0 == "2026-03-29" ? 23 : day.0 == "2026-10-25" ? 25 : 24))
    }

    @Test func theRulesTheReferenceNoteStatesHold() throws {
        let calendar = TariffCalendar()
        func at(_ text: String) -> Date { ISO8601.date(text)! }
        // Peninsula, Wednesday 7 January 2026 (CET): 10:00 punta, 08:00 llano, 03:00 valle.
        #expect(calendar.periods(.twoPeriods, zone: .peninsula, at: at("2026-01-07T09:00:00Z")) == .init(energy: "P1", power: "P1"))
        #expect(calendar.periods(.twoPeriods, zone: .peninsula, at: at("2026-01-07T07:00:00Z")) == .init(energy: "P2", power: "P1"))
        #expect(calendar.periods(.twoPeriods, zone: .peninsula, at: at("2026-01-07T02:00:00Z")) == .init(energy: "P3", power: "P2"))
        // Ceuta's windows are an hour later: 10:00 is still llano there.
        #expect(calendar.periods(.twoPeriods, zone: .ceuta, at: at("2026-01-07T09:00:00Z")).energy == "P2")
        // Six periods, January is the high season: 09:00 Peninsula is P1; Canarias' peak starts at 10:00
        // Canary time and its shoulder in the high season is P3, not P2.
        #expect(calendar.periods(.sixPeriods, zone: .peninsula, at: at("2026-01-07T08:00:00Z")).energy == "P1")
        #expect(calendar.periods(.sixPeriods, zone: .canarias, at: at("2026-07-15T08:00:00Z")).energy == "P3")  // 09:00 WEST
        #expect(calendar.periods(.sixPeriods, zone: .canarias, at: at("2026-07-15T09:00:00Z")).energy == "P1")  // 10:00 WEST
        // The same instant is 11:00 in Madrid and 10:00 in the Canaries: each zone reads its own clock.
        #expect(calendar.periods(.twoPeriods, zone: .peninsula, at: at("2026-01-07T10:00:00Z")).energy == "P1")
        #expect(calendar.periods(.twoPeriods, zone: .canarias, at: at("2026-01-07T07:30:00Z")).energy == "P3")  // 07:30 WET
        // Good Friday is a working day; 6 January, 8 December and any Sunday are all valley.
        #expect(calendar.periods(.twoPeriods, zone: .peninsula, at: at("2026-04-03T09:00:00Z")).energy == "P1")
        #expect(calendar.periods(.twoPeriods, zone: .peninsula, at: at("2026-01-06T11:00:00Z")).energy == "P3")
        #expect(calendar.periods(.sixPeriods, zone: .melilla, at: at("2026-12-08T11:00:00Z")).energy == "P6")
        // Extra dates, should the rule change.
        #expect(TariffCalendar(extraHolidays: [LocalDay("2026-04-03")!]).periods(.twoPeriods, zone: .peninsula, at: at("2026-04-03T09:00:00Z")).energy == "P3")
    }

    @Test func everyDateOfTheHolidayReferenceIsValleyOrNotAsItSays() throws {
        let reference = try ReferenceMatrices()
        let calendar = TariffCalendar()
        #expect(reference.holidays.count == 33)
        for (date, valley) in reference.holidays {
            let day = LocalDay(date)!
            let weekend = [1, 7].contains(LocalDay.calendar(.gmt).component(.weekday, from: day.start(in: .gmt)))
            #expect(calendar.isAllValley(day) == (valley || weekend), "\(date)")
        }
    }

    @Test func theSixPeriodTablesCoverEightHoursOfEachWindowEveryWorkingDay() {
        let calendar = TariffCalendar()
        for zone in TariffZone.allCases {
            for month in 1...12 {
                // A Wednesday of the month that is a working day.
                let day = (8...21).map { LocalDay(year: 2027, month: month, day: $0) }.first {
                    LocalDay.calendar(.gmt).component(.weekday, from: $0.start(in: .gmt)) == 4 && !calendar.isAllValley($0)
                }!
                let periods = (0..<24).map { calendar.periods(.sixPeriods, zone: zone, at: day.start(in: zone.timeZone).addingTimeInterval(Double($0) * 3600)).energy }
                #expect(periods.filter { $0 == "P6" }.count == 8, "\(zone) \(day)")
                #expect(Set(periods).count == 3, "\(zone) \(day): \(periods)")
            }
        }
    }
}

@Suite struct TariffPeriodsNodeTests {
    func context(_ store: any Store, now: String = "2026-07-20T00:00:00Z") -> NodeContext {
        NodeContext(
            flow: "f", node: "periods", tenant: "t1", store: store, clock: VirtualClock(start: ISO8601.date(now)!),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), metrics: HubMetrics())
    }

    func reading(_ series: String, _ ts: String, _ resolution: String = "PT15M") -> Reading {
        Reading(tenant: "t1", series: series, quantity: "consumption", ts: ISO8601.date(ts)!, resolution: resolution, value: 0.2, unit: "kWh")
    }

    @Test func tariffAndZoneComeFromTheSupplyValidThatDay() async throws {
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        let cups = "ES0031000000000001BJ0F"
        try await store.saveSupply(SupplyPoint(tenant: "t1", cups: cups, tariff: "2.0TD", zone: "peninsula", validFrom: "2025-01-01", validTo: "2026-06-30"))
        try await store.saveSupply(SupplyPoint(tenant: "t1", cups: cups, tariff: "3.0TD", zone: "canarias", validFrom: "2026-07-01"))
        try await store.saveSupply(SupplyPoint(tenant: "other", cups: "ES0031000000000002BJ0F", tariff: "2.0TD"))
        let node = TariffPeriodsNode(NodeOptions())
        // 15 July 2026, 10:30 in the Canaries (WEST): high season, peak → P1 under 3.0TD.
        let july = try await node.process(Message(readings: [reading(cups, "2026-07-15T09:30:00Z")]), context(store))
        #expect(july.first?.message.readings[0].tags == ["period": "P1", "power_period": "P1"])
        #expect(july.first?.message.attributes["period"] == "P1")
        // 10 June 2026, 10:30 in Madrid, under the 2.0TD supply of the first half-year → P1 / P1.
        let june = try await node.process(Message(readings: [reading(cups, "2026-06-10T08:30:00Z"), reading(cups, "2026-06-10T06:00:00Z")]), context(store))
        #expect(june.first?.message.readings.map { $0.tags["period"] } == ["P1", "P2"])
        #expect(june.first?.message.attributes["period"] == nil)
        // Another tenant's supply is not this tenant's: no tariff, an error naming the series.
        await #expect(throws: PermanentError.self) {
            _ = try await node.process(Message(readings: [reading("ES0031000000000002BJ0F", "2026-07-15T09:30:00Z")]), context(store))
        }
    }

    @Test func optionsOverrideTheSupplyAndLongReadingsPassUntagged() async throws {
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        let node = TariffPeriodsNode(NodeOptions(values: ["tariff": "6.1TD", "zone": "baleares"]))
        let out = try await node.process(
            Message(readings: [reading("meter-1", "2026-07-15T08:00:00Z", "PT1H"), reading("meter-1", "2026-07-14T22:00:00Z", "P1D")]), context(store))
        let readings = try #require(out.first?.message.readings)
        #expect(readings[0].tags["period"] == "P1")  // 10:00 CEST in Baleares, high season
        #expect(readings[1].tags.isEmpty)
        #expect(Reading(json: readings[0].json)?.tags == readings[0].tags)
    }

    @Test func badOptionsAreNamed() {
        let problems = TariffPeriodsNode.spec.check!(NodeOptions(values: ["tariff": "2.0A", "holidays": ["2026-13-01"]]))
        #expect(problems.map(\.option) == ["tariff", "holidays.0"])
    }
}
