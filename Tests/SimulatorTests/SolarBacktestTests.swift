import Foundation
import Simulator
import TestSupport
import Testing

@testable import EnchufeCore

/// `forecast.solar`'s method without weather backtested on a simulated year: every day at local
/// midnight, the clear-sky production of each hour corrected by the factors learned from the last
/// 30 days (`ForecastSolarNode.factors`), against persistence (the same hour the day before).
@Suite struct SolarBacktestTests {
    @Test func theCorrectedClearSkyForecastHasSkillOverPersistenceOnASimulatedYear() async {
        await onOwnThread {
            let model = CommunityModel(seed: 5, households: 3, latitude: 40.4, pvShare: 1, batteryShare: 0, evShare: 0)
            let zone = LocalDay.madrid
            let first = LocalDay(year: 2025, month: 1, day: 1).start(in: zone)
            let end = LocalDay(year: 2026, month: 1, day: 1).start(in: zone)
            var soc: [Double] = []
            var actual: [[Date: Double]] = Array(repeating: [:], count: model.households.count)
            var t = first
            while t < end {
                for (i, interval) in model.step(start: t, seconds: 3600, soc: &soc).enumerated() { actual[i][t] = interval.generationKWh }
                t = t.addingTimeInterval(3600)
            }
            var ours = 0.0, persistence = 0.0, hours = 0
            for (i, household) in model.households.enumerated() {
                let system = PVSystem(kwp: household.pvKWp, tilt: 0, azimuth: 180, latitude: 40.4, longitude: -3.7)
                let clear = PVSystem.Weather(cloud: 0, temperature: 15, wind: 1)
                var raw: [Date: Double] = [:]
                for ts in actual[i].keys { raw[ts] = system.energy(from: ts, seconds: 3600, clear) }
                var day = LocalDay(year: 2025, month: 2, day: 1)
                while day < LocalDay(year: 2025, month: 12, day: 31) {
                    let start = day.start(in: zone)
                    let learned = actual[i].keys.filter { $0 < start && $0 >= start.addingTimeInterval(-30 * 86_400) }
                        .map { (ts: $0, hours: 1.0, forecast: raw[$0]!, actual: actual[i][$0]!) }
                    let factors = ForecastSolarNode.factors(learned, system: system)
                    var ts = start
                    while ts < day.end(in: zone) {
                        let hour = LocalDay.calendar(zone).component(.hour, from: ts)
                        if let a = actual[i][ts], let before = ForecastAccuracy.Baseline.dayBefore.source(of: ts), let yesterday = actual[i][before] {
                            ours += abs(raw[ts]! * (factors[hour] ?? 1) - a)
                            persistence += abs(yesterday - a)
                            hours += 1
                        }
                        ts = ts.addingTimeInterval(3600)
                    }
                    day = day.adding(days: 1)
                }
            }
            let skill = 1 - ours / persistence
            print("solar backtest, 3 simulated roofs, 2025 (\(hours) hours): MAE \(ours / Double(hours)) kWh against persistence \(persistence / Double(hours)) kWh: skill \(skill)")
            #expect(hours > 3 * 320 * 23)
            #expect(skill > 0)
        }
    }
}
