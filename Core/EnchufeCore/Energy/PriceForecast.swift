import Foundation

/// A day's prices forecast from the price's own history (pure, so it is backtested apart from any
/// flow), by one of two methods:
///
/// - `expert`: per wall-clock slot of the day, a linear autoregression fitted by least squares on
///   the last `window` days — the "expert" model of electricity price forecasting (Ziel & Weron,
///   Energy Economics 70 (2018); Lago, Marcjasz, De Schutter & Weron, Applied Energy 293 (2021)):
///   the price of the slot the day before, two days before and a week before, the day before's
///   minimum, maximum and last price, and whether the day is a Monday, a Saturday, or a Sunday or
///   national holiday;
/// - `median`: while there are fewer than four weeks to fit on, the median at the same slot of the
///   last `similarDays` days of the same kind (working day or not).
public struct PriceForecast: Sendable {
    public enum Method: String, Sendable {
        case expert, median
    }

    public var zone: TimeZone
    /// How many days back the expert model is fitted on.
    public var window: Int
    /// How many days of the same kind the median is taken over.
    public var similarDays: Int
    let calendar = TariffCalendar()

    public init(zone: TimeZone = LocalDay.madrid, window: Int = 56, similarDays: Int = 7) {
        self.zone = zone
        self.window = window
        self.similarDays = similarDays
    }

    /// The regressors: intercept, three lagged prices, three of the day before, three day kinds.
    static let features = 10
    /// Fewer rows than this and the fit falls back to the median.
    static let minimumRows = 28

    /// One day's prices by wall-clock slot (minutes since local midnight); the first of a slot the
    /// day clocks go back, the slot before for the hour skipped the day they go forward.
    struct Day {
        var bySlot: [Int: Double] = [:]
        var last: (ts: Date, value: Double)?
        var low = Double.infinity, high = -Double.infinity
        var count = 0

        func at(_ slot: Int, step: Int) -> Double? {
            var s = slot
            while s >= max(0, slot - 60) {
                if let v = bySlot[s] { return v }
                s -= step
            }
            return nil
        }
    }

    func kind(_ day: LocalDay) -> (monday: Bool, saturday: Bool, holiday: Bool) {
        let weekday = LocalDay.calendar(zone).component(.weekday, from: day.start(in: zone))
        let saturday = weekday == 7
        return (weekday == 2 && !calendar.isAllValley(day), saturday, !saturday && calendar.isAllValley(day))
    }

    func workday(_ day: LocalDay) -> Bool { !calendar.isAllValley(day) }

    /// Forecasts for the intervals of `seconds` of `day` from `history` (one series, that
    /// resolution, before the day); nil for an interval no method can forecast.
    public func forecast(history: [Reading], day: LocalDay, seconds: Int) -> (values: [(ts: Date, value: Double?)], method: Method) {
        let step = max(1, seconds / 60)
        var days: [LocalDay: Day] = [:]
        let start = day.start(in: zone)
        for r in history where r.ts < start && r.quality != .forecast {
            let d = LocalDay(containing: r.ts, in: zone)
            var entry = days[d, default: Day()]
            let slot = LocalDay.minuteOfDay(r.ts, in: zone)
            if entry.bySlot[slot] == nil { entry.bySlot[slot] = r.value }
            if entry.last.map({ r.ts > $0.ts }) ?? true { entry.last = (r.ts, r.value) }
            entry.low = min(entry.low, r.value)
            entry.high = max(entry.high, r.value)
            entry.count += 1
            days[d] = entry
        }
        // A day counts when (nearly) whole: 23 hours' worth of intervals at least.
        let whole = 23 * 3600 / seconds
        func complete(_ d: LocalDay) -> Day? { days[d].flatMap { $0.count >= whole ? $0 : nil } }

        func regressors(_ d: LocalDay, _ slot: Int) -> [Double]? {
            guard let d1 = complete(d.adding(days: -1)), let d2 = complete(d.adding(days: -2)), let d7 = complete(d.adding(days: -7)),
                let p1 = d1.at(slot, step: step), let p2 = d2.at(slot, step: step), let p7 = d7.at(slot, step: step), let last = d1.last
            else { return nil }
            let k = kind(d)
            return [1, p1, p2, p7, d1.low, d1.high, last.value, k.monday ? 1 : 0, k.saturday ? 1 : 0, k.holiday ? 1 : 0]
        }

        var targets: [Date] = []
        var ts = start
        while ts < day.end(in: zone) {
            targets.append(ts)
            ts = ts.addingTimeInterval(Double(seconds))
        }
        // The expert model, fitted per slot.
        var fitted: [Int: [Double]] = [:]
        var expert: [(Date, Double?)] = []
        for t in targets {
            let slot = LocalDay.minuteOfDay(t, in: zone)
            if fitted[slot] == nil {
                var rows: [[Double]] = []
                var ys: [Double] = []
                for back in 1...max(1, window) {
                    let e = day.adding(days: -back)
                    guard let y = complete(e)?.at(slot, step: step), let x = regressors(e, slot) else { continue }
                    rows.append(x)
                    ys.append(y)
                }
                if rows.count >= Self.minimumRows, let beta = Self.leastSquares(rows, ys) { fitted[slot] = beta }
            }
            guard let beta = fitted[slot], let x = regressors(day, slot) else {
                expert = []
                break
            }
            expert.append((t, zip(beta, x).reduce(0) { $0 + $1.0 * $1.1 }))
        }
        if expert.count == targets.count { return (expert, .expert) }

        // The median of the last days of the same kind.
        let isWorkday = workday(day)
        var similar: [Day] = []
        var back = 1
        while similar.count < similarDays && back <= max(similarDays * 4, window) {
            let e = day.adding(days: -back)
            if workday(e) == isWorkday, let d = days[e] { similar.append(d) }
            back += 1
        }
        return (targets.map { t in
            let slot = LocalDay.minuteOfDay(t, in: zone)
            return (t, Self.median(similar.compactMap { $0.bySlot[slot] }))
        }, .median)
    }

    static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let s = values.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// Ordinary least squares through the normal equations, each regressor but the intercept with a
    /// ridge of a billionth of its own diagonal (scale-free, next to no bias), and a regressor that
    /// is zero throughout the window (no holiday in it) held at zero; nil when the system is still
    /// singular.
    static func leastSquares(_ rows: [[Double]], _ ys: [Double]) -> [Double]? {
        let p = rows.first?.count ?? 0
        var a = [[Double]](repeating: [Double](repeating: 0, count: p + 1), count: p)
        for (x, y) in zip(rows, ys) {
            for i in 0..<p {
                for j in 0..<p { a[i][j] += x[i] * x[j] }
                a[i][p] += x[i] * y
            }
        }
        for i in 1..<p { a[i][i] += a[i][i] > 0 ? 1e-9 * a[i][i] : 1 }
        // Gaussian elimination with partial pivoting.
        for col in 0..<p {
            guard let pivot = (col..<p).max(by: { abs(a[$0][col]) < abs(a[$1][col]) }), abs(a[pivot][col]) > 1e-300 else { return nil }
            a.swapAt(col, pivot)
            for row in 0..<p where row != col {
                let f = a[row][col] / a[col][col]
                if f != 0 { for k in col...p { a[row][k] -= f * a[col][k] } }
            }
        }
        return (0..<p).map { a[$0][p] / a[$0][$0] }
    }
}
