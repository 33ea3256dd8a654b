import EnchufeCore
import Foundation
import HTTPPull

/// A calendar month, as Datadis asks for them (`YYYY/MM`).
struct Month: Hashable, Comparable, Sendable {
    var year: Int
    var month: Int

    init(year: Int, month: Int) {
        self.year = year + (month - 1).floorDiv(12)
        self.month = (month - 1).floorMod(12) + 1
    }

    init(containing day: LocalDay) { self.init(year: day.year, month: day.month) }

    /// `2024-03` or `2024/03`.
    init?(_ text: String) {
        let parts = text.split(whereSeparator: { $0 == "-" || $0 == "/" })
        guard parts.count == 2, parts[0].count == 4, let y = Int(parts[0]), let m = Int(parts[1]), (1...12).contains(m) else { return nil }
        self.init(year: y, month: m)
    }

    func adding(_ months: Int) -> Month { Month(year: year, month: month + months) }
    var first: LocalDay { LocalDay(year: year, month: month, day: 1) }
    var query: String { String(format: "%04d/%02d", year, month) }
    var text: String { String(format: "%04d-%02d", year, month) }
    static func < (a: Month, b: Month) -> Bool { (a.year, a.month) < (b.year, b.month) }

    /// The intervals of `seconds` in the month, local time (DST days included).
    func intervals(_ seconds: TimeInterval, zone: TimeZone) -> Int {
        Int((adding(1).first.start(in: zone).timeIntervalSince(first.start(in: zone)) / seconds).rounded())
    }
}

extension Int {
    func floorDiv(_ d: Int) -> Int { self >= 0 ? self / d : (self - d + 1) / d }
    func floorMod(_ d: Int) -> Int { self - floorDiv(d) * d }
}

/// `datadis.consumption` and `datadis.max_power`: months of a supply's curve, planned from the
/// checkpoints and the request ledger.
struct DatadisCurveNode: TransformNode {
    enum Kind: Sendable { case consumption, maxPower }

    static let planningDoc = """
        Each message it receives is a trigger: for the supply it carries (a `datadis.supplies` output) or
        every Datadis supply in the store, it plans which months to ask for (Datadis takes whole months,
        `YYYY/MM`, at most 24 months back) from `from` (default 12 months back) to the current month:
        the current and previous month once a day (data arrives days or weeks late), older months not yet
        complete at most every `older_every` (7 days), and never a month already stored complete.
        Every query goes through the request ledger in the store: an identical query is never sent twice
        within 24 hours, across restarts (Datadis answers 429 "Consulta ya realizada" and has locked users
        out for days) — it is entered before it is sent, as a timeout may still have counted. A 429 is
        never retried. Requests are spread: at most `max_requests` per trigger (default 12) and
        `requests_per_minute` (default 6). The log says, per supply, when its next request is due (also
        kept in the store). An empty answer is "not published yet", never zero; a `distributorError`
        is a warning naming the distributor.
        """

    static let consumptionSpec = NodeSpec(
        type: "datadis.consumption", kind: .transform,
        summary: "Pulls hourly or quarter-hourly consumption, surplus, generation and self-consumption from Datadis",
        doc: planningDoc + """


            Readings per supply (series = the CUPS), kWh: `consumption`, `surplus`, `generation`,
            `self_consumption` where present; quality `measured`, or `estimated` when Datadis says
            `Estimada`. Datadis labels hours `01:00`..`24:00` by their END in local time (Atlantic/Canary
            for Canarias): they are stored as UTC interval starts, each local day placed by its row count —
            23 rows on the spring day, 25 (a label repeated) or 24 (the two repeated hours merged in the
            `02:00` row, split into two `estimated` halves) on the autumn day; stray `00:00` rows are
            rejected one by one with a warning, never aborting the rest.
            """,
        options: DatadisModule.options(extra: [Key.measurement.spec, Key.from.spec, Key.olderEvery.spec]),
        example: """
            - id: consumption
              type: datadis.consumption
              username: ${env:DATADIS_USER}
              password: ${env:DATADIS_PASSWORD}
              measurement: hourly
              to: [store]
            """,
        check: { Self.problems($0) },
        make: { build in .transform(try DatadisCurveNode(build, kind: .consumption)) })

    static let maxPowerSpec = NodeSpec(
        type: "datadis.max_power", kind: .transform,
        summary: "Pulls the maximeter's monthly maximum power per period from Datadis (kW)",
        doc: planningDoc + """


            Readings `max_power` in kW (Datadis' documentation says W; real answers are kW) at the local
            quarter-hour the maximum happened, `PT15M`, series = the CUPS.
            """,
        options: DatadisModule.options(extra: [Key.from.spec, Key.olderEvery.spec]),
        example: """
            - id: max-power
              type: datadis.max_power
              username: ${env:DATADIS_USER}
              password: ${env:DATADIS_PASSWORD}
              to: [store]
            """,
        check: { Self.problems($0) },
        make: { build in .transform(try DatadisCurveNode(build, kind: .maxPower)) })

    enum Key {
        static let measurement = OptionKey<String>(
            "measurement", .enumeration(["hourly", "quarter_hourly"]), default: "hourly",
            doc: "Hourly (measurementType 0) or quarter-hourly (1, large supplies).")
        static let from = OptionKey<String?>(
            "from", doc: "First month to ask for, YYYY-MM (default: 12 months back; Datadis keeps 24).", example: "2025-01")
        static let olderEvery = OptionKey<Duration>(
            "older_every", default: .seconds(7 * 86_400), doc: "How often a month before the previous one, not complete yet, is asked again.")
    }

    static func problems(_ options: NodeOptions) -> [OptionProblem] {
        if let from = options[Key.from], Month(from) == nil {
            return [OptionProblem(option: "from", "'\(from)' is not a month: use YYYY-MM")]
        }
        return []
    }

    let kind: Kind
    let client: DatadisClient
    let cups: [String]
    let quarterHourly: Bool
    let from: Month?
    let olderEvery: TimeInterval
    let maxRequests: Int
    let username: String

    init(_ build: NodeBuildContext, kind: Kind) throws {
        let o = build.options
        self.kind = kind
        client = try DatadisModule.client(build, type: kind == .consumption ? "datadis.consumption" : "datadis.max_power")
        cups = o[DatadisModule.cups] ?? []
        quarterHourly = o[Key.measurement] == "quarter_hourly"
        from = o[Key.from].flatMap(Month.init)
        olderEvery = o[Key.olderEvery].seconds
        maxRequests = o[DatadisModule.pull.maxRequests]
        username = o[DatadisModule.username]?.reveal() ?? ""
    }

    var endpoint: String { client.endpoint(kind == .consumption ? "get-consumption-data" : "get-max-power") }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        let now = context.clock.now()
        let planner = DatadisPlanner(now: now, from: from, olderEvery: olderEvery)
        let ledger = DatadisLedger(store: context.store, tenant: context.tenant, username: username)
        var run = PullRun(context: context, maxRequests: maxRequests)
        for supply in try await DatadisModule.supplies(for: message, cups: cups, context: context) {
            guard let distributor = supply.distributorCode else { continue }
            let zone = DatadisAnswer.timeZone(zone: supply.zone ?? "peninsula")
            func periodOf(_ month: Month) -> String {
                "\(kind == .consumption ? "datadis.consumption" : "datadis.max_power")/\(supply.cups)/\(month.text)" + (quarterHourly ? "/qh" : "")
            }
            func queryOf(_ month: Month) -> [(String, String)] {
                var query = [("cups", supply.cups), ("distributorCode", distributor), ("startDate", month.query), ("endDate", month.query)]
                if kind == .consumption { query += [("measurementType", quarterHourly ? "1" : "0"), ("pointType", String(supply.pointType ?? 5))] }
                return query
            }
            func keyOf(_ month: Month) -> String {
                DatadisLedger.key(endpoint, queryOf(month) + (client.authorizedNIF.map { [("authorizedNif", $0)] } ?? []))
            }
            // What the store knows of each month, then the plan (DatadisPlanner), then the requests.
            var known: [Month: DatadisPlanner.Known] = [:]
            for month in planner.months {
                let recorded = try await run.isRecorded(periodOf(month))
                known[month] = DatadisPlanner.Known(recorded: recorded, lastAsked: recorded ? nil : try await ledger.entry(keyOf(month))?.askedAt)
            }
            let plan = planner.plan(known, budget: run.remaining)
            run.leave(plan.deferred.count)
            var nextDue = plan.nextDue
            for month in plan.requests {
                guard run.mayRequest() else {
                    nextDue = now
                    continue
                }
                let recent = planner.isRecent(month)
                let query = queryOf(month), key = keyOf(month), period = periodOf(month)
                try await ledger.record(key, at: now, outcome: "sent")
                let name = "\(DatadisModule.masked(supply.cups)) \(month.text)"
                do {
                    let answer = try DatadisAnswer.rows(try await client.get(endpoint, query: query, context: context), key: kind == .consumption ? "timeCurve" : "maxPower")
                    for e in answer.errors { context.logger.warning("\(name): \(e)") }
                    if answer.rows.isEmpty {
                        try await ledger.record(key, at: now, outcome: answer.errors.isEmpty ? "no_data" : "distributor_error")
                        if answer.errors.isEmpty { context.logger.info("\(name): nothing published yet (an empty answer is not zero)") }
                        continue
                    }
                    try await ledger.record(key, at: now, outcome: "ok")
                    let (readings, rejected) = kind == .consumption
                        ? DatadisCurve.readings(answer.rows, series: supply.cups, zone: zone, quarterHourly: quarterHourly)
                        : DatadisCurve.maxPower(answer.rows, series: supply.cups, zone: zone)
                    if !rejected.isEmpty {
                        context.logger.warning("\(name): \(rejected.count) row(s) rejected: \(rejected.prefix(3).map(\.description).joined(separator: "; "))")
                    }
                    let complete = !recent && isComplete(readings, month: month, zone: zone)
                    run.fetched(
                        period, readings: readings, complete: complete,
                        payload: [
                            "cups": .string(supply.cups), "month": .string(month.text), "readings": .number(Double(readings.count)),
                            "rejected": .number(Double(rejected.count)), "complete": .bool(complete),
                        ])
                } catch let error as PullError where error.kind == .rateLimit {
                    try await ledger.record(key, at: now, outcome: "rate_limit")
                    context.logger.warning("\(name): Datadis refused a query already made in the last 24 hours; not asked again before \(ISO8601.string(now.addingTimeInterval(DatadisLedger.window)))")
                } catch let error as PullError {
                    try await ledger.record(key, at: now, outcome: error.kind.rawValue)
                    // An answer refusing one month (a 500 around a contract change, a 400) concerns
                    // that month only; no answer at all (a timeout, the service down) ends the pull.
                    let monthOnly = error.status.map { $0 != 401 && $0 != 403 } ?? (error.kind == .malformed)
                    guard run.failed(name, error, goOn: monthOnly) else { break }
                }
            }
            if let nextDue {
                context.logger.info("next request for \(DatadisModule.masked(supply.cups)) due at \(ISO8601.string(nextDue))")
                try await context.saveCheckpoint("next_due:\(supply.cups)", ISO8601.string(nextDue))
            }
        }
        return try run.finish()
    }

    /// A past month is complete when every interval of it is there (consumption), or when it has a
    /// value (max power: one per period).
    func isComplete(_ readings: [Reading], month: Month, zone: TimeZone) -> Bool {
        guard kind == .consumption else { return !readings.isEmpty }
        let times = Set(readings.filter { $0.quantity == "consumption" }.map(\.ts))
        return times.count == month.intervals(quarterHourly ? 900 : 3600, zone: zone)
    }
}
