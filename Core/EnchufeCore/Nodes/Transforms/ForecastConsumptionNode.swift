import Foundation

/// `forecast.consumption`: each series' consumption for the next days from its own history.
struct ForecastConsumptionNode: TransformNode {
    enum Key {
        static let series = OptionKey<[String]?>("series", doc: "The series to forecast (default: every supply of the tenant).", example: ["ES0021000000000001AB"])
        static let quantity = OptionKey<String>("quantity", default: "consumption", doc: "The quantity forecast (and read as history).")
        static let horizon = OptionKey<Duration>("horizon", default: .seconds(7 * 86_400), doc: "How far ahead (the next 24 hours are its start).")
        static let weeks = OptionKey<Int>("weeks", default: 8, doc: "How many weeks of history are weighed.")
        static let model = OptionKey<String>("model", default: "forecast.consumption", doc: "The model name the forecasts are stored under.")
    }

    static let spec = NodeSpec(
        type: "forecast.consumption", kind: .transform,
        summary: "Forecasts each series' consumption for the next days from its own history (day type × time-of-day profiles weighted to recent weeks)",
        doc: """
            Each message it receives is a trigger. For each series (`series`, or every supply of the
            tenant) it reads the last `weeks` weeks of `quantity` from the store and forecasts every
            interval of the next `horizon`, at the series' own resolution, from the next interval on:
            per day type (working day; Saturday; Sunday or national holiday, from the tariff
            calendar) and local time of the day, the weighted median of the history's values, each week
            further back weighing 0.8 of the one after it (a 25-hour day's repeated hour counts once
            per wall-clock slot). With fewer than four weeks of history, a standard household day
            (docs/forecasts.md) scaled to the mean daily consumption known so far (9 kWh a day with
            none). Out go readings of `quantity`, quality `forecast`, tags `issued_at` (now) and
            `model` (`MODEL` or, on a cold start, `MODEL/cold-start`), for `store.forecasts`.
            """,
        options: [Key.series.spec, Key.quantity.spec, Key.horizon.spec, Key.weeks.spec, Key.model.spec],
        example: """
            - id: consumption
              type: forecast.consumption
              series: [ES0021000000000001AB]
              horizon: 7d
              to: [forecasts]
            """,
        check: { o in
            (1...52).contains(o[Key.weeks]) ? [] : [OptionProblem(option: "weeks", "must be 1–52")]
        },
        make: { context in .transform(ForecastConsumptionNode(context.options)) })

    let series: [String]?
    let quantity: String
    let horizon: TimeInterval
    let model: String
    let forecaster: ConsumptionForecast

    init(_ o: NodeOptions) {
        series = o[Key.series]
        quantity = o[Key.quantity]
        horizon = o[Key.horizon].seconds
        model = o[Key.model]
        forecaster = ConsumptionForecast(weeks: o[Key.weeks])
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        let now = context.clock.now()
        var names = series ?? []
        if series == nil { names = Array(Set(try await context.store.supplies(tenant: context.tenant).map(\.cups))).sorted() }
        let from = now.addingTimeInterval(-Double(forecaster.weeks) * 7 * 86_400)
        var out: [Reading] = []
        for name in names {
            let history = try await context.store.readings(ReadingQuery(tenant: context.tenant, series: [name], quantity: quantity, from: from, to: now)).map(\.reading)
            // The series' own resolution: the most common among its readings (hourly with none).
            let seconds = history.commonResolutionSeconds ?? 3600
            let start = Date(timeIntervalSince1970: (now.timeIntervalSince1970 / Double(seconds)).rounded(.up) * Double(seconds))
            let (values, method) = forecaster.forecast(history: history.filter { ISODuration.seconds($0.resolution) == seconds }, from: start, horizon: horizon, seconds: seconds)
            let unit = history.last?.unit ?? "kWh"
            let modelName = method == .coldStart ? model + "/cold-start" : model
            for v in values {
                out.append(Reading(
                    tenant: context.tenant, series: name, quantity: quantity, ts: v.ts,
                    resolution: ISODuration.text(seconds: seconds), value: v.value, unit: unit, quality: .forecast,
                    source: context.readingSource, tags: ["issued_at": ISO8601.string(now), "model": modelName]))
            }
        }
        return out.isEmpty ? [] : [.out(Message(readings: out))]
    }
}
