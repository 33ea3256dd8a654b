import EnchufeCore
import Foundation
import HTTPPull

/// `aemet.climatology`: daily values of a station over a date range.
struct AEMETClimatologyNode: TransformNode {
    enum Key {
        static let station = RequiredOptionKey<String>("station", doc: "Station id (indicativo), as a string.", example: "3194U")
        static let lag = OptionKey<Duration>("lag", default: .seconds(5 * 86_400), doc: "How long after a day AEMET's values for it are final.")
    }

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
            Key.station.spec,
            Key.lag.spec,
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
        station = try o.required(Key.station)
        parse = AEMETModule.readings(build)
        window = DayWindow(options: o, none: DayWindow(from: "-30d", to: "-5d"))
        lag = o[Key.lag]
        maxRequests = o[AEMETModule.pull.maxRequests]
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
