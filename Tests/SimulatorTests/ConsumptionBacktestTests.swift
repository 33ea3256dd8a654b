import EnchufeCore
import Foundation
import Simulator
import TestSupport
import Testing

/// The consumption forecast backtested on a simulated year (2025, hourly): every day at local
/// midnight the next 24 hours are forecast from the history before them (from March, eight weeks
/// in) and compared with the seasonal naive forecast (the same hour a week before). The figures
/// are printed and quoted in docs/forecasts.md.
@Suite struct ConsumptionBacktestTests {
    /// Total absolute errors of the forecast and of the naive forecast, and how many hours.
    static func backtest(_ model: CommunityModel) -> (ours: Double, naive: Double, hours: Int) {
        let zone = LocalDay.madrid
        var soc: [Double] = []
        var loads: [[Reading]] = Array(repeating: [], count: model.households.count)
        var t = LocalDay(year: 2025, month: 1, day: 1).start(in: zone)
        let end = LocalDay(year: 2026, month: 1, day: 1).start(in: zone)
        while t < end {
            for (i, interval) in model.step(start: t, seconds: 3600, soc: &soc).enumerated() {
                loads[i].append(Reading(series: model.households[i].cups, quantity: "consumption", ts: t, resolution: "PT1H", value: interval.loadKWh, unit: "kWh"))
            }
            t = t.addingTimeInterval(3600)
        }
        let forecaster = ConsumptionForecast()
        var ours = 0.0, naive = 0.0, n = 0
        for history in loads {
            let byTime = Dictionary(uniqueKeysWithValues: history.map { ($0.ts, $0.value) })
            var day = LocalDay(year: 2025, month: 3, day: 1)
            while day < LocalDay(year: 2025, month: 12, day: 31) {
                let from = day.start(in: zone)
                let (values, method) = forecaster.forecast(history: history, from: from, horizon: day.end(in: zone).timeIntervalSince(from), seconds: 3600)
                #expect(method == .profile)
                for v in values {
                    guard let actual = byTime[v.ts], let lastWeek = byTime[v.ts.addingTimeInterval(-7 * 86_400)] else { continue }
                    ours += abs(v.value - actual)
                    naive += abs(lastWeek - actual)
                    n += 1
                }
                day = day.adding(days: 1)
            }
        }
        return (ours, naive, n)
    }

    @Test func theProfileForecastBeatsTheSeasonalNaiveOneByMoreThanTenPercentOnASimulatedYear() async {
        await onOwnThread {
            let homes = Self.backtest(CommunityModel(seed: 11, households: 6, latitude: 40.4, pvShare: 0, batteryShare: 0, evShare: 0))
            let lower = (1 - homes.ours / homes.naive) * 100
            print("consumption backtest, 6 simulated households without a car, 2025 (\(homes.hours) hours): MAE \(homes.ours / Double(homes.hours)) kWh against seasonal naive \(homes.naive / Double(homes.hours)) kWh: \(lower) % lower")
            #expect(homes.hours > 6 * 300 * 23)
            #expect(homes.ours <= 0.9 * homes.naive)
        }
    }

    /// The simulator charges a car on a coin flip each night (1:00–4:00, 7.4 kW): noise no
    /// forecast from history can predict. The forecast must not do worse than the naive one there.
    @Test func aCarChargedOnACoinFlipIsNoWorseThanTheNaiveForecast() async {
        await onOwnThread {
            let car = Self.backtest(CommunityModel(seed: 11, households: 4, latitude: 40.4, pvShare: 0, batteryShare: 0, evShare: 1))
            let lower = (1 - car.ours / car.naive) * 100
            print("consumption backtest, 4 simulated households charging a car on a coin flip, 2025 (\(car.hours) hours): MAE \(car.ours / Double(car.hours)) kWh against seasonal naive \(car.naive / Double(car.hours)) kWh: \(lower) % lower")
            #expect(car.ours <= 1.05 * car.naive)
        }
    }
}
