import EnchufeCore
import Foundation
import HTTPPull

/// `aemet.forecast`: a municipality's hourly (about 48 h) or daily (7 days) forecast.
struct AEMETForecastNode: TransformNode {
    enum Key {
        static let municipality = RequiredOptionKey<String>("municipality", doc: "INE municipality code, 5 digits, as a string.", example: "28065")
        static let kind = OptionKey<String>("kind", .enumeration(["hourly", "daily"]), default: "hourly", doc: "Hourly (about 48 h ahead) or daily (7 days).")
    }

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
            Key.municipality.spec,
            Key.kind.spec,
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
        municipality = try build.options.required(Key.municipality)
        hourly = build.options[Key.kind] != "daily"
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
