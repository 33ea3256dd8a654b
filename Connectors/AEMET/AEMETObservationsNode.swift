import EnchufeCore
import Foundation
import HTTPPull

/// `aemet.observations`: the last hours of conventional observations of stations.
struct AEMETObservationsNode: TransformNode {
    static let stationsKey = RequiredOptionKey<[String]>(
        "stations", doc: "Station ids (idema), as strings: leading zeros matter.", example: ["3195"])

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
            stationsKey.spec,
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
        stations = try build.options.required(Self.stationsKey)
        parse = AEMETModule.readings(build)
        maxRequests = build.options[AEMETModule.pull.maxRequests]
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        try await PullRun.each(stations, context: context, maxRequests: maxRequests, period: { "aemet.observations/\($0)" }) { station in
            let data = try await client.data("observacion/convencional/datos/estacion/\(station)", context: context)
            return (try parse.observations(data), complete: false)
        }
    }
}
