import EnchufeCore
import Foundation
import HTTPPull

/// Red Eléctrica's node types: `redata`, `redata.prices` and `esios`.
public enum REDataModule {
    public static let specs: [NodeSpec] = [REDataNode.spec, REDataPricesNode.spec, ESIOSNode.spec]

}

/// The days of a pull, as the Spanish APIs want them: local (Madrid) `start_date`/`end_date`.
extension LocalDay {
    var startParameter: String { "\(self)T00:00" }
    var endParameter: String { "\(self)T23:59" }
}

/// Whether each series of one day's readings has every value the day can hold at its resolution
/// (23, 24 or 25 hours; 92, 96 or 100 quarter-hours).
func isFullDay(_ readings: [Reading], day: LocalDay, series: [String]? = nil) -> Bool {
    let bySeries = Dictionary(grouping: readings, by: \.series)
    let wanted = series ?? Array(bySeries.keys)
    guard !wanted.isEmpty else { return false }
    return wanted.allSatisfy { name in
        guard let values = bySeries[name], let step = values.first.flatMap({ ISODuration.seconds($0.resolution) }), step > 0 else { return false }
        return Set(values.map(\.ts)).count == day.intervals(of: .seconds(step))
    }
}

// MARK: redata

/// `redata`: any REData category/widget, one request per day (per month for daily values — only
/// the days not recorded yet — and per year for monthly and yearly ones).
struct REDataNode: TransformNode {
    static let categories = ["balance", "demanda", "generacion", "intercambios", "transporte", "mercados"]
    static let geoLimits = ["peninsular", "canarias", "baleares", "ceuta", "melilla", "ccaa"]

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
            OptionSpec("category", .enumeration(categories), required: true, doc: "REData category.", example: "demanda"),
            OptionSpec("widget", .string, required: true, doc: "Widget of the category.", example: "evolucion"),
            OptionSpec("time_trunc", .enumeration(["hour", "day", "month", "year"]), default: "hour", doc: "Aggregation REData is asked for."),
            OptionSpec("geo_limit", .enumeration(geoLimits), doc: "Electric system or `ccaa` (sent with geo_trunc=electric_system)."),
            OptionSpec("geo_ids", .string, doc: "The system or region id (8741 peninsula, 8742 Canarias, 8743 Baleares, 8744 Ceuta, 8745 Melilla, 4..21 regions).", example: "8741"),
            OptionSpec("lang", .enumeration(["es", "en"]), default: "es", doc: "Language of the titles (series are keyed by id either way)."),
            OptionSpec("quantity", .string, doc: "Quantity of the readings (default: price for prices, else from the category: demand, generation, interchange, energy)."),
            OptionSpec("unit", .string, doc: "Unit of the readings (default: from the series title, EUR/MWh for prices, MW for real-time widgets, else MWh)."),
        ] + PullNodeOptions.specs(baseURL: "https://apidatos.ree.es", requestsPerMinute: 60),
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
        client = PullNodeOptions.client(build, type: "redata", requestsPerMinute: 60, errorBody: REDataAnswer.errorBody)
        base = PullNodeOptions.baseURL(o, default: "https://apidatos.ree.es")
        category = o.string("category") ?? "mercados"
        widget = o.string("widget") ?? ""
        timeTrunc = o.string("time_trunc") ?? "hour"
        geoLimit = o.string("geo_limit")
        geoID = o["geo_ids"]?.templateText
        lang = o.string("lang") ?? "es"
        quantity = o.string("quantity")
        unit = o.string("unit")
        window = DayWindow(options: o)
        maxRequests = o.int("max_requests") ?? 60
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

// MARK: redata.prices

/// `redata.prices`: PVPC (1001) and the day-ahead spot price (600) for a day or a range.
struct REDataPricesNode: TransformNode {
    static let spec = NodeSpec(
        type: "redata.prices", kind: .transform,
        summary: "Pulls PVPC and spot prices from REData for today, tomorrow or a date range",
        doc: """
            Each message it receives is a trigger (wire a `schedule` into it, e.g. every evening for
            `tomorrow`). Series `ree:1001:GEO` (PVPC, hourly) and `ree:600:GEO` (day-ahead spot: hourly
            until September 2025, quarter-hourly since October 2025, kept at PT15M), GEO being `geo_ids`
            (default 8741, the peninsula; REData leaves the spot price out when `geo_ids` is given), in
            EUR/MWh. Times are stored in UTC with their DST offsets (23 and 25 hours).
            A day's PVPC is published around 20:15-20:50 Madrid time the day before: asked earlier, the
            answer has only the spot price, which is "not yet", not an error — the spot prices are sent on
            and PVPC is asked again every `not_yet_retry` up to `not_yet_attempts` times, then at the next
            trigger. A day with every price is recorded once committed and not asked again.
            With `source: archive` it reads ESIOS' public PVPC archive instead (no token; series
            `esios:archive70:PCB` and `esios:archive70:CYM`, `archive_url` default https://api.esios.ree.es).
            """,
        options: [
            OptionSpec("source", .enumeration(["redata", "archive"]), default: "redata", doc: "REData (PVPC and spot) or ESIOS' public PVPC archive (PVPC only)."),
            OptionSpec("archive_url", .string, default: "https://api.esios.ree.es", doc: "Where the PVPC archive is, with `source: archive`."),
            OptionSpec("geo_ids", .string, doc: "System id: 8741 peninsula (default), 8744 Ceuta, 8745 Melilla...", example: "8741"),
            OptionSpec("lang", .enumeration(["es", "en"]), default: "es", doc: "Language of the request path."),
            OptionSpec("not_yet_retry", .duration, default: "15m", doc: "Wait before asking again for prices not published yet."),
            OptionSpec("not_yet_attempts", .integer, default: 8, doc: "How many times to ask again for prices not published yet, per trigger."),
        ] + PullNodeOptions.specs(baseURL: "https://apidatos.ree.es", requestsPerMinute: 60),
        example: """
            - id: prices
              type: redata.prices
              day: tomorrow
              to: [store]
            """,
        check: { DayWindow.problems($0) },
        make: { build in .transform(try REDataPricesNode(build)) })

    let client: PullClient
    let base: String
    let archive: String?
    let geoID: String?
    let lang: String
    let window: DayWindow
    let maxRequests: Int
    let notYetRetry: Duration
    let notYetAttempts: Int

    init(_ build: NodeBuildContext) throws {
        let o = build.options
        client = PullNodeOptions.client(build, type: "redata.prices", requestsPerMinute: 60, errorBody: REDataAnswer.errorBody)
        base = PullNodeOptions.baseURL(o, default: "https://apidatos.ree.es")
        archive = o.string("source") == "archive" ? PullNodeOptions.baseURL(NodeOptions(values: ["base_url": o["archive_url"] ?? "https://api.esios.ree.es"]), default: "") : nil
        geoID = o["geo_ids"]?.templateText
        lang = o.string("lang") ?? "es"
        window = DayWindow(options: o)
        maxRequests = o.int("max_requests") ?? 60
        notYetRetry = o.duration("not_yet_retry") ?? .seconds(900)
        notYetAttempts = o.int("not_yet_attempts") ?? 8
    }

    var geo: String { geoID ?? "8741" }

    /// The series a complete day has.
    var wanted: [String] {
        if archive != nil { return PVPCArchive.columns.map { "esios:archive70:\($0)" } }
        return geoID == nil ? ["ree:1001:\(geo)", "ree:600:\(geo)"] : ["ree:1001:\(geo)"]
    }

    func url(_ day: LocalDay) throws -> URL {
        if let archive {
            return try PullNodeOptions.url(archive, "/archives/70/download_json", query: [("locale", "es"), ("date", day.description)])
        }
        var query = [("start_date", day.startParameter), ("end_date", day.endParameter), ("time_trunc", "hour")]
        if let geoID { query.append(("geo_ids", geoID)) }
        return try PullNodeOptions.url(base, "/\(lang)/datos/mercados/precios-mercados-tiempo-real", query: query)
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        let days = try window.overridden(by: message.payload).days(today: LocalDay(containing: context.clock.now()))
        var run = PullRun(context: context, maxRequests: maxRequests)
        for day in days {
            let period = archive == nil ? "redata.prices/\(geo)/\(day)" : "redata.prices/archive70/\(day)"
            guard try await run.shouldFetch(period) else { continue }
            do {
                let (readings, complete) = try await fetch(day, context)
                run.fetched(period, readings: readings, complete: complete)
            } catch let error as PullError {
                guard run.failed(period, error) else { break }
            }
        }
        return try run.finish()
    }

    /// One day's prices, asking again while PVPC is not published yet.
    func fetch(_ day: LocalDay, _ context: NodeContext) async throws -> ([Reading], Bool) {
        let pvpc = wanted[0]
        var attempt = 0
        while true {
            var readings: [Reading] = []
            var notPublished: PullError?
            do {
                let (archive, geo) = (self.archive, self.geo)
                readings = try await client.json(try url(day), headers: ["Accept": "application/json"], context: context) { json in
                    archive == nil ? try REDataAnswer.readings(json, options: .init(geoID: geo)) : try PVPCArchive.readings(json)
                }
            } catch let error as PullError where error.kind == .noData {
                notPublished = error
            }
            if readings.contains(where: { $0.series == pvpc }) || day <= LocalDay(containing: context.clock.now()) {
                if let notPublished, readings.isEmpty { throw notPublished }
                // Complete: every hour of every series there, or the day is over and each series came.
                let over = day.end() <= context.clock.now() && wanted.allSatisfy { name in readings.contains { $0.series == name } }
                return (readings, over || isFullDay(readings, day: day, series: wanted))
            }
            // A day still ahead without PVPC: not published yet.
            attempt += 1
            guard attempt <= notYetAttempts else {
                context.logger.notice("PVPC for \(day) is not published yet; asked \(attempt) times, the next trigger asks again")
                return (readings, false)
            }
            context.logger.info("PVPC for \(day) is not published yet; asking again in \(DurationText.format(notYetRetry))")
            try await context.clock.sleep(for: notYetRetry)
        }
    }
}

// MARK: esios

/// `esios`: ESIOS indicators by id, one request per indicator and day.
struct ESIOSNode: TransformNode {
    static let spec = NodeSpec(
        type: "esios", kind: .transform,
        summary: "Pulls ESIOS indicators (api.esios.ree.es) by id, one series per indicator and geography",
        doc: """
            Each message it receives is a trigger. Asks `/indicators/ID` for each indicator and day of the
            window with the `x-api-key` header (the token is a secret: never logged). Series
            `esios:ID:GEO`, one per geography (the five PVPC systems stay apart). Times come from each
            value's `datetime` (with its offset) checked against `tz_time`; `datetime_utc` is never used
            (it repeats the previous hour on the autumn DST day). With `time_trunc`, `time_agg` defaults to
            `average`: ESIOS' own default, `sum`, adds four quarter-hour prices into one "hourly" price.
            401 and 403 are auth failures (not retried).
            """,
        options: [
            OptionSpec("token", .string, secret: true, doc: "Personal ESIOS token (from consultasios@ree.es).", example: "${env:ESIOS_TOKEN}"),
            OptionSpec("indicators", .list(.integer), required: true, doc: "Indicator ids: 1001 PVPC, 600 spot, 1739 surplus price...", example: [1001]),
            OptionSpec("geo_ids", .list(.integer), doc: "Only these geographies (3 Spain, 8741 peninsula...).", example: [8741]),
            OptionSpec("time_trunc", .enumeration(["five_minutes", "ten_minutes", "fifteen_minutes", "hour", "day", "month", "year"]), doc: "Aggregate to this step."),
            OptionSpec("time_agg", .enumeration(["average", "sum"]), doc: "How to aggregate with time_trunc (default average; use sum for energies)."),
            OptionSpec("locale", .enumeration(["es", "en"]), default: "es", doc: "Language of names in the answer."),
        ] + PullNodeOptions.specs(baseURL: "https://api.esios.ree.es", requestsPerMinute: 30),
        example: """
            - id: pvpc
              type: esios
              token: ${env:ESIOS_TOKEN}
              indicators: [1001]
              day: tomorrow
              to: [store]
            """,
        check: { DayWindow.problems($0) },
        make: { build in .transform(try ESIOSNode(build)) })

    let client: PullClient
    let base: String
    let token: Secret?
    let indicators: [Int]
    let geoIDs: [Int]
    let timeTrunc: String?
    let timeAgg: String?
    let locale: String
    let window: DayWindow
    let maxRequests: Int

    init(_ build: NodeBuildContext) throws {
        let o = build.options
        token = o.secret("token").flatMap { $0.reveal().isEmpty ? nil : $0 }
        if token == nil, !build.testing {
            throw PermanentError("needs an ESIOS token: set `token` (e.g. token: ${env:ESIOS_TOKEN}); request one from consultasios@ree.es")
        }
        client = PullNodeOptions.client(build, type: "esios", requestsPerMinute: 30)
        base = PullNodeOptions.baseURL(o, default: "https://api.esios.ree.es")
        indicators = o["indicators"]?.arrayValue?.compactMap(\.intValue) ?? []
        geoIDs = o["geo_ids"]?.arrayValue?.compactMap(\.intValue) ?? []
        timeTrunc = o.string("time_trunc")
        timeAgg = o.string("time_agg") ?? (o.has("time_trunc") ? "average" : nil)
        locale = o.string("locale") ?? "es"
        window = DayWindow(options: o)
        maxRequests = o.int("max_requests") ?? 60
    }

    func url(indicator: Int, day: LocalDay) throws -> URL {
        var query = [("start_date", day.startParameter), ("end_date", day.endParameter), ("locale", locale)]
        if let timeTrunc { query.append(("time_trunc", timeTrunc)) }
        if let timeAgg { query.append(("time_agg", timeAgg)) }
        for geo in geoIDs { query.append(("geo_ids[]", String(geo))) }
        return try PullNodeOptions.url(base, "/indicators/\(indicator)", query: query)
    }

    var headers: [String: String] {
        var h = ["Accept": "application/json; application/vnd.esios-api-v1+json", "Content-Type": "application/json"]
        if let token { h["x-api-key"] = token.reveal() }
        return h
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        let now = context.clock.now()
        let days = try window.overridden(by: message.payload).days(today: LocalDay(containing: now))
        var run = PullRun(context: context, maxRequests: maxRequests)
        pulling: for day in days {
            for indicator in indicators {
                let period = "esios/\(indicator)/\(geoIDs.map(String.init).joined(separator: ","))/\(timeTrunc ?? "-")/\(day)"
                guard try await run.shouldFetch(period) else { continue }
                do {
                    let readings = try await client.json(try url(indicator: indicator, day: day), headers: headers, context: context) {
                        try ESIOSAnswer.readings($0)
                    }
                    run.fetched(period, readings: readings, complete: !readings.isEmpty && (day.end() <= now || isFullDay(readings, day: day)))
                } catch let error as PullError {
                    guard run.failed(period, error) else { break pulling }
                }
            }
        }
        return try run.finish()
    }
}
