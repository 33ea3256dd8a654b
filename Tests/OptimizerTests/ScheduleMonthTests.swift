import EnchufeCore
import Foundation
import Simulator
import Testing

@testable import Optimizer

/// The optimizer against the rule-based baseline over a month: ten simulated households (the
/// simulator's June 2024) share a 10 kWh battery, two EV chargers and a washing machine, on REE's
/// recorded PVPC of June 2024 (Tests/EnchufeCoreTests/Prices/), selling surplus at 0.05 EUR/kWh.
/// Every day is planned at local midnight for 24 hours; each plan's battery state carries over to
/// the next day, and so does the rule's. The month's costs and the saving are printed.
@Suite struct ScheduleMonthTests {
    static func pvpc() throws -> [Date: Double] {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("EnchufeCoreTests/Prices/pvpc-peninsula-2023-2024.csv")
        var prices: [Date: Double] = [:]
        for line in try String(contentsOf: file, encoding: .utf8).split(separator: "\n") where !line.hasPrefix("#") && !line.hasPrefix("day") {
            let fields = line.split(separator: ";")
            guard let day = LocalDay(String(fields[0])) else { continue }
            for (i, p) in fields.dropFirst().enumerated() { prices[day.start(in: LocalDay.madrid).addingTimeInterval(Double(i) * 3600)] = Double(p) }
        }
        return prices
    }

    @Test func aMonthOfDailyPlansCostsLessThanTheRule() throws {
        let prices = try Self.pvpc()
        let zone = LocalDay.madrid
        let model = CommunityModel(seed: 3, households: 10, latitude: 40.4, pvShare: 0.6, batteryShare: 0, evShare: 0)
        var soc: [Double] = []
        var planSoc = 0.5, ruleSoc = 0.5
        var planned = 0.0, rule = 0.0, days = 0
        var day = LocalDay(year: 2024, month: 6, day: 1)
        while day < LocalDay(year: 2024, month: 7, day: 1) {
            let start = day.start(in: zone)
            var load: [Double] = [], pv: [Double] = [], buy: [Double] = []
            var t = start
            while t < day.end(in: zone) {
                let intervals = model.step(start: t, seconds: 3600, soc: &soc)
                load.append(intervals.reduce(0) { $0 + $1.loadKWh })
                pv.append(intervals.reduce(0) { $0 + $1.generationKWh })
                buy.append(prices[t] ?? prices[t.addingTimeInterval(-86_400)] ?? 0.15)
                t = t.addingTimeInterval(3600)
            }
            let n = buy.count
            func problem(battery soc: Double) -> ScheduleProblem {
                var p = ScheduleProblem(start: start, seconds: 3600, buy: buy, sell: Array(repeating: 0.05, count: n), load: load, pv: pv, importLimitKW: Array(repeating: 40, count: n))
                p.batteries = [ScheduleProblem.Battery(id: "battery", capacityKWh: 10, chargeKW: 5, dischargeKW: 5, efficiency: 0.9, socMin: 0.1, socMax: 1, socStart: soc)]
                p.chargers = [
                    ScheduleProblem.Charger(id: "car-1", energyKWh: 12, minKW: 1.4, maxKW: 7.4, from: 0, deadline: 7),
                    ScheduleProblem.Charger(id: "car-2", energyKWh: 6, minKW: 1.4, maxKW: 3.7, from: 0, deadline: 8),
                ]
                p.loads = [ScheduleProblem.DeferrableLoad(id: "washer", kw: 2, duration: 2, earliest: 9, latest: 18)]
                return p
            }
            let plan = try problem(battery: planSoc).plan()
            let baseline = problem(battery: ruleSoc).baseline()
            #expect(plan.violations.isEmpty, "\(day): \(plan.violations)")
            planned += plan.cost
            rule += baseline.cost
            planSoc = (plan.soc["battery"]?.last ?? 50) / 100
            ruleSoc = (baseline.soc["battery"]?.last ?? 50) / 100
            days += 1
            day = day.adding(days: 1)
        }
        print("optimizer month, 10 simulated households with a shared 10 kWh battery, two cars and a washer, recorded PVPC June 2024 (\(days) days): plan \(planned) EUR, rule \(rule) EUR, saving \(rule - planned) EUR (\((1 - planned / rule) * 100) %)")
        #expect(days == 30)
        #expect(planned < rule)
    }
}
