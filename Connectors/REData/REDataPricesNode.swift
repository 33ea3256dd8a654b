import EnchufeCore
import Foundation
import HTTPPull

/// `redata.prices`: PVPC (1001) and the day-ahead spot price (600) for a day or a range.
struct REDataPricesNode: TransformNode {
    enum Key {
        static let source = OptionKey<String>("source", .enumeration(["redata", "archive"]), default: "redata", doc: "REData (PVPC and spot) or ESIOS' public PVPC archive (PVPC only).")
        static let archiveUrl = OptionKey<String>("archive_url", default: "https://api.esios.ree.es", doc: "Where the PVPC archive is, with `source: archive`.")
        static let geoIds = OptionKey<String?>("geo_ids", doc: "System id: 8741 peninsula (default), 8744 Ceuta, 8745 Melilla...", example: "8741")
        static let lang = OptionKey<String>("lang", .enumeration(["es", "en"]), default: "es", doc: "Language of the request path.")
        static let notYetRetry = OptionKey<Duration>("not_yet_retry", default: .seconds(900), doc: "Wait before asking again for prices not published yet.")
        static let notYetAttempts = OptionKey<Int>("not_yet_attempts", default: 8, doc: "How many times to ask again for prices not published yet, per trigger.")
    }

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
            Key.source.spec,
            Key.archiveUrl.spec,
            Key.geoIds.spec,
            Key.lang.spec,
            Key.notYetRetry.spec,
            Key.notYetAttempts.spec,
        ] + PullNodeOptions.redata.specs,
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
        client = PullNodeOptions.redata.client(build, type: "redata.prices", errorBody: REDataAnswer.errorBody)
        base = PullNodeOptions.redata.base(o)
        archive = o[Key.source] == "archive" ? PullNodeOptions.trimmed(o[Key.archiveUrl]) : nil
        geoID = o[Key.geoIds]
        lang = o[Key.lang]
        window = DayWindow(options: o)
        maxRequests = o[PullNodeOptions.redata.maxRequests]
        notYetRetry = o[Key.notYetRetry]
        notYetAttempts = o[Key.notYetAttempts]
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
        let prefix = archive == nil ? "redata.prices/\(geo)/" : "redata.prices/archive70/"
        return try await PullRun.each(days, context: context, maxRequests: maxRequests, period: { prefix + $0.description }) { day in
            try await fetch(day, context)
        }
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
