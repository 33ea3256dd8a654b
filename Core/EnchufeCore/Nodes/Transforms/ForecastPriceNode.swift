import Foundation

/// `forecast.price`: a day's prices before they are published, from the price's own history and,
/// once it is out, the day-ahead market price of that day.
struct ForecastPriceNode: TransformNode {
    enum Key {
        static let series = OptionKey<String>("series", default: "ree:1001:8741", doc: "The price series forecast (PVPC of the Peninsula by default).")
        static let spot = OptionKey<String?>(
            "spot", doc: "A day-ahead price series published earlier (`omie:ES` at about 13:00, `entsoe:ES`, `ree:600:8741`): once the day's is stored, the forecast is it plus the recent spread.",
            example: "omie:ES")
        static let day = OptionKey<String>("day", default: "tomorrow", doc: "The day forecast: `tomorrow`, `today`, `+2d` or a date (YYYY-MM-DD).")
        static let days = OptionKey<Int>("days", default: 7, doc: "How many recent days of the same kind the spread and the median are taken from.")
        static let window = OptionKey<Int>("window", default: 56, doc: "How many days back the expert model is fitted on (at least four weeks of history are needed before it is used).")
        static let model = OptionKey<String>("model", default: "forecast.price", doc: "The model name the forecasts are stored under.")
    }

    static let spec = NodeSpec(
        type: "forecast.price", kind: .transform,
        summary: "Forecasts a day's prices (tomorrow's PVPC by default) before publication, from recent prices and the day-ahead price once that is out",
        doc: """
            Each message it receives is a trigger. For every interval of `day` (Madrid time; 23, 24
            or 25 hours, at the series' own resolution) it forecasts `series`:

            - once `spot` for that day is in the store (OMIE publishes about 13:00, REE the PVPC
              about 20:15), the spot price of the interval plus the median, over the last `days`
              days of the same day type (working day or not), of `series` minus `spot` at the same
              wall-clock time — the PVPC is the market price plus charges that follow the tariff
              periods, and the spread carries them (model `MODEL/spot`);
            - otherwise, with four weeks of history or more, the "expert" autoregression of price
              forecasting fitted per time of day on the last `window` days: the price at that time
              the day before, two days before and a week before, the day before's minimum,
              maximum and last price, and Monday / Saturday / Sunday-or-holiday (model
              `MODEL/expert`; on REE's recorded PVPC of 2024 its MAE is 0.74 of the naive
              benchmark's, see docs/forecasts.md);
            - with less history, the median of `series` at the same wall-clock time over the last
              `days` days of the same day type (model `MODEL/history`).

            Out go readings of quantity `price`, quality `forecast`, tags `issued_at` (now) and
            `model`, for `store.forecasts`; an interval with no history is left out. Evaluate with
            `/api/v1/forecasts/accuracy?quantity=price`: its naive benchmark is the electricity
            price forecasting one (the same hour the day before Tuesday to Friday, a week before
            Saturday to Monday), `skill` = 1 − rMAE.
            """,
        options: [Key.series.spec, Key.spot.spec, Key.day.spec, Key.days.spec, Key.window.spec, Key.model.spec],
        example: """
            - id: tomorrow
              type: forecast.price
              series: ree:1001:8741
              spot: omie:ES
              to: [forecasts]
            """,
        check: { o in
            var problems: [OptionProblem] = []
            if LocalDay.parse(o[Key.day], today: LocalDay(year: 2026, month: 1, day: 1)) == nil {
                problems.append(OptionProblem(option: "day", "must be `today`, `tomorrow` or a date (YYYY-MM-DD)"))
            }
            if !(1...60).contains(o[Key.days]) { problems.append(OptionProblem(option: "days", "must be 1–60")) }
            if !(28...366).contains(o[Key.window]) { problems.append(OptionProblem(option: "window", "must be 28–366 days")) }
            return problems
        },
        make: { context in .transform(ForecastPriceNode(context.options)) })

    let series: String
    let spot: String?
    let day: String
    let days: Int
    let window: Int
    let model: String
    let zone = LocalDay.madrid
    let calendar = TariffCalendar()

    init(_ o: NodeOptions) {
        series = o[Key.series]
        spot = o[Key.spot]
        day = o[Key.day]
        days = o[Key.days]
        window = o[Key.window]
        model = o[Key.model]
    }

    /// Working day or not (Saturdays, Sundays and national holidays).
    func workday(_ ts: Date) -> Bool { !calendar.isAllValley(LocalDay(containing: ts, in: zone)) }

    func slot(_ ts: Date) -> Int { LocalDay.minuteOfDay(ts, in: zone) }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        let now = context.clock.now()
        guard let target = LocalDay.parse(day, today: LocalDay(containing: now, in: zone)) else {
            throw PermanentError("forecast.price: day '\(day)' is not today, tomorrow or a date")
        }
        let (start, end) = (target.start(in: zone), target.end(in: zone))
        let historyFrom = start.addingTimeInterval(-Double(max(days * 4, window) + 8) * 86_400)
        func readings(_ name: String, _ from: Date, _ to: Date) async throws -> [Reading] {
            try await context.store.readings(ReadingQuery(tenant: context.tenant, series: [name], quantity: "price", from: from, to: to))
                .map(\.reading).filter { $0.quality != .forecast }
        }
        let history = try await readings(series, historyFrom, min(start, now.addingTimeInterval(86_400)))
        let seconds = history.commonResolutionSeconds ?? 3600
        let past = history.filter { ISODuration.seconds($0.resolution) == seconds }
        // The last `days` days of the same day type as each target interval, per wall-clock slot.
        func sameKind(_ ts: Date) -> [Reading] {
            let kind = workday(ts), s = slot(ts)
            let candidates = past.filter { workday($0.ts) == kind && slot($0.ts) == s }.sorted { $0.ts > $1.ts }
            return Array(candidates.prefix(days))
        }
        var spotByTime: [Date: Double] = [:]
        var spotPast: [Date: Double] = [:]
        if let spot {
            for r in try await readings(spot, historyFrom, end) {
                // The spot at the target's resolution: its interval's value (an hour serves its quarters).
                let covering = stride(from: 0, to: max(1, (ISODuration.seconds(r.resolution) ?? seconds) / seconds), by: 1)
                for k in covering {
                    let ts = r.ts.addingTimeInterval(Double(k * seconds))
                    if ts >= start { spotByTime[ts] = r.value } else { spotPast[ts] = r.value }
                }
            }
        }
        let issued = ISO8601.string(now)
        let fromHistory = PriceForecast(zone: zone, window: window, similarDays: days).forecast(history: past, day: target, seconds: seconds)
        var out: [Reading] = []
        for (ts, historic) in fromHistory.values {
            var value = historic
            var name = model + (fromHistory.method == .expert ? "/expert" : "/history")
            if let spotNow = spotByTime[ts], let spread = PriceForecast.median(sameKind(ts).compactMap { r in spotPast[r.ts].map { r.value - $0 } }) {
                value = spotNow + spread
                name = model + "/spot"
            }
            if let value {
                out.append(Reading(
                    tenant: context.tenant, series: series, quantity: "price", ts: ts, resolution: ISODuration.text(seconds: seconds),
                    value: value, unit: past.last?.unit ?? "EUR/MWh", quality: .forecast, source: context.readingSource,
                    tags: ["issued_at": issued, "model": name]))
            }
        }
        return out.isEmpty ? [] : [.out(Message(readings: out))]
    }
}
