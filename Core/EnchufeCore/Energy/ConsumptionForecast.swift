import Foundation

/// A consumption forecast from the series' own history: per day type (working day, Saturday,
/// Sunday or national holiday) and time of the day, the weighted median of the recent weeks'
/// values, the nearer weeks weighing more; a standard profile scaled to the consumption known while there are
/// fewer than four weeks of history (pure, so it is backtested apart from any flow).
public struct ConsumptionForecast: Sendable {
    public enum DayType: Int, Sendable, CaseIterable {
        case workday, saturday, holiday
    }

    public var zone: TimeZone
    /// Each week further back weighs this much of the one after it.
    public var decay: Double
    /// How many weeks back are weighed.
    public var weeks: Int
    let calendar: TariffCalendar

    public init(zone: TimeZone = LocalDay.madrid, decay: Double = 0.8, weeks: Int = 8) {
        self.zone = zone
        self.decay = decay
        self.weeks = weeks
        calendar = TariffCalendar()
    }

    public func dayType(_ ts: Date) -> DayType {
        let day = LocalDay(containing: ts, in: zone)
        let weekday = LocalDay.calendar(zone).component(.weekday, from: ts)
        if weekday == 7 { return .saturday }
        return calendar.isAllValley(day) ? .holiday : .workday
    }

    /// The slot of the day an interval starts in: minutes since local midnight, on the wall clock.
    func slot(_ ts: Date) -> Int { LocalDay.minuteOfDay(ts, in: zone) }

    /// A household's day by hour, as fractions of the day (sums to 1): low at night, a morning
    /// rise, a midday meal and the evening peak — an assumed shape (not a published profile), used
    /// only until the series' own four weeks exist.
    static let standardDay: [Double] = {
        let shape: [Double] = [3.0, 2.6, 2.4, 2.3, 2.3, 2.5, 3.2, 4.3, 4.8, 4.3, 4.0, 4.0, 4.3, 4.9, 5.0, 4.3, 3.9, 4.0, 4.6, 5.6, 6.6, 7.0, 6.2, 4.6]
        let total = shape.reduce(0, +)
        return shape.map { $0 / total }
    }()

    /// Assumed when there is no history at all: 3,300 kWh a year, about 9 kWh a day.
    static let assumedDailyKWh = 9.0

    public enum Method: String, Sendable {
        case profile, coldStart = "cold-start"
    }

    /// Forecasts for the intervals of `seconds` from `from` (on the interval grid) over `horizon`,
    /// from `history` (one series and quantity, before `from`).
    public func forecast(history: [Reading], from: Date, horizon: TimeInterval, seconds: Int) -> (values: [(ts: Date, value: Double)], method: Method) {
        let recent = history.filter { $0.ts < from && $0.ts >= from.addingTimeInterval(-Double(weeks) * 7 * 86_400) && $0.quality != .forecast }
        let span = recent.map(\.ts).min().map { from.timeIntervalSince($0) } ?? 0
        var out: [(Date, Double)] = []
        let count = Int(horizon) / seconds
        if span < 28 * 86_400 {
            // Cold start: the standard day scaled to the known daily consumption.
            let days = max(1, span / 86_400)
            let daily = recent.isEmpty ? Self.assumedDailyKWh : recent.map(\.value).reduce(0, +) / days
            for i in 0..<count {
                let ts = from.addingTimeInterval(Double(i * seconds))
                let hour = slot(ts) / 60
                out.append((ts, daily * Self.standardDay[hour] * Double(seconds) / 3600))
            }
            return (out, .coldStart)
        }
        // Per day type and slot (and per slot alone, for a day type not seen yet), the values with
        // their weights; the forecast is their weighted median, the value that minimises the
        // absolute error (a load that is either on or off, like a car charging some nights, is not
        // forecast half on).
        var samples: [Int: [(value: Double, weight: Double)]] = [:]  // key: day type × 10,000 + slot
        var anyDay: [Int: [(value: Double, weight: Double)]] = [:]
        for r in recent {
            let age = Double(Int(from.timeIntervalSince(r.ts) / (7 * 86_400)))
            let w = pow(decay, age)
            let s = slot(r.ts)
            samples[dayType(r.ts).rawValue * 10_000 + s, default: []].append((r.value, w))
            anyDay[s, default: []].append((r.value, w))
        }
        func median(_ values: [(value: Double, weight: Double)]) -> Double? {
            let sorted = values.sorted { $0.value < $1.value }
            let half = sorted.reduce(0) { $0 + $1.weight } / 2
            var running = 0.0
            for v in sorted {
                running += v.weight
                if running >= half { return v.value }
            }
            return sorted.last?.value
        }
        for i in 0..<count {
            let ts = from.addingTimeInterval(Double(i * seconds))
            let s = slot(ts)
            if let v = median(samples[dayType(ts).rawValue * 10_000 + s] ?? anyDay[s] ?? []) { out.append((ts, v)) }
        }
        return (out, .profile)
    }
}
