import EnchufeCore
import Foundation
import HTTPPull

/// `redata`: any REData category/widget, one request per day (per month for daily values — only
/// the days not recorded yet — and per year for monthly and yearly ones).
struct REDataNode: TransformNode {
    static let categories = ["balance", "demanda", "generacion", "intercambios", "transporte", "mercados"]
    static let geoLimits = ["peninsular", "canarias", "baleares", "ceuta", "melilla", "ccaa"]

    enum Key {
        static let category = RequiredOptionKey<String>("category", .enumeration(categories), doc: "REData category.", example: "demanda")
        static let widget = RequiredOptionKey<String>("widget", doc: "Widget of the category.", example: "evolucion")
        static let timeTrunc = OptionKey<String>("time_trunc", .enumeration(["hour", "day", "month", "year"]), default: "hour", doc: "Aggregation REData is asked for.")
        static let geoLimit = OptionKey<String?>("geo_limit", .enumeration(geoLimits), doc: "Electric system or `ccaa` (sent with geo_trunc=electric_system).")
        static let geoIds = OptionKey<String?>("geo_ids", doc: "The system or region id (8741 peninsula, 8742 Canarias, 8743 Baleares, 8744 Ceuta, 8745 Melilla, 4..21 regions).", example: "8741")
        static let lang = OptionKey<String>("lang", .enumeration(["es", "en"]), default: "es", doc: "Language of the titles (series are keyed by id either way).")
        static let quantity = OptionKey<String?>("quantity", doc: "Quantity of the readings (default: price for prices, else from the category: demand, generation, interchange, energy).")
        static let unit = OptionKey<String?>("unit", doc: "Unit of the readings (default: from the series title, EUR/MWh for prices, MW for real-time widgets, else MWh).")
    }

    static let spec = NodeSpec(
        type: "redata", kind: .transform,
        summary: "Pulls any REData (apidatos.ree.es) category/widget into readings, by indicator id",
        doc: """
            Each message it receives is a trigger (wire a `schedule` into it): it asks REData for the days
            of its window (`day`, or `from`/`until`; a trigger's payload `{"day": ...}` or `{"from": ..., "until": ...}`
            asks for others) and sends one message of readings per request. Series are `ree:ID`
            (`ree:ID:GEO` with `geo_ids`), ID being the ESIOS indicator id of the series (never its title,
            which REData renames); times are the answer's own, with their offsets, stored in UTC (25 values
            on the autumn DST day, 23 in spring); each series' resolution comes from the spacing of its
            values (REData returns 5-minute demand and quarter-hour spot prices whatever `time_trunc` says).
            A period is recorded in the store once its readings are committed and it can no longer change
            (it is over, or every value of the day is there): later triggers and restarts skip it and
            back-fill what is missing. Failures are classified (auth, rate_limit, no_data, upstream,
            malformed) and counted in `enchufe_pull_requests_total`; `errors[]` bodies and HTML error pages
            are recognised.
            """,
        options: [
            Key.category.spec,
            Key.widget.spec,
            Key.timeTrunc.spec,
            Key.geoLimit.spec,
            Key.geoIds.spec,
            Key.lang.spec,
            Key.quantity.spec,
            Key.unit.spec,
        ] + PullNodeOptions.redata.specs,
        example: """
            - id: demand
              type: redata
              category: demanda
              widget: evolucion
              time_trunc: day
              from: -7d
              until: yesterday
              to: [store]
            """,
        check: { DayWindow.problems($0) },
        make: { build in .transform(try REDataNode(build)) })

    let client: PullClient
    let base: String
    let category: String
    let widget: String
    let timeTrunc: String
    let geoLimit: String?
    let geoID: String?
    let lang: String
    let quantity: String?
    let unit: String?
    let window: DayWindow
    let maxRequests: Int

    init(_ build: NodeBuildContext) throws {
        let o = build.options
        client = PullNodeOptions.redata.client(build, type: "redata", errorBody: REDataAnswer.errorBody)
        base = PullNodeOptions.redata.base(o)
        category = try o.required(Key.category)
        widget = try o.required(Key.widget)
        timeTrunc = o[Key.timeTrunc]
        geoLimit = o[Key.geoLimit]
        geoID = o[Key.geoIds]
        lang = o[Key.lang]
        quantity = o[Key.quantity]
        unit = o[Key.unit]
        window = DayWindow(options: o)
        maxRequests = o[PullNodeOptions.redata.maxRequests]
    }

    /// The periods one request covers: a day for hourly data, a month for daily, a year for monthly and yearly.
    func periods(_ days: [LocalDay]) -> [(first: LocalDay, last: LocalDay)] {
        let grouped: [LocalDay: [LocalDay]]
        switch timeTrunc {
        case "hour": return days.map { ($0, $0) }
        case "day": grouped = Dictionary(grouping: days) { LocalDay(year: $0.year, month: $0.month, day: 1) }
        default: grouped = Dictionary(grouping: days) { LocalDay(year: $0.year, month: 1, day: 1) }
        }
        return grouped.keys.sorted().map { key in (grouped[key]!.min()!, grouped[key]!.max()!) }
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        let now = context.clock.now()
        let days = try window.overridden(by: message.payload).days(today: LocalDay(containing: now))
        var run = PullRun(context: context, maxRequests: maxRequests)
        for (first, last) in periods(days) {
            var span = (first, last)
            var dayPeriods: [LocalDay: String] = [:]
            let name = "redata/\(category)/\(widget)/\(timeTrunc)/\(geoID ?? "-")/\(first)" + (first == last ? "" : "..\(last)")
            if timeTrunc == "day" {
                // Daily values: each day is recorded; a request covers the month's days still missing.
                for day in days where day >= first && day <= last {
                    let key = "redata/\(category)/\(widget)/day/\(geoID ?? "-")/\(day)"
                    if try await !run.isRecorded(key) { dayPeriods[day] = key }
                }
                guard let a = dayPeriods.keys.min(), let b = dayPeriods.keys.max(), run.mayRequest() else { continue }
                span = (a, b)
            } else {
                guard try await run.shouldFetch(name) else { continue }
            }
            var query = [("start_date", span.0.startParameter), ("end_date", span.1.endParameter), ("time_trunc", timeTrunc)]
            if let geoLimit { query += [("geo_trunc", "electric_system"), ("geo_limit", geoLimit)] }
            if let geoID { query.append(("geo_ids", geoID)) }
            do {
                let url = try PullNodeOptions.url(base, "/\(lang)/datos/\(category)/\(widget)", query: query)
                let options = REDataAnswer.Options(geoID: geoID, singleValueResolution: Self.resolution(timeTrunc))
                var readings = try await client.json(url, headers: ["Accept": "application/json"], context: context) {
                    try REDataAnswer.readings($0, options: options)
                }
                for i in readings.indices {
                    if readings[i].quantity != "price" { readings[i].quantity = quantity ?? Self.quantity(category) }
                    if let unit { readings[i].unit = unit } else if readings[i].unit.isEmpty { readings[i].unit = Self.unit(widget) }
                }
                if timeTrunc == "day" {
                    let over = readings.isEmpty ? [] : dayPeriods.filter { $0.key.end() <= now }.map(\.value)
                    run.fetched(name, readings: readings, completing: over.sorted())
                } else {
                    let over = last.end() <= now
                    let complete = !readings.isEmpty && (over || (timeTrunc == "hour" && isFullDay(readings, day: first)))
                    run.fetched(name, readings: readings, complete: complete)
                }
            } catch let error as PullError {
                guard run.failed(name, error) else { break }
            }
        }
        return try run.finish()
    }

    static func resolution(_ timeTrunc: String) -> String {
        switch timeTrunc {
        case "day": return "P1D"
        case "month": return "P1M"
        case "year": return "P1Y"
        default: return "PT1H"
        }
    }

    static func quantity(_ category: String) -> String {
        switch category {
        case "demanda": return "demand"
        case "generacion": return "generation"
        case "intercambios": return "interchange"
        case "mercados": return "price"
        default: return "energy"
        }
    }

    static func unit(_ widget: String) -> String { widget.contains("tiempo-real") ? "MW" : "MWh" }
}
