import Foundation
import NIOCore

/// `file.out`: export files written to a folder, atomically.
struct FileOutNode: SinkNode {
    enum Key {
        static let path = RequiredOptionKey<String>("path", doc: "The folder (created if missing).", example: "var/exports")
        static let format = OptionKey<String>("format", .enumeration(ExportFormat.allCases.map(\.rawValue)), default: "csv", doc: "The file format.")
        static let source = OptionKey<String>("source", .enumeration(["store", "message"]), default: "store", doc: "Stored readings of the period, or the message's readings.")
        static let period = OptionKey<String>("period", .enumeration(["previous_day", "previous_month", "previous_year", "current_year"]), default: "previous_month", doc: "Source store: which readings, from the message's time.")
        static let series = OptionKey<[String]?>("series", doc: "Only these series.")
        static let quantity = OptionKey<String?>("quantity", doc: "Only this quantity (`coefficient` by default for coefficients).")
        static let resolution = OptionKey<String?>("resolution", doc: "Table formats: aggregate to `PT15M`, `PT30M`, `PT1H` or `P1D`.")
        static let name = OptionKey<String?>("name", doc: "The file name; `{from}`, `{to}`, `{year}`, `{month}`, `{node}`, `{cau}` are replaced.")
        static let cau = OptionKey<String?>("cau", doc: "Coefficients: the installation's CAU, for the file name.")
        static let borderPoint = OptionKey<String>("border_point", default: "0F", doc: "Coefficients: appended to 20-character CUPS.")
        static let timezone = OptionKey<String>("timezone", .timezone, default: "Europe/Madrid", doc: "Local time of the period, the names and curve labels.")
    }

    static let spec = NodeSpec(
        type: "file.out", kind: .sink,
        summary: "Writes export files (csv, json, ndjson, datadis-csv, f5d, coefficients, settlement) to a folder, atomically, on each message",
        doc: """
            Each message that arrives (from a `schedule`, say, once a month) writes one file into
            `path`, in `format` (the formats of `export`):
            - `source: store` (the default): the flow's tenant's stored readings of `series` and
              `quantity` (`coefficient` for the coefficients format) for `period`, counted back
              from the message's time in `timezone`: `previous_day`, `previous_month` (the default:
              a monthly billing export run on the 1st), `previous_year`, or `current_year`;
            - `source: message`: the message's own readings (after `coefficients`,
              `community.balance`, `aggregate`...).

            The file is written as `.NAME.part` beside its final name, flushed to disk, then renamed,
            so a reader (a billing import, `file.in` elsewhere) never sees half a file; a file of
            the same name is replaced. `name` may use `{from}` and `{to}` (the period's local
            dates, `to` excluded), `{year}`, `{month}` (`YYYY-MM` of `from`), `{node}` and, for
            coefficient files, `{cau}`; the default is `{cau}_{year}.txt` for coefficients with a
            `cau`, else `{node}_{from}_{to}.EXT`. A coefficient set that does not sum to exactly
            1,000000 writes nothing and the message fails with the reason. The message is
            acknowledged once its file is in place.
            """,
        options: [
            Key.path.spec,
            Key.format.spec,
            Key.source.spec,
            Key.period.spec,
            Key.series.spec,
            Key.quantity.spec,
            Key.resolution.spec,
            Key.name.spec,
            Key.cau.spec,
            Key.borderPoint.spec,
            Key.timezone.spec,
        ],
        example: """
            - id: monthly
              type: schedule
              cron: "0 6 1 * *"
              to: [billing-file]
            - id: billing-file
              type: file.out
              path: var/exports
              format: f5d
              quantity: consumption
              name: "curves_{month}.txt"
            """,
        check: { options in
            var problems: [OptionProblem] = []
            if let resolution = options[Key.resolution], Resampler.seconds(resolution) == nil {
                problems.append(OptionProblem(option: "resolution", "'\(resolution)' is not one readings are aggregated to: PT15M, PT30M, PT1H, P1D"))
            }
            if let name = options[Key.name], name.contains("/") || name.hasPrefix(".") {
                problems.append(OptionProblem(option: "name", "'\(name)' must be a plain file name (no '/', not starting with '.')"))
            }
            // The CAU goes into the file name: letters and digits only, so it cannot lead elsewhere.
            if let cau = options[Key.cau], cau.isEmpty || cau.count > 64 || !cau.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) {
                problems.append(OptionProblem(option: "cau", "'\(cau)' is not a CAU (letters and digits, e.g. ES0031000000000001BJ0FA000)"))
            }
            return problems
        },
        make: { context in .sink(try FileOutNode(context)) })

    let folder: URL
    let format: ExportFormat
    let fromMessage: Bool
    let period: String
    let series: [String]
    let quantity: String?
    let resolution: Int?
    let name: String?
    let cau: String?
    let borderPoint: String
    let zone: TimeZone
    let node: String

    var batching: Batching { .single }

    init(_ build: NodeBuildContext) throws {
        let o = build.options
        folder = URL(fileURLWithPath: try o.required(Key.path))
        format = ExportFormat(rawValue: o[Key.format]) ?? .csv
        fromMessage = o[Key.source] == "message"
        period = o[Key.period]
        series = o[Key.series] ?? []
        quantity = o[Key.quantity] ?? (format == .coefficients ? "coefficient" : nil)
        resolution = o[Key.resolution].flatMap(Resampler.seconds)
        name = o[Key.name]
        cau = o[Key.cau]
        borderPoint = o[Key.borderPoint]
        zone = TimeZone(identifier: o[Key.timezone]) ?? LocalDay.madrid
        node = build.node
    }

    func write(_ batch: [Message], _ context: NodeContext) async throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for message in batch { try await writeFile(message, context) }
    }

    /// The period's first day and the day after its last, counted back from `now`.
    func range(now: Date) -> (from: LocalDay, to: LocalDay) {
        let today = LocalDay(containing: now, in: zone)
        switch period {
        case "previous_day": return (today.adding(days: -1), today)
        case "previous_year": return (LocalDay(year: today.year - 1, month: 1, day: 1), LocalDay(year: today.year, month: 1, day: 1))
        case "current_year": return (LocalDay(year: today.year, month: 1, day: 1), LocalDay(year: today.year + 1, month: 1, day: 1))
        default:
            let first = LocalDay(year: today.year, month: today.month, day: 1)
            let previous = today.month == 1 ? LocalDay(year: today.year - 1, month: 12, day: 1) : LocalDay(year: today.year, month: today.month - 1, day: 1)
            return (previous, first)
        }
    }

    func writeFile(_ message: Message, _ context: NodeContext) async throws {
        // What goes into the file: a store query, or the message's readings in a throwaway store.
        let store: any Store
        var (from, to) = range(now: context.clock.now())
        if fromMessage {
            let memory = try SQLiteStore(path: ":memory:")
            try await memory.migrate()
            let readings = message.readings.map { r in var r = r; r.tenant = context.tenant; return r }
            _ = try await memory.upsert(readings)
            store = memory
            if let first = readings.map(\.ts).min(), let last = readings.map(\.ts).max() {
                (from, to) = (LocalDay(containing: first, in: zone), LocalDay(containing: last, in: zone).adding(days: 1))
            }
        } else {
            store = context.store
        }
        let query = ReadingQuery(
            tenant: context.tenant, series: series, quantity: quantity,
            from: fromMessage ? nil : from.start(in: zone), to: fromMessage ? nil : to.start(in: zone))
        var year = from.year
        if format == .coefficients {
            do {
                year = try await Exporter.coefficientFile(query, store: store, borderPoint: borderPoint, zone: zone).year ?? year
            } catch let problem as CoefficientFile.Problem {
                throw PermanentError("file.out: no coefficient file written: \(problem)")
            }
        }
        let fileName = self.fileName(from: from, to: to, year: year)
        let final = folder.appendingPathComponent(fileName)
        let part = folder.appendingPathComponent(".\(fileName).part")
        FileManager.default.createFile(atPath: part.path, contents: nil)
        let handle = try FileHandle(forWritingTo: part)
        do {
            try await Exporter.write(format, query, store: store, zone: zone, resampler: resolution.map { Resampler(seconds: $0, zone: zone) }) { chunk in
                try handle.write(contentsOf: chunk.readableBytesView)
            }
            try handle.synchronize()
            try handle.close()
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(at: part)
            throw error
        }
        guard rename(part.path, final.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: part)
            throw PermanentError("file.out: cannot move the file into place as \(final.path): \(reason)")
        }
        context.logger.info("wrote \(final.path)")
    }

    func fileName(from: LocalDay, to: LocalDay, year: Int) -> String {
        let ext: String = switch format {
        case .csv, .datadisCSV, .settlement: "csv"
        case .json: "json"
        case .ndjson: "ndjson"
        case .f5d, .coefficients: "txt"
        }
        let template = name ?? (format == .coefficients && cau != nil ? "{cau}_{year}.txt" : "{node}_{from}_{to}.\(ext)")
        return template
            .replacingOccurrences(of: "{from}", with: from.description)
            .replacingOccurrences(of: "{to}", with: to.description)
            .replacingOccurrences(of: "{year}", with: String(year))
            .replacingOccurrences(of: "{month}", with: String(format: "%04d-%02d", from.year, from.month))
            .replacingOccurrences(of: "{node}", with: node)
            .replacingOccurrences(of: "{cau}", with: cau ?? "")
    }
}
