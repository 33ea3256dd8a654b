import EnchufeCore
import Foundation
import HTTPPull

/// `esios`: ESIOS indicators by id, one request per indicator and day.
struct ESIOSNode: TransformNode {
    enum Key {
        static let token = OptionKey<Secret?>("token", secret: true, doc: "Personal ESIOS token (from consultasios@ree.es).", example: "${env:ESIOS_TOKEN}")
        static let indicators = RequiredOptionKey<JSONValue>("indicators", .list(.integer), doc: "Indicator ids: 1001 PVPC, 600 spot, 1739 surplus price...", example: [1001])
        static let geoIds = OptionKey<JSONValue?>("geo_ids", .list(.integer), doc: "Only these geographies (3 Spain, 8741 peninsula...).", example: [8741])
        static let timeTrunc = OptionKey<String?>("time_trunc", .enumeration(["five_minutes", "ten_minutes", "fifteen_minutes", "hour", "day", "month", "year"]), doc: "Aggregate to this step.")
        static let timeAgg = OptionKey<String?>("time_agg", .enumeration(["average", "sum"]), doc: "How to aggregate with time_trunc (default average; use sum for energies).")
        static let locale = OptionKey<String>("locale", .enumeration(["es", "en"]), default: "es", doc: "Language of names in the answer.")
    }

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
            Key.token.spec,
            Key.indicators.spec,
            Key.geoIds.spec,
            Key.timeTrunc.spec,
            Key.timeAgg.spec,
            Key.locale.spec,
        ] + PullNodeOptions.esios.specs,
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
        token = try build.credential(
            Key.token, missing: "needs an ESIOS token: set `token` (e.g. token: ${env:ESIOS_TOKEN}); request one from consultasios@ree.es")
        client = PullNodeOptions.esios.client(build, type: "esios")
        base = PullNodeOptions.esios.base(o)
        indicators = o[Key.indicators]?.arrayValue?.compactMap(\.intValue) ?? []
        geoIDs = o[Key.geoIds]?.arrayValue?.compactMap(\.intValue) ?? []
        timeTrunc = o[Key.timeTrunc]
        timeAgg = o[Key.timeAgg] ?? (o.has(Key.timeTrunc) ? "average" : nil)
        locale = o[Key.locale]
        window = DayWindow(options: o)
        maxRequests = o[PullNodeOptions.esios.maxRequests]
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
