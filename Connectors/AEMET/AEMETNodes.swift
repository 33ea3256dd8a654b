import EnchufeCore
import Foundation
import HTTPPull

/// AEMET OpenData's node types: `aemet.observations`, `aemet.forecast` and `aemet.climatology`.
public enum AEMETModule {
    public static let specs: [NodeSpec] = [AEMETObservationsNode.spec, AEMETForecastNode.spec, AEMETClimatologyNode.spec]

    static let base = "https://opendata.aemet.es"

    /// The options every AEMET node has: the key, the per-minute limit (both steps count), a minute's
    /// wait after a 429 (AEMET sends no Retry-After), and what a trace of precipitation is stored as.
    static func commonOptions(days: Bool) -> [OptionSpec] {
        [
            OptionSpec("api_key", .string, secret: true, doc: "AEMET OpenData API key (sent in the api_key header, never in URLs or logs).", example: "${env:AEMET_API_KEY}"),
            OptionSpec("trace_mm", .number, default: 0.05, doc: "What a trace of precipitation (`Ip`, under 0.1 mm) is stored as; 0 to count it as dry."),
        ] + PullNodeOptions.specs(baseURL: base, requestsPerMinute: 40, timeout: "60s", backoff: "60s", days: days)
    }

    /// The client of a node; refuses to start without a key, except in flow tests.
    static func client(_ build: NodeBuildContext, type: String) throws -> AEMETClient {
        let key = build.options.secret("api_key").flatMap { $0.reveal().isEmpty ? nil : $0 }
        if key == nil, !build.testing {
            throw PermanentError("needs an AEMET OpenData API key: set `api_key` (e.g. api_key: ${env:AEMET_API_KEY}); request one at https://opendata.aemet.es/centrodedescargas/altaUsuario")
        }
        return AEMETClient(
            client: PullNodeOptions.client(build, type: type, requestsPerMinute: 40, backoff: .seconds(60), errorBody: AEMETClient.errorBody),
            base: PullNodeOptions.baseURL(build.options, default: base), apiKey: key)
    }

    static func readings(_ build: NodeBuildContext) -> AEMETReadings {
        AEMETReadings(traceMM: build.options.double("trace_mm") ?? 0.05)
    }

    static let twoStepDoc = """
        Each message it receives is a trigger (wire a `schedule` into it). AEMET answers in two steps: an
        envelope whose `datos` link holds the data, fetched at once and never stored; `estado` inside a
        200 answer counts (404: no data, not an error), 401 is a refused key (not retried), 429 the
        per-minute limit (both steps count against `requests_per_minute`, default 40; AEMET sends no
        Retry-After, so the wait is `request_backoff`, default a minute). Bodies are decoded by their
        charset, else UTF-8, else ISO-8859-15. Values are read leniently: numbers or strings, decimal
        commas, `Ip` (a trace of precipitation, stored as `trace_mm`), missing fields skipped.
        """
}

/// `aemet.observations`: the last hours of conventional observations of stations.
struct AEMETObservationsNode: TransformNode {
    static let spec = NodeSpec(
        type: "aemet.observations", kind: .transform,
        summary: "Pulls AEMET hourly station observations (temperature, humidity, precipitation, wind, sunshine)",
        doc: AEMETModule.twoStepDoc + """


            Per station, the observations of about the last 12 hours, series `aemet:IDEMA`, UTC times:
            `temperature` (degC), `humidity` (%), `pressure` (hPa), `wind_speed` (m/s), `wind_direction` (deg)
            at the observation time (`PT0S`); `precipitation` (mm), `temperature_max`/`_min`, `wind_gust`
            (m/s) and `sunshine` (h) over the hour before it (`PT1H`). Asked again, the same hours are
            upserts: nothing is stored twice.
            """,
        options: [
            OptionSpec("stations", .list(.string), required: true, doc: "Station ids (idema), as strings: leading zeros matter.", example: ["3195"])
        ] + AEMETModule.commonOptions(days: false),
        example: """
            - id: observations
              type: aemet.observations
              api_key: ${env:AEMET_API_KEY}
              stations: ["3195"]
              to: [store]
            """,
        make: { build in .transform(try AEMETObservationsNode(build)) })

    let client: AEMETClient
    let stations: [String]
    let parse: AEMETReadings
    let maxRequests: Int

    init(_ build: NodeBuildContext) throws {
        client = try AEMETModule.client(build, type: "aemet.observations")
        stations = build.options["stations"]?.arrayValue?.map(\.templateText) ?? []
        parse = AEMETModule.readings(build)
        maxRequests = build.options.int("max_requests") ?? 60
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        var run = PullRun(context: context, maxRequests: maxRequests)
        for station in stations {
            let period = "aemet.observations/\(station)"
            guard try await run.shouldFetch(period) else { continue }
            do {
                let data = try await client.data("observacion/convencional/datos/estacion/\(station)", context: context)
                run.fetched(period, readings: try parse.observations(data), complete: false)
            } catch let error as PullError {
                guard run.failed(period, error) else { break }
            }
        }
        return try run.finish()
    }
}

/// `aemet.forecast`: a municipality's hourly (about 48 h) or daily (7 days) forecast.
struct AEMETForecastNode: TransformNode {
    static let spec = NodeSpec(
        type: "aemet.forecast", kind: .transform,
        summary: "Pulls AEMET's hourly or daily forecast for a municipality (temperature, precipitation, sky, wind)",
        doc: AEMETModule.twoStepDoc + """


            Series `aemet:MUNICIPALITY`, quality `forecast`; AEMET's hours are the municipality's local
            time (Europe/Madrid, Atlantic/Canary for the Canary Islands) and are stored in UTC.
            Hourly: `temperature`, `apparent_temperature`, `humidity` at the hour; `precipitation`, `snow`
            (mm), `sky_state` (AEMET's code), `cloud_cover` (% from the code), `wind_speed`, `wind_gust`
            (m/s) for the hour; `precipitation_probability`, `storm_probability`, `snow_probability` (%) for
            6-hour windows. Daily: `temperature_max`/`_min`, `humidity_max`/`_min` for the day, `temperature`
            at 06/12/18/24 h, and probability, sky, wind and gust for the finest windows the day has; `uv_index`.
            Each new forecast replaces the previous one's values (upserts).
            """,
        options: [
            OptionSpec("municipality", .string, required: true, doc: "INE municipality code, 5 digits, as a string.", example: "28065"),
            OptionSpec("kind", .enumeration(["hourly", "daily"]), default: "hourly", doc: "Hourly (about 48 h ahead) or daily (7 days)."),
        ] + AEMETModule.commonOptions(days: false),
        example: """
            - id: forecast
              type: aemet.forecast
              api_key: ${env:AEMET_API_KEY}
              municipality: "28065"
              kind: hourly
              to: [store]
            """,
        make: { build in .transform(try AEMETForecastNode(build)) })

    let client: AEMETClient
    let municipality: String
    let hourly: Bool
    let parse: AEMETReadings

    init(_ build: NodeBuildContext) throws {
        client = try AEMETModule.client(build, type: "aemet.forecast")
        municipality = build.options["municipality"]?.templateText ?? ""
        hourly = build.options.string("kind") != "daily"
        parse = AEMETModule.readings(build)
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        var run = PullRun(context: context, maxRequests: 1)
        let period = "aemet.forecast/\(hourly ? "hourly" : "daily")/\(municipality)"
        if try await run.shouldFetch(period) {
            do {
                let data = try await client.data("prediccion/especifica/municipio/\(hourly ? "horaria" : "diaria")/\(municipality)", context: context)
                run.fetched(period, readings: hourly ? try parse.hourlyForecast(data) : try parse.dailyForecast(data), complete: false)
            } catch let error as PullError {
                run.failed(period, error)
            }
        }
        return try run.finish()
    }
}

/// `aemet.climatology`: daily values of a station over a date range.
struct AEMETClimatologyNode: TransformNode {
    static let spec = NodeSpec(
        type: "aemet.climatology", kind: .transform,
        summary: "Pulls AEMET daily climatological values of a station for a date range",
        doc: AEMETModule.twoStepDoc + """


            Daily values of `station` from `from` to `until` (default: the last 30 days up to 5 days ago —
            AEMET publishes them with a lag of about 4 days), one request per calendar month. Series
            `aemet:STATION`, `P1D` readings at 00:00 UTC of each date: `temperature_mean`/`_max`/`_min`,
            `precipitation` (mm; `Acum`, a total over several days, is left out), `wind_speed`,
            `wind_gust` (m/s), `wind_direction` (deg), `sunshine` (h, where the station has a heliograph),
            `humidity`/`_max`/`_min` (%), `pressure_max`/`_min` (hPa). A day is recorded as fetched once
            it ended more than `lag` ago and its readings are committed; later triggers ask only for the
            days still missing.
            """,
        options: [
            OptionSpec("station", .string, required: true, doc: "Station id (indicativo), as a string.", example: "3194U"),
            OptionSpec("lag", .duration, default: "5d", doc: "How long after a day AEMET's values for it are final."),
        ] + AEMETModule.commonOptions(days: true),
        example: """
            - id: climate
              type: aemet.climatology
              api_key: ${env:AEMET_API_KEY}
              station: "3194U"
              from: -30d
              until: -5d
              to: [store]
            """,
        check: { DayWindow.problems($0) },
        make: { build in .transform(try AEMETClimatologyNode(build)) })

    let client: AEMETClient
    let station: String
    let parse: AEMETReadings
    let window: DayWindow
    let lag: Duration
    let maxRequests: Int

    init(_ build: NodeBuildContext) throws {
        let o = build.options
        client = try AEMETModule.client(build, type: "aemet.climatology")
        station = o["station"]?.templateText ?? ""
        parse = AEMETModule.readings(build)
        window = o.has("day") || o.has("from") || o.has("until") ? DayWindow(options: o) : DayWindow(from: "-30d", to: "-5d")
        lag = o.duration("lag") ?? .seconds(5 * 86_400)
        maxRequests = o.int("max_requests") ?? 60
    }

    func period(_ day: LocalDay) -> String { "aemet.climatology/\(station)/\(day)" }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        let now = context.clock.now()
        // AEMET's dates are UTC days.
        let days = try window.overridden(by: message.payload).days(today: LocalDay(containing: now, in: .gmt))
        let months = Dictionary(grouping: days) { LocalDay(year: $0.year, month: $0.month, day: 1) }
        var run = PullRun(context: context, maxRequests: maxRequests)
        for month in months.keys.sorted() {
            // Each day is recorded once final; a request covers the days of the month still missing.
            var missing: [LocalDay] = []
            for day in months[month]! where try await !run.isRecorded(period(day)) { missing.append(day) }
            guard let first = missing.min(), let last = missing.max(), run.mayRequest() else { continue }
            let name = "aemet.climatology/\(station)/\(first)..\(last)"
            let path = "valores/climatologicos/diarios/datos/fechaini/\(first)T00:00:00UTC/fechafin/\(last)T23:59:59UTC/estacion/\(station)"
            do {
                let (readings, accumulated) = try parse.climatology(try await client.data(path, context: context))
                if accumulated > 0 { context.logger.info("\(name): \(accumulated) day(s) with precipitation 'Acum' (a multi-day total) left out") }
                let final = missing.filter { $0.end(in: .gmt).addingTimeInterval(lag.seconds) <= now }
                run.fetched(name, readings: readings, completing: final.map(period))
            } catch let error as PullError {
                guard run.failed(name, error) else { break }
            }
        }
        return try run.finish()
    }
}
