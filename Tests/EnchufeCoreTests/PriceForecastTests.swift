import Foundation
import TestSupport
import Testing

@testable import EnchufeCore

/// The price forecast (Energy/PriceForecast.swift): a process the expert model can represent is
/// forecast exactly, and on REE's recorded PVPC of 2024 (Prices/, written by
/// scripts/make-pvpc-history) both methods beat the naive benchmark of price forecasting.
@Suite struct PriceForecastTests {
    static let madrid = LocalDay.madrid

    /// The recorded PVPC of 2023 and 2024 (EUR/kWh), hourly readings from local midnight.
    static let recorded: [Reading] = {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Prices/pvpc-peninsula-2023-2024.csv")
        let text = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
        var out: [Reading] = []
        for line in text.split(separator: "\n").filter({ !$0.hasPrefix("#") }).dropFirst() {
            let fields = line.split(separator: ";")
            guard let day = LocalDay(String(fields[0])) else { continue }
            for (i, price) in fields.dropFirst().enumerated() {
                out.append(Reading(
                    series: "ree:1001:8741", quantity: "price", ts: day.start(in: madrid).addingTimeInterval(Double(i) * 3600), resolution: "PT1H",
                    value: Double(price)!, unit: "EUR/kWh"))
            }
        }
        return out
    }()

    /// Forecasts every day of 2024 from the days before it; the forecasts' and the naive
    /// benchmark's total absolute errors over the hours where both exist.
    static func backtest(_ model: PriceForecast) -> (ours: Double, naive: Double, hours: Int, methods: [PriceForecast.Method: Int]) {
        let byTime = Dictionary(recorded.map { ($0.ts, $0.value) }, uniquingKeysWith: { a, _ in a })
        var ours = 0.0, naive = 0.0, hours = 0
        var methods: [PriceForecast.Method: Int] = [:]
        var day = LocalDay(year: 2024, month: 1, day: 1)
        var from = 0
        while day < LocalDay(year: 2025, month: 1, day: 1) {
            let start = day.start(in: madrid)
            // The history a forecaster has the evening before: everything up to the day's start.
            while from < recorded.count && recorded[from].ts < start.addingTimeInterval(-120 * 86_400) { from += 1 }
            let history = recorded[from...].prefix { $0.ts < start }
            let (values, method) = model.forecast(history: Array(history), day: day, seconds: 3600)
            methods[method, default: 0] += 1
            for (ts, value) in values {
                guard let value, let actual = byTime[ts], let benchmark = ForecastAccuracy.Baseline.price.source(of: ts).flatMap({ byTime[$0] }) else { continue }
                ours += abs(value - actual)
                naive += abs(benchmark - actual)
                hours += 1
            }
            day = day.adding(days: 1)
        }
        return (ours, naive, hours, methods)
    }

    @Test func theExpertModelBeatsTheNaiveBenchmarkOnTheRecordedPVPCOf2024() async {
        await onOwnThread {
            #expect(Self.recorded.count > 730 * 23)
            let expert = Self.backtest(PriceForecast())
            let rMAE = expert.ours / expert.naive
            print("price backtest, recorded PVPC 2024 (\(expert.hours) hours): expert MAE \(expert.ours / Double(expert.hours)) EUR/kWh, naive benchmark \(expert.naive / Double(expert.hours)) EUR/kWh: rMAE \(rMAE)")
            #expect(expert.hours > 360 * 23)
            #expect(expert.methods[.expert, default: 0] >= 360, "\(expert.methods)")
            #expect(rMAE < 1)
        }
    }

    /// The fallback while history is short is weighed on its own too (an expert window too short to
    /// fit leaves the median everywhere).
    @Test func theMedianOfSimilarDaysAlsoBeatsTheNaiveBenchmarkThere() async {
        await onOwnThread {
            let median = Self.backtest(PriceForecast(window: 20))
            let rMAE = median.ours / median.naive
            print("price backtest, recorded PVPC 2024 (\(median.hours) hours): median of the last 7 similar days MAE \(median.ours / Double(median.hours)) EUR/kWh: rMAE \(rMAE)")
            #expect(median.methods[.expert] == nil)
            #expect(rMAE < 1)
        }
    }

    /// Prices made by a process in the model's span (a weighted sum of the day before, the week
    /// before and a Saturday discount) are forecast exactly, to the rounding of the normal equations
    /// of nearly collinear prices, once the window holds enough days.
    @Test func aProcessTheModelCanRepresentIsForecastExactly() {
        var history: [Reading] = []
        var byDay: [LocalDay: [Double]] = [:]
        var day = LocalDay(year: 2026, month: 1, day: 1)
        let calendar = LocalDay.calendar(Self.madrid)
        func price(_ d: LocalDay, _ hour: Int) -> Double {
            40 + 10 * sin(Double(hour) / 3) + Double((d.day * 7 + hour * 13) % 11)
        }
        // Two weeks of seeds, then the process.
        while day <= LocalDay(year: 2026, month: 3, day: 21) {
            let weekday = calendar.component(.weekday, from: day.start(in: Self.madrid))
            let values = (0..<24).map { h -> Double in
                guard byDay.count >= 14 else { return price(day, h) }
                let p1 = byDay[day.adding(days: -1)]![h], p7 = byDay[day.adding(days: -7)]![h]
                return 5 + 0.6 * p1 + 0.3 * p7 - (weekday == 7 ? 4 : 0)
            }
            byDay[day] = values
            if day < LocalDay(year: 2026, month: 3, day: 21) {
                var ts = day.start(in: Self.madrid)
                while ts < day.end(in: Self.madrid) {
                    history.append(Reading(series: "p", quantity: "price", ts: ts, resolution: "PT1H", value: values[calendar.component(.hour, from: ts)], unit: "EUR/MWh"))
                    ts = ts.addingTimeInterval(3600)
                }
            }
            day = day.adding(days: 1)
        }
        let target = LocalDay(year: 2026, month: 3, day: 21)  // a Saturday
        let (values, method) = PriceForecast().forecast(history: history, day: target, seconds: 3600)
        #expect(method == .expert)
        #expect(values.count == 24)
        for (ts, value) in values {
            let expected = byDay[target]![calendar.component(.hour, from: ts)]
            #expect(abs((value ?? .nan) - expected) < 1e-3, "\(ts): \(String(describing: value)) against \(expected)")
        }
    }
}
