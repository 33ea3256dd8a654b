import Foundation

/// How good forecasts were: every issue of a forecast paired with the value measured for its
/// interval, the errors summed up per model and horizon bucket, against the naive forecast of that
/// quantity (pure, so it is tested against hand-computed values).
public enum ForecastAccuracy {
    /// How far ahead a forecast was issued, in buckets.
    public struct Bucket: Sendable, Hashable {
        public var name: String
        public var range: Range<TimeInterval>
    }

    public static let buckets: [Bucket] = [
        Bucket(name: "0-6h", range: 0..<(6 * 3600)),
        Bucket(name: "6-24h", range: (6 * 3600)..<(24 * 3600)),
        Bucket(name: "day-ahead", range: (24 * 3600)..<(48 * 3600)),
        Bucket(name: "2-7d", range: (48 * 3600)..<(7 * 86_400 + 1)),
    ]

    /// The naive forecast a quantity is measured against: the value measured at another time.
    public enum Baseline: String, Sendable {
        /// The same local time the day before (PV production: persistence).
        case dayBefore = "persistence (same time the day before)"
        /// The same local time a week before (consumption: seasonal naive).
        case weekBefore = "seasonal naive (same time a week before)"
        /// Prices (the electricity-price forecasting benchmark): the same hour the day before for
        /// Tuesday to Friday, a week before for Saturday to Monday.
        case price = "price benchmark (day before Tue-Fri, week before Sat-Mon)"

        public static func of(_ quantity: String) -> Baseline {
            switch quantity {
            case "consumption", "energy_import", "demand": .weekBefore
            case "price": .price
            default: .dayBefore
            }
        }

        /// When the naive forecast of an interval starting at `ts` was measured (local time kept).
        public func source(of ts: Date, zone: TimeZone = LocalDay.madrid) -> Date? {
            let calendar = LocalDay.calendar(zone)
            let days: Int
            switch self {
            case .dayBefore: days = 1
            case .weekBefore: days = 7
            case .price: days = [3, 4, 5, 6].contains(calendar.component(.weekday, from: ts)) ? 1 : 7  // Tue=3 ... Fri=6
            }
            guard let earlier = calendar.date(byAdding: .day, value: -days, to: ts) else { return nil }
            // On a day whose clock changed, a local time that does not exist the other day has no partner.
            let wall: Set<Calendar.Component> = [.hour, .minute]
            return calendar.dateComponents(wall, from: earlier) == calendar.dateComponents(wall, from: ts) ? earlier : nil
        }
    }

    public struct Figures: Sendable, Equatable {
        public var bucket: String
        public var n: Int
        public var mae: Double
        public var rmse: Double
        /// Mean of forecast − measured: above 0, forecasts ran high.
        public var bias: Double
        /// MAE as % of `scale` (installed kWp for PV, given; else the mean measured magnitude).
        public var nmae: Double?
        /// 1 − MAE / MAE of the naive forecast, over the intervals both have; nil without any.
        public var skill: Double?
        public var naiveN: Int
        public var naiveMAE: Double?

        public var json: JSONValue {
            func number(_ v: Double?) -> JSONValue { v.map { .number(($0 * 1e9).rounded() / 1e9) } ?? .null }
            return [
                "horizon": .string(bucket), "n": .number(Double(n)), "mae": number(mae), "rmse": number(rmse), "bias": number(bias),
                "nmae_percent": number(nmae), "skill": number(skill), "naive_n": .number(Double(naiveN)), "naive_mae": number(naiveMAE),
            ]
        }
    }

    /// The figures per model and bucket (buckets without pairs left out). `measured` are the
    /// readings of the same series and quantity, from a week before the first forecast on (the
    /// naive forecasts need them); `kwp`, per series, scales the nMAE of power or energy.
    public static func figures(
        _ forecasts: [Forecast], measured: [Reading], baseline: Baseline, kwp: [String: Double] = [:], zone: TimeZone = LocalDay.madrid
    ) -> [String: [Figures]] {
        var actual: [ReadingKey: Reading] = [:]
        for r in measured where r.quality != .forecast { actual[ReadingKey(r)] = r }
        var result: [String: [Figures]] = [:]
        for (model, issues) in Dictionary(grouping: forecasts, by: \.model) {
            var figures: [Figures] = []
            for bucket in buckets {
                var errors: [Double] = [], magnitudes: [Double] = [], hours: [Double] = []
                var paired: [(forecast: Double, naive: Double, actual: Double)] = []
                for f in issues where bucket.range.contains(f.horizon) {
                    guard let a = actual[ReadingKey(f.reading)] else { continue }
                    errors.append(f.reading.value - a.value)
                    magnitudes.append(abs(a.value))
                    hours.append(Double(ISODuration.seconds(a.resolution) ?? 3600) / 3600)
                    if let at = baseline.source(of: a.ts, zone: zone),
                        let naive = actual[ReadingKey(series: a.series, quantity: a.quantity, ts: at)]
                    {
                        paired.append((f.reading.value, naive.value, a.value))
                    }
                }
                guard !errors.isEmpty else { continue }
                let n = Double(errors.count)
                let mae = errors.map(abs).reduce(0, +) / n
                let scale: Double?
                if let kwp = kwp[issues[0].reading.series], kwp > 0 {
                    // Energy in an interval over its hours is mean power, comparable with kWp.
                    let meanHours = hours.reduce(0, +) / n
                    scale = issues[0].reading.unit.hasSuffix("Wh") ? kwp * meanHours : kwp
                } else {
                    let mean = magnitudes.reduce(0, +) / n
                    scale = mean > 0 ? mean : nil
                }
                var skill: Double?, naiveMAE: Double?
                if !paired.isEmpty {
                    let m = Double(paired.count)
                    let naive = paired.map { abs($0.naive - $0.actual) }.reduce(0, +) / m
                    let own = paired.map { abs($0.forecast - $0.actual) }.reduce(0, +) / m
                    naiveMAE = naive
                    skill = naive > 0 ? 1 - own / naive : nil
                }
                figures.append(Figures(
                    bucket: bucket.name, n: errors.count, mae: mae, rmse: (errors.map { $0 * $0 }.reduce(0, +) / n).squareRoot(),
                    bias: errors.reduce(0, +) / n, nmae: scale.map { mae / $0 * 100 }, skill: skill, naiveN: paired.count, naiveMAE: naiveMAE))
            }
            result[model] = figures
        }
        return result
    }

    /// The figures of `query`'s forecasts of `quantity` against the tenant's readings, per series
    /// and model, as `GET /api/v1/forecasts/accuracy` answers them (and the dashboard shows them).
    public static func report(_ query: ForecastQuery, quantity: String, store: any Store) async throws -> [JSONValue] {
        var query = query
        query.quantity = quantity
        query.vintage = nil
        let forecasts = try await store.forecasts(query)
        let series = query.series.isEmpty ? Array(Set(forecasts.map(\.reading.series))).sorted() : query.series
        // The naive forecasts look up to a week back.
        let measured = series.isEmpty ? [] : try await store.readings(ReadingQuery(
            tenant: query.tenant, series: series, quantity: quantity, from: query.from.addingTimeInterval(-8 * 86_400), to: query.to))
        let baseline = Baseline.of(quantity)
        // A supply with its PV system declared scales the nMAE of its production by kWp.
        var kwp: [String: Double] = [:]
        if ["generation", "production", "power"].contains(quantity) {
            for supply in try await store.supplies(tenant: query.tenant) { if let pv = supply.pv { kwp[supply.cups] = pv.kwp } }
        }
        var results: [JSONValue] = []
        for s in series {
            let figures = Self.figures(
                forecasts.filter { $0.reading.series == s }, measured: measured.map(\.reading).filter { $0.series == s }, baseline: baseline,
                kwp: kwp)
            for model in figures.keys.sorted() {
                results.append([
                    "series": .string(s), "quantity": .string(quantity), "model": .string(model),
                    "buckets": .array(figures[model]!.map(\.json)),
                ])
            }
        }
        return results
    }
}
